//! `countersign verify-decision` against every decision-token golden vector.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn verify_decision_agrees_with_every_token_vector() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/vectors/decision_token.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let tx = dir.path().join("transaction.json");
    std::fs::write(&jwks, doc["jwks"].to_string()).unwrap();
    std::fs::write(&tx, doc["transaction"].to_string()).unwrap();
    let run = |token: &str, audience: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(["verify-decision", "--token", token, "--issuer"])
            .arg(doc["issuer"].as_str().unwrap())
            .args(["--audience", audience, "--now"])
            .arg(doc["now"].to_string())
            .arg("--jwks")
            .arg(&jwks)
            .arg("--transaction")
            .arg(&tx)
            .args(extra)
            .output()
            .unwrap()
    };
    let audience = doc["audience"].as_str().unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let out = run(case["token"].as_str().unwrap(), audience, &["--json"]);
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        match case["error"].as_str() {
            None => {
                assert!(out.status.success(), "{name}: {answer}");
                assert_eq!(answer["claims"], case["claims"], "{name}");
            }
            Some(code) => {
                assert_eq!(out.status.code(), Some(1), "{name}: {answer}");
                assert_eq!(answer["code"].as_str(), Some(code), "{name}");
            }
        }
    }
    // Text mode, the wrong audience, and unreadable inputs.
    let ok = doc["cases"][0]["token"].as_str().unwrap();
    let out = run(ok, audience, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("valid: "));
    let out = run(ok, "admin-console", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong_audience"));
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args([
            "verify-decision",
            "--token",
            ok,
            "--issuer",
            "x",
            "--audience",
            "y",
        ])
        .args([
            "--jwks",
            "/nonexistent/jwks.json",
            "--transaction",
            "/nonexistent/tx.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
