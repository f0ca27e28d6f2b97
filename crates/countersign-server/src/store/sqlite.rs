//! The embedded SQLite backend: WAL journal, `synchronous=FULL` (every commit durable), one
//! writer connection (SQLite has one writer at a time; a single connection avoids lock-upgrade
//! failures) and a fixed set of read-only connections. All SQLite-specific SQL lives here.

use super::rows::{
    api_key_from_row, approval_from_row, audit_entry, clock_now, credential_from_row,
    device_from_row, freeze_from_row, group_list, is_unique_violation, key_rollover,
    request_from_row, requesters_json, seq_column, signing_key_from_row, transaction_json,
};
use super::sqlite_readers::Readers;
use super::sqlite_writer::{
    head_in, start_writer_thread, AuditBatch, AuditedTx, Deliver, Job, WriterTotals,
};
use super::{
    ApiKeyRecord, ApprovalRecord, ApproverRecord, Corrupt, Created, CredentialRecord, Decide,
    DeviceRecord, Freeze, FreezeRecord, NonceUse, PendingCap, PendingCaps, Recorded, Redeemed,
    Reported, RequestRecord, RequestState, SigningKeyRecord, Store, StoreError,
};
use countersign_core::audit::{Entry, Event, EventKind, Head};
use countersign_core::transaction::Transaction;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Row, SqliteConnection};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    readers: std::sync::Arc<Readers>,
    /// Unix seconds of the last purge of expired device nonces.
    nonces_purged_at: std::sync::Arc<super::NoncePurge>,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    totals: std::sync::Arc<WriterTotals>,
}

