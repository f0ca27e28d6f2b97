//! A protected application's step-up request: the body's rules, the action catalog, rate
//! limits, policy at run time, then the transaction built once from what policy demands and
//! recorded (with the freeze, the pending caps and idempotency checked inside the store's
//! transaction).

use super::Fault;
use crate::api::AppState;
use crate::catalog::Member;
use crate::clock;
use crate::policy::{Outcome, PolicyError, PolicyInput, RuntimeContext};
use crate::ratelimit::{ApiKeyRateLimited, RateLimited};
use crate::store::{
    self, ApiKeyRecord, PendingCap, PendingCaps, RequestRecord, RequestState, StoreError,
};
use countersign_core::audit::{Event, EventKind};
use countersign_core::transaction::{Requirements, Transaction, TransactionError};
use countersign_core::wire::application::{CreateRequest, RequestContext};
use countersign_core::{b64, canonical, Digest};

/// What became of a request that was allowed.
#[derive(Debug)]
pub enum Created {
    /// Policy needs no step-up: the application may go ahead (audited).
    NotRequired,
    /// A new pending request.
    New(RequestRecord),
    /// The request created earlier under the same idempotency key, for the same body.
    Existing(RequestRecord),
}

/// Why a request was not created. Nothing is written for any of them, except the audit
/// entry of a policy refusal.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The idempotency key is empty, too long or not printable ASCII.
    #[error("idempotency_key must be 1-128 printable ASCII characters")]
    InvalidIdempotencyKey,
    /// A member of the run-time context is out of its range.
    #[error("{0}")]
    InvalidContext(&'static str),
    /// The requester id is not lowercase (it would be a second identity for the person).
    #[error("requester ids are compared in lowercase: send {0:?}")]
    RequesterNotCanonical(String),
    /// The API key may not speak for this requester.
    #[error("this API key may not ask step-ups for this requester")]
    RequesterNotAllowed,
    /// The session digest is all zeros.
    #[error("session must be the SHA-256 of the session the action comes from, not all zeros")]
    UnboundSession,
    /// The action is not in the catalog.
    #[error("{0:?} is not in the action catalog")]
    UnknownAction(String),
    /// The action needs a member the body lacks.
    #[error("action {action} requires {member:?}")]
    MissingMember {
        /// The action.
        action: String,
        /// What it needs.
        member: Member,
    },
    /// A member a transaction cannot hold.
    #[error(transparent)]
    Invalid(#[from] TransactionError),
    /// The API key is over its rate.
    #[error(transparent)]
    ApiKeyRateLimited(#[from] ApiKeyRateLimited),
    /// The requester is over their rate.
    #[error(transparent)]
    RequesterRateLimited(#[from] RateLimited),
    /// Policy cannot be evaluated on this input.
    #[error("{0}")]
    PolicyInput(String),
    /// Policy forbids the action, with its reason.
    #[error("{0}")]
    PolicyForbids(String),
    /// The requester is frozen after a report.
    #[error("{0} may not make requests until an operator lifts a freeze")]
    RequesterFrozen(String),
    /// The requester has as many pending requests as allowed.
    #[error("this requester has as many pending requests as allowed; wait for them to be decided")]
    TooManyPending,
    /// The API key has as many pending requests as allowed.
    #[error("this API key has as many pending requests as allowed; wait for them to be decided")]
    ApiKeyPendingCap,
    /// The idempotency key was used for a different body.
    #[error("this idempotency key was used for a different request")]
    IdempotencyConflict,
    /// The server failed.
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Fault(Fault::Store(e))
    }
}

/// Evaluates policy for `body`, sent with API key `key`, and creates the request when a
/// step-up is needed.
pub async fn create(
    state: &AppState,
    key: &ApiKeyRecord,
    body: &CreateRequest,
) -> Result<Created, Refused> {
    let now = clock::now().map_err(Fault::from)?;
    check_idempotency_key(&body.idempotency_key)?;
    check_context(&body.context)?;
    check_requester(key, &body.requester.id)?;
    // All zeros is what an application sends when it never bound the request to a session:
    // an approval would then count for any session of the requester.
    if body.session == Digest::ZERO {
        return Err(Refused::UnboundSession);
    }
    let action = state
        .catalog
        .get(&body.action)
        .ok_or_else(|| Refused::UnknownAction(body.action.clone()))?;
    for &member in &action.requires {
        let present = match member {
            Member::Amount => body.amount.is_some(),
            Member::Scope => body.scope.is_some(),
            Member::Change => body.change.is_some(),
        };
        if !present {
            return Err(Refused::MissingMember {
                action: action.id.clone(),
                member,
            });
        }
    }
    // Everything the application sent is checked before policy sees it.
    body.subject(&key.audience).validate()?;
    state.limits.check_api_key(&key.id).await??;
    state.limits.check_requester(&body.requester.id).await??;

    let input = PolicyInput {
        action: &body.action,
        object: &body.object,
        amount: body.amount.as_ref(),
        requester_id: &body.requester.id,
        requester_kind: body.requester.kind,
        context: &RuntimeContext {
            ip: body.context.ip,
            geo: body.context.geo.clone(),
            device_posture: body.context.device_posture.clone(),
            privileges: body.context.privileges.clone(),
        },
        hour_utc: u8::try_from(now.unix().rem_euclid(86_400) / 3600).unwrap_or(0),
    };
    let outcome = state.policy.evaluate(&input).map_err(|e| {
        // The amount's range is the application's to fix; Cedar's own text stays in the log.
        Refused::PolicyInput(match e {
            PolicyError::AmountRange => e.to_string(),
            _ => {
                tracing::warn!(error = %e, "the request cannot be put to policy");
                "the request cannot be evaluated by policy".into()
            }
        })
    })?;
    let actor = format!("api-key:{}", key.id);
    let event = |kind: EventKind, data: serde_json::Value| Event {
        at: now,
        kind: kind.into(),
        request_id: None,
        actor: actor.clone(),
        data,
    };
    let step_up = match outcome {
        Outcome::NotRequired { policies } => {
            refuse_if_frozen(state, &body.requester.id).await?;
            state.metrics.event("not_required");
            state
                .store
                .audit(event(EventKind::RequestNotRequired, serde_json::json!({"action": body.action, "object": body.object, "requester": body.requester.id, "policies": policies})))
                .await?;
            return Ok(Created::NotRequired);
        }
        Outcome::Forbidden { reason, policies } => {
            refuse_if_frozen(state, &body.requester.id).await?;
            state.metrics.event("forbidden");
            state
                .store
                .audit(event(EventKind::RequestForbidden, serde_json::json!({"action": body.action, "object": body.object, "requester": body.requester.id, "policies": policies, "reason": reason})))
                .await?;
            return Err(Refused::PolicyForbids(reason));
        }
        Outcome::StepUp(step_up) => step_up,
    };

    let requirements = Requirements {
        self_step_up: step_up.self_step_up,
        quorum: step_up.quorum.clone(),
        user_verification: step_up.user_verification,
        execution_ttl_seconds: step_up.execution_ttl_seconds,
        reason: step_up.reason.clone(),
    };
    let later = |s: i64| now.plus_seconds(s).ok_or(Fault::DeadlineOutOfRange);
    let approval_ttl = i64::from(step_up.approval_ttl_seconds);
    let tx = Transaction {
        version: requirements.version(),
        id: format!(
            "req_{}",
            b64::encode(clock::random::<16>().map_err(Fault::from)?)
        ),
        action: body.action.clone(),
        object: body.object.clone(),
        amount: body.amount.clone(),
        scope: body.scope.clone(),
        change: body.change.clone(),
        requester: body.requester.clone(),
        session: body.session,
        audience: key.audience.clone(),
        created_at: now,
        approve_by: later(approval_ttl)?,
        execute_by: later(approval_ttl + i64::from(step_up.execution_ttl_seconds))?,
        nonce: b64::encode(clock::random::<24>().map_err(Fault::from)?),
        requirements,
    };
    let digest = tx.digest()?;
    let fingerprint =
        canonical::digest_of(b"countersign/idempotency/v1\n", body).map_err(Fault::from)?;
    let record = RequestRecord {
        transaction: tx,
        digest,
        idempotency_key: body.idempotency_key.clone(),
        fingerprint,
        state: RequestState::Pending,
        decision_token: None,
        decision_exp: None,
    };
    let created_event = Event {
        request_id: Some(record.transaction.id.clone()),
        ..event(
            EventKind::RequestCreated,
            serde_json::json!({"digest": digest, "action": record.transaction.action, "requester": record.transaction.requester.id, "policies": step_up.policies}),
        )
    };
    let caps = PendingCaps {
        api_key_id: key.id.clone(),
        per_requester: state.config.limits.max_pending_per_requester,
        per_api_key: state.config.limits.max_pending_per_api_key,
        now: now.unix(),
    };
    match state
        .store
        .create_request(&record, &caps, created_event)
        .await
    {
        Ok(store::Created::New(r)) => {
            state.changed(&r.transaction.id);
            state.metrics.event("created");
            Ok(Created::New(r))
        }
        Ok(store::Created::Existing(r)) => Ok(Created::Existing(r)),
        Err(StoreError::RequesterFrozen) => Err(Refused::RequesterFrozen(
            record.transaction.requester.id.clone(),
        )),
        // The requester's count may include other applications' requests: it is logged, not
        // answered.
        Err(StoreError::PendingCap(PendingCap::Requester)) => {
            tracing::info!(requester = %record.transaction.requester.id, "requester pending cap reached");
            Err(Refused::TooManyPending)
        }
        Err(StoreError::PendingCap(PendingCap::ApiKey)) => Err(Refused::ApiKeyPendingCap),
        Err(StoreError::IdempotencyConflict) => Err(Refused::IdempotencyConflict),
        Err(e) => Err(e.into()),
    }
}

/// Refuses a requester id that is not in canonical form, or that this API key may not speak
/// for.
fn check_requester(key: &ApiKeyRecord, id: &str) -> Result<(), Refused> {
    if !crate::identity::is_canonical(id) {
        return Err(Refused::RequesterNotCanonical(id.to_ascii_lowercase()));
    }
    if !crate::identity::allowed(&key.requesters, id) {
        return Err(Refused::RequesterNotAllowed);
    }
    Ok(())
}

/// A frozen requester gets no answer but the freeze, whatever policy says. (A step-up is
/// checked again inside the creating transaction, so a freeze cannot slip in between.)
async fn refuse_if_frozen(state: &AppState, requester: &str) -> Result<(), Refused> {
    match state.store.freeze(requester).await? {
        Some(_) => Err(Refused::RequesterFrozen(requester.to_owned())),
        None => Ok(()),
    }
}

fn check_idempotency_key(key: &str) -> Result<(), Refused> {
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refused::InvalidIdempotencyKey);
    }
    Ok(())
}

