//! The SQLite writer: one connection on its own thread, group commit, and the audit chain
//! appended in memory and written once per batch.
//!
//! Why it looks like this: `sqlx`'s SQLite driver runs each connection on a worker thread, and
//! every statement is a round trip to it. Under load the writer is a serial chain of such round
//! trips, so its throughput is set by how many there are per job (docs/benchmarks.md). Hence:
//! one `BEGIN IMMEDIATE` and one read of the chain's head per batch; audit entries chained in
//! memory and inserted in one statement just before the commit; and a savepoint only around
//! jobs that write more than once and are not on the hot path. The hot-path jobs (create,
//! approve, redeem) make every refusal before their first lasting write; if one of them fails
//! after writing, it aborts the whole batch rather than commit half of itself.

use super::StoreError;
use countersign_core::audit::{Entry, Event, Head};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Sqlite, SqliteConnection};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// The writer's running totals since the process started, reported at `/metrics`: jobs per
/// batch shows how much each durable commit is shared; busy time against wall time shows how
/// close the single writer is to its limit. SQLite's own: another backend has no single writer.
#[derive(Default)]
pub(super) struct WriterTotals {
    batches: Counter,
    jobs: Counter,
    busy_micros: Counter,
    commit_micros: Counter,
}

impl WriterTotals {
    /// Adds the totals to the server's registry (they stay shared with the writer).
    pub(super) fn register(&self, registry: &mut Registry) {
        for (name, help, counter) in [
            (
                "db_write_batches",
                "Group-committed write transactions",
                &self.batches,
            ),
            (
                "db_write_jobs",
                "Write jobs run inside them (jobs per batch: how many share one durable commit)",
                &self.jobs,
            ),
            (
                "db_write_busy_microseconds",
                "Microseconds the single writer spent running batches, commits included",
                &self.busy_micros,
            ),
            (
                "db_write_commit_microseconds",
                "Of those, microseconds spent committing (the durable sync)",
                &self.commit_micros,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
    }

    fn record(&self, jobs: usize, started: Instant, commit_started: Option<Instant>) {
        let micros =
            |since: Instant| u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.batches.inc();
        self.jobs.inc_by(u64::try_from(jobs).unwrap_or(u64::MAX));
        self.busy_micros.inc_by(micros(started));
        if let Some(at) = commit_started {
            self.commit_micros.inc_by(micros(at));
        }
    }
}

/// The writer thread is gone (the server is shutting down, or it never started): the write
/// was not made.
#[derive(Debug, thiserror::Error)]
#[error("the database writer stopped")]
pub struct WriterStopped;

/// Why a batch was not committed: every job in it gets the same answer, so it is shared.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The database refused a statement of the batch or its commit.
    #[error("the database: {0}")]
    Database(#[source] sqlx::Error),
    /// Reading the chain's head or writing the batch's audit entries failed.
    #[error("the batch's audit chain: {0}")]
    Audit(#[source] StoreError),
    /// A job failed after a write it could not undo alone; the whole batch was rolled back.
    #[error("a job failed after writing without a savepoint; the batch was rolled back")]
    JobAborted,
}

/// Hands a job's result to its caller once the batch's commit is known.
pub(super) type Deliver = Box<dyn FnOnce(Result<(), Arc<CommitError>>) + Send>;

/// A write job: runs inside the batch's transaction.
pub(super) type Job = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
            &'c mut AuditBatch,
        ) -> Pin<Box<dyn Future<Output = Deliver> + Send + 'c>>
        + Send,
>;

/// Most jobs committed together.
const MAX_BATCH: usize = 128;

/// Most audit rows in one `INSERT` (three bound values each, far below SQLite's limit).
const ROWS_PER_INSERT: usize = 100;

/// Starts the thread that drives every write (group commit). SQLite has one writer at a time;
/// this thread takes every job waiting, runs them inside one transaction and commits once, so
/// one durable fsync covers the whole batch. A job refused by its checks leaves nothing behind
/// (its savepoint rolls back, or it was refused before its first lasting write) and the others
/// stay intact; if a job fails after writing outside a savepoint, or the commit fails, every job
/// in the batch reports the failure and nothing of it is visible. Callers hear back only after the commit, so nothing is acknowledged before it is
/// durable. Driving the statements from a thread that does nothing else keeps transactions
/// short, and a job runs to completion even if the HTTP request that asked for it goes away.
pub(super) async fn start_writer_thread(
    options: SqliteConnectOptions,
    cpu: Option<usize>,
    totals: Arc<WriterTotals>,
) -> Result<tokio::sync::mpsc::UnboundedSender<Job>, StoreError> {
    let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let (opened, ready) = tokio::sync::oneshot::channel::<Result<(), StoreError>>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Database(Box::new(e)))?;
    std::thread::Builder::new()
        .name("countersign-db-writer".into())
        .spawn(move || {
            if let Some(cpu) = cpu {
                // Before connecting: the connection's thread inherits this placement.
                if let Err(e) = crate::cpu_placement::pin_current_thread(&[cpu]) {
                    tracing::warn!(error = %e, cpu, "database writer left unpinned");
                }
            }
            runtime.block_on(async move {
                let mut conn = match open_and_migrate(&options).await {
                    Ok(conn) => {
                        let _ = opened.send(Ok(()));
                        conn
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                while let Some(first) = queue.recv().await {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    run_batch(&mut conn, batch, &totals).await;
                }
            });
        })
        .map_err(|e| StoreError::Database(Box::new(e)))?;
    ready
        .await
        .map_err(|_| StoreError::Database(Box::new(WriterStopped)))??;
    Ok(jobs)
}

/// The writer's connection, with pending migrations applied.
async fn open_and_migrate(options: &SqliteConnectOptions) -> Result<SqliteConnection, StoreError> {
    let mut conn = options.connect().await?;
    sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
    Ok(conn)
}

/// Runs `batch` in one transaction and tells each job how the commit went.
async fn run_batch(conn: &mut SqliteConnection, batch: Vec<Job>, totals: &WriterTotals) {
    let started = Instant::now();
    let jobs = batch.len();
    let mut commit_started = None;
    let mut delivers = Vec::with_capacity(jobs);
    let committed = async {
        // IMMEDIATE takes the write lock now, so the head read next stays the head until the
        // commit, even if another process (the admin CLI) writes to the same file.
        let mut outer = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(CommitError::Database)?;
        let head = head_in(&mut *outer).await.map_err(CommitError::Audit)?;
        let mut chain = AuditBatch {
            head,
            entries: Vec::new(),
            aborted: false,
        };
        for job in batch {
            delivers.push(job(&mut outer, &mut chain).await);
        }
        if chain.aborted {
            // Dropping `outer` rolls the whole batch back.
            return Err(CommitError::JobAborted);
        }
        insert_entries(&mut outer, &chain.entries)
            .await
            .map_err(CommitError::Audit)?;
        commit_started = Some(Instant::now());
        outer.commit().await.map_err(CommitError::Database)
    }
    .await
    .map_err(Arc::new);
    totals.record(jobs, started, commit_started);
    if let Err(e) = &committed {
        tracing::error!(error = %e, jobs = delivers.len(), "write batch failed; nothing of it was committed");
    }
    for deliver in delivers {
        deliver(committed.clone());
    }
}

/// The audit entries of the batch being written, chained in memory from the head read when the
/// batch began. They are inserted just before the batch commits, so the chain and the data it
/// describes are committed, or lost, together.
pub(super) struct AuditBatch {
    head: Head,
    entries: Vec<Entry>,
    /// Set by a job that failed after writing outside a savepoint.
    aborted: bool,
}

impl AuditBatch {
    /// The entry `event` would become if appended now. Computing it before a job's only write
    /// means nothing can fail between that write and [`AuditBatch::push`].
    pub(super) fn next(&self, event: Event) -> Result<Entry, StoreError> {
        Ok(self.head.append(event)?)
    }

    /// Appends an entry made by [`AuditBatch::next`] with nothing appended in between.
    pub(super) fn push(&mut self, entry: Entry) {
        self.head = entry.head();
        self.entries.push(entry);
    }

    /// For a job without a savepoint that failed after it wrote: nothing of the batch may
    /// commit, so every job in it reports the failure.
    pub(super) fn abort(&mut self) {
        self.aborted = true;
    }
}

/// One job's savepoint and its audit appends. The appends join the batch only when the
/// savepoint is released; a job that fails or returns early drops both together.
pub(super) struct AuditedTx<'c> {
    tx: sqlx::Transaction<'c, Sqlite>,
    chain: &'c mut AuditBatch,
    head: Head,
    appended: Vec<Entry>,
}

impl<'c> AuditedTx<'c> {
    pub(super) async fn begin(
        conn: &'c mut SqliteConnection,
        chain: &'c mut AuditBatch,
    ) -> Result<Self, StoreError> {
        Ok(AuditedTx {
            tx: conn.begin().await?,
            head: chain.head,
            chain,
            appended: Vec::new(),
        })
    }

    /// Appends `event` to the chain inside this savepoint.
    pub(super) fn append(&mut self, event: Event) -> Result<Entry, StoreError> {
        let entry = self.head.append(event)?;
        self.head = entry.head();
        self.appended.push(entry.clone());
        Ok(entry)
    }

    /// Releases the savepoint; its appends now extend the batch's chain.
    pub(super) async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        self.chain.head = self.head;
        self.chain.entries.extend(self.appended);
        Ok(())
    }
}

impl std::ops::Deref for AuditedTx<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for AuditedTx<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// Inserts the batch's entries, a hundred rows per statement. Not cached as prepared
/// statements: the text differs with the row count.
async fn insert_entries(conn: &mut SqliteConnection, entries: &[Entry]) -> Result<(), StoreError> {
    for rows in entries.chunks(ROWS_PER_INSERT) {
        let mut values = Vec::with_capacity(rows.len());
        for entry in rows {
            values.push(super::rows::audit_row(entry)?);
        }
        let mut insert =
            sqlx::QueryBuilder::<Sqlite>::new("INSERT INTO audit_log (seq, entry_json, hash) ");
        insert.push_values(values, |mut row, (seq, json, hash)| {
            row.push_bind(seq).push_bind(json).push_bind(hash);
        });
        insert.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The newest entry of the chain as stored.
pub(super) async fn head_in<'e, E: sqlx::Executor<'e, Database = Sqlite>>(
    db: E,
) -> Result<Head, StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(db)
        .await?;
    super::rows::head_from_row(row.as_ref())
}