/// One reader connection per CPU this thread may use (each has its own worker thread, and on a
/// small machine more threads cost more in switching than they gain; measured in
/// docs/benchmarks.md), but at least two, so one slow read never holds up every other.
fn reader_connections() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .clamp(2, 8)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, None).await
    }

    /// [`SqliteStore::open`], with the writer and its connection thread on `writer_cpu` when
    /// given (see `cpu_placement`).
    pub async fn open_with(path: &Path, writer_cpu: Option<usize>) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Deleted and overwritten content is zeroed, not left in free pages.
            .pragma("secure_delete", "ON")
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let totals = std::sync::Arc::<WriterTotals>::default();
        // The writer opens its own connection (so its thread shares the writer's CPU) and
        // applies migrations before the readers open.
        let jobs = start_writer_thread(options.clone(), writer_cpu, totals.clone()).await?;
        let readers = Readers::open(&options, reader_connections()).await?;
        Ok(SqliteStore {
            totals,
            readers: std::sync::Arc::new(readers),
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
                &'c mut AuditBatch,
            )
                -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let boxed: Job = Box::new(move |conn, chain| {
            Box::pin(async move {
                let outcome = job(conn, chain).await;
                let deliver: Deliver = Box::new(move |committed| {
                    let _ = done.send(match committed {
                        Ok(()) => outcome,
                        Err(e) => Err(StoreError::Database(Box::new(e))),
                    });
                });
                deliver
            })
        });
        let stopped = || StoreError::Database(Box::new(super::WriterStopped));
        self.jobs.send(boxed).map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
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

super::rows::sqlx_columns!(sqlx::sqlite::SqliteRow);

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.totals.register(registry);
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: Event) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |conn, chain| {
            Box::pin(async move { insert_api_key_tx(conn, chain, &key, audit).await })
        })
        .await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.readers.get().await)
            .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&mut *self.readers.get().await)
            .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: &str, at: i64, audit: Event) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |conn, chain| {
            Box::pin(async move { revoke_api_key_tx(conn, chain, &id, at, audit).await })
        })
        .await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid")
            .fetch_all(&mut *self.readers.get().await)
            .await?;
        rows.iter().map(signing_key_from_row).collect()
    }

    async fn legacy_signing_seeds(&self) -> Result<Vec<super::LegacySeed>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, seed, created_at FROM signing_keys WHERE length(seed) > 0 ORDER BY created_at, kid",
        )
        .fetch_all(&mut *self.readers.get().await)
        .await?;
        rows.iter()
            .map(|row| {
                let seed: zeroize::Zeroizing<Vec<u8>> =
                    zeroize::Zeroizing::new(row.try_get("seed")?);
                let seed: [u8; 32] = seed
                    .as_slice()
                    .try_into()
                    .map_err(|_| Corrupt::Value("signing key seed"))?;
                Ok((
                    row.try_get("kid")?,
                    zeroize::Zeroizing::new(seed),
                    row.try_get("created_at")?,
                ))
            })
            .collect()
    }

    async fn forget_signing_seeds(&self) -> Result<(), StoreError> {
        self.write(move |conn, _| {
            Box::pin(async move {
                sqlx::query("UPDATE signing_keys SET seed = X'' WHERE length(seed) > 0")
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        rollover: Option<&countersign_core::rollover::KeyRollover>,
        audit: Event,
    ) -> Result<(), StoreError> {
        let key = key.clone();
        let rollover = rollover
            .map(serde_json::to_string)
            .transpose()
            .map_err(|source| Corrupt::Json {
                what: "key rollover",
                source,
            })?;
        self.write(move |conn, chain| {
            Box::pin(async move {
                rotate_signing_key_tx(conn, chain, &key, rollover.as_deref(), audit).await
            })
        })
        .await
    }

    async fn key_rollovers(
        &self,
    ) -> Result<Vec<countersign_core::rollover::KeyRollover>, StoreError> {
        let texts: Vec<String> =
            sqlx::query_scalar("SELECT rollover FROM key_rollovers ORDER BY created_at, new_kid")
                .fetch_all(&mut *self.readers.get().await)
                .await?;
        texts.iter().map(|t| key_rollover(t)).collect()
    }

    async fn create_request(
        &self,
        request: &RequestRecord,
        caps: &PendingCaps,
        audit: Event,
    ) -> Result<Created, StoreError> {
        let request = request.clone();
        let caps = caps.clone();
        self.write(move |conn, chain| {
            Box::pin(async move { create_request_tx(conn, chain, &request, &caps, audit).await })
        })
        .await
    }

    async fn request(&self, audience: &str, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = ? AND audience = ?")
            .bind(id)
            .bind(audience)
            .fetch_optional(&mut *self.readers.get().await)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn add_approver(
        &self,
        approver: &ApproverRecord,
        audit: Event,
    ) -> Result<bool, StoreError> {
        let approver = approver.clone();
        self.write(move |conn, chain| {
            Box::pin(async move { add_approver_tx(conn, chain, &approver, audit).await })
        })
        .await
    }

    async fn disable_approver(&self, id: &str, at: i64, audit: Event) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |conn, chain| {
            Box::pin(async move { disable_approver_tx(conn, chain, &id, at, audit).await })
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
        .fetch_optional(&mut *self.readers.get().await)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(ApproverRecord {
            id: row.try_get("id")?,
            display_name: row.try_get("display_name")?,
            groups: group_list(row.try_get("group_list")?),
            created_at: row.try_get("created_at")?,
            disabled_at: row.try_get("disabled_at")?,
        }))
    }

    async fn approver_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM approvers ORDER BY id")
            .fetch_all(&mut *self.readers.get().await)
            .await?)
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
        self.write(move |conn, chain| {
            Box::pin(async move {
                insert_enrollment_code_tx(
                    conn,
                    chain,
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
            .fetch_optional(&mut *self.readers.get().await)
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
        self.write(move |conn, chain| {
            Box::pin(async move {
                enroll_tx(conn, chain, &code_hash, now, &device, &credential, audit).await
            })
        })
        .await
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM devices WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.readers.get().await)
            .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn use_nonce(&self, nonce: &NonceUse, now: i64) -> Result<bool, StoreError> {
        let nonce = nonce.clone();
        let purge = self.nonces_purged_at.due(now);
        self.write(move |conn, chain| {
            Box::pin(async move { use_nonce_tx(conn, chain, &nonce, now, purge).await })
        })
        .await
    }

    async fn credential(&self, id: &[u8]) -> Result<Option<CredentialRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM credentials WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.readers.get().await)
            .await?;
        row.as_ref().map(credential_from_row).transpose()
    }

    async fn mark_cloned(&self, id: &[u8], at: i64, audit: Event) -> Result<(), StoreError> {
        let id = id.to_vec();
        self.write(move |conn, chain| {
            Box::pin(async move { mark_cloned_tx(conn, chain, &id, at, audit).await })
        })
        .await
    }

    async fn pending_requests(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM requests WHERE state = 'pending' AND approve_by >= ? ORDER BY approve_by, id LIMIT ?",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.readers.get().await)
        .await?;
        rows.iter().map(request_from_row).collect()
    }

    async fn expire_pending(&self, now: i64, limit: u32) -> Result<Vec<String>, StoreError> {
        self.write(move |conn, chain| {
            Box::pin(async move { expire_pending_tx(conn, chain, now, limit).await })
        })
        .await
    }

    async fn request_by_id(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.readers.get().await)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn approvals(&self, request_id: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM approvals WHERE request_id = ? ORDER BY created_at, approver_id",
        )
        .bind(request_id)
        .fetch_all(&mut *self.readers.get().await)
        .await?;
        rows.iter().map(approval_from_row).collect()
    }

    async fn record_approval(
        &self,
        approval: &ApprovalRecord,
        device_id: &str,
        previous_sign_count: u32,
        new_sign_count: u32,
        decide: std::sync::Arc<Decide<'static>>,
        audit: Event,
    ) -> Result<Recorded, StoreError> {
        let approval = approval.clone();
        let device_id = device_id.to_owned();
        self.write(move |conn, chain| {
            Box::pin(async move {
                let caller = Caller {
                    approver_id: &approval.approver_id,
                    device_id: &device_id,
                };
                record_approval_tx(
                    conn,
                    chain,
                    &approval,
                    caller,
                    (previous_sign_count, new_sign_count),
                    &*decide,
                    audit,
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
        self.write(move |conn, chain| {
            Box::pin(async move { redeem_tx(conn, chain, &audience, &id, now, audit).await })
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
        self.write(move |conn, chain| {
            Box::pin(async move {
                transition_tx(conn, chain, &audience, &id, &from, to, now, audit).await
            })
        })
        .await
    }

    async fn record_report(
        &self,
        denial: &ApprovalRecord,
        device_id: &str,
        previous_sign_count: u32,
        new_sign_count: u32,
        decide: std::sync::Arc<Decide<'static>>,
        audit: Event,
        freeze: Freeze,
    ) -> Result<Reported, StoreError> {
        let denial = denial.clone();
        let device_id = device_id.to_owned();
        self.write(move |conn, chain| {
            Box::pin(async move {
                let report = Report {
                    caller: Caller {
                        approver_id: &denial.approver_id,
                        device_id: &device_id,
                    },
                    denial: &denial,
                    counters: (previous_sign_count, new_sign_count),
                    decide: &*decide,
                    audit,
                    freeze: &freeze,
                };
                record_report_tx(conn, chain, report).await
            })
        })
        .await
    }

    async fn freeze(&self, requester_id: &str) -> Result<Option<FreezeRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requester_freezes WHERE requester_id = ?")
            .bind(requester_id)
            .fetch_optional(&mut *self.readers.get().await)
            .await?;
        row.as_ref().map(freeze_from_row).transpose()
    }

    async fn freezes(&self) -> Result<Vec<FreezeRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM requester_freezes ORDER BY frozen_at, requester_id")
            .fetch_all(&mut *self.readers.get().await)
            .await?;
        rows.iter().map(freeze_from_row).collect()
    }

    async fn unfreeze(&self, requester_id: &str, audit: Event) -> Result<bool, StoreError> {
        let requester_id = requester_id.to_owned();
        self.write(move |conn, chain| {
            Box::pin(async move { unfreeze_tx(conn, chain, &requester_id, audit).await })
        })
        .await
    }

    async fn audit(&self, event: Event) -> Result<Entry, StoreError> {
        self.write(move |_, chain| Box::pin(async move { audit_tx(chain, event) }))
            .await
    }

    async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<Entry>, StoreError> {
        let rows =
            sqlx::query("SELECT entry_json FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(seq_column(after)?)
                .bind(i64::from(limit))
                .fetch_all(&mut *self.readers.get().await)
                .await?;
        rows.iter()
            .map(|row| audit_entry(&row.try_get::<String, _>("entry_json")?))
            .collect()
    }

    async fn audit_head(&self) -> Result<Head, StoreError> {
        head_in(&mut *self.readers.get().await).await
    }
}

/// [`Store::insert_api_key`] on the writer thread.
async fn insert_api_key_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    key: &ApiKeyRecord,
    audit: Event,
) -> Result<(), StoreError> {
    let requesters = requesters_json(key)?;
    let mut tx = AuditedTx::begin(conn, chain).await?;
    sqlx::query("INSERT INTO api_keys (id, name, audience, secret_hash, created_at, revoked_at, requesters) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.audience)
        .bind(key.secret_hash.as_slice())
        .bind(key.created_at)
        .bind(key.revoked_at)
        .bind(requesters)
        .execute(&mut *tx)
        .await?;
    tx.append(audit)?;
    tx.commit().await?;
    Ok(())
}

/// [`Store::revoke_api_key`] on the writer thread.
async fn revoke_api_key_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    id: &str,
    at: i64,
    audit: Event,
) -> Result<bool, StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
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
    tx.append(audit)?;
    tx.commit().await?;
    Ok(true)
}

/// [`Store::rotate_signing_key`] on the writer thread.
async fn rotate_signing_key_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    key: &SigningKeyRecord,
    rollover: Option<&str>,
    audit: Event,
) -> Result<(), StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
    if let Some(rollover) = rollover {
        sqlx::query("INSERT INTO key_rollovers (new_kid, rollover, created_at) VALUES (?, ?, ?)")
            .bind(&key.kid)
            .bind(rollover)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
    // The seed column stays empty: keys live in key files (`key_provider`).
    sqlx::query(
        "INSERT INTO signing_keys (kid, seed, created_at, retired_at) VALUES (?, X'', ?, NULL)",
    )
    .bind(&key.kid)
    .bind(key.created_at)
    .execute(&mut *tx)
    .await?;
    tx.append(audit)?;
    tx.commit().await?;
    Ok(())
}

/// [`Store::create_request`] on the writer thread.
async fn create_request_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    request: &RequestRecord,
    caps: &PendingCaps,
    audit: Event,
) -> Result<Created, StoreError> {
    let tx_json = transaction_json(request)?;
    let t = &request.transaction;
    // Made before the insert, so nothing can fail after it.
    let entry = chain.next(audit)?;
    // One statement, atomic on its own (so no savepoint): it inserts only for a requester who
    // is not frozen, while the requester and the API key are under their pending caps (counted
    // here, on the writer, so concurrent creations cannot all see room), and inserts nothing
    // for an idempotency key (or id) already used.
    let inserted = sqlx::query(
        "INSERT INTO requests (id, audience, requester_id, idempotency_key, fingerprint, transaction_json, digest, state, created_at, approve_by, execute_by, updated_at, api_key_id)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?9, ?12
         WHERE NOT EXISTS (SELECT 1 FROM requester_freezes WHERE requester_id = ?3)
           AND (SELECT COUNT(*) FROM requests WHERE requester_id = ?3 AND state = 'pending' AND approve_by >= ?13) < ?14
           AND (SELECT COUNT(*) FROM requests WHERE api_key_id = ?12 AND state = 'pending' AND approve_by >= ?13) < ?15
         ON CONFLICT DO NOTHING",
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
    .bind(&caps.api_key_id)
    .bind(caps.now)
    .bind(i64::from(caps.per_requester))
    .bind(i64::from(caps.per_api_key))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        chain.push(entry);
        return Ok(Created::New(request.clone()));
    }
    // Nothing inserted: say why, in one read.
    let found = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM requester_freezes WHERE requester_id = ?) AS frozen, r.* FROM (SELECT 1) LEFT JOIN requests r ON r.audience = ? AND r.idempotency_key = ?",
    )
    .bind(&t.requester.id)
    .bind(&t.audience)
    .bind(&request.idempotency_key)
    .fetch_one(&mut *conn)
    .await?;
    if found.try_get::<bool, _>("frozen")? {
        return Err(StoreError::RequesterFrozen);
    }
    if found.try_get::<Option<String>, _>("id")?.is_none() {
        // No request under this key: a cap stopped it, or (never in practice) the random id
        // was taken.
        return Err(match pending_cap_reached(conn, t, caps).await? {
            Some(cap) => StoreError::PendingCap(cap),
            None => Corrupt::RequestIdTaken(t.id.clone()).into(),
        });
    }
    let found = request_from_row(&found)?;
    if found.fingerprint == request.fingerprint {
        Ok(Created::Existing(found))
    } else {
        Err(StoreError::IdempotencyConflict)
    }
}

/// Which pending cap, if any, a new request of `t`'s requester through `caps`' key would
/// exceed.
async fn pending_cap_reached(
    conn: &mut SqliteConnection,
    t: &Transaction,
    caps: &PendingCaps,
) -> Result<Option<PendingCap>, StoreError> {
    let (requester, key): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM requests WHERE requester_id = ?1 AND state = 'pending' AND approve_by >= ?3),
                (SELECT COUNT(*) FROM requests WHERE api_key_id = ?2 AND state = 'pending' AND approve_by >= ?3)",
    )
    .bind(&t.requester.id)
    .bind(&caps.api_key_id)
    .bind(caps.now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(if requester >= i64::from(caps.per_requester) {
        Some(PendingCap::Requester)
    } else if key >= i64::from(caps.per_api_key) {
        Some(PendingCap::ApiKey)
    } else {
        None
    })
}

/// [`Store::add_approver`] on the writer thread.
async fn add_approver_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    approver: &ApproverRecord,
    audit: Event,
) -> Result<bool, StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
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
    tx.append(audit)?;
    tx.commit().await?;
    Ok(true)
}

