//! Storage behind one narrow interface. The request logic sees only [`Store`]; each backend
//! (SQLite today, PostgreSQL for several instances next) keeps its SQL in its own module.
//!
//! Every state change is written together with its audit entry in one database transaction,
//! so the chain and the data never disagree.

pub mod sqlite;

use countersign_core::audit::{Entry, Event, Head};
use countersign_core::transaction::Transaction;
use countersign_core::Digest;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data no longer parses: tampering or a bug; never served.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// An idempotency key reused with a different request body.
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    /// Appending to the audit chain failed.
    #[error("audit: {0}")]
    Audit(#[from] countersign_core::audit::AuditError),
}

/// A protected application's API key, as stored (the secret only as its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public key id, the part before the secret.
    pub id: String,
    /// Human label.
    pub name: String,
    /// The one audience this key may create requests for.
    pub audience: String,
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
    /// Unix seconds.
    pub created_at: i64,
    /// When revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<i64>,
}

/// A stored server signing key.
#[derive(Clone, Debug)]
pub struct SigningKeyRecord {
    /// Thumbprint.
    pub kid: String,
    /// The Ed25519 seed.
    pub seed: [u8; 32],
    /// Unix seconds.
    pub created_at: i64,
    /// When it stopped signing; retired keys stay published until removed.
    pub retired_at: Option<i64>,
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestState {
    /// Waiting for approvals.
    Pending,
}

impl RequestState {
    /// The stored and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(RequestState::Pending),
            _ => None,
        }
    }
}

/// A step-up request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The transaction, as approvers see and sign it.
    pub transaction: Transaction,
    /// Its digest.
    pub digest: Digest,
    /// Idempotency key the application chose.
    pub idempotency_key: String,
    /// Digest of the application's request body, to tell a retry from a reuse.
    pub fingerprint: Digest,
    /// Current state.
    pub state: RequestState,
}

/// The result of creating a request under an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// A new request.
    New(RequestRecord),
    /// The same request was already created under this key; nothing changed.
    Existing(RequestRecord),
}

/// Everything the request logic needs from storage, and nothing more.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Stores a new API key and audits it.
    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: Event) -> Result<(), StoreError>;
    /// The API key with this id, revoked or not.
    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// All API keys.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Revokes a key; false if there is no such active key.
    async fn revoke_api_key(&self, id: &str, at: i64, audit: Event) -> Result<bool, StoreError>;

    /// Signing keys, newest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Adds a signing key and retires the previous active one, audited.
    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        audit: Event,
    ) -> Result<(), StoreError>;

    /// Creates a request, or returns the one already made under the same idempotency key.
    async fn create_request(
        &self,
        request: &RequestRecord,
        audit: Event,
    ) -> Result<Created, StoreError>;
    /// A request, only if it belongs to `audience`.
    async fn request(&self, audience: &str, id: &str) -> Result<Option<RequestRecord>, StoreError>;
    /// Number of pending requests of one requester.
    async fn pending_count(&self, requester_id: &str) -> Result<u32, StoreError>;

    /// Appends an audit event on its own (for events without a state change, such as a refusal).
    async fn audit(&self, event: Event) -> Result<Entry, StoreError>;
    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<Entry>, StoreError>;
    /// The chain's head.
    async fn audit_head(&self) -> Result<Head, StoreError>;
}
