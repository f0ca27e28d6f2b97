//! The example payouts service (its real binary) against the real Countersign server: it pays
//! what needs no step-up, pays an approved payout once, and pays nothing that was denied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../crates/countersign-server/tests/common/mod.rs"]
mod common;

use common::*;
use countersign_core::Decision;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Service {
    child: Child,
    base: String,
    ledger: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(server: &Server, api_key: &str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_payouts-service"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--countersign",
            &server.base,
            "--ledger",
        ])
        .arg(&ledger)
        .env("COUNTERSIGN_API_KEY", api_key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("payouts-service listening on ")
        .unwrap()
        .to_owned();
    Service {
        child,
        base,
        ledger,
        _dir: dir,
    }
}

fn pay(service: &Service, id: &str, amount: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/payouts", service.base))
        .json(&serde_json::json!({
            "id": id, "vendor": "4711", "amount": amount, "currency": "EUR",
            "requester": "alice@example.com", "session_id": "session-1",
        }))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap())
}

fn wait_for(service: &Service, id: &str, not: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let status: serde_json::Value =
            reqwest::blocking::get(format!("{}/payouts/{id}", service.base))
                .unwrap()
                .json()
                .unwrap();
        if status["status"].as_str() != Some(not) {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("payout {id} stayed {not}");
}

fn ledger(service: &Service) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&service.ledger)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn pays_only_what_policy_or_an_approver_allowed() {
    let server = Server::start();
    let key = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let service = start_service(&server, &key);

    let (status, answer) = pay(&service, "small-1", "50");
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("executed")),
        "{answer}"
    );
    assert_eq!(ledger(&service).len(), 1);

    // A 2,500 EUR payout waits for Alice's own key; nothing is paid before.
    let (status, answer) = pay(&service, "big-1", "2500");
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("pending")),
        "{answer}"
    );
    assert_eq!(ledger(&service).len(), 1);
    let pushed = alice.pending(&server);
    let request = pushed
        .iter()
        .find(|p| p.transaction.id == answer["request_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        answer["fingerprint"].as_str().unwrap(),
        request.digest.fingerprint(),
        "the requester and the approver see the same fingerprint"
    );
    let (code, _) = alice.decide(
        &server,
        &request.transaction.id,
        &request.digest.to_base64url(),
        Decision::Approve,
    );
    assert_eq!(code, 200);
    let done = wait_for(&service, "big-1", "pending");
    assert_eq!(done["status"].as_str(), Some("executed"), "{done}");
    let paid = ledger(&service);
    assert_eq!(paid.len(), 2);
    assert_eq!(paid[1]["payout"]["id"].as_str(), Some("big-1"));
    assert_eq!(
        paid[1]["approvers"],
        serde_json::json!(["alice@example.com"])
    );
    let (_, state) = server.get(&key, &format!("/v1/requests/{}", request.transaction.id));
    assert_eq!(
        state["state"].as_str(),
        Some("executed"),
        "the outcome was reported"
    );

    // A denied payout is never paid.
    let (_, answer) = pay(&service, "big-2", "2600");
    let id = answer["request_id"].as_str().unwrap().to_owned();
    let digest = alice
        .pending(&server)
        .into_iter()
        .find(|p| p.transaction.id == id)
        .unwrap()
        .digest;
    let (code, _) = alice.decide(&server, &id, &digest.to_base64url(), Decision::Deny);
    assert_eq!(code, 200);
    let done = wait_for(&service, "big-2", "pending");
    assert_eq!(done["status"].as_str(), Some("refused"), "{done}");
    assert!(
        done["reason"].as_str().unwrap().contains("denied"),
        "{done}"
    );
    assert_eq!(
        ledger(&service).len(),
        2,
        "nothing paid for the denied request"
    );
}
