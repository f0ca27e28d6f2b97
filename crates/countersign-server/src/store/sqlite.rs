//! The embedded SQLite backend: WAL journal, `synchronous=FULL` (every commit durable), one
//! writer connection (SQLite has one writer at a time; a single connection avoids lock-upgrade
//! failures) and a pool of readers. All SQLite-specific SQL lives here.

use super::{
    ApiKeyRecord, ApprovalRecord, ApproverRecord, Created, CredentialRecord, Decide, DeviceRecord,
    FreezeRecord, NonceUse, Recorded, Redeemed, RequestRecord, RequestState, SigningKeyRecord,
    Store, StoreError,
};
use countersign_core::audit::{Entry, Event, Head};
use countersign_core::transaction::Transaction;
use countersign_core::Digest;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, Sqlite, SqliteConnection, SqlitePool};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    readers: SqlitePool,
    /// Unix seconds of the last purge of expired device nonces.
    nonces_purged_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

/// One reader connection per core: each has its own worker thread, and on a small machine more
/// threads cost more in switching than they gain (measured in docs/benchmarks.md).
fn reader_connections() -> u32 {
    std::thread::available_parallelism()
        .map_or(2, |n| u32::try_from(n.get()).unwrap_or(8))
        .clamp(1, 8)
}

/// Hands a job's result to its caller once the batch's commit is known.
type Deliver = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A write job: runs inside the batch's transaction (in its own savepoint).
type Job = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
            &'c mut Option<Head>,
        ) -> Pin<Box<dyn Future<Output = Deliver> + Send + 'c>>
        + Send,
>;

/// Most jobs committed together.
const MAX_BATCH: usize = 128;

/// Starts the thread that drives every write (group commit). SQLite has one writer at a time;
/// this thread takes every job waiting, runs each in its own savepoint inside one transaction
/// and commits once, so one durable fsync covers the whole batch. A job that fails rolls back
/// to its savepoint and leaves the others intact; if the commit fails, every job in the batch
/// reports the failure and nothing of it is visible. Callers hear back only after the commit,
/// so nothing is acknowledged before it is durable. Driving the statements from a thread that
/// does nothing else keeps transactions short, and a job runs to completion even if the HTTP
/// request that asked for it goes away.
fn start_writer_thread(
    pool: SqlitePool,
) -> Result<tokio::sync::mpsc::UnboundedSender<Job>, StoreError> {
    let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Corrupt(format!("writer runtime: {e}")))?;
    std::thread::Builder::new()
        .name("countersign-db-writer".into())
        .spawn(move || {
            runtime.block_on(async move {
                // The audit head as of the last commit, when known.
                let mut head = None;
                while let Some(first) = queue.recv().await {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    run_batch(&pool, &mut head, batch).await;
                }
            });
        })
        .map_err(|e| StoreError::Corrupt(format!("writer thread: {e}")))?;
    Ok(jobs)
}

/// Runs `batch` in one transaction and tells each job how the commit went.
async fn run_batch(pool: &SqlitePool, head: &mut Option<Head>, batch: Vec<Job>) {
    let mut delivers = Vec::with_capacity(batch.len());
    let committed = async {
        let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
        let mut outer = conn.begin().await.map_err(|e| e.to_string())?;
        let mut batch_head = *head;
        for job in batch {
            delivers.push(job(&mut outer, &mut batch_head).await);
        }
        outer.commit().await.map_err(|e| e.to_string())?;
        Ok(batch_head)
    }
    .await;
    // After a failed commit nothing of the batch exists: forget the head and read it again.
    *head = committed.as_ref().ok().copied().flatten();
    let committed = committed.map(|_| ());
    if let Err(e) = &committed {
        tracing::error!(error = %e, jobs = delivers.len(), "write batch failed; nothing of it was committed");
    }
    for deliver in delivers {
        deliver(committed.clone());
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(reader_connections())
            .connect_with(options.read_only(true))
            .await?;
        let jobs = start_writer_thread(writer)?;
        Ok(SqliteStore {
            readers,
            nonces_purged_at: std::sync::Arc::default(),
            jobs,
        })
    }

    /// Runs `job` on the writer thread inside a group-committed transaction and returns its
    /// result once that transaction is durable.
    async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(
                &'c mut SqliteConnection,
                &'c mut Option<Head>,
            )
                -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let boxed: Job = Box::new(move |conn, head| {
            Box::pin(async move {
                let outcome = job(conn, head).await;
                let deliver: Deliver = Box::new(move |committed| {
                    let _ = done.send(match committed {
                        Ok(()) => outcome,
                        Err(e) => Err(StoreError::CommitFailed(e)),
                    });
                });
                deliver
            })
        });
        self.jobs
            .send(boxed)
            .map_err(|_| StoreError::WriterStopped)?;
        result.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// One job's savepoint, aware of the audit chain's head. Appends link to the newest entry
/// without reading it back from the database: the writer thread keeps the head of what it
/// committed, and a job's new head becomes the writer's only when the job's savepoint commits
/// (a rolled-back job leaves it untouched; a failed batch commit clears it). If another process
/// appended meanwhile (the admin CLI), the insert collides on `seq` and the head is read again.
struct AuditedTx<'c> {
    tx: sqlx::Transaction<'c, Sqlite>,
    committed_head: &'c mut Option<Head>,
    pending_head: Option<Head>,
}

