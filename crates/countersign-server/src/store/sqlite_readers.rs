//! A fixed set of read-only SQLite connections, checked out without a health check.
//!
//! Why not `sqlx::SqlitePool`: the pool pings a connection when it hands it out and again when
//! it takes it back (and spawns a task for the return). For SQLite each ping is a round trip to
//! the connection's worker thread, so a one-statement read cost three thread round trips; on
//! this server's hot path that switching was most of the CPU (docs/benchmarks.md). A file
//! connection has no peer that can hang up, so the pings buy nothing here. A read whose caller
//! goes away mid-query is safe to reuse: the driver resets the statement and the worker runs
//! commands in order.

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Mutex, MutexGuard};

/// Read-only connections shared by all request handlers.
pub(super) struct Readers {
    connections: Vec<Mutex<SqliteConnection>>,
    /// Where the next checkout starts looking, so load spreads over the connections.
    next: AtomicUsize,
}

impl Readers {
    /// Opens `count` (at least one) read-only connections with `options`.
    pub(super) async fn open(
        options: &SqliteConnectOptions,
        count: usize,
    ) -> Result<Self, sqlx::Error> {
        let options = options.clone().read_only(true);
        let mut connections = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            connections.push(Mutex::new(options.connect().await?));
        }
        Ok(Readers {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    /// A connection for one read: the first free one, or else waits its turn on one.
    pub(super) async fn get(&self) -> MutexGuard<'_, SqliteConnection> {
        let count = self.connections.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        for offset in 0..count {
            if let Ok(free) = self.connections[(start + offset) % count].try_lock() {
                return free;
            }
        }
        self.connections[start].lock().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use sqlx::Row;

    #[tokio::test]
    async fn readers_see_committed_writes_and_refuse_to_write() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("r.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let mut writer = options.connect().await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&mut writer)
            .await
            .unwrap();
        let readers = Readers::open(&options, 2).await.unwrap();
        sqlx::query("INSERT INTO t VALUES (7)")
            .execute(&mut writer)
            .await
            .unwrap();
        // Both connections are handed out while the first is held, and both read the write.
        let first = readers.get().await;
        let mut second = readers.get().await;
        let v: i64 = sqlx::query("SELECT v FROM t")
            .fetch_one(&mut *second)
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, 7);
        let refused = sqlx::query("INSERT INTO t VALUES (8)")
            .execute(&mut *second)
            .await;
        assert!(refused.is_err(), "a reader must not write");
        drop(first);
        drop(second);
        // Zero is rounded up to one connection rather than a set nobody can use.
        let one = Readers::open(&options, 0).await.unwrap();
        let mut conn = one.get().await;
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
    }
}
