//! Starts the real `countersign-server` binary on loopback with a fresh data directory, and
//! runs its admin subcommands, as an operator would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_countersign-server");

pub struct Server {
    pub dir: tempfile::TempDir,
    pub base: String,
    child: Child,
    pub http: reqwest::blocking::Client,
}

/// Runs an admin subcommand against `data_dir`; returns stdout, panicking with stderr on failure.
pub fn admin(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs an admin subcommand that must fail; returns stderr.
pub fn admin_fails(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} unexpectedly succeeded");
    String::from_utf8(out.stderr).unwrap()
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir)
    }

    pub fn start_in(dir: tempfile::TempDir) -> Server {
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("countersign-server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap();
        Server {
            dir,
            base,
            child,
            http,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an API key through the admin CLI.
    pub fn api_key(&self, name: &str, audience: &str) -> String {
        admin(
            &self.data_dir(),
            &["api-key", "create", "--name", name, "--audience", audience],
        )
        .trim()
        .to_owned()
    }

    /// The number of audit entries, through the admin CLI's verified export.
    pub fn audit_len(&self) -> usize {
        let out = admin(&self.data_dir(), &["audit", "export"]);
        out.lines().count() - 1
    }

    /// POSTs JSON with an API key; returns status and parsed body.
    pub fn post(
        &self,
        key: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }

    /// GETs with an API key.
    pub fn get(&self, key: &str, path: &str) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// base64url SHA-256 of a session id.
pub fn session_hash(session: &str) -> String {
    countersign_core::canonical::domain_digest(b"", session.as_bytes()).to_base64url()
}

/// A create-request body for a payout of `value` EUR.
pub fn payout(idempotency_key: &str, value: &str, requester: &str) -> serde_json::Value {
    serde_json::json!({
        "idempotency_key": idempotency_key,
        "action": "payout.send",
        "object": "vendor:4711",
        "amount": {"value": value, "currency": "EUR"},
        "requester": {"id": requester, "kind": "human"},
        "session": session_hash("session-1"),
        "context": {"ip": "198.51.100.7", "geo": "DE", "device_posture": "managed", "privileges": ["payments"]}
    })
}