impl<'c> AuditedTx<'c> {
    async fn begin(
        conn: &'c mut SqliteConnection,
        committed_head: &'c mut Option<Head>,
    ) -> Result<Self, StoreError> {
        Ok(AuditedTx {
            tx: conn.begin().await?,
            committed_head,
            pending_head: None,
        })
    }

    /// Appends `event` to the chain inside this savepoint.
    async fn append(&mut self, event: Event) -> Result<Entry, StoreError> {
        let head = match self.pending_head.or(*self.committed_head) {
            Some(head) => head,
            None => head_in(&mut *self.tx).await?,
        };
        let entry = match insert_entry(&mut self.tx, head.append(event.clone())?).await {
            Err(StoreError::Database(e)) if is_unique_violation(&e) => {
                let fresh = head_in(&mut *self.tx).await?;
                insert_entry(&mut self.tx, fresh.append(event)?).await?
            }
            other => other?,
        };
        self.pending_head = Some(Head {
            seq: entry.seq,
            hash: entry.hash,
        });
        Ok(entry)
    }

    /// Releases the savepoint; its appends now extend the writer's head.
    async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        if let Some(head) = self.pending_head {
            *self.committed_head = Some(head);
        }
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

async fn insert_entry(conn: &mut SqliteConnection, entry: Entry) -> Result<Entry, StoreError> {
    let json = serde_json::to_string(&entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query("INSERT INTO audit_log (seq, entry_json, hash) VALUES (?, ?, ?)")
        .bind(i64_of(entry.seq)?)
        .bind(json)
        .bind(entry.hash.to_base64url())
        .execute(&mut *conn)
        .await?;
    Ok(entry)
}

async fn head_in<'e, E: sqlx::Executor<'e, Database = Sqlite>>(db: E) -> Result<Head, StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(db)
        .await?;
    match row {
        None => Ok(Head::GENESIS),
        Some(row) => {
            let seq: i64 = row.try_get("seq")?;
            let hash: String = row.try_get("hash")?;
            Ok(Head {
                seq: u64::try_from(seq)
                    .map_err(|_| StoreError::Corrupt("negative audit seq".into()))?,
                hash: Digest::from_base64url(&hash)
                    .map_err(|_| StoreError::Corrupt("audit hash".into()))?,
            })
        }
    }
}

/// The request `id` inside the caller's transaction, only if it belongs to `audience` when one
/// is given.
async fn request_in(
    conn: &mut SqliteConnection,
    id: &str,
    audience: Option<&str>,
) -> Result<Option<RequestRecord>, StoreError> {
    let row = sqlx::query("SELECT * FROM requests WHERE id = ? AND (? IS NULL OR audience = ?)")
        .bind(id)
        .bind(audience)
        .bind(audience)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(request_from_row).transpose()
}

fn freeze_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<FreezeRecord, StoreError> {
    Ok(FreezeRecord {
        requester_id: row.try_get("requester_id")?,
        frozen_at: row.try_get("frozen_at")?,
        reported_by: row.try_get("reported_by")?,
        request_id: row.try_get("request_id")?,
        reason: row.try_get("reason")?,
    })
}

fn i64_of(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt("sequence beyond i64".into()))
}

/// A fixed-length blob column; a stored value of another length is corruption, never truncated.
fn fixed<const N: usize>(
    row: &sqlx::sqlite::SqliteRow,
    column: &str,
) -> Result<[u8; N], StoreError> {
    let bytes: Vec<u8> = row.try_get(column)?;
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{column} length")))
}

fn api_key_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        audience: row.try_get("audience")?,
        secret_hash: fixed(row, "secret_hash")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn request_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RequestRecord, StoreError> {
    let json: String = row.try_get("transaction_json")?;
    // Stored transactions are re-validated on the way out: the database is not trusted to
    // hand back something an approver may sign.
    let transaction =
        Transaction::from_json(json.as_bytes()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let digest = transaction
        .digest()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let stored_digest: String = row.try_get("digest")?;
    if digest.to_base64url() != stored_digest {
        return Err(StoreError::Corrupt(format!(
            "request {} digest mismatch",
            transaction.id
        )));
    }
    let state: String = row.try_get("state")?;
    let fingerprint: String = row.try_get("fingerprint")?;
    Ok(RequestRecord {
        digest,
        idempotency_key: row.try_get("idempotency_key")?,
        fingerprint: Digest::from_base64url(&fingerprint)
            .map_err(|_| StoreError::Corrupt("fingerprint".into()))?,
        state: RequestState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("state {state:?}")))?,
        decision_token: row.try_get("decision_token")?,
        decision_exp: row.try_get("decision_exp")?,
        transaction,
    })
}

