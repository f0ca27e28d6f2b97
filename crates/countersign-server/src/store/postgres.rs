//! The PostgreSQL backend, for several server instances on one database. Concurrency is the
//! database's: each write is one transaction; the rows it decides on are locked first (the
//! request for approvals, the requester for creations and reports), and the audit chain's head
//! is taken under a transaction-scoped advisory lock just before the commit, so two instances
//! never fork the chain. A refusal rolls the whole transaction back. All PostgreSQL-specific
//! SQL lives here.

use super::pg_changes;
use super::rows::{
    api_key_from_row, approval_from_row, audit_entry, audit_row, clock_now, credential_from_row,
    device_from_row, freeze_from_row, group_list, head_from_row, is_unique_violation, key_rollover,
    request_from_row, requesters_json, seq_column, signing_key_from_row, transaction_json,
};
use super::{
    ApiKeyRecord, ApprovalRecord, ApproverRecord, Corrupt, Created, CredentialRecord, Decide,
    DecisionWrite, DeviceRecord, Freeze, FreezeRecord, NonceUse, PendingCap, PendingCaps, Recorded,
    Redeemed, Reported, RequestRecord, RequestState, SigningKeyRecord, Store, StoreError,
};
use countersign_core::audit::{Entry, Event, EventKind, Head};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Row};
use std::sync::Arc;

super::rows::sqlx_columns!(sqlx::postgres::PgRow);

/// The advisory lock that guards the chain's head: held from reading it to the commit.
const AUDIT_LOCK: i64 = 0x636f_756e_7465_7273; // "counters"

/// The connection pool of one instance (`[database] max_connections`,
/// `acquire_timeout_seconds`).
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// Connections, one of them listening for other instances' changes.
    pub max_connections: u32,
    /// How long a call waits for a connection before it fails.
    pub acquire_timeout: std::time::Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        let config = crate::config::DatabaseConfig::default();
        PoolSettings::from(&config)
    }
}

impl From<&crate::config::DatabaseConfig> for PoolSettings {
    fn from(config: &crate::config::DatabaseConfig) -> Self {
        PoolSettings {
            max_connections: config.max_connections,
            acquire_timeout: std::time::Duration::from_secs(config.acquire_timeout_seconds),
        }
    }
}

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Where this instance's change notifications go, and how they name it.
    feed: Arc<pg_changes::Feed>,
    /// When this instance last purged expired device nonces.
    nonces_purged_at: Arc<super::NoncePurge>,
}

impl PgStore {
    /// Connects to `url` and applies pending migrations (under sqlx's advisory lock, so that
    /// instances starting together apply them once).
    pub async fn open(url: &str, pool: PoolSettings) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        Self::connect(options, pool).await
    }

    /// [`PgStore::open`] with options already made (a test's own schema, say), default pool.
    pub async fn open_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        Self::connect(options, PoolSettings::default()).await
    }

    async fn connect(
        options: PgConnectOptions,
        settings: PoolSettings,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        Ok(PgStore {
            pool,
            feed: Arc::new(pg_changes::Feed::new(&schema)?),
            nonces_purged_at: Arc::default(),
        })
    }

    async fn begin(&self) -> Result<Audited, StoreError> {
        Ok(Audited {
            tx: self.pool.begin().await?,
            events: Vec::new(),
            feed: self.feed.clone(),
        })
    }
}

/// A write transaction and the audit events it will append when it commits.
struct Audited {
    tx: sqlx::Transaction<'static, Postgres>,
    events: Vec<Event>,
    feed: Arc<pg_changes::Feed>,
}

impl Audited {
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Appends the events to the chain under its lock, then commits; returns the entries.
    async fn commit(mut self) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::with_capacity(self.events.len());
        if !self.events.is_empty() {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(AUDIT_LOCK)
                .execute(&mut *self.tx)
                .await?;
            let mut head = head_in(&mut self.tx).await?;
            for event in std::mem::take(&mut self.events) {
                let entry = head.append(event)?;
                let (seq, json, hash) = audit_row(&entry)?;
                sqlx::query("INSERT INTO audit_log (seq, entry_json, hash) VALUES ($1, $2, $3)")
                    .bind(seq)
                    .bind(json)
                    .bind(hash)
                    .execute(&mut *self.tx)
                    .await?;
                head = entry.head();
                entries.push(entry);
            }
        }
        // Other instances learn which requests changed, once this commits: one statement for
        // all of them.
        let payloads = self.feed.payloads(&entries);
        if !payloads.is_empty() {
            sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
                .bind(self.feed.channel())
                .bind(payloads)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(entries)
    }
}

/// The newest entry of the chain as stored.
async fn head_in(conn: &mut PgConnection) -> Result<Head, StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    head_from_row(row.as_ref())
}