/// [`Store::disable_approver`] on the writer thread.
async fn disable_approver_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    id: &str,
    at: i64,
    audit: Event,
) -> Result<bool, StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
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
    tx.append(audit)?;
    tx.commit().await?;
    Ok(true)
}

/// [`Store::insert_enrollment_code`] on the writer thread.
async fn insert_enrollment_code_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    code_hash: &str,
    approver_id: &str,
    created_at: i64,
    expires_at: i64,
    audit: Event,
) -> Result<(), StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
    sqlx::query("INSERT INTO enrollment_codes (code_hash, approver_id, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, NULL)")
        .bind(code_hash)
        .bind(approver_id)
        .bind(created_at)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    tx.append(audit)?;
    tx.commit().await?;
    Ok(())
}

/// [`Store::enroll`] on the writer thread.
async fn enroll_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    code_hash: &str,
    now: i64,
    device: &DeviceRecord,
    credential: &CredentialRecord,
    audit: Event,
) -> Result<(), StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
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
            sqlx::query("INSERT INTO credentials (id, device_id, approver_id, public_key, aaguid, attestation, sign_count, created_at, cloned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)")
                .bind(&credential.id)
                .bind(&credential.device_id)
                .bind(&credential.approver_id)
                .bind(&credential.public_key)
                .bind(credential.aaguid.as_slice())
                .bind(credential.attestation.as_str())
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
    tx.append(audit)?;
    tx.commit().await?;
    Ok(())
}