fn device_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<DeviceRecord, StoreError> {
    Ok(DeviceRecord {
        id: row.try_get("id")?,
        approver_id: row.try_get("approver_id")?,
        name: row.try_get("name")?,
        device_key: fixed(row, "device_key")?,
        created_at: row.try_get("created_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

fn credential_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<CredentialRecord, StoreError> {
    let count: i64 = row.try_get("sign_count")?;
    Ok(CredentialRecord {
        id: row.try_get("id")?,
        device_id: row.try_get("device_id")?,
        approver_id: row.try_get("approver_id")?,
        public_key: row.try_get("public_key")?,
        aaguid: fixed(row, "aaguid")?,
        sign_count: u32::try_from(count).map_err(|_| StoreError::Corrupt("sign count".into()))?,
        created_at: row.try_get("created_at")?,
        cloned_at: row.try_get("cloned_at")?,
    })
}

fn approval_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ApprovalRecord, StoreError> {
    Ok(ApprovalRecord {
        request_id: row.try_get("request_id")?,
        approver_id: row.try_get("approver_id")?,
        role: row.try_get("role")?,
        decision: row.try_get("decision")?,
        credential_id: row.try_get("credential_id")?,
        user_verified: row.try_get("user_verified")?,
        created_at: row.try_get("created_at")?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: Event) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |conn, head| {
            Box::pin(async move { insert_api_key_tx(conn, head, &key, audit).await })
        })
        .await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: &str, at: i64, audit: Event) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |conn, head| {
            Box::pin(async move { revoke_api_key_tx(conn, head, &id, at, audit).await })
        })
        .await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid")
            .fetch_all(&self.readers)
            .await?;
        rows.iter()
            .map(|row| {
                let seed: Vec<u8> = row.try_get("seed")?;
                Ok(SigningKeyRecord {
                    kid: row.try_get("kid")?,
                    seed: seed
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("signing key seed length".into()))?,
                    created_at: row.try_get("created_at")?,
                    retired_at: row.try_get("retired_at")?,
                })
            })
            .collect()
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        audit: Event,
    ) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |conn, head| {
            Box::pin(async move { rotate_signing_key_tx(conn, head, &key, audit).await })
        })
        .await
    }

    async fn create_request(
        &self,
        request: &RequestRecord,
        audit: Event,
    ) -> Result<Created, StoreError> {
        let request = request.clone();
        self.write(move |conn, head| {
            Box::pin(async move { create_request_tx(conn, head, &request, audit).await })
        })
        .await
    }

    async fn request(&self, audience: &str, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = ? AND audience = ?")
            .bind(id)
            .bind(audience)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn pending_count(&self, requester_id: &str, now: i64) -> Result<u32, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM requests WHERE requester_id = ? AND state = 'pending' AND approve_by >= ?",
        )
        .bind(requester_id)
        .bind(now)
        .fetch_one(&self.readers)
        .await?;
        u32::try_from(count).map_err(|_| StoreError::Corrupt("pending count".into()))
    }

    async fn add_approver(
        &self,
        approver: &ApproverRecord,
        audit: Event,
    ) -> Result<bool, StoreError> {
        let approver = approver.clone();
        self.write(move |conn, head| {
            Box::pin(async move { add_approver_tx(conn, head, &approver, audit).await })
        })
        .await
    }

    async fn disable_approver(&self, id: &str, at: i64, audit: Event) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |conn, head| {
            Box::pin(async move { disable_approver_tx(conn, head, &id, at, audit).await })
        })
        .await
    }

    async fn approver(&self, id: &str) -> Result<Option<ApproverRecord>, StoreError> {
        // One query: the approver and their groups, joined by a separator no group id holds
        // (group ids are printable ASCII).
        let Some(row) = sqlx::query(
            "SELECT a.*, (SELECT group_concat(group_name, char(31)) FROM (SELECT group_name FROM group_members WHERE approver_id = a.id ORDER BY group_name)) AS group_list FROM approvers a WHERE a.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.readers)
        .await?
        else {
            return Ok(None);
        };
        let groups: Option<String> = row.try_get("group_list")?;
        Ok(Some(ApproverRecord {
            id: row.try_get("id")?,
            display_name: row.try_get("display_name")?,
            groups: groups
                .map(|g| g.split('\u{1f}').map(str::to_owned).collect())
                .unwrap_or_default(),
            created_at: row.try_get("created_at")?,
            disabled_at: row.try_get("disabled_at")?,
        }))
    }

    async fn approvers(&self) -> Result<Vec<ApproverRecord>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM approvers ORDER BY id")
            .fetch_all(&self.readers)
            .await?;
        let mut all = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(a) = self.approver(&id).await? {
                all.push(a);
            }
        }
        Ok(all)
    }

    async fn insert_enrollment_code(
        &self,
        code_hash: &str,
        approver_id: &str,
        created_at: i64,
        expires_at: i64,
        audit: Event,
    ) -> Result<(), StoreError> {
        let code_hash = code_hash.to_owned();
        let approver_id = approver_id.to_owned();
        self.write(move |conn, head| {
            Box::pin(async move {
                insert_enrollment_code_tx(
                    conn,
                    head,
                    &code_hash,
                    &approver_id,
                    created_at,
                    expires_at,
                    audit,
                )
                .await
            })
        })
        .await
    }

    async fn enrollment_approver(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT approver_id FROM enrollment_codes WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?")
            .bind(code_hash)
            .bind(now)
            .fetch_optional(&self.readers)
            .await?)
    }

    async fn enroll(
        &self,
        code_hash: &str,
        now: i64,
        device: &DeviceRecord,
        credential: &CredentialRecord,
        audit: Event,
    ) -> Result<(), StoreError> {
        let code_hash = code_hash.to_owned();
        let device = device.clone();
        let credential = credential.clone();
        self.write(move |conn, head| {
            Box::pin(async move {
                enroll_tx(conn, head, &code_hash, now, &device, &credential, audit).await
            })
        })
        .await
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM devices WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn use_nonce(&self, nonce: &NonceUse, now: i64) -> Result<bool, StoreError> {
        let nonce = nonce.clone();
        // Expired nonces are purged at most once a minute rather than on every call.
        let last = self
            .nonces_purged_at
            .load(std::sync::atomic::Ordering::Relaxed);
        let purge = now - last >= 60
            && self
                .nonces_purged_at
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok();
        self.write(move |conn, head| {
            Box::pin(async move { use_nonce_tx(conn, head, &nonce, now, purge).await })
        })
        .await
    }

    async fn credential(&self, id: &[u8]) -> Result<Option<CredentialRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM credentials WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(credential_from_row).transpose()
    }

    async fn mark_cloned(&self, id: &[u8], at: i64, audit: Event) -> Result<(), StoreError> {
        let id = id.to_vec();
        self.write(move |conn, head| {
            Box::pin(async move { mark_cloned_tx(conn, head, &id, at, audit).await })
        })
        .await
    }

    async fn pending_requests(&self) -> Result<Vec<RequestRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM requests WHERE state = 'pending' ORDER BY created_at, id")
                .fetch_all(&self.readers)
                .await?;
        rows.iter().map(request_from_row).collect()
    }

    async fn request_by_id(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn approvals(&self, request_id: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM approvals WHERE request_id = ? ORDER BY created_at, approver_id",
        )
        .bind(request_id)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(approval_from_row).collect()
    }

    async fn record_approval(
        &self,
        approval: &ApprovalRecord,
        previous_sign_count: u32,
        new_sign_count: u32,
        decide: std::sync::Arc<Decide<'static>>,
        audit: Event,
        nonce: Option<&NonceUse>,
    ) -> Result<Recorded, StoreError> {
        let approval = approval.clone();
        let nonce = nonce.cloned();
        self.write(move |conn, head| {
            Box::pin(async move {
                record_approval_tx(
                    conn,
                    head,
                    &approval,
                    previous_sign_count,
                    new_sign_count,
                    &*decide,
                    audit,
                    nonce.as_ref(),
                )
                .await
            })
        })
        .await
    }

    async fn redeem(
        &self,
        audience: &str,
        id: &str,
        now: i64,
        audit: Event,
    ) -> Result<Redeemed, StoreError> {
        let audience = audience.to_owned();
        let id = id.to_owned();
        self.write(move |conn, head| {
            Box::pin(async move { redeem_tx(conn, head, &audience, &id, now, audit).await })
        })
        .await
    }

    async fn transition(
        &self,
        audience: &str,
        id: &str,
        from: &[RequestState],
        to: RequestState,
        now: i64,
        audit: Event,
    ) -> Result<Result<(), Option<RequestState>>, StoreError> {
        let audience = audience.to_owned();
        let id = id.to_owned();
        let from = from.to_vec();
        self.write(move |conn, head| {
            Box::pin(async move {
                transition_tx(conn, head, &audience, &id, &from, to, now, audit).await
            })
        })
        .await
    }

    async fn freeze_requester(
        &self,
        freeze: &FreezeRecord,
        audit: Event,
    ) -> Result<Vec<String>, StoreError> {
        let freeze = freeze.clone();
        self.write(move |conn, head| {
            Box::pin(async move { freeze_requester_tx(conn, head, &freeze, audit).await })
        })
        .await
    }

    async fn freeze(&self, requester_id: &str) -> Result<Option<FreezeRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requester_freezes WHERE requester_id = ?")
            .bind(requester_id)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(freeze_from_row).transpose()
    }

    async fn freezes(&self) -> Result<Vec<FreezeRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM requester_freezes ORDER BY frozen_at, requester_id")
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(freeze_from_row).collect()
    }

    async fn unfreeze(&self, requester_id: &str, audit: Event) -> Result<bool, StoreError> {
        let requester_id = requester_id.to_owned();
        self.write(move |conn, head| {
            Box::pin(async move { unfreeze_tx(conn, head, &requester_id, audit).await })
        })
        .await
    }

    async fn audit(&self, event: Event) -> Result<Entry, StoreError> {
        self.write(move |conn, head| Box::pin(async move { audit_tx(conn, head, event).await }))
            .await
    }

    async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<Entry>, StoreError> {
        let rows =
            sqlx::query("SELECT entry_json FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(i64_of(after)?)
                .bind(i64::from(limit))
                .fetch_all(&self.readers)
                .await?;
        rows.iter()
            .map(|row| {
                let json: String = row.try_get("entry_json")?;
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    async fn audit_head(&self) -> Result<Head, StoreError> {
        head_in(&self.readers).await
    }
}

/// [`Store::insert_api_key`] on the writer thread.
async fn insert_api_key_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    key: &ApiKeyRecord,
    audit: Event,
) -> Result<(), StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    sqlx::query("INSERT INTO api_keys (id, name, audience, secret_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.audience)
        .bind(key.secret_hash.as_slice())
        .bind(key.created_at)
        .bind(key.revoked_at)
        .execute(&mut *tx)
        .await?;
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(())
}

/// [`Store::revoke_api_key`] on the writer thread.
async fn revoke_api_key_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    id: &str,
    at: i64,
    audit: Event,
) -> Result<bool, StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if done == 0 {
        return Ok(false);
    }
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// [`Store::rotate_signing_key`] on the writer thread.
async fn rotate_signing_key_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    key: &SigningKeyRecord,
    audit: Event,
) -> Result<(), StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO signing_keys (kid, seed, created_at, retired_at) VALUES (?, ?, ?, NULL)",
    )
    .bind(&key.kid)
    .bind(key.seed.as_slice())
    .bind(key.created_at)
    .execute(&mut *tx)
    .await?;
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(())
}

