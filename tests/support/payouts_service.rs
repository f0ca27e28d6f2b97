//! The example payouts service's real binary, for tests of the packages that build it.
#![allow(dead_code)]

use super::server::Server;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    child: Child,
    pub base: String,
    pub ledger: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_service(server: &Server, api_key: &str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let bin = countersign_testkit::workspace_bin("countersign-example-payouts", "payouts-service");
    let mut child = Command::new(bin)
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

pub fn pay(service: &Service, id: &str, amount: &str) -> (u16, serde_json::Value) {
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

pub fn wait_for(service: &Service, id: &str, not: &str) -> serde_json::Value {
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

pub fn ledger(service: &Service) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&service.ledger)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
