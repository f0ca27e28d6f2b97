//! Stored rows back into records, for every backend: each backend's row type says how to read
//! a column ([`Columns`]); what a column must hold, and what counts as corruption, is said
//! once here.

use super::{
    ApiKeyRecord, ApprovalRecord, AttestationTrust, Corrupt, CredentialRecord, DeviceRecord,
    FreezeRecord, RequestRecord, RequestState, StoreError,
};
use countersign_core::audit::{Entry, Head};
use countersign_core::transaction::Transaction;
use countersign_core::Digest;

/// The column reads a backend's row offers (each a driver error on a missing column or a
/// value of another type).
pub(super) trait Columns {
    fn text(&self, column: &'static str) -> Result<String, StoreError>;
    fn text_opt(&self, column: &'static str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &'static str) -> Result<i64, StoreError>;
    fn int_opt(&self, column: &'static str) -> Result<Option<i64>, StoreError>;
    fn bytes(&self, column: &'static str) -> Result<Vec<u8>, StoreError>;
    fn flag(&self, column: &'static str) -> Result<bool, StoreError>;
}

/// [`Columns`] for a `sqlx` row type: the same typed `try_get` for each.
macro_rules! sqlx_columns {
    ($row:ty) => {
        impl $crate::store::rows::Columns for $row {
            fn text(&self, column: &'static str) -> Result<String, StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn text_opt(&self, column: &'static str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn int(&self, column: &'static str) -> Result<i64, StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn int_opt(&self, column: &'static str) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn bytes(&self, column: &'static str) -> Result<Vec<u8>, StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn flag(&self, column: &'static str) -> Result<bool, StoreError> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
        }
    };
}
pub(super) use sqlx_columns;

pub(super) fn freeze_from_row(row: &impl Columns) -> Result<FreezeRecord, StoreError> {
    Ok(FreezeRecord {
        requester_id: row.text("requester_id")?,
        frozen_at: row.int("frozen_at")?,
        reported_by: row.text("reported_by")?,
        request_id: row.text("request_id")?,
        reason: row.text_opt("reason")?,
    })
}

/// A fixed-length blob column; a stored value of another length is corruption, never truncated.
fn fixed<const N: usize>(row: &impl Columns, column: &'static str) -> Result<[u8; N], StoreError> {
    row.bytes(column)?
        .try_into()
        .map_err(|_| Corrupt::Value(column).into())
}

pub(super) fn api_key_from_row(row: &impl Columns) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: row.text("id")?,
        name: row.text("name")?,
        audience: row.text("audience")?,
        secret_hash: fixed(row, "secret_hash")?,
        created_at: row.int("created_at")?,
        revoked_at: row.int_opt("revoked_at")?,
        requesters: requester_patterns(&row.text("requesters")?)?,
    })
}

/// The stored JSON array of an API key's requester patterns, each checked again.
fn requester_patterns(json: &str) -> Result<Vec<crate::identity::RequesterPattern>, StoreError> {
    let texts: Vec<String> = serde_json::from_str(json).map_err(|source| Corrupt::Json {
        what: "api key requesters",
        source,
    })?;
    texts
        .iter()
        .map(|t| {
            crate::identity::RequesterPattern::parse(t)
                .map_err(|e| Corrupt::RequesterPattern(e).into())
        })
        .collect()
}

pub(super) fn request_from_row(row: &impl Columns) -> Result<RequestRecord, StoreError> {
    let json = row.text("transaction_json")?;
    // Stored transactions are re-validated on the way out: the database is not trusted to
    // hand back something an approver may sign.
    let transaction = Transaction::from_json(json.as_bytes()).map_err(Corrupt::Transaction)?;
    let digest = transaction.digest().map_err(Corrupt::Transaction)?;
    if digest.to_base64url() != row.text("digest")? {
        return Err(Corrupt::DigestMismatch(transaction.id.clone()).into());
    }
    Ok(RequestRecord {
        digest,
        idempotency_key: row.text("idempotency_key")?,
        fingerprint: Digest::from_base64url(&row.text("fingerprint")?)
            .map_err(|_| Corrupt::Value("fingerprint"))?,
        state: RequestState::parse(&row.text("state")?).ok_or(Corrupt::Value("state"))?,
        decision_token: row.text_opt("decision_token")?,
        decision_exp: row.int_opt("decision_exp")?,
        transaction,
    })
}

pub(super) fn device_from_row(row: &impl Columns) -> Result<DeviceRecord, StoreError> {
    Ok(DeviceRecord {
        id: row.text("id")?,
        approver_id: row.text("approver_id")?,
        name: row.text("name")?,
        device_key: fixed(row, "device_key")?,
        created_at: row.int("created_at")?,
        disabled_at: row.int_opt("disabled_at")?,
    })
}

pub(super) fn credential_from_row(row: &impl Columns) -> Result<CredentialRecord, StoreError> {
    Ok(CredentialRecord {
        id: row.bytes("id")?,
        device_id: row.text("device_id")?,
        approver_id: row.text("approver_id")?,
        public_key: row.bytes("public_key")?,
        aaguid: fixed(row, "aaguid")?,
        attestation: AttestationTrust::parse(&row.text("attestation")?)
            .ok_or(Corrupt::Value("credential attestation"))?,
        sign_count: u32::try_from(row.int("sign_count")?)
            .map_err(|_| Corrupt::Value("sign count"))?,
        created_at: row.int("created_at")?,
        cloned_at: row.int_opt("cloned_at")?,
    })
}

/// A text column holding one of a type's stored spellings; anything else is not what this
/// server wrote.
fn parse_column<T: std::str::FromStr>(
    row: &impl Columns,
    column: &'static str,
) -> Result<T, StoreError> {
    row.text(column)?
        .parse()
        .map_err(|_| Corrupt::Value(column).into())
}

pub(super) fn approval_from_row(row: &impl Columns) -> Result<ApprovalRecord, StoreError> {
    Ok(ApprovalRecord {
        request_id: row.text("request_id")?,
        approver_id: row.text("approver_id")?,
        role: parse_column(row, "role")?,
        decision: parse_column(row, "decision")?,
        credential_id: row.bytes("credential_id")?,
        user_verified: row.flag("user_verified")?,
        hardware_attested: row.flag("hardware_attested")?,
        groups: serde_json::from_str(&row.text("groups")?).map_err(|source| Corrupt::Json {
            what: "approval groups",
            source,
        })?,
        created_at: row.int("created_at")?,
    })
}

/// A signing key's stored id and dates.
pub(super) fn signing_key_from_row(
    row: &impl Columns,
) -> Result<super::SigningKeyRecord, StoreError> {
    Ok(super::SigningKeyRecord {
        kid: row.text("kid")?,
        created_at: row.int("created_at")?,
        retired_at: row.int_opt("retired_at")?,
    })
}

/// The chain's head from its newest stored row (`seq`, `hash`); the genesis head without one.
pub(super) fn head_from_row(row: Option<&impl Columns>) -> Result<Head, StoreError> {
    let Some(row) = row else {
        return Ok(Head::GENESIS);
    };
    Ok(Head {
        seq: u64::try_from(row.int("seq")?).map_err(|_| Corrupt::Value("audit seq"))?,
        hash: Digest::from_base64url(&row.text("hash")?)
            .map_err(|_| Corrupt::Value("audit hash"))?,
    })
}

/// An audit sequence number as both backends store it (a signed 64-bit integer).
pub(super) fn seq_column(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| Corrupt::Value("audit sequence").into())
}

/// An audit entry as stored: its sequence number, its JSON and its hash.
pub(super) fn audit_row(entry: &Entry) -> Result<(i64, String, String), StoreError> {
    let json = serde_json::to_string(entry).map_err(|source| Corrupt::Json {
        what: "audit entry",
        source,
    })?;
    Ok((seq_column(entry.seq)?, json, entry.hash.to_base64url()))
}

/// The server's clock in Unix seconds, for deadlines checked inside a write transaction.
pub(super) fn clock_now() -> Result<i64, StoreError> {
    crate::clock::now()
        .map(|t| t.unix())
        .map_err(|_| StoreError::Clock)
}

/// The stored JSON of an audit entry.
pub(super) fn audit_entry(json: &str) -> Result<Entry, StoreError> {
    serde_json::from_str(json).map_err(|source| {
        Corrupt::Json {
            what: "audit entry",
            source,
        }
        .into()
    })
}

/// The key rollover endorsements as stored (JSON).
pub(super) fn key_rollover(
    json: &str,
) -> Result<countersign_core::rollover::KeyRollover, StoreError> {
    serde_json::from_str(json).map_err(|source| {
        Corrupt::Json {
            what: "key rollover",
            source,
        }
        .into()
    })
}

/// An API key's requester patterns as stored: a JSON array of their spellings.
pub(super) fn requesters_json(key: &ApiKeyRecord) -> Result<String, StoreError> {
    let requesters: Vec<&str> = key.requesters.iter().map(|p| p.as_str()).collect();
    serde_json::to_string(&requesters).map_err(|source| {
        Corrupt::Json {
            what: "api key requesters",
            source,
        }
        .into()
    })
}

/// A request's canonical transaction as stored.
pub(super) fn transaction_json(request: &RequestRecord) -> Result<String, StoreError> {
    String::from_utf8(
        request
            .transaction
            .canonical_json()
            .map_err(Corrupt::Transaction)?,
    )
    .map_err(|_| Corrupt::Value("canonical transaction").into())
}

/// An approver's groups as the database joined them (separated by U+001F, which no group id
/// holds: group ids are printable ASCII).
pub(super) fn group_list(joined: Option<String>) -> Vec<String> {
    joined
        .map(|g| g.split('\u{1f}').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Whether a driver error is a unique-constraint violation.
pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