/// [`Store::create_request`] on the writer thread.
async fn create_request_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    request: &RequestRecord,
    audit: Event,
) -> Result<Created, StoreError> {
    let tx_json = String::from_utf8(
        request
            .transaction
            .canonical_json()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    )
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let t = &request.transaction;
    let mut tx = AuditedTx::begin(conn, head).await?;
    // One read for both checks: is the requester frozen, and was this key used before?
    let found = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM requester_freezes WHERE requester_id = ?) AS frozen, r.* FROM (SELECT 1) LEFT JOIN requests r ON r.audience = ? AND r.idempotency_key = ?",
    )
    .bind(&t.requester.id)
    .bind(&t.audience)
    .bind(&request.idempotency_key)
    .fetch_one(&mut *tx)
    .await?;
    if found.try_get::<bool, _>("frozen")? {
        return Err(StoreError::RequesterFrozen);
    }
    if found.try_get::<Option<String>, _>("id")?.is_some() {
        let found = request_from_row(&found)?;
        return if found.fingerprint == request.fingerprint {
            Ok(Created::Existing(found))
        } else {
            Err(StoreError::IdempotencyConflict)
        };
    }
    sqlx::query(
        "INSERT INTO requests (id, audience, requester_id, idempotency_key, fingerprint, transaction_json, digest, state, created_at, approve_by, execute_by, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.id)
    .bind(&t.audience)
    .bind(&t.requester.id)
    .bind(&request.idempotency_key)
    .bind(request.fingerprint.to_base64url())
    .bind(tx_json)
    .bind(request.digest.to_base64url())
    .bind(request.state.as_str())
    .bind(t.created_at.unix())
    .bind(t.approve_by.unix())
    .bind(t.execute_by.unix())
    .bind(t.created_at.unix())
    .execute(&mut *tx)
    .await?;
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(Created::New(request.clone()))
}