/// [`Store::use_nonce`] on the writer thread.
async fn use_nonce_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    nonce: &NonceUse,
    now: i64,
    purge: bool,
) -> Result<bool, StoreError> {
    // Two independent statements, each atomic on its own: no savepoint needed, and no audit
    // entry (a nonce is bookkeeping, not a state change).
    let _ = chain;
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
    chain: &mut AuditBatch,
    id: &[u8],
    at: i64,
    audit: Event,
) -> Result<(), StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
    sqlx::query("UPDATE credentials SET cloned_at = ? WHERE id = ? AND cloned_at IS NULL")
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.append(audit)?;
    tx.commit().await?;
    Ok(())
}

/// Who makes an approval: checked again inside its transaction.
#[derive(Clone, Copy)]
struct Caller<'a> {
    approver_id: &'a str,
    device_id: &'a str,
}

/// An approval the counter may move for: the request must still be pending, its approval
/// window open at `now`, and the approver undecided on it.
#[derive(Clone, Copy)]
struct Eligible<'a> {
    request_id: &'a str,
    now: i64,
}

/// Moves the credential's counter from `previous` to `new` while the credential, the approver
/// and the calling device are in good standing and, for an approval (`eligible`), while the
/// approval can still be recorded: so a refused approval leaves nothing written, without a
/// savepoint. Refusals: [`StoreError::CallerDisabled`], the approval's own reason, or
/// [`StoreError::CounterRace`] (the counter moved, or the credential was flagged, meanwhile).
async fn advance_counter(
    conn: &mut SqliteConnection,
    credential_id: &[u8],
    caller: Caller<'_>,
    (previous, new): (u32, u32),
    eligible: Option<Eligible<'_>>,
) -> Result<(), StoreError> {
    const STANDING: &str = "UPDATE credentials SET sign_count = ? WHERE id = ? AND sign_count = ? AND cloned_at IS NULL
         AND EXISTS (SELECT 1 FROM approvers WHERE id = ? AND disabled_at IS NULL)
         AND EXISTS (SELECT 1 FROM devices WHERE id = ? AND approver_id = ? AND disabled_at IS NULL)";
    let sql = match eligible {
        None => std::borrow::Cow::Borrowed(STANDING),
        Some(_) => std::borrow::Cow::Owned(format!(
            "{STANDING}
         AND EXISTS (SELECT 1 FROM requests WHERE id = ? AND state = 'pending' AND approve_by >= ?)
         AND NOT EXISTS (SELECT 1 FROM approvals WHERE request_id = ? AND approver_id = ?)"
        )),
    };
    let mut update = sqlx::query(&sql)
        .bind(i64::from(new))
        .bind(credential_id)
        .bind(i64::from(previous))
        .bind(caller.approver_id)
        .bind(caller.device_id)
        .bind(caller.approver_id);
    if let Some(e) = eligible {
        update = update
            .bind(e.request_id)
            .bind(e.now)
            .bind(e.request_id)
            .bind(caller.approver_id);
    }
    if update.execute(&mut *conn).await?.rows_affected() == 1 {
        return Ok(());
    }
    // Refused: find out why (reads only; nothing was written).
    let enabled: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM approvers a JOIN devices d ON d.approver_id = a.id
         WHERE a.id = ? AND d.id = ? AND a.disabled_at IS NULL AND d.disabled_at IS NULL",
    )
    .bind(caller.approver_id)
    .bind(caller.device_id)
    .fetch_optional(&mut *conn)
    .await?;
    if enabled.is_none() {
        return Err(StoreError::CallerDisabled);
    }
    if let Some(e) = eligible {
        if let Some(refused) = approval_refusal(conn, e, caller.approver_id).await? {
            return Err(refused);
        }
    }
    Err(StoreError::CounterRace)
}

