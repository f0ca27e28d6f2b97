//! Shared parts of the end-to-end tests: the real server (through the server's own test
//! helpers), the real `countersign` CLI binary, and a private D-Bus session with a real
//! Secret Service (gnome-keyring) for the device key.
#![allow(dead_code)]

pub use countersign_testkit as server;

pub mod payouts_service;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

/// A private D-Bus session bus with gnome-keyring's Secret Service, unlocked; both stop when
/// this is dropped. Nothing of the user's own keyring is touched.
pub struct Keyring {
    bus: String,
    dbus_pid: u32,
    home: tempfile::TempDir,
}

impl Keyring {
    pub fn start() -> Keyring {
        let out = Command::new("dbus-daemon")
            .args([
                "--session",
                "--fork",
                "--nosyslog",
                "--print-address=1",
                "--print-pid=1",
            ])
            .output()
            .expect("dbus-daemon (package dbus) is needed; scripts/setup.sh installs it");
        assert!(
            out.status.success(),
            "dbus-daemon: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let bus = lines.next().unwrap().to_owned();
        let dbus_pid = lines.next().unwrap().trim().parse().unwrap();
        let home = tempfile::tempdir().unwrap();
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets", "--daemonize"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path())
            .env("XDG_RUNTIME_DIR", home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (package gnome-keyring) is needed; scripts/setup.sh installs it");
        // The unlock password of this throwaway keyring.
        daemon
            .stdin
            .take()
            .unwrap()
            .write_all(b"e2e-keyring")
            .unwrap();
        assert!(daemon.wait().unwrap().success());
        Keyring {
            bus,
            dbus_pid,
            home,
        }
    }

    /// The environment a process needs to reach this keyring.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.clone())]
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        // gnome-keyring-daemon exits when its bus goes away.
        let _ = Command::new("kill").arg(self.dbus_pid.to_string()).status();
    }
}

/// The `countersign` CLI with one approver profile.
pub struct Cli {
    pub profile: PathBuf,
    env: Vec<(String, String)>,
}

impl Cli {
    pub fn new(profile: PathBuf, env: Vec<(String, String)>) -> Cli {
        Cli { profile, env }
    }

    /// Starts `countersign --profile P ARGS` with piped stdin, stdout and stderr.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let bin = countersign_testkit::workspace_bin("countersign-cli", "countersign");
        let mut command = Command::new(bin);
        command
            .arg("--profile")
            .arg(&self.profile)
            .args(args)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command.spawn().unwrap()
    }

    /// Runs `countersign --profile P ARGS`, feeding `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self.spawn(args);
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs with `--json` and returns (exit code, parsed stdout).
    pub fn json(&self, args: &[&str], stdin: &str) -> (i32, serde_json::Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all, stdin);
        let text = String::from_utf8_lossy(&out.stdout);
        let value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {text}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), value)
    }
}

/// Adds an approver (optionally in groups) and returns a one-time enrollment code.
pub fn approver_code(server: &server::Server, id: &str, groups: &[&str]) -> String {
    let mut args = vec!["approver", "add", "--id", id, "--name", id];
    for g in groups {
        args.extend_from_slice(&["--group", g]);
    }
    server::admin(&server.data_dir(), &args);
    server::admin(
        &server.data_dir(),
        &["enroll-code", "create", "--approver", id],
    )
    .trim()
    .to_owned()
}

/// `countersign enroll` arguments for `server`, `code` and the key spec `key`.
pub fn enroll_args<'a>(server: &'a server::Server, code: &'a str, key: &'a str) -> Vec<&'a str> {
    vec![
        "enroll",
        "--server",
        &server.base,
        "--code",
        code,
        "--key",
        key,
    ]
}

/// `countersign --json verify-decision` of `token` for `transaction_json` as `audience`, with
/// the server's published JWKS and origin; returns (exit status, JSON).
pub fn verify_decision(
    server: &server::Server,
    app_key: &str,
    token: &str,
    transaction_json: &[u8],
    audience: &str,
) -> (i32, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let (jwks, tx) = (dir.path().join("jwks.json"), dir.path().join("tx.json"));
    std::fs::write(&jwks, server.jwks_bytes()).unwrap();
    std::fs::write(&tx, transaction_json).unwrap();
    let (_, info) = server.get(app_key, "/v1/info");
    Cli::new(dir.path().join("no-profile.json"), Vec::new()).json(
        &[
            "verify-decision",
            "--token",
            token,
            "--jwks",
            jwks.to_str().unwrap(),
            "--transaction",
            tx.to_str().unwrap(),
            "--issuer",
            info["origin"].as_str().unwrap(),
            "--audience",
            audience,
        ],
        "",
    )
}
