//! The real `countersign-server` binary on loopback with a fresh data directory, and its
//! admin subcommands, run as an operator would.

use crate::binary::server_bin;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub dir: tempfile::TempDir,
    pub base: String,
    child: Child,
    pub http: reqwest::blocking::Client,
}

/// Where a test sends HTTP requests: one server, or a load balancer in front of several.
pub trait Endpoint: Sync {
    /// The full URL of `path`.
    fn url(&self, path: &str) -> String;
    /// The client to send with.
    fn http(&self) -> &reqwest::blocking::Client;
    /// The published keys, as served here.
    fn keys(&self) -> countersign_core::jwk::KeySet {
        let jwks = self
            .http()
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        countersign_core::jwk::KeySet::from_jwks_json(&jwks).unwrap()
    }
}

impl<T: Endpoint + ?Sized> Endpoint for &T {
    fn url(&self, path: &str) -> String {
        (**self).url(path)
    }
    fn http(&self) -> &reqwest::blocking::Client {
        (**self).http()
    }
}

impl<T: Endpoint + ?Sized + Send> Endpoint for std::sync::Arc<T> {
    fn url(&self, path: &str) -> String {
        (**self).url(path)
    }
    fn http(&self) -> &reqwest::blocking::Client {
        (**self).http()
    }
}

impl Endpoint for Server {
    fn url(&self, path: &str) -> String {
        Server::url(self, path)
    }
    fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }
}

/// Runs an admin subcommand against `data_dir` and waits for it.
fn run_admin(data_dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(server_bin());
    // As an operator runs them: with the server directory's config (`dir/data` is the data
    // directory of `dir`), which names the database on PostgreSQL.
    if let Some(dir) = data_dir.parent().filter(|_| data_dir.ends_with("data")) {
        crate::postgres::provision(dir);
        let config = dir.join("config.toml");
        if config.exists() {
            command.arg("--config").arg(config);
        }
    }
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap()
}

/// Runs an admin subcommand against `data_dir`; returns stdout, panicking with stderr on failure.
pub fn admin(data_dir: &Path, args: &[&str]) -> String {
    let out = run_admin(data_dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs an admin subcommand that must fail; returns stderr.
pub fn admin_fails(data_dir: &Path, args: &[&str]) -> String {
    let out = run_admin(data_dir, args);
    assert!(!out.status.success(), "{args:?} unexpectedly succeeded");
    String::from_utf8(out.stderr).unwrap()
}

/// Starts the binary on `dir`'s config (if any) and data; returns it and its base URL.
fn spawn(dir: &Path) -> (Child, String) {
    spawn_on(dir, "127.0.0.1:0")
}

/// Starts the binary listening on `listen`.
fn spawn_on(dir: &Path, listen: &str) -> (Child, String) {
    crate::postgres::provision(dir);
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

    /// Replaces the signing key files with one new key that no old key endorsed, as an
    /// intruder on the host might (the server must be stopped; it signs with it next start).
    pub fn plant_unendorsed_key(&self) {
        use std::os::unix::fs::OpenOptionsExt;
        let keys = self.data_dir().join("keys");
        for entry in std::fs::read_dir(&keys).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).unwrap();
        let key = countersign_core::jwk::SigningKey::from_seed(&seed);
        let stored = serde_json::json!({
            "version": 1,
            "kid": key.kid(),
            "created_at": crate::time::unix_now(),
            "sequence": 1,
            "seed": countersign_core::b64::encode(seed),
        });
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(keys.join(format!("000001-{}.key", key.kid())))
            .unwrap();
        std::io::Write::write_all(&mut file, stored.to_string().as_bytes()).unwrap();
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
        crate::postgres::drop_database(self.dir.path());
    }
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