/// Serializes the transactions that decide on one requester (pending caps, freezes) across
/// every instance, until this transaction ends.
async fn lock_requester(conn: &mut PgConnection, requester_id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('requester:' || $1, 0))")
        .bind(requester_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Serializes the creations under one API key (its pending cap).
async fn lock_api_key(conn: &mut PgConnection, api_key_id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('api-key:' || $1, 0))")
        .bind(api_key_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The request `id`, locked for this transaction; only if it belongs to `audience` when one is
/// given.
async fn request_for_update(
    conn: &mut PgConnection,
    id: &str,
    audience: Option<&str>,
) -> Result<Option<RequestRecord>, StoreError> {
    let row = sqlx::query(
        "SELECT * FROM requests WHERE id = $1 AND ($2::text IS NULL OR audience = $2) FOR UPDATE",
    )
    .bind(id)
    .bind(audience)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(request_from_row).transpose()
}

async fn approvals_in(
    conn: &mut PgConnection,
    request_id: &str,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM approvals WHERE request_id = $1 ORDER BY created_at, approver_id",
    )
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(approval_from_row).collect()
}

async fn frozen_in(conn: &mut PgConnection, requester_id: &str) -> Result<bool, StoreError> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM requester_freezes WHERE requester_id = $1")
            .bind(requester_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some())
}

/// Who makes an approval: checked again inside its transaction.
#[derive(Clone, Copy)]
struct Caller<'a> {
    approver_id: &'a str,
    device_id: &'a str,
}

/// Moves the credential's counter while the credential, approver and device are in good
/// standing; `CallerDisabled` or `CounterRace` otherwise.
async fn advance_counter(
    conn: &mut PgConnection,
    credential_id: &[u8],
    caller: Caller<'_>,
    (previous, new): (u32, u32),
) -> Result<(), StoreError> {
    let counted = sqlx::query(
        "UPDATE credentials SET sign_count = $1 WHERE id = $2 AND sign_count = $3 AND cloned_at IS NULL
         AND EXISTS (SELECT 1 FROM approvers WHERE id = $4 AND disabled_at IS NULL)
         AND EXISTS (SELECT 1 FROM devices WHERE id = $5 AND approver_id = $4 AND disabled_at IS NULL)",
    )
    .bind(i64::from(new))
    .bind(credential_id)
    .bind(i64::from(previous))
    .bind(caller.approver_id)
    .bind(caller.device_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if counted == 1 {
        return Ok(());
    }
    let enabled: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM approvers a JOIN devices d ON d.approver_id = a.id
         WHERE a.id = $1 AND d.id = $2 AND a.disabled_at IS NULL AND d.disabled_at IS NULL",
    )
    .bind(caller.approver_id)
    .bind(caller.device_id)
    .fetch_optional(&mut *conn)
    .await?;
    Err(if enabled.is_some() {
        StoreError::CounterRace
    } else {
        StoreError::CallerDisabled
    })
}

