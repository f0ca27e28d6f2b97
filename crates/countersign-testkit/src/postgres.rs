//! The servers' PostgreSQL backend for the same tests: with `COUNTERSIGN_TEST_BACKEND=postgres`
//! every server directory gets a database of its own on `COUNTERSIGN_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`), named in its `config.toml`, and the admin
//! subcommands reach it through that config. Without the variable nothing changes: SQLite.

use std::path::Path;
use std::process::Command;

/// Marks a config section this kit wrote.
const MARK: &str = "# countersign-testkit: PostgreSQL database of this directory";

/// The PostgreSQL server's URL (its `test` database, or what `COUNTERSIGN_TEST_POSTGRES` says).
pub fn server_url() -> String {
    std::env::var("COUNTERSIGN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The server PostgreSQL URL the tests run against, if they run on PostgreSQL.
fn base_url() -> Option<String> {
    (std::env::var("COUNTERSIGN_TEST_BACKEND").as_deref() == Ok("postgres")).then(server_url)
}

/// Creates a database of its own for one test; returns its URL.
pub fn create_database() -> String {
    let base = server_url();
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).unwrap();
    let name: String = std::iter::once("cs_test_".to_owned())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect();
    psql(&base, &format!("CREATE DATABASE {name}"));
    let (server, _) = base.rsplit_once('/').expect("a postgres://…/database URL");
    format!("{server}/{name}")
}

/// Drops the database at `url` (one [`create_database`] made), whoever is still connected.
pub fn drop_database_at(url: &str) {
    if let Some((_, name)) = url.rsplit_once('/') {
        psql(
            &server_url(),
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
    }
}

/// Runs `sql` on the database at `url`; returns what psql printed.
pub fn execute_at(url: &str, sql: &str) -> String {
    psql(url, sql)
}

/// Whether the tests run the servers on PostgreSQL.
pub fn enabled() -> bool {
    base_url().is_some()
}

/// Runs `sql` on `url`; returns what psql printed.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-qAtc", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql (for COUNTERSIGN_TEST_BACKEND=postgres): {e}"));
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// On PostgreSQL: gives the server directory `dir` a fresh database, once, and names it in
/// `dir/config.toml` (kept as the test wrote it otherwise).
pub fn provision(dir: &Path) {
    if base_url().is_none() {
        return;
    }
    let config = dir.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap_or_default();
    // Provisioned already, or the test chose the database itself (several instances on one).
    if text.contains(MARK) || text.contains("[database]") {
        return;
    }
    let url = create_database();
    std::fs::write(
        &config,
        format!("{text}\n{MARK}\n[database]\nurl = \"{url}\"\n"),
    )
    .unwrap();
}

/// On PostgreSQL: drops the database `dir/config.toml` names, if this kit made it.
pub fn drop_database(dir: &Path) {
    if let (Some(_), Some(url)) = (base_url(), database_url(dir)) {
        drop_database_at(&url);
    }
}

/// The database URL `dir/config.toml` names, if this kit made one there.
pub fn database_url(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
    let section = text.split(MARK).nth(1)?;
    section
        .lines()
        .find_map(|l| l.strip_prefix("url = \""))
        .map(|url| url.trim_end_matches('"').to_owned())
}

/// Runs `sql` on the database of server directory `dir` (as whoever can write the database
/// would); returns what psql printed.
pub fn execute(dir: &Path, sql: &str) -> String {
    psql(
        &database_url(dir).expect("a PostgreSQL server directory"),
        sql,
    )
}

/// The arguments that point a server subcommand run by hand at `dir`'s database: its config
/// on PostgreSQL, nothing on SQLite.
pub fn config_args(dir: &Path) -> Vec<std::ffi::OsString> {
    if enabled() {
        provision(dir);
        vec!["--config".into(), dir.join("config.toml").into()]
    } else {
        Vec::new()
    }
}

/// Restarts the local PostgreSQL cluster with a fast shutdown (every connection cut) and
/// waits until it answers again, through `scripts/postgres.sh --restart`.
pub fn restart_local_server() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg("--restart")
        .status()
        .unwrap();
    assert!(status.success(), "restarting PostgreSQL failed");
}
