//! Several real server instances on one PostgreSQL database, as a deployment runs them, and a
//! load balancer in front of them: a TCP proxy that hands each new connection to the next
//! instance that accepts it (round robin, skipping the dead), so clients fail over as they
//! would behind a real one.

use crate::postgres;
use crate::server::{admin, Endpoint, Server};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Server instances sharing one database and one set of signing keys.
pub struct Cluster {
    pub instances: Vec<Server>,
    /// The database's URL.
    pub database: String,
}

impl Cluster {
    /// Starts `n` instances with `config` (TOML without a `[database]` section) on a new
    /// database. The first makes the signing keys; the others get copies of its key files, as
    /// an operator hands them to every instance.
    pub fn start(n: usize, config: &str) -> Cluster {
        let database = postgres::create_database();
        let mut cluster = Cluster {
            instances: Vec::new(),
            database,
        };
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("config.toml"),
                format!("{config}\n[database]\nurl = \"{}\"\n", cluster.database),
            )
            .unwrap();
            if let Some(first) = cluster.instances.first() {
                copy_keys(&first.data_dir(), &dir.path().join("data"));
            }
            cluster.instances.push(Server::start_in(dir));
        }
        cluster
    }

    /// Runs `sql` on the shared database; returns what psql printed.
    pub fn sql(&self, sql: &str) -> String {
        postgres::execute_at(&self.database, sql)
    }

    /// Exports the shared audit chain through the first instance and verifies it offline, as
    /// an auditor would: against the published keys and every instance's signed checkpoints.
    /// Returns the number of entries.
    pub fn verify_audit(&self) -> usize {
        let first = &self.instances[0];
        let dir = tempfile::tempdir().unwrap();
        let export = dir.path().join("audit.jsonl");
        let jwks = dir.path().join("jwks.json");
        admin(
            &first.data_dir(),
            &["audit", "export", "--output", export.to_str().unwrap()],
        );
        // From the key files, offline: the instance may be down.
        std::fs::write(&jwks, admin(&first.data_dir(), &["keys", "jwks"])).unwrap();
        let mut entries = 0;
        for instance in &self.instances {
            let mut args = vec![
                "audit".to_owned(),
                "verify".to_owned(),
                export.to_string_lossy().into_owned(),
                "--jwks".to_owned(),
                jwks.to_string_lossy().into_owned(),
            ];
            let checkpoints = instance.data_dir().join("audit-checkpoints.jsonl");
            if checkpoints.exists() {
                args.extend([
                    "--checkpoints".to_owned(),
                    checkpoints.to_string_lossy().into_owned(),
                ]);
            }
            let out = std::process::Command::new(crate::binary::server_bin())
                .args(&args)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "audit verify: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            entries = stdout
                .split("verifies: ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected audit verify output {stdout:?}"));
        }
        entries
    }

    /// A load balancer in front of every instance.
    pub fn balancer(&self) -> Balancer {
        Balancer::start(self.instances.iter().map(|s| s.base.clone()).collect())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.instances.clear();
        postgres::drop_database_at(&self.database);
    }
}

/// Copies the key directory of data directory `from` into data directory `to`, modes kept.
fn copy_keys(from: &Path, to: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(to)
        .unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from.join("keys"))
        .arg(to.join("keys"))
        .status()
        .unwrap();
    assert!(status.success(), "copying the signing keys failed");
}

/// A TCP load balancer on loopback.
pub struct Balancer {
    addr: SocketAddr,
    pub http: reqwest::blocking::Client,
}

impl Balancer {
    /// Listens on a free loopback port and spreads connections over `backends`
    /// (`http://host:port`).
    pub fn start(backends: Vec<String>) -> Balancer {
        let backends: Vec<String> = backends
            .into_iter()
            .map(|b| b.trim_start_matches("http://").to_owned())
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let next = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let start = next.fetch_add(1, Ordering::SeqCst);
                let backend = (0..backends.len()).find_map(|i| {
                    let target = &backends[(start + i) % backends.len()];
                    let addr: SocketAddr = target.parse().ok()?;
                    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()
                });
                match backend {
                    Some(backend) => pipe(client, backend),
                    None => {
                        let _ = client.shutdown(Shutdown::Both);
                    }
                }
            }
        });
        Balancer {
            addr,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }
}

/// Copies bytes both ways until either side closes.
fn pipe(client: TcpStream, backend: TcpStream) {
    let copy = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    };
    if let (Ok(client2), Ok(backend2)) = (client.try_clone(), backend.try_clone()) {
        copy(client, backend2);
        copy(backend, client2);
    }
}

impl Endpoint for Balancer {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }
}