/// [`Store::add_approver`] on the writer thread.
async fn add_approver_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    approver: &ApproverRecord,
    audit: Event,
) -> Result<bool, StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    let inserted = sqlx::query("INSERT INTO approvers (id, display_name, created_at, disabled_at) VALUES (?, ?, ?, NULL) ON CONFLICT (id) DO NOTHING")
        .bind(&approver.id)
        .bind(&approver.display_name)
        .bind(approver.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    for group in &approver.groups {
        sqlx::query("INSERT INTO group_members (group_name, approver_id) VALUES (?, ?)")
            .bind(group)
            .bind(&approver.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// [`Store::disable_approver`] on the writer thread.
async fn disable_approver_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    id: &str,
    at: i64,
    audit: Event,
) -> Result<bool, StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    let done =
        sqlx::query("UPDATE approvers SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if done == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE devices SET disabled_at = ? WHERE approver_id = ? AND disabled_at IS NULL")
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// [`Store::insert_enrollment_code`] on the writer thread.
async fn insert_enrollment_code_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    code_hash: &str,
    approver_id: &str,
    created_at: i64,
    expires_at: i64,
    audit: Event,
) -> Result<(), StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    sqlx::query("INSERT INTO enrollment_codes (code_hash, approver_id, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, NULL)")
        .bind(code_hash)
        .bind(approver_id)
        .bind(created_at)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(())
}

