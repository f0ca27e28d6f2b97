//! What one statement costs through `sqlx`'s SQLite driver, which runs each connection on a
//! worker thread of its own: the caller's thread and the worker on the same CPU, then on two
//! different CPUs. The difference is why the server gives its database writer a CPU of its own
//! (`cpu_placement`, docs/benchmarks.md).
//!
//! `cargo bench -p countersign-server --bench sqlite_round_trip` measures (20,000 statements
//! per case); under `cargo test` it runs a few hundred, so it stays tested.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_server::cpu_placement;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use std::time::Instant;

/// Mean microseconds per statement: `SELECT 1`, an `INSERT` inside a transaction, and a
/// savepoint with its release.
async fn measure(conn: &mut SqliteConnection, n: u32) -> [f64; 3] {
    let per = |started: Instant| started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let started = Instant::now();
    for _ in 0..n {
        sqlx::query("SELECT 1")
            .fetch_optional(&mut *conn)
            .await
            .unwrap();
    }
    let select = per(started);
    let mut tx = conn.begin().await.unwrap();
    let started = Instant::now();
    for i in 0..n {
        sqlx::query("INSERT INTO t (v) VALUES (?)")
            .bind(i64::from(i))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let insert = per(started);
    let started = Instant::now();
    for _ in 0..n {
        tx.begin().await.unwrap().commit().await.unwrap();
    }
    let savepoint = per(started);
    tx.rollback().await.unwrap();
    [select, insert, savepoint]
}

/// Connects with the calling thread on `worker_cpu` (the connection's thread inherits it),
/// then measures from `caller_cpu`.
fn case(worker_cpu: usize, caller_cpu: usize, n: u32) -> [f64; 3] {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let options = SqliteConnectOptions::new()
                .filename(dir.path().join("rtt.db"))
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full);
            cpu_placement::pin_current_thread(&[worker_cpu]).unwrap();
            let mut conn = options.connect().await.unwrap();
            cpu_placement::pin_current_thread(&[caller_cpu]).unwrap();
            sqlx::query("CREATE TABLE t (v INTEGER)")
                .execute(&mut conn)
                .await
                .unwrap();
            measure(&mut conn, n).await
        })
    })
    .join()
    .unwrap()
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let n = if measuring { 20_000 } else { 300 };
    let Some(plan) = cpu_placement::plan().unwrap() else {
        println!("sqlite_round_trip: needs two CPUs; skipped");
        return;
    };
    let (a, b) = (plan.rest[0], plan.writer);
    for (name, worker, caller) in [("same CPU", a, a), ("two CPUs", b, a)] {
        let [select, insert, savepoint] = case(worker, caller, n);
        assert!(select > 0.0 && insert > 0.0 && savepoint > 0.0);
        println!(
            "sqlite_round_trip: {name}: SELECT 1 {select:.1} µs, INSERT {insert:.1} µs, SAVEPOINT+RELEASE {savepoint:.1} µs"
        );
    }
}
