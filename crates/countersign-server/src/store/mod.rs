//! Storage behind one narrow interface. The request logic sees only [`Store`]; each backend
//! (SQLite today, PostgreSQL for several instances next) keeps its SQL in its own module.
//!
//! Every state change is written together with its audit entry in one database transaction,
//! so the chain and the data never disagree.

#[cfg(test)]
pub(crate) mod conformance;
mod pg_changes;
mod pg_quotas;
pub mod postgres;
mod rows;
pub mod sqlite;
mod sqlite_readers;
mod sqlite_writer;

pub use sqlite_writer::{CommitError, WriterStopped};

use countersign_core::audit::{Entry, Event, Head};
use countersign_core::transaction::Transaction;
use countersign_core::Digest;

/// A backend's own account of a failure (its driver's error, a failed commit, a stopped
/// writer): kept as the source, so the request logic never depends on one backend's types.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a storage operation failed. The first three are failures of the backend, by cause;
/// the rest are the store's refusals, which leave nothing written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed the operation, could not be reached, or could not make it durable;
    /// nothing of the operation was stored.
    #[error("database: {0}")]
    Database(#[source] BackendError),
    /// The schema could not be brought up to date at start.
    #[error("migrations: {0}")]
    Migrate(#[source] BackendError),
    /// Stored data no longer parses: tampering or a bug; never served.
    #[error("stored data is corrupt: {0}")]
    Corrupt(#[from] Corrupt),
    /// An idempotency key reused with a different request body.
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    /// The enrollment code is unknown, used or expired (one answer for all three).
    #[error("enrollment code invalid, used or expired")]
    EnrollmentCode,
    /// The approver is disabled.
    #[error("approver disabled")]
    ApproverDisabled,
    /// This credential or device key is already enrolled.
    #[error("credential or device key already enrolled")]
    AlreadyEnrolled,
    /// The request is not pending.
    #[error("request is {}, not pending", .0.as_str())]
    NotPending(RequestState),
    /// No request with this id.
    #[error("no such request")]
    NoSuchRequest,
    /// This approver's decision on this request was already recorded.
    #[error("this approver already decided on this request")]
    AlreadyDecided,
    /// The credential's counter moved concurrently: a second use of the same key at once.
    #[error("credential counter changed concurrently")]
    CounterRace,
    /// The approver or the calling device was disabled after the call was authenticated.
    #[error("the approver or device was disabled")]
    CallerDisabled,
    /// The request's approval window closed while the approval waited to be written.
    #[error("the approval window closed")]
    ApprovalClosed,
    /// The host clock is outside the range the server accepts.
    #[error("the host clock is out of range")]
    Clock,
    /// The decision could not be issued.
    #[error(transparent)]
    Decision(#[from] crate::lifecycle::DecisionError),
    /// The requester is frozen after a report; nothing new is accepted from them.
    #[error("requester is frozen")]
    RequesterFrozen,
    /// Creating the request would exceed a pending cap.
    #[error("pending cap reached: {0:?}")]
    PendingCap(PendingCap),
    /// Appending to the audit chain failed.
    #[error("audit: {0}")]
    Audit(#[from] countersign_core::audit::AuditError),
    /// No randomness for an identifier the backend makes.
    #[error(transparent)]
    Random(#[from] crate::clock::RandomError),
}

/// Both backends speak through `sqlx`: its errors are the database's, kept as the source.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Database(Box::new(error))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(Box::new(error))
    }
}

/// What the database holds that this server never writes, or a value it cannot write: either
/// way nothing of it is served or trusted.
#[derive(Debug, thiserror::Error)]
pub enum Corrupt {
    /// A column holds a value outside its type's range or set.
    #[error("{0} holds a value this server never writes")]
    Value(&'static str),
    /// A JSON column does not parse, or a value does not encode as JSON.
    #[error("{what}: {source}")]
    Json {
        /// Which column or value.
        what: &'static str,
        /// The parser's account.
        #[source]
        source: serde_json::Error,
    },
    /// A stored transaction does not parse, validate or encode.
    #[error("stored transaction: {0}")]
    Transaction(#[source] countersign_core::transaction::TransactionError),
    /// A stored request's digest is not its transaction's.
    #[error("request {0} digest mismatch")]
    DigestMismatch(String),
    /// A stored requester pattern of an API key does not parse.
    #[error("api key requesters: {0}")]
    RequesterPattern(#[source] crate::identity::PatternError),
    /// A fresh request id collided with a stored one.
    #[error("request id {0} already taken")]
    RequestIdTaken(String),
    /// A request approved and unexpired without its decision token.
    #[error("approved request without token")]
    ApprovedWithoutToken,
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
    /// The requesters this key may ask step-ups for.
    pub requesters: Vec<crate::identity::RequesterPattern>,
}

/// A server signing key as the database records it: its id and dates, never the key itself
/// (that lives with the key provider, `key_provider`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Thumbprint.
    pub kid: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When it stopped signing; retired keys stay published until removed.
    pub retired_at: Option<i64>,
}

/// A seed an older version kept in the database: (kid, seed, created_at).
pub type LegacySeed = (String, zeroize::Zeroizing<[u8; 32]>, i64);

/// Where a request stands (defined with the API types, which carry it).
pub use countersign_core::wire::RequestState;

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
    /// The signed decision, once approved or denied.
    pub decision_token: Option<String>,
    /// The decision's `exp`, Unix seconds.
    pub decision_exp: Option<i64>,
}

/// An approver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApproverRecord {
    /// Id, e.g. an e-mail address; requesters are compared with it.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Groups the approver belongs to.
    pub groups: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Set when disabled; a disabled approver can do nothing.
    pub disabled_at: Option<i64>,
}

/// An enrolled approver device (holds the Ed25519 key that signs its API calls).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Device id.
    pub id: String,
    /// Owner.
    pub approver_id: String,
    /// Label.
    pub name: String,
    /// Ed25519 public key.
    pub device_key: [u8; 32],
    /// Unix seconds.
    pub created_at: i64,
    /// Set when disabled.
    pub disabled_at: Option<i64>,
}

/// An enrolled FIDO credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRecord {
    /// Credential id.
    pub id: Vec<u8>,
    /// The device it was enrolled with.
    pub device_id: String,
    /// Owner.
    pub approver_id: String,
    /// COSE_Key bytes.
    pub public_key: Vec<u8>,
    /// Authenticator model, as the key claimed it.
    pub aaguid: [u8; 16],
    /// What its attestation proved at enrollment.
    pub attestation: AttestationTrust,
    /// Last accepted counter.
    pub sign_count: u32,
    /// Unix seconds.
    pub created_at: i64,
    /// Set when a counter regression flagged the credential as cloned; it is then refused.
    pub cloned_at: Option<i64>,
}

/// What a credential's attestation proved when it enrolled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum AttestationTrust {
    /// The key gave no attestation (`fmt: none`).
    None,
    /// The key signed its own attestation: it proves nothing about the model.
    #[strum(serialize = "self")]
    SelfAttested,
    /// An attestation certificate that was not (or could not be) verified against metadata;
    /// also every credential enrolled before attestation was recorded.
    Unverified,
    /// The certificate chain verified up to the model's root in the FIDO metadata: a
    /// hardware key of that model.
    Verified,
}