/// Why an approval of `eligible` by `approver_id` cannot be recorded now, if it cannot.
async fn approval_refusal(
    conn: &mut SqliteConnection,
    eligible: Eligible<'_>,
    approver_id: &str,
) -> Result<Option<StoreError>, StoreError> {
    let Some(request) = request_in(conn, eligible.request_id, None).await? else {
        return Ok(Some(StoreError::NoSuchRequest));
    };
    if request.state != RequestState::Pending {
        return Ok(Some(StoreError::NotPending(request.state)));
    }
    if request.transaction.approve_by.unix() < eligible.now {
        return Ok(Some(StoreError::ApprovalClosed));
    }
    let decided: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM approvals WHERE request_id = ? AND approver_id = ?")
            .bind(eligible.request_id)
            .bind(approver_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(decided.map(|_| StoreError::AlreadyDecided))
}

/// Inserts an approval while its request is pending, its approval window is open at `now`
/// (unless `now` is `None`) and the approver has not decided it yet; false if it was not
/// inserted. The request itself is not read again: the caller read it, and its transaction
/// never changes.
async fn insert_approval(
    conn: &mut SqliteConnection,
    approval: &ApprovalRecord,
    now: Option<i64>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO approvals (request_id, approver_id, role, decision, credential_id, user_verified, hardware_attested, groups, created_at)
         SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM requests WHERE id = ? AND state = 'pending' AND (? IS NULL OR approve_by >= ?)) ON CONFLICT DO NOTHING",
    )
    .bind(&approval.request_id)
    .bind(&approval.approver_id)
    .bind(approval.role.as_str())
    .bind(approval.decision.to_string())
    .bind(&approval.credential_id)
    .bind(approval.user_verified)
    .bind(approval.hardware_attested)
    .bind(serde_json::Value::from(approval.groups.clone()).to_string())
    .bind(approval.created_at)
    .bind(&approval.request_id)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The approvals of a request, oldest first.
async fn approvals_in(
    conn: &mut SqliteConnection,
    request_id: &str,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM approvals WHERE request_id = ? ORDER BY created_at, approver_id",
    )
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(approval_from_row).collect()
}

/// Concludes a pending request with the decision its latest approval made.
async fn write_decision(
    conn: &mut SqliteConnection,
    decision: &super::DecisionWrite,
    approval: &ApprovalRecord,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE requests SET state = ?, decision_token = ?, decision_exp = ?, updated_at = ? WHERE id = ? AND state = 'pending'")
        .bind(decision.state.as_str())
        .bind(&decision.token)
        .bind(decision.exp)
        .bind(approval.created_at)
        .bind(&approval.request_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// [`Store::record_approval`] on the writer thread.
async fn record_approval_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    approval: &ApprovalRecord,
    caller: Caller<'_>,
    counters: (u32, u32),
    decide: &Decide<'_>,
    audit: Event,
) -> Result<Recorded, StoreError> {
    // No savepoint (each is a round trip to the connection's thread): every refusal comes with
    // the first write, the counter's, which moves only if the approval can be recorded, so a
    // refused approval leaves nothing written. The device call's nonce was stored before, on
    // its own: a replay never reaches this batch.
    let now = clock_now()?;
    let eligible = Eligible {
        request_id: &approval.request_id,
        now,
    };
    advance_counter(
        conn,
        &approval.credential_id,
        caller,
        counters,
        Some(eligible),
    )
    .await?;
    // The counter moved: from here on, any failure aborts the whole batch. (The one writer
    // holds the database, so what the counter's update checked still holds.)
    let recorded = match insert_approval(conn, approval, Some(now)).await {
        Ok(true) => conclude_approval(conn, chain, approval, decide, audit).await,
        Ok(false) => Err(StoreError::AlreadyDecided),
        Err(e) => Err(e),
    };
    if recorded.is_err() {
        chain.abort();
    }
    recorded
}

/// The rest of [`record_approval_tx`] once the approval is written: the audit entry, and the
/// decision if this approval completes the request.
async fn conclude_approval(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    approval: &ApprovalRecord,
    decide: &Decide<'_>,
    audit: Event,
) -> Result<Recorded, StoreError> {
    let entry = chain.next(audit)?;
    chain.push(entry);
    let approvals = approvals_in(conn, &approval.request_id).await?;
    let decision = decide(&approvals)?;
    if let Some(d) = &decision {
        write_decision(conn, d, approval).await?;
        let entry = chain.next(d.audit.clone())?;
        chain.push(entry);
    }
    Ok(Recorded {
        decision,
        approvals,
    })
}

/// What [`Store::record_report`] records.
struct Report<'a> {
    caller: Caller<'a>,
    denial: &'a ApprovalRecord,
    /// The credential's counter: as the caller read it, and the assertion's.
    counters: (u32, u32),
    decide: &'a Decide<'a>,
    audit: Event,
    freeze: &'a Freeze,
}

