//! TLS through rustls, refusals of unusable certificates, and a clean stop on SIGTERM even
//! with event streams open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_testkit::*;
use std::process::Command;

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM files in `dir`.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key, made.cert.pem())
}

#[test]
fn serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = certificate(dir.path());
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n"),
    )
    .unwrap();
    let server = Server::start_in(dir);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );

    let trusting = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let info: serde_json::Value = trusting
        .get(server.url("/v1/info"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["rp_id"].as_str(), Some("localhost"));

    let untrusting = reqwest::blocking::Client::new();
    let refused = untrusting.get(server.url("/health")).send();
    assert!(
        refused.is_err(),
        "an unknown certificate is refused by a default client"
    );
    let plain = server.url("/health").replace("https://", "http://");
    let plain = untrusting.get(plain).send();
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP is not served on the TLS port"
    );
}

#[test]
fn unusable_certificates_stop_the_server_with_a_precise_error() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path());
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let cases = [
        (dir.path().join("missing.pem"), key.clone(), "tls.cert"),
        (empty.clone(), key.clone(), "no PEM certificate"),
        (cert.clone(), empty, "tls.key"),
        (cert.clone(), other_key, "tls:"),
    ];
    for (cert, key, expected) in cases {
        let config = dir.path().join("config.toml");
        std::fs::write(&config, format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n")).unwrap();
        let out = Command::new(server_bin())
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{expected}: started anyway");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(out.stdout.is_empty(), "never announced a listening address");
    }
}

#[test]
fn sigterm_stops_the_server_even_with_an_open_event_stream() {
    let mut server = Server::start();
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let (status, stream) = EventStream::open(&server, &alice, None);
    assert_eq!(status, 200);
    let status = server
        .terminate(20)
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    drop(stream);
}