impl AttestationTrust {
    /// The stored and logged name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The stored name back; anything else is not a name this server wrote.
    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

/// One approver's recorded decision on one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The request.
    pub request_id: String,
    /// Who.
    pub approver_id: String,
    /// The requester's own step-up, or another approver.
    pub role: crate::lifecycle::Role,
    /// Approve or deny (a report is stored as a denial).
    pub decision: countersign_core::Decision,
    /// The credential that signed.
    pub credential_id: Vec<u8>,
    /// Whether the key verified the user.
    pub user_verified: bool,
    /// Whether the credential's attestation was verified against the FIDO metadata (only
    /// such approvals put `hwk` into a decision).
    pub hardware_attested: bool,
    /// The groups of the request's requirements the approver belonged to when approving (none
    /// for the requester's own step-up): the places they may fill in the quorum.
    pub groups: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A requester frozen after an approver reported one of their requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreezeRecord {
    /// The requester.
    pub requester_id: String,
    /// Unix seconds.
    pub frozen_at: i64,
    /// The approver who reported.
    pub reported_by: String,
    /// The reported request.
    pub request_id: String,
    /// The reporter's reason.
    pub reason: Option<String>,
}

/// A report's freeze, as the service decided it: the record, its audit entry, and what it
/// cancels. The rule (which states a freeze cancels, what each cancellation's audit entry
/// says) is the service's (`service::approval`); a backend applies it inside the report's
/// transaction, to the requests it finds there.
#[derive(Clone)]
pub struct Freeze {
    /// Who is frozen, by whom, for which request.
    pub record: FreezeRecord,
    /// The `requester.frozen` entry, written only if this report froze the requester.
    pub audit: Event,
    /// The requester's requests in these states are cancelled.
    pub cancels: &'static [RequestState],
    /// The audit entry for one cancelled request: its id and the state it was in.
    pub cancel_audit: std::sync::Arc<CancelAudit>,
}

/// Builds the audit entry of a request a freeze cancelled.
pub type CancelAudit = dyn Fn(&str, RequestState) -> Event + Send + Sync;

/// A decision to write with the approval that completed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionWrite {
    /// `Approved` or `Denied`.
    pub state: RequestState,
    /// The signed token.
    pub token: String,
    /// Its `exp`.
    pub exp: i64,
    /// The audit event for the decision.
    pub audit: Event,
}

