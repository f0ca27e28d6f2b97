//! The step-up an application asks for, as it will be shown to approvers.

use countersign_core::amount::Amount;
use countersign_core::transaction::{Change, Requester, RequesterKind};
use countersign_core::Digest;
use serde::Serialize;

/// Runtime context for policy: where and on what the requester acts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Context {
    /// Client IP of the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// ISO 3166 alpha-2 country.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo: Option<String>,
    /// `managed`, `unmanaged`, `compromised`, `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_posture: Option<String>,
    /// The requester's current privileges.
    pub privileges: Vec<String>,
}

/// The SHA-256 of a session id, as the transaction carries it.
fn session_digest(session_id: &str) -> Digest {
    countersign_core::canonical::domain_digest(b"", session_id.as_bytes())
}

/// A request for a step-up before one action (`POST /v1/requests`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepUp {
    /// Retrying with the same key and body returns the same request.
    pub idempotency_key: String,
    /// Catalog action id, e.g. `payout.send`.
    pub action: String,
    /// The target, e.g. `vendor:4711`.
    pub object: String,
    /// For actions that move money.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// For actions without an amount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Before → after of changed fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Vec<Change>>,
    /// Who asks.
    pub requester: Requester,
    /// SHA-256 of the originating session id (never the id itself).
    pub session: Digest,
    /// Runtime context.
    pub context: Context,
}

impl StepUp {
    /// A step-up for a human requester, bound to the session the action comes from (only the
    /// session id's SHA-256 leaves the application); add the amount and context with the
    /// builders. The session is required: an approval then counts for that session only.
    pub fn new(
        idempotency_key: &str,
        action: &str,
        object: &str,
        requester: &str,
        session_id: &str,
    ) -> Self {
        StepUp {
            idempotency_key: idempotency_key.into(),
            action: action.into(),
            object: object.into(),
            amount: None,
            scope: None,
            change: None,
            requester: Requester {
                id: requester.into(),
                kind: RequesterKind::Human,
            },
            session: session_digest(session_id),
            context: Context::default(),
        }
    }

    /// The amount, as a decimal string and ISO 4217 code (validated by the server).
    pub fn amount(mut self, value: &str, currency: &str) -> Self {
        self.amount = Some(Amount {
            value: value.into(),
            currency: currency.into(),
        });
        self
    }

    /// The requester kind (human by default).
    pub fn requester_kind(mut self, kind: RequesterKind) -> Self {
        self.requester.kind = kind;
        self
    }

    /// Runtime context for policy.
    pub fn context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }
}
