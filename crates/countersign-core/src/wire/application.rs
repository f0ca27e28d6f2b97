//! What a protected application sends and receives: `/v1/requests` and the calls on one
//! request. The server reads what the application writes with these types and the other way
//! round; the SDK re-exports [`CreateRequest`] as its `StepUp`.

use super::state::RequestState;
use crate::amount::Amount;
use crate::transaction::{Change, Requester, RequesterKind, Subject};
use crate::{Digest, Transaction};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// `POST /v1/requests` body: a request for a step-up before one action, as it will be shown
/// to approvers. Unknown members are refused.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Chosen by the application; a retry with the same key and body returns the same request.
    pub idempotency_key: String,
    /// Catalog action id, e.g. `payout.send`.
    pub action: String,
    /// The target, e.g. `vendor:4711`.
    pub object: String,
    /// For actions that move money.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// For actions without an amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Before → after of changed fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Vec<Change>>,
    /// Who asks.
    pub requester: Requester,
    /// base64url SHA-256 of the originating session id (never the id itself).
    pub session: Digest,
    /// Runtime context for policy.
    #[serde(default)]
    pub context: RequestContext,
}

/// Runtime context for policy: where and on what the requester acts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestContext {
    /// Client IP of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = "ip"))]
    pub ip: Option<IpAddr>,
    /// ISO 3166 alpha-2 country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<String>,
    /// `managed`, `unmanaged`, `compromised`, `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_posture: Option<String>,
    /// The requester's current privileges.
    #[serde(default)]
    pub privileges: Vec<String>,
}

/// The SHA-256 of a session id, as the transaction carries it.
pub fn session_digest(session_id: &str) -> Digest {
    crate::canonical::domain_digest(b"", session_id.as_bytes())
}

impl CreateRequest {
    /// What this request asks a step-up about, for the application whose audience is
    /// `audience`: the members a transaction would hold, checked before policy sees them.
    pub fn subject<'a>(&'a self, audience: &'a str) -> Subject<'a> {
        Subject {
            action: &self.action,
            object: &self.object,
            amount: self.amount.as_ref(),
            scope: self.scope.as_deref(),
            change: self.change.as_deref(),
            requester_id: &self.requester.id,
            audience,
        }
    }

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
        CreateRequest {
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
            context: RequestContext::default(),
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
    pub fn context(mut self, context: RequestContext) -> Self {
        self.context = context;
        self
    }
}

/// The answer to `POST /v1/requests` and `GET /v1/requests/{id}`, told apart by `outcome`.
// `T` is how the transaction is held: the server writes a [`Transaction`]; a client that
// checks the transaction itself reads it as JSON and parses it with
// [`Transaction::from_json`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepUpAnswer<T = Transaction> {
    /// Approvers must answer: the request as created (or found again by its idempotency key).
    StepUp(RequestView<T>),
    /// Policy lets the action proceed without a step-up; nothing was created.
    NotRequired,
}

/// A request as the application sees it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestView<T = Transaction> {
    /// The request id (also the transaction's `id`).
    pub id: String,
    /// Where it stands; a pending request past its approval deadline reads `expired`.
    pub state: RequestState,
    /// The transaction's digest, which approvals and the decision token name.
    pub digest: Digest,
    /// The transaction approvers are shown and their keys sign.
    pub transaction: T,
}

/// The state of a request: what a client reads from `GET /v1/requests/{id}` (the rest of the
/// view is ignored), and what `cancel` and `outcome` answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStatus {
    /// Where it stands now.
    pub state: RequestState,
}

/// `GET /v1/requests/{id}/decision`: the signed decision token.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionAnswer {
    /// `approved` or `denied` (or a later state of an approved request).
    pub state: RequestState,
    /// The compact JWS (EdDSA) the application verifies offline.
    pub token: String,
    /// Unix time after which an approved decision can no longer be redeemed.
    pub exp: Option<i64>,
}

/// `POST /v1/requests/{id}/redeem`: the decision consumed, once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemAnswer {
    /// Always true: a refused redemption is a problem document.
    pub redeemed: bool,
    /// The token that was redeemed; the application checks it is the one it verified.
    pub token: String,
}

/// How an executed action went.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ExecutionOutcome {
    /// The action was carried out.
    Succeeded,
    /// It was attempted and failed.
    Failed,
}

/// `POST /v1/requests/{id}/outcome` body: closes the request's audit trail.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeReport {
    /// How it went.
    pub outcome: ExecutionOutcome,
    /// For the audit log: at most 1024 characters, no control characters.
    #[serde(default)]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_up_is_written_without_empty_members_and_read_back_strictly() {
        let ask = CreateRequest::new("k1", "payout.send", "vendor:4711", "alice@example.com", "s")
            .amount("2500.00", "EUR");
        let json = serde_json::to_value(&ask).unwrap();
        assert_eq!(json["amount"]["value"], "2500.00");
        assert!(json.get("scope").is_none() && json["context"].get("ip").is_none());
        assert_eq!(json["session"], session_digest("s").to_base64url());
        let back: CreateRequest = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, ask);
        let mut extra = json;
        extra["admin"] = true.into();
        assert!(serde_json::from_value::<CreateRequest>(extra).is_err());
        let nulls = serde_json::json!({"idempotency_key": "k", "action": "a", "object": "o",
            "amount": null, "requester": {"id": "a", "kind": "human"},
            "session": session_digest("s"), "context": {"ip": "192.0.2.1"}});
        let read: CreateRequest = serde_json::from_value(nulls).unwrap();
        assert_eq!(read.context.ip, Some(IpAddr::from([192, 0, 2, 1])));
        let bad_ip = serde_json::json!({"idempotency_key": "k", "action": "a", "object": "o",
            "requester": {"id": "a", "kind": "human"}, "session": session_digest("s"),
            "context": {"ip": "not an address"}});
        assert!(serde_json::from_value::<CreateRequest>(bad_ip).is_err());
    }

    #[test]
    fn the_two_outcomes_of_a_step_up_are_told_apart_by_outcome() {
        let not_required: StepUpAnswer<serde_json::Value> =
            serde_json::from_str(r#"{"outcome":"not_required"}"#).unwrap();
        assert_eq!(not_required, StepUpAnswer::NotRequired);
        let view = StepUpAnswer::StepUp(RequestView {
            id: "r1".into(),
            state: RequestState::Pending,
            digest: session_digest("x"),
            transaction: serde_json::json!({"id": "r1"}),
        });
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(
            (json["outcome"].as_str(), json["state"].as_str()),
            (Some("step_up"), Some("pending"))
        );
        assert_eq!(
            serde_json::from_value::<StepUpAnswer<serde_json::Value>>(json).unwrap(),
            view
        );
        assert!(
            serde_json::from_str::<StepUpAnswer<serde_json::Value>>(r#"{"outcome":"maybe"}"#)
                .is_err()
        );
    }

    #[test]
    fn an_outcome_is_succeeded_or_failed() {
        let report: OutcomeReport =
            serde_json::from_str(r#"{"outcome":"failed","detail":"bank said no"}"#).unwrap();
        assert_eq!(report.outcome, ExecutionOutcome::Failed);
        assert!(serde_json::from_str::<OutcomeReport>(r#"{"outcome":"done"}"#).is_err());
    }
}