/// [`Store::enroll`] on the writer thread.
async fn enroll_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    code_hash: &str,
    now: i64,
    device: &DeviceRecord,
    credential: &CredentialRecord,
    audit: Event,
) -> Result<(), StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    let used = sqlx::query("UPDATE enrollment_codes SET used_at = ? WHERE code_hash = ? AND approver_id = ? AND used_at IS NULL AND expires_at > ?")
        .bind(now)
        .bind(code_hash)
        .bind(&device.approver_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if used == 0 {
        return Err(StoreError::EnrollmentCode);
    }
    let active: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM approvers WHERE id = ? AND disabled_at IS NULL")
            .bind(&device.approver_id)
            .fetch_optional(&mut *tx)
            .await?;
    if active.is_none() {
        return Err(StoreError::ApproverDisabled);
    }
    let insert_device = sqlx::query("INSERT INTO devices (id, approver_id, name, device_key, created_at, disabled_at) VALUES (?, ?, ?, ?, ?, NULL)")
        .bind(&device.id)
        .bind(&device.approver_id)
        .bind(&device.name)
        .bind(device.device_key.as_slice())
        .bind(device.created_at)
        .execute(&mut *tx)
        .await;
    let insert_credential = match insert_device {
        Ok(_) => {
            sqlx::query("INSERT INTO credentials (id, device_id, approver_id, public_key, aaguid, sign_count, created_at, cloned_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)")
                .bind(&credential.id)
                .bind(&credential.device_id)
                .bind(&credential.approver_id)
                .bind(&credential.public_key)
                .bind(credential.aaguid.as_slice())
                .bind(i64::from(credential.sign_count))
                .bind(credential.created_at)
                .execute(&mut *tx)
                .await
        }
        Err(e) => Err(e),
    };
    match insert_credential {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyEnrolled),
        Err(e) => return Err(e.into()),
    }
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(())
}

/// [`Store::use_nonce`] on the writer thread.
async fn use_nonce_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    nonce: &NonceUse,
    now: i64,
    purge: bool,
) -> Result<bool, StoreError> {
    // Two independent statements, each atomic on its own: no savepoint needed, and no audit
    // entry (a nonce is bookkeeping, not a state change).
    let _ = head;
    if purge {
        sqlx::query("DELETE FROM device_nonces WHERE expires_at < ?")
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    insert_nonce(conn, nonce).await
}

/// Stores a device call's nonce; false if it was already used.
async fn insert_nonce(conn: &mut SqliteConnection, nonce: &NonceUse) -> Result<bool, StoreError> {
    let inserted = sqlx::query("INSERT INTO device_nonces (device_id, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        .bind(&nonce.device_id)
        .bind(&nonce.nonce)
        .bind(nonce.expires_at)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(inserted == 1)
}

/// [`Store::mark_cloned`] on the writer thread.
async fn mark_cloned_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    id: &[u8],
    at: i64,
    audit: Event,
) -> Result<(), StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    sqlx::query("UPDATE credentials SET cloned_at = ? WHERE id = ? AND cloned_at IS NULL")
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(())
}

/// [`Store::record_approval`] on the writer thread.
// The trait method's arguments plus the writer's connection and audit head.
#[allow(clippy::too_many_arguments)]
async fn record_approval_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    approval: &ApprovalRecord,
    previous_sign_count: u32,
    new_sign_count: u32,
    decide: &Decide<'_>,
    audit: Event,
    nonce: Option<&NonceUse>,
) -> Result<Recorded, StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    if let Some(n) = nonce {
        if !insert_nonce(&mut tx, n).await? {
            return Err(StoreError::NonceReplayed);
        }
    }
    let request = request_in(&mut tx, &approval.request_id, None)
        .await?
        .ok_or(StoreError::NotPending("missing"))?;
    if request.state != RequestState::Pending {
        return Err(StoreError::NotPending(request.state.as_str()));
    }
    let counted = sqlx::query("UPDATE credentials SET sign_count = ? WHERE id = ? AND sign_count = ? AND cloned_at IS NULL")
        .bind(i64::from(new_sign_count))
        .bind(&approval.credential_id)
        .bind(i64::from(previous_sign_count))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if counted == 0 {
        return Err(StoreError::CounterRace);
    }
    let inserted = sqlx::query(
        "INSERT INTO approvals (request_id, approver_id, role, decision, credential_id, user_verified, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(&approval.request_id)
    .bind(&approval.approver_id)
    .bind(&approval.role)
    .bind(&approval.decision)
    .bind(&approval.credential_id)
    .bind(approval.user_verified)
    .bind(approval.created_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::AlreadyDecided);
    }
    tx.append(audit).await?;
    let rows = sqlx::query(
        "SELECT * FROM approvals WHERE request_id = ? ORDER BY created_at, approver_id",
    )
    .bind(&approval.request_id)
    .fetch_all(&mut *tx)
    .await?;
    let approvals = rows
        .iter()
        .map(approval_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let decision = decide(&request, &approvals).map_err(StoreError::Decision)?;
    if let Some(d) = &decision {
        sqlx::query("UPDATE requests SET state = ?, decision_token = ?, decision_exp = ?, updated_at = ? WHERE id = ? AND state = 'pending'")
            .bind(d.state.as_str())
            .bind(&d.token)
            .bind(d.exp)
            .bind(approval.created_at)
            .bind(&approval.request_id)
            .execute(&mut *tx)
            .await?;
        tx.append(d.audit.clone()).await?;
    }
    tx.commit().await?;
    Ok(Recorded {
        decision,
        approvals,
    })
}