/// Inserts the approval; false if this approver already decided the request.
async fn insert_approval(
    conn: &mut PgConnection,
    approval: &ApprovalRecord,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO approvals (request_id, approver_id, role, decision, credential_id, user_verified, hardware_attested, groups, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
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
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The approval's audit entry and, if the approvals so far decide the request, the decision.
async fn conclude(
    tx: &mut Audited,
    approval: &ApprovalRecord,
    decide: &Decide<'_>,
    audit: Event,
) -> Result<Recorded, StoreError> {
    tx.events.push(audit);
    let approvals = approvals_in(tx.conn(), &approval.request_id).await?;
    let decision: Option<DecisionWrite> = decide(&approvals)?;
    if let Some(d) = &decision {
        sqlx::query("UPDATE requests SET state = $1, decision_token = $2, decision_exp = $3, updated_at = $4 WHERE id = $5 AND state = 'pending'")
            .bind(d.state.as_str())
            .bind(&d.token)
            .bind(d.exp)
            .bind(approval.created_at)
            .bind(&approval.request_id)
            .execute(tx.conn())
            .await?;
        tx.events.push(d.audit.clone());
    }
    Ok(Recorded {
        decision,
        approvals,
    })
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}

    fn follow_changes(&self, changes: crate::changes::Changes) {
        pg_changes::spawn(self.pool.clone(), self.feed.clone(), changes);
    }

    fn shared_quotas(&self) -> Option<Arc<dyn super::SharedQuotas>> {
        Some(Arc::new(super::pg_quotas::PgQuotas {
            pool: self.pool.clone(),
        }))
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: Event) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO api_keys (id, name, audience, secret_hash, created_at, revoked_at, requesters) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&key.id)
            .bind(&key.name)
            .bind(&key.audience)
            .bind(key.secret_hash.as_slice())
            .bind(key.created_at)
            .bind(key.revoked_at)
            .bind(requesters_json(key)?)
            .execute(tx.conn())
            .await?;
        tx.events.push(audit);
        tx.commit().await?;
        Ok(())
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: &str, at: i64, audit: Event) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(tx.conn())
                .await?
                .rows_affected();
        if done == 0 {
            return Ok(false);
        }
        tx.events.push(audit);
        tx.commit().await?;
        Ok(true)
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(signing_key_from_row).collect()
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        rollover: Option<&countersign_core::rollover::KeyRollover>,
        audit: Event,
    ) -> Result<(), StoreError> {
        let rollover = rollover
            .map(serde_json::to_string)
            .transpose()
            .map_err(|source| Corrupt::Json {
                what: "key rollover",
                source,
            })?;
        let mut tx = self.begin().await?;
        if let Some(rollover) = rollover {
            sqlx::query(
                "INSERT INTO key_rollovers (new_kid, rollover, created_at) VALUES ($1, $2, $3)",
            )
            .bind(&key.kid)
            .bind(rollover)
            .bind(key.created_at)
            .execute(tx.conn())
            .await?;
        }
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(key.created_at)
            .execute(tx.conn())
            .await?;
        // The seed column stays empty: keys live in key files (`key_provider`).
        sqlx::query("INSERT INTO signing_keys (kid, seed, created_at, retired_at) VALUES ($1, ''::bytea, $2, NULL)")
            .bind(&key.kid)
            .bind(key.created_at)
            .execute(tx.conn())
            .await?;
        tx.events.push(audit);
        tx.commit().await?;
        Ok(())
    }

    async fn key_rollovers(
        &self,
    ) -> Result<Vec<countersign_core::rollover::KeyRollover>, StoreError> {
        let texts: Vec<String> =
            sqlx::query_scalar("SELECT rollover FROM key_rollovers ORDER BY created_at, new_kid")
                .fetch_all(&self.pool)
                .await?;
        texts.iter().map(|t| key_rollover(t)).collect()
    }

    async fn legacy_signing_seeds(&self) -> Result<Vec<super::LegacySeed>, StoreError> {
        // No version ever kept seeds in PostgreSQL.
        Ok(Vec::new())
    }

    async fn forget_signing_seeds(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn create_request(
        &self,
        request: &RequestRecord,
        caps: &PendingCaps,
        audit: Event,
    ) -> Result<Created, StoreError> {
        let t = &request.transaction;
        let tx_json = transaction_json(request)?;
        let mut tx = self.begin().await?;
        // The caps and the freeze are decided under the requester's and the key's locks, so
        // concurrent creations on any instance cannot all see room.
        lock_requester(tx.conn(), &t.requester.id).await?;
        lock_api_key(tx.conn(), &caps.api_key_id).await?;
        let existing =
            sqlx::query("SELECT * FROM requests WHERE audience = $1 AND idempotency_key = $2")
                .bind(&t.audience)
                .bind(&request.idempotency_key)
                .fetch_optional(tx.conn())
                .await?;
        if let Some(row) = existing {
            let found = request_from_row(&row)?;
            return if found.fingerprint == request.fingerprint {
                Ok(Created::Existing(found))
            } else {
                Err(StoreError::IdempotencyConflict)
            };
        }
        if frozen_in(tx.conn(), &t.requester.id).await? {
            return Err(StoreError::RequesterFrozen);
        }
        let (per_requester, per_key): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM requests WHERE requester_id = $1 AND state = 'pending' AND approve_by >= $3),
                    (SELECT COUNT(*) FROM requests WHERE api_key_id = $2 AND state = 'pending' AND approve_by >= $3)",
        )
        .bind(&t.requester.id)
        .bind(&caps.api_key_id)
        .bind(caps.now)
        .fetch_one(tx.conn())
        .await?;
        if per_requester >= i64::from(caps.per_requester) {
            return Err(StoreError::PendingCap(PendingCap::Requester));
        }
        if per_key >= i64::from(caps.per_api_key) {
            return Err(StoreError::PendingCap(PendingCap::ApiKey));
        }
        let inserted = sqlx::query(
            "INSERT INTO requests (id, audience, requester_id, idempotency_key, fingerprint, transaction_json, digest, state, created_at, approve_by, execute_by, updated_at, api_key_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $9, $12)",
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
        .execute(tx.conn())
        .await;
        match inserted {
            Ok(_) => {}
            // The same key raced in from a creation under another key's lock; or the random
            // id was taken (never in practice).
            Err(e) if is_unique_violation(&e) => {
                return Err(Corrupt::RequestIdTaken(t.id.clone()).into())
            }
            Err(e) => return Err(e.into()),
        }
        tx.events.push(audit);
        tx.commit().await?;
        Ok(Created::New(request.clone()))
    }

    async fn request(&self, audience: &str, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = $1 AND audience = $2")
            .bind(id)
            .bind(audience)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn add_approver(
        &self,
        approver: &ApproverRecord,
        audit: Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query("INSERT INTO approvers (id, display_name, created_at, disabled_at) VALUES ($1, $2, $3, NULL) ON CONFLICT (id) DO NOTHING")
            .bind(&approver.id)
            .bind(&approver.display_name)
            .bind(approver.created_at)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        for group in &approver.groups {
            sqlx::query("INSERT INTO group_members (group_name, approver_id) VALUES ($1, $2)")
                .bind(group)
                .bind(&approver.id)
                .execute(tx.conn())
                .await?;
        }
        tx.events.push(audit);
        tx.commit().await?;
        Ok(true)
    }

    async fn disable_approver(&self, id: &str, at: i64, audit: Event) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE approvers SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if done == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE devices SET disabled_at = $1 WHERE approver_id = $2 AND disabled_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(tx.conn())
        .await?;
        tx.events.push(audit);
        tx.commit().await?;
        Ok(true)
    }

    async fn approver(&self, id: &str) -> Result<Option<ApproverRecord>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT a.*, (SELECT string_agg(group_name, chr(31) ORDER BY group_name) FROM group_members WHERE approver_id = a.id) AS group_list FROM approvers a WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
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
            .fetch_all(&self.pool)
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
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO enrollment_codes (code_hash, approver_id, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, NULL)")
            .bind(code_hash)
            .bind(approver_id)
            .bind(created_at)
            .bind(expires_at)
            .execute(tx.conn())
            .await?;
        tx.events.push(audit);
        tx.commit().await?;
        Ok(())
    }

    async fn enrollment_approver(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT approver_id FROM enrollment_codes WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2")
            .bind(code_hash)
            .bind(now)
            .fetch_optional(&self.pool)
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
        let mut tx = self.begin().await?;
        let used = sqlx::query("UPDATE enrollment_codes SET used_at = $1 WHERE code_hash = $2 AND approver_id = $3 AND used_at IS NULL AND expires_at > $1")
            .bind(now)
            .bind(code_hash)
            .bind(&device.approver_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if used == 0 {
            return Err(StoreError::EnrollmentCode);
        }
        let active: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM approvers WHERE id = $1 AND disabled_at IS NULL")
                .bind(&device.approver_id)
                .fetch_optional(tx.conn())
                .await?;
        if active.is_none() {
            return Err(StoreError::ApproverDisabled);
        }
        // A unique violation aborts the transaction: check for it before inserting.
        let taken: Option<i32> = sqlx::query_scalar(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM devices WHERE id = $1 OR device_key = $2)
                OR EXISTS (SELECT 1 FROM credentials WHERE id = $3)",
        )
        .bind(&device.id)
        .bind(device.device_key.as_slice())
        .bind(&credential.id)
        .fetch_optional(tx.conn())
        .await?;
        if taken.is_some() {
            return Err(StoreError::AlreadyEnrolled);
        }
        let inserted = async {
            sqlx::query("INSERT INTO devices (id, approver_id, name, device_key, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, NULL)")
                .bind(&device.id)
                .bind(&device.approver_id)
                .bind(&device.name)
                .bind(device.device_key.as_slice())
                .bind(device.created_at)
                .execute(tx.conn())
                .await?;
            sqlx::query("INSERT INTO credentials (id, device_id, approver_id, public_key, aaguid, attestation, sign_count, created_at, cloned_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)")
                .bind(&credential.id)
                .bind(&credential.device_id)
                .bind(&credential.approver_id)
                .bind(&credential.public_key)
                .bind(credential.aaguid.as_slice())
                .bind(credential.attestation.as_str())
                .bind(i64::from(credential.sign_count))
                .bind(credential.created_at)
                .execute(tx.conn())
                .await
        }
        .await;
        match inserted {
            Ok(_) => {}
            // Enrolled concurrently by another transaction.
            Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyEnrolled),
            Err(e) => return Err(e.into()),
        }
        tx.events.push(audit);
        tx.commit().await?;
        Ok(())
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM devices WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn use_nonce(&self, nonce: &NonceUse, now: i64) -> Result<bool, StoreError> {
        // No audit entry: a nonce is bookkeeping, not a state change.
        if self.nonces_purged_at.due(now) {
            sqlx::query("DELETE FROM device_nonces WHERE expires_at < $1")
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        let inserted = sqlx::query("INSERT INTO device_nonces (device_id, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(&nonce.device_id)
            .bind(&nonce.nonce)
            .bind(nonce.expires_at)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(inserted == 1)
    }

    async fn credential(&self, id: &[u8]) -> Result<Option<CredentialRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM credentials WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(credential_from_row).transpose()
    }

    async fn mark_cloned(&self, id: &[u8], at: i64, audit: Event) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE credentials SET cloned_at = $1 WHERE id = $2 AND cloned_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(tx.conn())
            .await?;
        tx.events.push(audit);
        tx.commit().await?;
        Ok(())
    }

    async fn pending_requests(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM requests WHERE state = 'pending' AND approve_by >= $1 ORDER BY approve_by, id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(request_from_row).collect()
    }

    async fn expire_pending(&self, now: i64, limit: u32) -> Result<Vec<String>, StoreError> {
        let at = countersign_core::Timestamp::from_unix(now).ok_or(StoreError::Clock)?;
        let mut tx = self.begin().await?;
        // SKIP LOCKED: a request another instance is deciding right now is left to the next
        // sweep.
        let mut ids: Vec<String> = sqlx::query_scalar(
            "UPDATE requests SET state = 'expired', updated_at = $1 WHERE id IN
               (SELECT id FROM requests WHERE state = 'pending' AND approve_by < $1 ORDER BY approve_by, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING id",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(tx.conn())
        .await?;
        ids.sort();
        for id in &ids {
            tx.events.push(Event {
                at,
                kind: EventKind::RequestExpired.into(),
                request_id: Some(id.clone()),
                actor: "server".into(),
                data: serde_json::json!({}),
            });
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn request_by_id(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn approvals(&self, request_id: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM approvals WHERE request_id = $1 ORDER BY created_at, approver_id",
        )
        .bind(request_id)
        .fetch_all(&self.pool)
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
        let mut tx = self.begin().await?;
        // The request's row lock orders every approval of it, on any instance: the quorum is
        // counted once, from committed approvals.
        let Some(request) = request_for_update(tx.conn(), &approval.request_id, None).await? else {
            return Err(StoreError::NoSuchRequest);
        };
        let caller = Caller {
            approver_id: &approval.approver_id,
            device_id,
        };
        advance_counter(
            tx.conn(),
            &approval.credential_id,
            caller,
            (previous_sign_count, new_sign_count),
        )
        .await?;
        if request.state != RequestState::Pending {
            return Err(StoreError::NotPending(request.state));
        }
        if request.transaction.approve_by.unix() < clock_now()? {
            return Err(StoreError::ApprovalClosed);
        }
        if !insert_approval(tx.conn(), approval).await? {
            return Err(StoreError::AlreadyDecided);
        }
        let recorded = conclude(&mut tx, approval, &*decide, audit).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn redeem(
        &self,
        audience: &str,
        id: &str,
        now: i64,
        audit: Event,
    ) -> Result<Redeemed, StoreError> {
        let mut tx = self.begin().await?;
        let redeemed: Option<String> = sqlx::query_scalar(
            "UPDATE requests SET state = 'redeemed', updated_at = $1 WHERE id = $2 AND audience = $3 AND state = 'approved' AND decision_exp > $1 AND decision_token IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM requester_freezes f WHERE f.requester_id = requests.requester_id) RETURNING decision_token",
        )
        .bind(now)
        .bind(id)
        .bind(audience)
        .fetch_optional(tx.conn())
        .await?;
        if let Some(token) = redeemed {
            tx.events.push(audit);
            tx.commit().await?;
            return Ok(Redeemed::Now(token));
        }
        let answer = match request_for_update(tx.conn(), id, Some(audience)).await? {
            None => Redeemed::NotFound,
            Some(r) if r.state != RequestState::Approved => Redeemed::WrongState(r.state),
            Some(r) if frozen_in(tx.conn(), &r.transaction.requester.id).await? => {
                tx.events.push(Event {
                    kind: EventKind::DecisionRefused.into(),
                    data: serde_json::json!({"reason": "requester_frozen"}),
                    ..audit
                });
                Redeemed::RequesterFrozen
            }
            Some(r) if r.decision_exp.is_some_and(|exp| exp > now) => {
                return Err(Corrupt::ApprovedWithoutToken.into())
            }
            Some(_) => Redeemed::Expired,
        };
        tx.commit().await?;
        Ok(answer)
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
        let mut tx = self.begin().await?;
        let Some(request) = request_for_update(tx.conn(), id, Some(audience)).await? else {
            return Ok(Err(None));
        };
        if !from.contains(&request.state) {
            return Ok(Err(Some(request.state)));
        }
        sqlx::query("UPDATE requests SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(to.as_str())
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        tx.events.push(audit);
        tx.commit().await?;
        Ok(Ok(()))
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
        let record = &freeze.record;
        let mut tx = self.begin().await?;
        // The requester's lock first (creations take it too), then the reported request's row.
        lock_requester(tx.conn(), &record.requester_id).await?;
        let request = request_for_update(tx.conn(), &denial.request_id, None).await?;
        let caller = Caller {
            approver_id: &denial.approver_id,
            device_id,
        };
        advance_counter(
            tx.conn(),
            &denial.credential_id,
            caller,
            (previous_sign_count, new_sign_count),
        )
        .await?;
        // A report counts as a denial only while the request is pending; it is taken after the
        // approval window too (the freeze below is what matters).
        let pending = request.is_some_and(|r| r.state == RequestState::Pending);
        let denial = if pending && insert_approval(tx.conn(), denial).await? {
            Some(conclude(&mut tx, denial, &*decide, audit).await?)
        } else {
            None
        };
        let froze = sqlx::query(
            "INSERT INTO requester_freezes (requester_id, frozen_at, reported_by, request_id, reason) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&record.requester_id)
        .bind(record.frozen_at)
        .bind(&record.reported_by)
        .bind(&record.request_id)
        .bind(&record.reason)
        .execute(tx.conn())
        .await?
        .rows_affected()
            == 1;
        if froze {
            tx.events.push(freeze.audit.clone());
        }
        let cancels: Vec<&str> = freeze.cancels.iter().map(|s| s.as_str()).collect();
        let open: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, state FROM requests WHERE requester_id = $1 AND state = ANY($2) ORDER BY created_at, id FOR UPDATE",
        )
        .bind(&record.requester_id)
        .bind(&cancels)
        .fetch_all(tx.conn())
        .await?;
        let mut cancelled = Vec::with_capacity(open.len());
        for (id, was) in open {
            let was_state = RequestState::parse(&was).ok_or(Corrupt::Value("request state"))?;
            sqlx::query("UPDATE requests SET state = 'cancelled', updated_at = $1 WHERE id = $2")
                .bind(record.frozen_at)
                .bind(&id)
                .execute(tx.conn())
                .await?;
            tx.events.push((freeze.cancel_audit)(&id, was_state));
            cancelled.push(id);
        }
        tx.commit().await?;
        Ok(Reported {
            denial,
            froze,
            cancelled,
        })
    }

    async fn freeze(&self, requester_id: &str) -> Result<Option<FreezeRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requester_freezes WHERE requester_id = $1")
            .bind(requester_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(freeze_from_row).transpose()
    }

    async fn freezes(&self) -> Result<Vec<FreezeRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM requester_freezes ORDER BY frozen_at, requester_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(freeze_from_row).collect()
    }

    async fn unfreeze(&self, requester_id: &str, audit: Event) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM requester_freezes WHERE requester_id = $1")
            .bind(requester_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        tx.events.push(audit);
        tx.commit().await?;
        Ok(true)
    }

    async fn audit(&self, event: Event) -> Result<Entry, StoreError> {
        let mut tx = self.begin().await?;
        tx.events.push(event);
        let mut entries = tx.commit().await?;
        entries
            .pop()
            .ok_or_else(|| Corrupt::Value("audit entry").into())
    }

    async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<Entry>, StoreError> {
        let texts: Vec<String> = sqlx::query_scalar(
            "SELECT entry_json FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq_column(after)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        texts.iter().map(|t| audit_entry(t)).collect()
    }

    async fn audit_head(&self) -> Result<Head, StoreError> {
        let mut conn = self.pool.acquire().await?;
        head_in(&mut conn).await
    }
}

#[cfg(test)]
mod tests {
    /// The backend-neutral cases (`store::conformance`), each in a fresh schema of the test
    /// database (`COUNTERSIGN_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`),
    /// dropped afterwards.
    mod conformance {
        use sqlx::postgres::PgConnectOptions;
        use sqlx::ConnectOptions;

        fn base() -> PgConnectOptions {
            let url = std::env::var("COUNTERSIGN_TEST_POSTGRES")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            url.parse::<PgConnectOptions>()
                .expect("COUNTERSIGN_TEST_POSTGRES is a postgres:// URL")
        }

        /// Drops its schema when the case ends.
        pub struct Schema(String);

        impl Drop for Schema {
            fn drop(&mut self) {
                let name = self.0.clone();
                // Drop runs inside the test's runtime: do it on a thread of its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        let mut conn = base().connect().await.unwrap();
                        sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                            .execute(&mut conn)
                            .await
                            .unwrap();
                    });
                })
                .join();
            }
        }

        async fn fresh() -> (Schema, std::sync::Arc<dyn crate::store::Store>) {
            let name = format!("conformance_{}", uuid_like());
            let mut conn = base().connect().await.unwrap_or_else(|e| {
                panic!("PostgreSQL at COUNTERSIGN_TEST_POSTGRES (or 127.0.0.1:5432/test): {e}; .ci/run starts it")
            });
            sqlx::query(&format!("CREATE SCHEMA {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let options = base().options([("search_path", name.as_str())]);
            let store = super::super::PgStore::open_with(options).await.unwrap();
            (Schema(name), std::sync::Arc::new(store))
        }

        /// A schema name no other case uses: random hex.
        fn uuid_like() -> String {
            let mut bytes = [0u8; 8];
            getrandom::getrandom(&mut bytes).unwrap();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }

        crate::store::conformance::conformance_cases!(fresh());

        /// Two stores on one database, as two server instances are: appends from both at once
        /// never fork the chain, and every entry is there once.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn two_instances_appending_at_once_keep_one_chain() {
            use crate::store::Store;
            let (schema, one) = fresh().await;
            let other = super::super::PgStore::open_with(
                base().options([("search_path", schema.0.as_str())]),
            )
            .await
            .unwrap();
            let now = crate::clock::now().unwrap();
            let event = |i: usize| countersign_core::audit::Event {
                at: now,
                kind: "test.append".into(),
                request_id: None,
                actor: format!("writer{i}"),
                data: serde_json::json!({ "i": i }),
            };
            let appends = (0..100).map(|i| {
                let store: &dyn Store = if i % 2 == 0 { one.as_ref() } else { &other };
                store.audit(event(i))
            });
            let entries = futures_util::future::join_all(appends).await;
            let mut seqs: Vec<u64> = entries.iter().map(|e| e.as_ref().unwrap().seq).collect();
            seqs.sort_unstable();
            assert_eq!(seqs, (1..=100).collect::<Vec<u64>>());
            let stored = other.audit_entries(0, 1000).await.unwrap();
            let head = countersign_core::audit::verify_chain(
                countersign_core::audit::Head::GENESIS,
                &stored,
            )
            .unwrap();
            assert_eq!(head, one.audit_head().await.unwrap());
            let mut actors: Vec<String> = stored.into_iter().map(|e| e.event.actor).collect();
            actors.sort();
            actors.dedup();
            assert_eq!(actors.len(), 100, "each append once");
        }

        /// A second store on the schema of `schema`, as a second server instance is.
        async fn another(schema: &Schema) -> super::super::PgStore {
            super::super::PgStore::open_with(base().options([("search_path", schema.0.as_str())]))
                .await
                .unwrap()
        }

        /// The next change `heard` within `secs` seconds.
        async fn next_change(
            heard: &mut tokio::sync::broadcast::Receiver<crate::changes::Change>,
            secs: u64,
        ) -> Option<crate::changes::Change> {
            tokio::time::timeout(std::time::Duration::from_secs(secs), heard.recv())
                .await
                .ok()
                .and_then(Result::ok)
        }

        /// Commits a change of request `id` through `store`.
        async fn touch(store: &dyn crate::store::Store, id: &str) {
            store
                .audit(countersign_core::audit::Event {
                    at: crate::clock::now().unwrap(),
                    kind: "test.touch".into(),
                    request_id: Some(id.into()),
                    actor: "test".into(),
                    data: serde_json::json!({}),
                })
                .await
                .unwrap();
        }

        /// Follows `store`'s changes; returns what it hears.
        fn follow(
            store: &dyn crate::store::Store,
        ) -> tokio::sync::broadcast::Receiver<crate::changes::Change> {
            let feed = crate::changes::channel();
            let heard = feed.subscribe();
            store.follow_changes(feed);
            heard
        }

        /// What one instance commits reaches the other's subscribers (and not its own twice),
        /// and not the subscribers of another schema's deployment.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn other_instances_commits_reach_this_instances_subscribers() {
            use crate::changes::Change;
            let (schema, one) = fresh().await;
            let other = another(&schema).await;
            let (_elsewhere_schema, elsewhere) = fresh().await;
            let mut heard = [
                follow(one.as_ref()),
                follow(&other),
                follow(elsewhere.as_ref()),
            ];
            // Each listener says it is live with a resync first.
            for heard in &mut heard {
                assert_eq!(next_change(heard, 5).await, Some(Change::Resync));
            }
            touch(one.as_ref(), "req-from-one").await;
            let [at_one, at_other, at_elsewhere] = &mut heard;
            assert_eq!(
                next_change(at_other, 5).await,
                Some(Change::Request("req-from-one".into()))
            );
            let (at_one, at_elsewhere) =
                tokio::join!(next_change(at_one, 3), next_change(at_elsewhere, 3));
            assert_eq!(at_one, None, "its own change is not echoed back");
            assert_eq!(
                at_elsewhere, None,
                "another schema's deployment hears nothing"
            );
        }

        /// A listening connection that dies (a restart, a proxy timing out) is replaced, the
        /// subscribers are told to resync, and changes flow again.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_lost_listener_is_replaced_and_subscribers_resync() {
            use crate::changes::Change;
            use sqlx::ConnectOptions;
            let (schema, one) = fresh().await;
            let other = another(&schema).await;
            let mut heard = follow(&other);
            assert_eq!(next_change(&mut heard, 5).await, Some(Change::Resync));
            let channel = super::super::pg_changes::channel(&schema.0);
            let mut admin = base().connect().await.unwrap();
            let cut: i64 = sqlx::query_scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1",
            )
            .bind(format!("LISTEN \"{channel}\""))
            .fetch_one(&mut admin)
            .await
            .unwrap();
            assert_eq!(cut, 1, "one listening connection");
            assert_eq!(next_change(&mut heard, 10).await, Some(Change::Resync));
            touch(one.as_ref(), "req-after").await;
            assert_eq!(
                next_change(&mut heard, 10).await,
                Some(Change::Request("req-after".into()))
            );
        }

        /// `sslmode` in the URL is honoured: `require` encrypts the connection, and
        /// `verify-full` refuses a server whose certificate does not name the host (the local
        /// cluster's Debian snakeoil certificate names the machine, not 127.0.0.1).
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_database_connection_uses_tls_when_the_url_asks() {
            use sqlx::postgres::PgSslMode;
            let (schema, _plain) = fresh().await;
            let options = base()
                .options([("search_path", schema.0.as_str())])
                .ssl_mode(PgSslMode::Require);
            let store = super::super::PgStore::open_with(options).await.unwrap();
            let encrypted: bool =
                sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    .fetch_one(&store.pool)
                    .await
                    .unwrap();
            assert!(encrypted, "the connection is encrypted");
            let unverifiable = base()
                .options([("search_path", schema.0.as_str())])
                .ssl_mode(PgSslMode::VerifyFull)
                .ssl_root_cert("/etc/ssl/certs/ssl-cert-snakeoil.pem");
            let refused = super::super::PgStore::open_with(unverifiable).await;
            let Err(crate::store::StoreError::Database(error)) = refused else {
                panic!("a certificate that does not name the host is refused");
            };
            let error = error.to_string();
            assert!(
                error.contains("certificate") && error.contains("127.0.0.1"),
                "refused for the certificate's name: {error}"
            );
        }

        /// The configured pool is the pool the store uses.
        #[tokio::test]
        async fn the_pool_follows_the_database_settings() {
            let (schema, _default) = fresh().await;
            let config: crate::config::Config = crate::config::Config::parse(
                "[database]\nmax_connections = 3\nacquire_timeout_seconds = 2\n",
                std::path::Path::new("test.toml"),
            )
            .unwrap();
            let store = super::super::PgStore::connect(
                base().options([("search_path", schema.0.as_str())]),
                (&config.database).into(),
            )
            .await
            .unwrap();
            let options = store.pool.options();
            assert_eq!(options.get_max_connections(), 3);
            assert_eq!(
                options.get_acquire_timeout(),
                std::time::Duration::from_secs(2)
            );
        }

        /// Request-creation quotas are one count for all instances.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn quotas_are_counted_once_for_every_instance() {
            use crate::store::Store;
            let (schema, one) = fresh().await;
            let other = another(&schema).await;
            let (a, b) = (one.shared_quotas().unwrap(), other.shared_quotas().unwrap());
            assert_eq!(a.take("requester:alice", 3).await.unwrap(), Ok(()));
            assert_eq!(b.take("requester:alice", 3).await.unwrap(), Ok(()));
            assert_eq!(a.take("requester:alice", 3).await.unwrap(), Ok(()));
            let wait = b.take("requester:alice", 3).await.unwrap().unwrap_err();
            assert!(
                wait > std::time::Duration::from_secs(10)
                    && wait <= std::time::Duration::from_secs(20),
                "the next use is one interval (20 s) after the first: {wait:?}"
            );
            // Another bucket is not affected; a refusal took nothing.
            assert_eq!(b.take("requester:bob", 3).await.unwrap(), Ok(()));
            assert!(a.take("requester:alice", 3).await.unwrap().is_err());
            a.forget_idle().await.unwrap();
            assert!(
                b.take("requester:alice", 3).await.unwrap().is_err(),
                "a busy bucket is kept"
            );
        }
    }
}