/// [`Store::record_report`] on the writer thread, in one savepoint: a report is refused whole
/// or recorded whole, and never aborts the batch around it.
async fn record_report_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    report: Report<'_>,
) -> Result<Reported, StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
    advance_counter(
        &mut tx,
        &report.denial.credential_id,
        report.caller,
        report.counters,
        None,
    )
    .await?;
    // A report counts as a denial only while the request is pending; it is taken after the
    // approval window too (the freeze below is what matters).
    let denial = if insert_approval(&mut tx, report.denial, None).await? {
        tx.append(report.audit)?;
        let approvals = approvals_in(&mut tx, &report.denial.request_id).await?;
        let decision = (report.decide)(&approvals)?;
        if let Some(d) = &decision {
            write_decision(&mut tx, d, report.denial).await?;
            tx.append(d.audit.clone())?;
        }
        Some(Recorded {
            decision,
            approvals,
        })
    } else {
        None
    };
    let freeze = &report.freeze.record;
    let froze = sqlx::query(
        "INSERT INTO requester_freezes (requester_id, frozen_at, reported_by, request_id, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(&freeze.requester_id)
    .bind(freeze.frozen_at)
    .bind(&freeze.reported_by)
    .bind(&freeze.request_id)
    .bind(&freeze.reason)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if froze {
        tx.append(report.freeze.audit.clone())?;
    }
    // The states the freeze cancels, as one bound JSON array (`json_each`).
    let cancels: Vec<&str> = report.freeze.cancels.iter().map(|s| s.as_str()).collect();
    let cancels = serde_json::Value::from(cancels).to_string();
    let open: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, state FROM requests WHERE requester_id = ? AND state IN (SELECT value FROM json_each(?)) ORDER BY created_at, id",
    )
    .bind(&freeze.requester_id)
    .bind(&cancels)
    .fetch_all(&mut *tx)
    .await?;
    let mut cancelled = Vec::with_capacity(open.len());
    for (id, was) in open {
        let was_state = RequestState::parse(&was).ok_or(Corrupt::Value("request state"))?;
        sqlx::query(
            "UPDATE requests SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = ?",
        )
        .bind(freeze.frozen_at)
        .bind(&id)
        .bind(&was)
        .execute(&mut *tx)
        .await?;
        tx.append((report.freeze.cancel_audit)(&id, was_state))?;
        cancelled.push(id);
    }
    tx.commit().await?;
    Ok(Reported {
        denial,
        froze,
        cancelled,
    })
}

/// Whether a requester is frozen.
async fn frozen_in(conn: &mut SqliteConnection, requester_id: &str) -> Result<bool, StoreError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM requester_freezes WHERE requester_id = ?")
            .bind(requester_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some())
}

/// [`Store::redeem`] on the writer thread.
async fn redeem_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    audience: &str,
    id: &str,
    now: i64,
    audit: Event,
) -> Result<Redeemed, StoreError> {
    // Made before the update, so nothing can fail after it.
    let entry = chain.next(audit.clone())?;
    // The common case in one statement, atomic on its own (so no savepoint): consume an
    // approved, unexpired decision.
    // A frozen requester's decisions are never redeemed (a report froze them after the
    // approval; their open requests were cancelled then, this is the rule's second half).
    let redeemed: Option<String> = sqlx::query_scalar(
        "UPDATE requests SET state = 'redeemed', updated_at = ? WHERE id = ? AND audience = ? AND state = 'approved' AND decision_exp > ? AND decision_token IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM requester_freezes f WHERE f.requester_id = requests.requester_id) RETURNING decision_token",
    )
    .bind(now)
    .bind(id)
    .bind(audience)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(token) = redeemed {
        chain.push(entry);
        return Ok(Redeemed::Now(token));
    }
    // Nothing consumed: say why.
    Ok(match request_in(conn, id, Some(audience)).await? {
        None => Redeemed::NotFound,
        Some(r) if r.state != RequestState::Approved => Redeemed::WrongState(r.state),
        Some(r) if frozen_in(conn, &r.transaction.requester.id).await? => {
            let refused = chain.next(Event {
                kind: EventKind::DecisionRefused.into(),
                data: serde_json::json!({"reason": "requester_frozen"}),
                ..audit
            })?;
            chain.push(refused);
            Redeemed::RequesterFrozen
        }
        Some(r) if r.decision_exp.is_some_and(|exp| exp > now) => {
            return Err(Corrupt::ApprovedWithoutToken.into())
        }
        Some(_) => Redeemed::Expired,
    })
}

/// [`Store::transition`] on the writer thread.
// The trait method's six arguments plus the writer's connection and audit head.
#[allow(clippy::too_many_arguments)]
async fn transition_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    audience: &str,
    id: &str,
    from: &[RequestState],
    to: RequestState,
    now: i64,
    audit: Event,
) -> Result<Result<(), Option<RequestState>>, StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
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
    tx.append(audit)?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// [`Store::expire_pending`] on the writer thread.
async fn expire_pending_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    now: i64,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
    let ids: Vec<String> = sqlx::query_scalar(
        "UPDATE requests SET state = 'expired', updated_at = ?1 WHERE id IN
           (SELECT id FROM requests WHERE state = 'pending' AND approve_by < ?1 ORDER BY approve_by, id LIMIT ?2)
         RETURNING id",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    let at = countersign_core::Timestamp::from_unix(now).ok_or(StoreError::Clock)?;
    let mut ids = ids;
    // One order for the audit chain, whatever order SQLite returned the rows in.
    ids.sort();
    for id in &ids {
        tx.append(Event {
            at,
            kind: EventKind::RequestExpired.into(),
            request_id: Some(id.clone()),
            actor: "server".into(),
            data: serde_json::json!({}),
        })?;
    }
    tx.commit().await?;
    Ok(ids)
}