/// [`Store::redeem`] on the writer thread.
async fn redeem_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    audience: &str,
    id: &str,
    now: i64,
    audit: Event,
) -> Result<Redeemed, StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    // The common case in one statement: consume an approved, unexpired decision.
    let redeemed: Option<Option<String>> = sqlx::query_scalar(
        "UPDATE requests SET state = 'redeemed', updated_at = ? WHERE id = ? AND audience = ? AND state = 'approved' AND decision_exp > ? RETURNING decision_token",
    )
    .bind(now)
    .bind(id)
    .bind(audience)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(token) = redeemed else {
        // Nothing consumed: say why.
        return Ok(match request_in(&mut tx, id, Some(audience)).await? {
            None => Redeemed::NotFound,
            Some(r) if r.state != RequestState::Approved => Redeemed::WrongState(r.state),
            Some(_) => Redeemed::Expired,
        });
    };
    // Dropping `tx` without commit rolls the consumption back.
    let token =
        token.ok_or_else(|| StoreError::Corrupt("approved request without token".into()))?;
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(Redeemed::Now(token))
}

/// [`Store::transition`] on the writer thread.
// The trait method's six arguments plus the writer's connection and audit head.
#[allow(clippy::too_many_arguments)]
async fn transition_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    audience: &str,
    id: &str,
    from: &[RequestState],
    to: RequestState,
    now: i64,
    audit: Event,
) -> Result<Result<(), Option<RequestState>>, StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    let Some(request) = request_in(&mut tx, id, Some(audience)).await? else {
        return Ok(Err(None));
    };
    if !from.contains(&request.state) {
        return Ok(Err(Some(request.state)));
    }
    sqlx::query("UPDATE requests SET state = ?, updated_at = ? WHERE id = ? AND state = ?")
        .bind(to.as_str())
        .bind(now)
        .bind(id)
        .bind(request.state.as_str())
        .execute(&mut *tx)
        .await?;
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// [`Store::freeze_requester`] on the writer thread.
async fn freeze_requester_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    freeze: &FreezeRecord,
    audit: Event,
) -> Result<Vec<String>, StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    let inserted = sqlx::query(
        "INSERT INTO requester_freezes (requester_id, frozen_at, reported_by, request_id, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(&freeze.requester_id)
    .bind(freeze.frozen_at)
    .bind(&freeze.reported_by)
    .bind(&freeze.request_id)
    .bind(&freeze.reason)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        // Already frozen: the first report stands, and nothing was pending since then.
        return Ok(Vec::new());
    }
    tx.append(audit.clone()).await?;
    let cancelled: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM requests WHERE requester_id = ? AND state = 'pending' AND id <> ? ORDER BY created_at, id",
    )
    .bind(&freeze.requester_id)
    .bind(&freeze.request_id)
    .fetch_all(&mut *tx)
    .await?;
    for id in &cancelled {
        sqlx::query("UPDATE requests SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = 'pending'")
            .bind(freeze.frozen_at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.append(Event {
            at: audit.at,
            kind: "request.cancelled".into(),
            request_id: Some(id.clone()),
            actor: audit.actor.clone(),
            data: serde_json::json!({"reason": "requester_frozen"}),
        })
        .await?;
    }
    tx.commit().await?;
    Ok(cancelled)
}