/// A device call's nonce, stored in the same transaction as the approval the call carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonceUse {
    /// The calling device.
    pub device_id: String,
    /// The nonce from its `Countersign-Device` header.
    pub nonce: String,
    /// When the nonce may be forgotten (past the timestamp window).
    pub expires_at: i64,
}

/// What recording an approval did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The decision, when this approval completed (or denied) the request.
    pub decision: Option<DecisionWrite>,
    /// Every approval of the request, this one included, as committed.
    pub approvals: Vec<ApprovalRecord>,
}

/// Computes, inside the approval's database transaction, whether the approvals so far decide
/// the request. It knows the request from the caller's read: a request's transaction and
/// requirements never change, and the store records an approval only while the request is
/// still pending.
pub type Decide<'a> = dyn Fn(&[ApprovalRecord]) -> Result<Option<DecisionWrite>, crate::lifecycle::DecisionError>
    + Send
    + Sync
    + 'a;

/// The pending caps a new request must fit, checked in the creating transaction. Pending
/// means still open for approval at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCaps {
    /// The API key creating the request (recorded with it).
    pub api_key_id: String,
    /// Most pending requests one requester may have, whichever key asked.
    pub per_requester: u32,
    /// Most pending requests one API key may have, whoever they are for.
    pub per_api_key: u32,
    /// Unix seconds.
    pub now: i64,
}

/// Which pending cap a request would exceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingCap {
    /// The requester's.
    Requester,
    /// The API key's.
    ApiKey,
}

/// What redeeming a decision found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// This call redeemed it; the token is returned.
    Now(String),
    /// No such request for this audience.
    NotFound,
    /// The request is in another state (already redeemed, denied, pending...).
    WrongState(RequestState),
    /// The execution deadline passed.
    Expired,
    /// The requester is frozen after a report: none of their decisions is redeemed until the
    /// freeze is lifted (the refusal is audited).
    RequesterFrozen,
}

/// What recording a report did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    /// The reporter's denial and the decision it made, when the request was still pending and
    /// the reporter had not decided it yet.
    pub denial: Option<Recorded>,
    /// Whether this report froze the requester (false: already frozen by an earlier one).
    pub froze: bool,
    /// The requester's requests this report's freeze cancelled, oldest first (the reported one
    /// too, if it was still in a state the freeze cancels).
    pub cancelled: Vec<String>,
}

/// The result of creating a request under an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// A new request.
    New(RequestRecord),
    /// The same request was already created under this key; nothing changed.
    Existing(RequestRecord),
}

/// When this instance last purged expired device nonces: at most once a minute, so the
/// purge stays off the path of almost every call (an expired nonce not yet purged still
/// refuses its reuse).
#[derive(Debug, Default)]
pub(crate) struct NoncePurge(std::sync::atomic::AtomicI64);

impl NoncePurge {
    /// Whether the call at `now` (Unix seconds) purges: true for one caller a minute.
    pub(crate) fn due(&self, now: i64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let last = self.0.load(Relaxed);
        now - last >= 60 && self.0.compare_exchange(last, now, Relaxed, Relaxed).is_ok()
    }
}

/// Request-creation quotas that several server instances count against together.
#[async_trait::async_trait]
pub trait SharedQuotas: Send + Sync {
    /// Takes one use of `bucket`'s quota of `per_minute` (bursts of as many); when it is used
    /// up, `Ok(Err(wait))` with how long until the next use is allowed.
    async fn take(
        &self,
        bucket: &str,
        per_minute: u32,
    ) -> Result<Result<(), std::time::Duration>, StoreError>;
    /// Forgets buckets that are full again, so the table stays small.
    async fn forget_idle(&self) -> Result<(), StoreError>;
}