/// [`Store::unfreeze`] on the writer thread.
async fn unfreeze_tx(
    conn: &mut SqliteConnection,
    chain: &mut AuditBatch,
    requester_id: &str,
    audit: Event,
) -> Result<bool, StoreError> {
    let mut tx = AuditedTx::begin(conn, chain).await?;
    let deleted = sqlx::query("DELETE FROM requester_freezes WHERE requester_id = ?")
        .bind(requester_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    tx.append(audit)?;
    tx.commit().await?;
    Ok(true)
}

/// [`Store::audit`] on the writer thread: only an append, so no savepoint.
fn audit_tx(chain: &mut AuditBatch, event: Event) -> Result<Entry, StoreError> {
    let entry = chain.next(event)?;
    chain.push(entry.clone());
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::Timestamp;

    /// The backend-neutral cases (`store::conformance`), each on a fresh database file.
    mod conformance {
        async fn fresh() -> (tempfile::TempDir, std::sync::Arc<dyn crate::store::Store>) {
            let dir = tempfile::tempdir().unwrap();
            let store = super::SqliteStore::open(&dir.path().join("db.sqlite3"))
                .await
                .unwrap();
            (dir, std::sync::Arc::new(store))
        }

        crate::store::conformance::conformance_cases!(fresh());
    }

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

    /// A store with `n` approvers, each with one device, one credential (counter 0) and one
    /// pending request `req_<i>` to approve (`conformance::World`).
    async fn store_with_pending_requests(n: u8) -> (tempfile::TempDir, SqliteStore, Timestamp) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3"))
            .await
            .unwrap();
        let now = crate::store::conformance::World::seed(&store, n, n)
            .await
            .now;
        (dir, store, now)
    }

    /// Approver `i`'s approval of `req_<i>` with its credential, from counter `previous`.
    fn approve<'s>(
        store: &'s SqliteStore,
        i: u8,
        now: Timestamp,
        previous: u32,
        decide: std::sync::Arc<Decide<'static>>,
    ) -> impl std::future::Future<Output = Result<Recorded, StoreError>> + 's {
        let approval = approval_of(i, now);
        async move {
            store
                .record_approval(
                    &approval,
                    &format!("dev{i}"),
                    previous,
                    previous + 1,
                    decide,
                    event(now, "approval.approve", Some(&approval.request_id)),
                )
                .await
        }
    }

    /// Approver `i`'s approval of `req_<i>` with credential `[i]`.
    fn approval_of(i: u8, now: Timestamp) -> ApprovalRecord {
        ApprovalRecord {
            request_id: format!("req_{i}"),
            approver_id: format!("approver{i}"),
            role: crate::lifecycle::Role::Approver,
            decision: countersign_core::Decision::Approve,
            credential_id: vec![i],
            user_verified: true,
            hardware_attested: false,
            groups: vec!["finance-approvers".into()],
            created_at: now.unix(),
        }
    }

    /// Polls `future` once (so a store call hands its job to the writer); true if not done.
    fn polled_once<F: std::future::Future + Unpin>(future: &mut F) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        std::pin::Pin::new(future).poll(&mut cx).is_pending()
    }

    fn undecided() -> std::sync::Arc<Decide<'static>> {
        std::sync::Arc::new(|_| Ok(None))
    }

    /// What approver `i`'s approval left in the store: approvals of `req_<i>` and the
    /// credential's counter.
    async fn left_behind(store: &SqliteStore, i: u8) -> (usize, u32) {
        let approvals = store.approvals(&format!("req_{i}")).await.unwrap().len();
        let counter = store.credential(&[i]).await.unwrap().unwrap().sign_count;
        (approvals, counter)
    }
    /// A database from before key files: its seed is moved into a key file, blanked in the
    /// database, and the same key keeps signing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn seeds_an_older_version_kept_in_the_database_move_into_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3"))
            .await
            .unwrap();
        let legacy = countersign_core::jwk::SigningKey::from_seed(&[0x42; 32]);
        let kid = legacy.kid().to_owned();
        store
            .write(move |conn, _| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO signing_keys (kid, seed, created_at, retired_at) VALUES (?, ?, 5, NULL)")
                        .bind(&kid)
                        .bind(vec![0x42u8; 32])
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        assert_eq!(store.legacy_signing_seeds().await.unwrap().len(), 1);
        let files = crate::key_provider::FileKeys::open(&dir.path().join("keys"), None).unwrap();
        let keys = crate::keys::load_or_create(&store, &files).await.unwrap();
        assert_eq!(keys.active.kid(), legacy.kid());
        assert!(store.legacy_signing_seeds().await.unwrap().is_empty());
        use crate::key_provider::KeyProvider;
        assert_eq!(files.keys().unwrap()[0].key.kid(), legacy.kid());
        let again = crate::keys::load_or_create(&store, &files).await.unwrap();
        assert_eq!(again.active.kid(), legacy.kid(), "nothing moves twice");
    }

    /// Approvals recorded before approvals named their groups (migration 0009): an approver's
    /// approval of a one-group request gets that group, so a pending request's quorum still
    /// counts it after the upgrade; the requester's own approval gets none.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn approvals_recorded_before_groups_were_kept_get_their_request_s_group() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        {
            let mut older = sqlx::migrate!("./migrations/sqlite");
            older.migrations = std::borrow::Cow::Owned(
                older
                    .migrations
                    .iter()
                    .filter(|m| m.version < 9)
                    .cloned()
                    .collect(),
            );
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
            older.run(&mut conn).await.unwrap();
            let tx = transaction("req_old");
            sqlx::query(
                "INSERT INTO requests (id, audience, requester_id, idempotency_key, fingerprint, transaction_json, digest, state, created_at, approve_by, execute_by, updated_at)
                 VALUES (?, 'payouts-service', ?, 'k', 'f', ?, 'd', 'pending', 1, 2, 3, 1)",
            )
            .bind(&tx.id)
            .bind(&tx.requester.id)
            .bind(String::from_utf8(tx.canonical_json().unwrap()).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
            for (who, role) in [("bob", "approver"), (tx.requester.id.as_str(), "requester")] {
                sqlx::query(
                    "INSERT INTO approvals (request_id, approver_id, role, decision, credential_id, user_verified, created_at)
                     VALUES ('req_old', ?, ?, 'approve', x'01', 1, 1)",
                )
                .bind(who)
                .bind(role)
                .execute(&mut conn)
                .await
                .unwrap();
            }
            conn.close().await.unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let groups: Vec<(String, Vec<String>)> = store
            .approvals("req_old")
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.role.as_str().to_owned(), a.groups))
            .collect();
        assert_eq!(
            groups,
            [
                ("requester".to_owned(), vec![]),
                ("approver".to_owned(), vec!["finance-approvers".to_owned()])
            ]
        );
    }
    /// Jobs refused by their checks (here: the counter moved since the caller read it) leave
    /// nothing behind, while the jobs committed in the same group commit keep everything.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_job_leaves_its_group_commit_intact() {
        let n = 12u8;
        let (_dir, store, now) = store_with_pending_requests(n).await;
        let before = store.audit_head().await.unwrap().seq;
        let jobs = (0..n).map(|i| {
            let previous = if i % 2 == 1 { 5 } else { 0 };
            approve(&store, i, now, previous, undecided())
        });
        let results = futures_util::future::join_all(jobs).await;
        for (i, result) in (0..n).zip(&results) {
            let left = left_behind(&store, i).await;
            if i % 2 == 1 {
                assert!(
                    matches!(result, Err(StoreError::CounterRace)),
                    "{i}: {result:?}"
                );
                assert_eq!(left, (0, 0), "{i}");
            } else {
                assert!(result.is_ok(), "{i}: {result:?}");
                assert_eq!(left, (1, 1), "{i}");
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

    /// A job that fails after it wrote (here: deciding fails once the approval is in) has no
    /// savepoint to roll back to, so its whole batch is rolled back: every job in it reports
    /// the failure and none of them leaves anything, audit entries included. Retried, the good
    /// jobs then commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_failing_after_it_wrote_rolls_back_its_whole_batch() {
        let n = 6u8;
        let (_dir, store, now) = store_with_pending_requests(n).await;
        let before = store.audit_head().await.unwrap().seq;
        // Hold the writer on a job of its own, so that all the approvals queue behind it and
        // are taken as one batch.
        let (release, held) = tokio::sync::oneshot::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let writer = store.clone();
        let blocker = tokio::spawn(async move {
            writer
                .write(move |_, _| {
                    Box::pin(async move {
                        let _ = started.send(());
                        let _ = held.await;
                        Ok(())
                    })
                })
                .await
        });
        running.await.unwrap();
        let fails_after_writing: std::sync::Arc<Decide<'static>> = std::sync::Arc::new(|_| {
            Err(crate::lifecycle::DecisionError::Sign(
                countersign_core::token::TokenError::BadSignature,
            ))
        });
        let mut queued: Vec<_> = (0..n)
            .map(|i| {
                let decide = if i == 3 {
                    fails_after_writing.clone()
                } else {
                    undecided()
                };
                Box::pin(approve(&store, i, now, 0, decide))
            })
            .collect();
        for job in &mut queued {
            assert!(polled_once(job), "queued behind the blocker");
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        let results = futures_util::future::join_all(queued).await;
        for (i, result) in (0..n).zip(&results) {
            assert!(
                matches!(result, Err(StoreError::Database(cause))
                    if cause.downcast_ref::<std::sync::Arc<super::super::CommitError>>().is_some()),
                "{i}: {result:?}"
            );
            assert_eq!(left_behind(&store, i).await, (0, 0), "{i}: nothing left");
        }
        assert_eq!(
            store.audit_head().await.unwrap().seq,
            before,
            "no audit entry either"
        );
        for i in (0..n).filter(|&i| i != 3) {
            let retried = store
                .record_approval(
                    &approval_of(i, now),
                    &format!("dev{i}"),
                    0,
                    1,
                    undecided(),
                    event(now, "approval.approve", Some(&format!("req_{i}"))),
                )
                .await;
            assert!(retried.is_ok(), "{i}: {retried:?}");
        }
        let chain = store.audit_entries(0, 10_000).await.unwrap();
        assert_eq!(chain.len() as u64, before + u64::from(n) - 1);
        countersign_core::audit::verify_chain(Head::GENESIS, &chain).unwrap();
    }

    /// Two stores on one file (the server and the admin CLI) append in turns: each batch
    /// takes the write lock first and reads the head under it, so the chain stays one
    /// verified line.
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

    #[tokio::test]
    async fn a_tampered_request_row_is_refused_as_corrupt_with_its_cause() {
        let (dir, store, _) = store_with_pending_requests(1).await;
        assert!(store.request_by_id("req_0").await.unwrap().is_some());
        let options = SqliteConnectOptions::new().filename(dir.path().join("db.sqlite3"));
        let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
        // Another object than the one whose digest was stored and signed for.
        sqlx::query(
            "UPDATE requests SET transaction_json = replace(transaction_json, '\"object\":\"', '\"object\":\"x') WHERE id = 'req_0'",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let refused = store.request_by_id("req_0").await.unwrap_err();
        assert!(
            matches!(&refused, StoreError::Corrupt(Corrupt::DigestMismatch(id)) if id == "req_0"),
            "{refused:?}"
        );
        sqlx::query("UPDATE requests SET transaction_json = '{' WHERE id = 'req_0'")
            .execute(&mut conn)
            .await
            .unwrap();
        let refused = store.request_by_id("req_0").await.unwrap_err();
        assert!(
            matches!(refused, StoreError::Corrupt(Corrupt::Transaction(_))),
            "{refused:?}"
        );
    }
}