/// [`Store::unfreeze`] on the writer thread.
async fn unfreeze_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    requester_id: &str,
    audit: Event,
) -> Result<bool, StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    let deleted = sqlx::query("DELETE FROM requester_freezes WHERE requester_id = ?")
        .bind(requester_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    tx.append(audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// [`Store::audit`] on the writer thread.
async fn audit_tx(
    conn: &mut SqliteConnection,
    head: &mut Option<Head>,
    event: Event,
) -> Result<Entry, StoreError> {
    let mut tx = AuditedTx::begin(conn, head).await?;
    let entry = tx.append(event).await?;
    tx.commit().await?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ApproverRecord, CredentialRecord, DeviceRecord};
    use countersign_core::Timestamp;

    fn event(at: Timestamp, kind: &str, request: Option<&str>) -> Event {
        Event {
            at,
            kind: kind.into(),
            request_id: request.map(str::to_owned),
            actor: "test".into(),
            data: serde_json::json!({}),
        }
    }

    fn transaction(id: &str) -> Transaction {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../../tests/vectors/transaction.json"))
                .unwrap();
        let mut tx =
            Transaction::from_json(doc["cases"][0]["transaction"].to_string().as_bytes()).unwrap();
        tx.id = id.into();
        tx
    }

    /// Jobs that fail after writing (their decision step errs once the approval, the counter
    /// and the audit entry are written) leave nothing behind, while the jobs committed in the
    /// same group commit keep everything.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_rolls_back_alone_inside_a_group_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3"))
            .await
            .unwrap();
        let now = crate::clock::now().unwrap();
        let n = 12u8;
        for i in 0..n {
            let who = format!("approver{i}");
            let approver = ApproverRecord {
                id: who.clone(),
                display_name: who.clone(),
                groups: vec![],
                created_at: now.unix(),
                disabled_at: None,
            };
            assert!(store
                .add_approver(&approver, event(now, "approver.added", None))
                .await
                .unwrap());
            let code = format!("code{i}");
            store
                .insert_enrollment_code(
                    &code,
                    &who,
                    now.unix(),
                    now.unix() + 900,
                    event(now, "code", None),
                )
                .await
                .unwrap();
            let device = DeviceRecord {
                id: format!("dev{i}"),
                approver_id: who.clone(),
                name: "laptop".into(),
                device_key: [i; 32],
                created_at: now.unix(),
                disabled_at: None,
            };
            let credential = CredentialRecord {
                id: vec![i],
                device_id: device.id.clone(),
                approver_id: who.clone(),
                public_key: vec![0xa5],
                aaguid: [0; 16],
                sign_count: 0,
                created_at: now.unix(),
                cloned_at: None,
            };
            store
                .enroll(
                    &code,
                    now.unix(),
                    &device,
                    &credential,
                    event(now, "enrolled", None),
                )
                .await
                .unwrap();
            let tx = transaction(&format!("req_{i}"));
            let record = RequestRecord {
                digest: tx.digest().unwrap(),
                transaction: tx,
                idempotency_key: format!("k{i}"),
                fingerprint: Digest::ZERO,
                state: RequestState::Pending,
                decision_token: None,
                decision_exp: None,
            };
            store
                .create_request(
                    &record,
                    event(now, "request.created", Some(&format!("req_{i}"))),
                )
                .await
                .unwrap();
        }
        let before = store.audit_head().await.unwrap().seq;

        let jobs = (0..n).map(|i| {
            let store = store.clone();
            async move {
                let approval = ApprovalRecord {
                    request_id: format!("req_{i}"),
                    approver_id: format!("approver{i}"),
                    role: "approver".into(),
                    decision: "approve".into(),
                    credential_id: vec![i],
                    user_verified: true,
                    created_at: now.unix(),
                };
                let fails = i % 2 == 1;
                let decide: std::sync::Arc<Decide<'static>> = std::sync::Arc::new(move |_, _| {
                    if fails {
                        Err("refused after writing".to_owned())
                    } else {
                        Ok(None)
                    }
                });
                store
                    .record_approval(
                        &approval,
                        0,
                        1,
                        decide,
                        event(now, "approval.approve", Some(&approval.request_id)),
                        Some(&NonceUse {
                            device_id: format!("dev{i}"),
                            nonce: format!("nonce{i}"),
                            expires_at: now.unix() + 120,
                        }),
                    )
                    .await
            }
        });
        let results = futures_util::future::join_all(jobs).await;
        for (i, result) in results.iter().enumerate() {
            let i = u8::try_from(i).unwrap();
            let approvals = store.approvals(&format!("req_{i}")).await.unwrap();
            let counter = store.credential(&[i]).await.unwrap().unwrap().sign_count;
            let nonce_was_free = store
                .use_nonce(
                    &NonceUse {
                        device_id: format!("dev{i}"),
                        nonce: format!("nonce{i}"),
                        expires_at: now.unix() + 120,
                    },
                    now.unix(),
                )
                .await
                .unwrap();
            assert_eq!(
                nonce_was_free,
                i % 2 == 1,
                "{i}: the nonce is stored exactly when the job committed"
            );
            if i % 2 == 1 {
                assert!(
                    matches!(result, Err(StoreError::Decision(_))),
                    "{i}: {result:?}"
                );
                assert!(
                    approvals.is_empty(),
                    "{i}: the failed job's approval was rolled back"
                );
                assert_eq!(
                    counter, 0,
                    "{i}: the failed job's counter update was rolled back"
                );
            } else {
                assert!(result.is_ok(), "{i}: {result:?}");
                assert_eq!(approvals.len(), 1, "{i}");
                assert_eq!(counter, 1, "{i}");
            }
        }
        let entries = store.audit_entries(before, 1000).await.unwrap();
        assert_eq!(
            entries.len(),
            usize::from(n / 2),
            "one audit entry per committed approval"
        );
        let chain = store.audit_entries(0, 10_000).await.unwrap();
        countersign_core::audit::verify_chain(Head::GENESIS, &chain).unwrap();
    }

    /// Two stores on one file (the server and the admin CLI) append in turns: the writer's
    /// remembered head goes stale, the insert collides on `seq`, the head is read again, and
    /// the chain stays one verified line.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_from_another_process_do_not_fork_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let server = SqliteStore::open(&path).await.unwrap();
        let cli = SqliteStore::open(&path).await.unwrap();
        let now = crate::clock::now().unwrap();
        for round in 0..5 {
            server.audit(event(now, "server", None)).await.unwrap();
            server.audit(event(now, "server", None)).await.unwrap();
            cli.audit(event(now, "cli", None)).await.unwrap();
            assert_eq!(
                server.audit_head().await.unwrap().seq,
                (round + 1) * 3,
                "round {round}"
            );
        }
        let chain = server.audit_entries(0, 1000).await.unwrap();
        assert_eq!(chain.len(), 15);
        countersign_core::audit::verify_chain(Head::GENESIS, &chain).unwrap();
    }
}