/// Everything the request logic needs from storage, and nothing more.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Registers the backend's own metrics (how it writes, what it waits for) with the
    /// server's registry; the request logic never reads them.
    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry);
    /// Forwards into `changes` the request changes that *other* server instances commit on
    /// this database, and [`Change::Resync`](crate::changes::Change::Resync) whenever some may
    /// have been missed; runs in the background for the life of the process. A backend that
    /// only one instance can write (SQLite) has nothing to forward.
    fn follow_changes(&self, _changes: crate::changes::Changes) {}
    /// Where request-creation quotas are counted when several instances share this database;
    /// `None` for a backend only one instance writes, which counts them in its own memory.
    fn shared_quotas(&self) -> Option<std::sync::Arc<dyn SharedQuotas>> {
        None
    }
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
    /// Records a new signing key's id, with the previous key's endorsement of it when there
    /// was one, and retires the previous active one, audited.
    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        rollover: Option<&countersign_core::rollover::KeyRollover>,
        audit: Event,
    ) -> Result<(), StoreError>;
    /// Every key rollover endorsement, oldest first.
    async fn key_rollovers(
        &self,
    ) -> Result<Vec<countersign_core::rollover::KeyRollover>, StoreError>;
    /// Seeds an older version kept in the database, to move them into key files.
    async fn legacy_signing_seeds(&self) -> Result<Vec<LegacySeed>, StoreError>;
    /// Blanks every seed kept in the database (`secure_delete` overwrites the old bytes).
    async fn forget_signing_seeds(&self) -> Result<(), StoreError>;

    /// Creates a request, or returns the one already made under the same idempotency key.
    /// Refuses with [`StoreError::RequesterFrozen`] or [`StoreError::PendingCap`] inside the
    /// same transaction, so neither a freeze nor concurrent creations can slip past the checks.
    async fn create_request(
        &self,
        request: &RequestRecord,
        caps: &PendingCaps,
        audit: Event,
    ) -> Result<Created, StoreError>;
    /// A request, only if it belongs to `audience`.
    async fn request(&self, audience: &str, id: &str) -> Result<Option<RequestRecord>, StoreError>;

    /// Adds an approver with groups; false if the id exists.
    async fn add_approver(
        &self,
        approver: &ApproverRecord,
        audit: Event,
    ) -> Result<bool, StoreError>;
    /// Disables an approver and their devices; false if no such active approver.
    async fn disable_approver(&self, id: &str, at: i64, audit: Event) -> Result<bool, StoreError>;
    /// One approver.
    async fn approver(&self, id: &str) -> Result<Option<ApproverRecord>, StoreError>;
    /// All approvers, by id (an admin listing: one read per approver is fine).
    async fn approvers(&self) -> Result<Vec<ApproverRecord>, StoreError> {
        let mut all = Vec::new();
        for id in self.approver_ids().await? {
            if let Some(a) = self.approver(&id).await? {
                all.push(a);
            }
        }
        Ok(all)
    }
    /// Every approver's id, sorted.
    async fn approver_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Stores a one-time enrollment code (its hash).
    async fn insert_enrollment_code(
        &self,
        code_hash: &str,
        approver_id: &str,
        created_at: i64,
        expires_at: i64,
        audit: Event,
    ) -> Result<(), StoreError>;
    /// The approver an unused, unexpired enrollment code belongs to.
    async fn enrollment_approver(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError>;
    /// Consumes the code and enrolls the device and credential, atomically.
    async fn enroll(
        &self,
        code_hash: &str,
        now: i64,
        device: &DeviceRecord,
        credential: &CredentialRecord,
        audit: Event,
    ) -> Result<(), StoreError>;
    /// A device.
    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// Records a device-request nonce; false if it was already used.
    async fn use_nonce(&self, nonce: &NonceUse, now: i64) -> Result<bool, StoreError>;
    /// A credential by id.
    async fn credential(&self, id: &[u8]) -> Result<Option<CredentialRecord>, StoreError>;
    /// Flags a credential as cloned after a counter regression.
    async fn mark_cloned(&self, id: &[u8], at: i64, audit: Event) -> Result<(), StoreError>;
    /// Pending requests still open for approval at `now`, soonest deadline first, at most
    /// `limit` of them.
    async fn pending_requests(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<RequestRecord>, StoreError>;
    /// Moves up to `limit` pending requests whose approval window closed before `now` to
    /// `expired`, each with a `request.expired` audit entry (actor `server`), in one
    /// transaction; returns their ids.
    async fn expire_pending(&self, now: i64, limit: u32) -> Result<Vec<String>, StoreError>;
    /// A request by id, whatever its audience.
    async fn request_by_id(&self, id: &str) -> Result<Option<RequestRecord>, StoreError>;
    /// The approvals recorded for a request.
    async fn approvals(&self, request_id: &str) -> Result<Vec<ApprovalRecord>, StoreError>;
    /// Records one approval (and the credential's new counter), then lets `decide` conclude
    /// the request, all in one transaction: a quorum is reached exactly once. (The device
    /// call's nonce is stored before, on its own: see [`Store::use_nonce`].) A refused
    /// approval (the request is gone or no longer pending, its window closed, the approver
    /// already decided, the counter moved meanwhile) leaves nothing written.
    ///
    /// Inside that transaction it checks again, with the writer's own clock, that the approver
    /// and `device_id` are enabled (`CallerDisabled`) and that the approval window is open
    /// (`ApprovalClosed`): nothing read before the write queue is trusted for these.
    // The approval, counters, decision and audit entry, plus the calling device.
    #[allow(clippy::too_many_arguments)]
    async fn record_approval(
        &self,
        approval: &ApprovalRecord,
        device_id: &str,
        previous_sign_count: u32,
        new_sign_count: u32,
        decide: std::sync::Arc<Decide<'static>>,
        audit: Event,
    ) -> Result<Recorded, StoreError>;
    /// Redeems an approved decision once, atomically, before its `exp`.
    async fn redeem(
        &self,
        audience: &str,
        id: &str,
        now: i64,
        audit: Event,
    ) -> Result<Redeemed, StoreError>;
    /// Moves a request from one of `from` to `to`; returns the state found if it was not in `from`.
    async fn transition(
        &self,
        audience: &str,
        id: &str,
        from: &[RequestState],
        to: RequestState,
        now: i64,
        audit: Event,
    ) -> Result<Result<(), Option<RequestState>>, StoreError>;

    /// Records a report in one transaction: the credential's new counter; the reporter's
    /// denial while the request is pending and the reporter has not decided it (concluded by
    /// `decide`, like any approval); the requester's freeze (its audit entry only if this
    /// report froze them: freezing twice keeps the first); and the cancellation of each of the
    /// requester's requests in one of `freeze.cancels` (the reported one included), each
    /// audited with `freeze.cancel_audit`. Nothing is written if any part fails; a disabled
    /// approver or device is refused inside it (`CallerDisabled`).
    // The approval's arguments plus the freeze.
    #[allow(clippy::too_many_arguments)]
    async fn record_report(
        &self,
        denial: &ApprovalRecord,
        device_id: &str,
        previous_sign_count: u32,
        new_sign_count: u32,
        decide: std::sync::Arc<Decide<'static>>,
        audit: Event,
        freeze: Freeze,
    ) -> Result<Reported, StoreError>;
    /// The freeze on a requester, if any.
    async fn freeze(&self, requester_id: &str) -> Result<Option<FreezeRecord>, StoreError>;
    /// All frozen requesters.
    async fn freezes(&self) -> Result<Vec<FreezeRecord>, StoreError>;
    /// Lifts a freeze; false if the requester was not frozen.
    async fn unfreeze(&self, requester_id: &str, audit: Event) -> Result<bool, StoreError>;

    /// Appends an audit event on its own (for events without a state change, such as a refusal).
    async fn audit(&self, event: Event) -> Result<Entry, StoreError>;
    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<Entry>, StoreError>;
    /// The chain's head.
    async fn audit_head(&self) -> Result<Head, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Role;

    /// The stored spellings are the ones earlier versions wrote (migrations and old rows
    /// depend on them), each reads back as itself, and nothing else reads at all.
    #[test]
    fn stored_spellings_are_fixed_and_read_back_exactly() {
        use RequestState as S;
        let states = [
            (S::Pending, "pending"),
            (S::Approved, "approved"),
            (S::Denied, "denied"),
            (S::Cancelled, "cancelled"),
            (S::Redeemed, "redeemed"),
            (S::Executed, "executed"),
            (S::Failed, "failed"),
            (S::Expired, "expired"),
        ];
        for (state, text) in states {
            assert_eq!((state.as_str(), S::parse(text)), (text, Some(state)));
        }
        use AttestationTrust as A;
        for (trust, text) in [
            (A::None, "none"),
            (A::SelfAttested, "self"),
            (A::Unverified, "unverified"),
            (A::Verified, "verified"),
        ] {
            assert_eq!((trust.as_str(), A::parse(text)), (text, Some(trust)));
        }
        for (role, text) in [(Role::Requester, "requester"), (Role::Approver, "approver")] {
            assert_eq!((role.as_str(), text.parse().ok()), (text, Some(role)));
        }
        for bad in ["unknown", "Pending", "self_attested", "", "approved "] {
            assert_eq!((S::parse(bad), A::parse(bad)), (None, None), "{bad:?}");
        }
        assert!("Approver".parse::<Role>().is_err());
    }
}
