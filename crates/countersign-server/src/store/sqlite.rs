//! The embedded SQLite backend: WAL journal, `synchronous=FULL` (every commit durable), one
//! writer connection (SQLite has one writer at a time; a single connection avoids lock-upgrade
//! failures) and a pool of readers. All SQLite-specific SQL lives here.

use super::{
    ApiKeyRecord, Created, RequestRecord, RequestState, SigningKeyRecord, Store, StoreError,
};
use countersign_core::audit::{Entry, Event, Head};
use countersign_core::transaction::Transaction;
use countersign_core::Digest;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool};
use std::path::Path;
use std::time::Duration;

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
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
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore { writer, readers })
    }
}

type Tx<'a> = sqlx::Transaction<'a, Sqlite>;

/// Appends `event` to the chain inside the caller's transaction.
async fn append_audit(tx: &mut Tx<'_>, event: Event) -> Result<Entry, StoreError> {
    let head = head_in(&mut **tx).await?;
    let entry = head.append(event)?;
    let json = serde_json::to_string(&entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query("INSERT INTO audit_log (seq, entry_json, hash) VALUES (?, ?, ?)")
        .bind(i64_of(entry.seq)?)
        .bind(json)
        .bind(entry.hash.to_base64url())
        .execute(&mut **tx)
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

fn i64_of(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt("sequence beyond i64".into()))
}

fn api_key_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ApiKeyRecord, StoreError> {
    let hash: Vec<u8> = row.try_get("secret_hash")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        audience: row.try_get("audience")?,
        secret_hash: hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("api key hash length".into()))?,
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
        transaction,
    })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: Event) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO api_keys (id, name, audience, secret_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&key.id)
            .bind(&key.name)
            .bind(&key.audience)
            .bind(key.secret_hash.as_slice())
            .bind(key.created_at)
            .bind(key.revoked_at)
            .execute(&mut *tx)
            .await?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
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
        let mut tx = self.writer.begin().await?;
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
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
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
        let mut tx = self.writer.begin().await?;
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
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_request(
        &self,
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
        let mut tx = self.writer.begin().await?;
        let existing =
            sqlx::query("SELECT * FROM requests WHERE audience = ? AND idempotency_key = ?")
                .bind(&t.audience)
                .bind(&request.idempotency_key)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = existing {
            let found = request_from_row(&row)?;
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
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Created::New(request.clone()))
    }

    async fn request(&self, audience: &str, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = ? AND audience = ?")
            .bind(id)
            .bind(audience)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn pending_count(&self, requester_id: &str) -> Result<u32, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM requests WHERE requester_id = ? AND state = 'pending'",
        )
        .bind(requester_id)
        .fetch_one(&self.readers)
        .await?;
        u32::try_from(count).map_err(|_| StoreError::Corrupt("pending count".into()))
    }

    async fn audit(&self, event: Event) -> Result<Entry, StoreError> {
        let mut tx = self.writer.begin().await?;
        let entry = append_audit(&mut tx, event).await?;
        tx.commit().await?;
        Ok(entry)
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
