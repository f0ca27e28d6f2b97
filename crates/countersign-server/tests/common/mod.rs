//! Starts the real `countersign-server` binary on loopback with a fresh data directory, and
//! runs its admin subcommands, as an operator would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The server binary: Cargo names it for this package's tests; tests of other packages in the
/// workspace find it next to their own executable (`target/<profile>/`), where
/// `cargo test --workspace` builds it.
pub fn server_bin() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_countersign-server") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("countersign-server");
    assert!(
        bin.exists(),
        "{} not built: run cargo build -p countersign-server",
        bin.display()
    );
    bin
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub base: String,
    child: Child,
    pub http: reqwest::blocking::Client,
}

/// Runs an admin subcommand against `data_dir`; returns stdout, panicking with stderr on failure.
pub fn admin(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(server_bin())
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
    let out = Command::new(server_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} unexpectedly succeeded");
    String::from_utf8(out.stderr).unwrap()
}

/// Starts the binary on `dir`'s config (if any) and data; returns it and its base URL.
fn spawn(dir: &Path) -> (Child, String) {
    spawn_on(dir, "127.0.0.1:0")
}

/// Starts the binary listening on `listen`.
fn spawn_on(dir: &Path, listen: &str) -> (Child, String) {
    let config = dir.join("config.toml");
    let mut command = Command::new(server_bin());
    if config.exists() {
        command.arg("--config").arg(&config);
    }
    command
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["serve", "--listen", listen]);
    // The tests' keys are this project's software keys, which a server refuses by default;
    // a test that sets `allow_demo_keys` in its config decides for itself.
    let config_text = std::fs::read_to_string(&config).unwrap_or_default();
    if !config_text.contains("allow_demo_keys") {
        command.arg("--allow-demo-keys");
    }
    let mut child = command
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
    (child, base)
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir)
    }

    /// Starts with a config file holding `toml`.
    pub fn start_with_config(toml: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), toml).unwrap();
        Self::start_in(dir)
    }

    pub fn start_in(dir: tempfile::TempDir) -> Server {
        let (child, base) = spawn(dir.path());
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

    /// Kills the server with SIGKILL (no chance to flush or clean up) and starts a new one on
    /// the same data directory and config.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        let (child, base) = spawn(self.dir.path());
        self.child = child;
        self.base = base;
    }

    /// Like [`Server::crash_and_restart`], on the same address, so clients can reconnect.
    pub fn crash_and_restart_same_port(&mut self) {
        self.kill();
        let listen = self.base.trim_start_matches("http://").to_owned();
        let (child, base) = spawn_on(self.dir.path(), &listen);
        assert_eq!(base, self.base);
        self.child = child;
    }

    /// The published JWKS, as served.
    pub fn jwks_bytes(&self) -> Vec<u8> {
        self.http
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec()
    }

    /// The published keys.
    pub fn keys(&self) -> countersign_core::jwk::KeySet {
        countersign_core::jwk::KeySet::from_jwks_json(&self.jwks_bytes()).unwrap()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an API key through the admin CLI that may speak for any requester.
    pub fn api_key(&self, name: &str, audience: &str) -> String {
        self.api_key_for(name, audience, &["*"])
    }

    /// Creates an API key through the admin CLI that may speak for the requesters `patterns`
    /// cover.
    pub fn api_key_for(&self, name: &str, audience: &str, patterns: &[&str]) -> String {
        let mut args = vec!["api-key", "create", "--name", name, "--audience", audience];
        for p in patterns {
            args.extend(["--requesters", p]);
        }
        admin(&self.data_dir(), &args).trim().to_owned()
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

    /// CPU seconds (user + system) the server process has used so far, from `/proc`.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(&self.child.id().to_string())
    }

    /// Sends SIGTERM and waits up to `secs` seconds for the exit status.
    pub fn terminate(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
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

/// An approver with an enrolled device and software FIDO key, acting over the real HTTP API.
pub struct Approver {
    pub id: String,
    pub device_key: countersign_core::jwk::SigningKey,
    pub device_id: String,
    pub credential: countersign_softkey::TestKey,
    pub credential_id: Vec<u8>,
    pub sign_count: std::sync::atomic::AtomicU32,
    nonce: std::sync::atomic::AtomicU64,
}

pub const RP_ID: &str = "localhost";
pub const ORIGIN: &str = "http://localhost:8710";

impl Approver {
    /// Adds the approver through the admin CLI and enrolls a device through `/v1/enroll`.
    pub fn add_and_enroll(server: &Server, id: &str, groups: &[&str], seed: u8) -> Approver {
        let mut args = vec!["approver", "add", "--id", id, "--name", id];
        for g in groups {
            args.push("--group");
            args.push(g);
        }
        admin(&server.data_dir(), &args);
        Self::enroll(server, id, seed).unwrap()
    }

    /// Enrolls a new device for an existing approver; returns the server's problem on refusal.
    pub fn enroll(
        server: &Server,
        id: &str,
        seed: u8,
    ) -> Result<Approver, (u16, serde_json::Value)> {
        let code = admin(
            &server.data_dir(),
            &["enroll-code", "create", "--approver", id],
        );
        let secret = code.trim().split('.').nth(1).unwrap().to_owned();
        Self::enroll_with_code(server, id, seed, &secret, countersign_softkey::Attest::None)
    }

    pub fn enroll_with_code(
        server: &Server,
        id: &str,
        seed: u8,
        secret: &str,
        attest: countersign_softkey::Attest<'_>,
    ) -> Result<Approver, (u16, serde_json::Value)> {
        Self::enroll_as(
            server,
            id,
            seed,
            secret,
            countersign_softkey::AAGUID,
            attest,
        )
    }

    /// Enrolls with a key that claims to be model `aaguid` and attests as `attest`.
    pub fn enroll_as(
        server: &Server,
        id: &str,
        seed: u8,
        secret: &str,
        aaguid: [u8; 16],
        attest: countersign_softkey::Attest<'_>,
    ) -> Result<Approver, (u16, serde_json::Value)> {
        use countersign_core::b64;
        let device_key = countersign_core::jwk::SigningKey::from_seed(&[seed; 32]);
        let device_pub = b64::encode(device_key.verifying_key().as_bytes());
        let credential = countersign_softkey::TestKey::es256(seed);
        let credential_id = format!("cred-{id}-{seed}").into_bytes();
        let challenge = countersign_core::enrollment::challenge(secret, &device_pub).unwrap();
        let client_data = countersign_core::webauthn::ClientData {
            ceremony: countersign_core::webauthn::CeremonyType::Create,
            challenge: challenge.to_vec(),
            origin: ORIGIN.into(),
        }
        .to_json();
        let auth_data = countersign_softkey::registration_auth_data_as(
            &credential,
            RP_ID,
            countersign_core::webauthn::Flags::UP | countersign_core::webauthn::Flags::UV,
            &credential_id,
            aaguid,
        );
        let attestation =
            countersign_softkey::attestation_object(&credential, &auth_data, &client_data, attest);
        let body = serde_json::json!({
            "code": secret, "device_name": format!("{id}'s laptop"), "device_key": device_pub,
            "attestation_object": b64::encode(&attestation), "client_data_json": b64::encode(client_data.as_bytes()),
        });
        let resp = server
            .http
            .post(server.url("/v1/enroll"))
            .json(&body)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let json: serde_json::Value = resp.json().unwrap_or_default();
        if status != 200 {
            return Err((status, json));
        }
        Ok(Approver {
            id: id.into(),
            device_key,
            device_id: json["device_id"].as_str().unwrap().into(),
            credential,
            credential_id,
            sign_count: std::sync::atomic::AtomicU32::new(0),
            nonce: std::sync::atomic::AtomicU64::new(u64::from(seed) << 40),
        })
    }

    /// The Countersign-Device header for one request.
    pub fn auth_header(&self, method: &str, path: &str, body: &[u8]) -> String {
        let n = self.nonce.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut nonce_bytes = [0u8; 16];
        nonce_bytes[..8].copy_from_slice(&n.to_be_bytes());
        let nonce = countersign_core::b64::encode(nonce_bytes);
        self.auth_header_with_nonce(method, path, body, &nonce)
    }

    /// The Countersign-Device header with a nonce of the caller's choosing, freshly signed
    /// (what a device key holder who replays nonces can send).
    pub fn auth_header_with_nonce(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        nonce: &str,
    ) -> String {
        let nonce = nonce.to_owned();
        let ts = unix_now();
        let signed = countersign_core::device_auth::signing_input(method, path, ts, &nonce, body);
        countersign_core::device_auth::DeviceAuth {
            device_id: self.device_id.clone(),
            timestamp: ts,
            nonce,
            signature: self.device_key.sign(&signed).to_vec(),
        }
        .to_header()
    }

    /// Sends a signed request; returns status and body.
    pub fn send(
        &self,
        server: &Server,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let header = self.auth_header(method, path, &bytes);
        self.send_with_header(server, method, path, bytes, &header)
    }

    pub fn send_with_header(
        &self,
        server: &Server,
        method: &str,
        path: &str,
        bytes: Vec<u8>,
        header: &str,
    ) -> (u16, serde_json::Value) {
        let req = server
            .http
            .request(method.parse().unwrap(), server.url(path))
            .header("authorization", header)
            .header("content-type", "application/json")
            .body(bytes);
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or_default())
    }

    /// The assertion body for `decision` on a request with this digest, made by the software key.
    pub fn assertion(
        &self,
        digest: &str,
        decision: countersign_core::Decision,
        origin: &str,
        count: u32,
    ) -> serde_json::Value {
        self.assertion_for_rp(digest, decision, RP_ID, origin, count)
    }

    /// Like [`Approver::assertion`], for any RP id (attack tests sign for the wrong one).
    pub fn assertion_for_rp(
        &self,
        digest: &str,
        decision: countersign_core::Decision,
        rp_id: &str,
        origin: &str,
        count: u32,
    ) -> serde_json::Value {
        use countersign_core::b64;
        let digest = countersign_core::Digest::from_base64url(digest).unwrap();
        let challenge = countersign_core::ApprovalStatement::new(digest, decision, self.id.clone())
            .challenge()
            .unwrap();
        let client_data = countersign_core::webauthn::ClientData::get(&challenge, origin).to_json();
        let flags = countersign_core::webauthn::Flags::UP | countersign_core::webauthn::Flags::UV;
        let a =
            countersign_softkey::assert_with(&self.credential, rp_id, flags, count, &client_data);
        serde_json::json!({
            "credential_id": b64::encode(&self.credential_id),
            "authenticator_data": b64::encode(&a.authenticator_data),
            "client_data_json": b64::encode(&a.client_data_json),
            "signature": b64::encode(&a.signature),
        })
    }

    /// The next assertion over `digest` (the counter advanced), as the approve/deny body.
    pub fn next_assertion(
        &self,
        digest: &str,
        decision: countersign_core::Decision,
    ) -> serde_json::Value {
        let count = self
            .sign_count
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        self.assertion(digest, decision, ORIGIN, count)
    }

    /// Approves (or denies) with the next counter value.
    pub fn decide(
        &self,
        server: &Server,
        id: &str,
        digest: &str,
        decision: countersign_core::Decision,
    ) -> (u16, serde_json::Value) {
        let body = self.next_assertion(digest, decision);
        self.send(
            server,
            "POST",
            &format!("/v1/approver/requests/{id}/{decision}"),
            Some(&body),
        )
    }

    /// The pending list, each entry verified against the server key.
    pub fn pending(&self, server: &Server) -> Vec<countersign_core::push::PushedRequest> {
        let (status, body) = self.send(server, "GET", "/v1/approver/requests", None);
        assert_eq!(status, 200, "{body}");
        let keys = server.keys();
        let signed: Vec<countersign_core::push::SignedRequest> =
            serde_json::from_value(body).unwrap();
        signed
            .iter()
            .map(|s| s.verify(&keys).unwrap().clone())
            .collect()
    }
}

/// One server-sent event.
#[derive(Clone, Debug, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// What arrives on an open event stream: events and keep-alive comments, read on a thread so
/// the test can wait with a deadline instead of blocking forever.
pub enum SseItem {
    Event(SseEvent),
    Comment,
}

pub struct EventStream {
    items: std::sync::mpsc::Receiver<SseItem>,
}

impl EventStream {
    /// Opens `/v1/approver/stream` as `approver`, optionally resuming after `last_event_id`.
    /// Returns the HTTP status and, on 200, the stream.
    pub fn open(
        server: &Server,
        approver: &Approver,
        last_event_id: Option<&str>,
    ) -> (u16, Option<EventStream>) {
        let path = "/v1/approver/stream";
        // No overall timeout: the body never ends by design.
        let client = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .unwrap();
        let mut req = client
            .get(server.url(path))
            .header("authorization", approver.auth_header("GET", path, b""));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        if status != 200 {
            return (status, None);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut current = SseEvent::default();
            for line in BufReader::new(resp).lines() {
                let Ok(line) = line else { return };
                let item = if line.is_empty() {
                    if current.event.is_empty() && current.data.is_empty() {
                        continue;
                    }
                    SseItem::Event(std::mem::take(&mut current))
                } else if line.starts_with(':') {
                    SseItem::Comment
                } else {
                    let (field, value) = line.split_once(':').unwrap_or((&line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                    match field {
                        "event" => current.event = value,
                        "id" => current.id = Some(value),
                        "data" => current.data.push_str(&value),
                        _ => {}
                    }
                    continue;
                };
                if tx.send(item).is_err() {
                    return;
                }
            }
        });
        (status, Some(EventStream { items: rx }))
    }

    /// The next event (skipping keep-alives) within `secs` seconds.
    pub fn next_event(&self, secs: u64) -> Option<SseEvent> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.items.recv_timeout(left).ok()? {
                SseItem::Event(e) => return Some(e),
                SseItem::Comment => continue,
            }
        }
    }

    /// The events that arrive before the server ends the stream, if it ends within `secs`
    /// seconds; `None` if it is still open then.
    pub fn events_until_closed(&self, secs: u64) -> Option<Vec<SseEvent>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        let mut events = Vec::new();
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.items.recv_timeout(left) {
                Ok(SseItem::Event(e)) => events.push(e),
                Ok(SseItem::Comment) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Some(events),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return None,
            }
        }
    }

    /// Whether a keep-alive comment arrives within `secs` seconds (events are skipped).
    pub fn keepalive_within(&self, secs: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return false;
            };
            match self.items.recv_timeout(left) {
                Ok(SseItem::Comment) => return true,
                Ok(SseItem::Event(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Verifies a pushed request's server signature against the live JWKS.
pub fn verify_pushed(server: &Server, data: &str) -> countersign_core::push::PushedRequest {
    let signed: countersign_core::push::SignedRequest = serde_json::from_str(data).unwrap();
    signed.verify(&server.keys()).unwrap().clone()
}

/// CPU seconds (user + system) used by process `pid` (or `self`), from `/proc/PID/stat`.
pub fn process_cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let per_second = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    ticks
        / String::from_utf8_lossy(&per_second.stdout)
            .trim()
            .parse::<f64>()
            .unwrap()
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sleeps until the clock has passed `unix` (a deadline the server checks with `>`).
pub fn sleep_until_after(unix: i64) {
    while unix_now() <= unix {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