fn check_context(context: &RequestContext) -> Result<(), Refused> {
    if let Some(geo) = &context.geo {
        if geo.len() != 2 || !geo.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Refused::InvalidContext(
                "context.geo must be an ISO 3166 alpha-2 code",
            ));
        }
    }
    if let Some(posture) = &context.device_posture {
        if !["managed", "unmanaged", "compromised", "unknown"].contains(&posture.as_str()) {
            return Err(Refused::InvalidContext(
                "context.device_posture must be managed, unmanaged, compromised or unknown",
            ));
        }
    }
    if context.privileges.len() > 64
        || context
            .privileges
            .iter()
            .any(|p| p.is_empty() || p.len() > 128)
    {
        return Err(Refused::InvalidContext(
            "context.privileges: at most 64 entries of 1-128 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_short_printable_ascii() {
        assert!(check_idempotency_key("payout-4711/2026-12-03").is_ok());
        assert!(check_idempotency_key(&"k".repeat(128)).is_ok());
        for bad in ["", "with space", "tab\t", "ümlaut"] {
            assert!(
                matches!(
                    check_idempotency_key(bad),
                    Err(Refused::InvalidIdempotencyKey)
                ),
                "{bad:?}"
            );
        }
        assert!(check_idempotency_key(&"k".repeat(129)).is_err());
    }

    #[test]
    fn the_run_time_context_is_refused_outside_its_ranges_with_the_member_named() {
        let context =
            |geo: Option<&str>, posture: Option<&str>, privileges: Vec<String>| RequestContext {
                ip: None,
                geo: geo.map(str::to_owned),
                device_posture: posture.map(str::to_owned),
                privileges,
            };
        assert!(check_context(&context(Some("DE"), Some("managed"), vec!["admin".into()])).is_ok());
        let refused = |c: &RequestContext| match check_context(c) {
            Err(Refused::InvalidContext(detail)) => detail,
            other => panic!("{other:?}"),
        };
        assert!(refused(&context(Some("de"), None, vec![])).starts_with("context.geo"));
        assert!(refused(&context(Some("DEU"), None, vec![])).starts_with("context.geo"));
        assert!(
            refused(&context(None, Some("rooted"), vec![])).starts_with("context.device_posture")
        );
        assert!(
            refused(&context(None, None, vec![String::new()])).starts_with("context.privileges")
        );
        assert!(
            refused(&context(None, None, vec!["p".into(); 65])).starts_with("context.privileges")
        );
    }
}
