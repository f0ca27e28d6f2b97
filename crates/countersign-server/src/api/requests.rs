//! The protected application's request endpoints.

use super::extract::{AppKey, StrictJson};
use super::AppState;
use crate::catalog::Member;
use crate::clock;
use crate::policy::{Outcome, PolicyInput, RuntimeContext};
use crate::problem::{Problem, ProblemCode};
use crate::store::{
    Created, PendingCap, PendingCaps, Redeemed, RequestRecord, RequestState, StoreError,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use countersign_core::audit::{Event, EventKind};
use countersign_core::transaction::{Requirements, Transaction, TransactionError};
use countersign_core::wire::application::{
    CreateRequest, DecisionAnswer, ExecutionOutcome, OutcomeReport, RedeemAnswer, RequestContext,
    RequestStatus, RequestView, StepUpAnswer,
};
use countersign_core::{b64, canonical};
use serde::Deserialize;
use std::sync::Arc;

/// The state a client sees: a pending request past its approval deadline is `expired`.
pub fn visible_state(record: &RequestRecord, now: countersign_core::Timestamp) -> RequestState {
    if record.state == RequestState::Pending && now > record.transaction.approve_by {
        RequestState::Expired
    } else {
        record.state
    }
}

/// The request as its application sees it (the answer of `create` and `get`), borrowing the
/// stored transaction rather than copying it for every answer.
fn view(record: &RequestRecord) -> StepUpAnswer<&Transaction> {
    let now = clock::now().unwrap_or(record.transaction.created_at);
    StepUpAnswer::StepUp(RequestView {
        id: record.transaction.id.clone(),
        state: visible_state(record, now),
        digest: record.digest,
        transaction: &record.transaction,
    })
}

fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "request handling failed");
    Problem::internal()
}

fn unprocessable(e: &TransactionError) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ProblemCode::check(e.code()),
        e.to_string(),
    )
}

/// Refuses a requester id that is not in canonical form (it would be a second identity for
/// the same person), or that this API key may not speak for.
fn check_requester(key: &crate::store::ApiKeyRecord, id: &str) -> Result<(), Problem> {
    if !crate::identity::is_canonical(id) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::RequesterNotCanonical,
            format!(
                "requester ids are compared in lowercase: send {:?}",
                id.to_ascii_lowercase()
            ),
        ));
    }
    if !crate::identity::allowed(&key.requesters, id) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            ProblemCode::RequesterNotAllowed,
            "this API key may not ask step-ups for this requester",
        ));
    }
    Ok(())
}

/// The answer for a requester frozen after a report.
fn frozen(requester: &str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        ProblemCode::RequesterFrozen,
        format!("{requester} may not make requests until an operator lifts a freeze"),
    )
}

/// A frozen requester gets no answer but the freeze, whatever policy says. (A step-up is
/// checked again inside the creating transaction, so a freeze cannot slip in between.)
async fn refuse_if_frozen(state: &AppState, requester: &str) -> Result<(), Problem> {
    match state.store.freeze(requester).await.map_err(internal)? {
        Some(_) => Err(frozen(requester)),
        None => Ok(()),
    }
}

/// `POST /v1/requests`: evaluates policy and, when a step-up is needed, creates the request.
pub async fn create(
    State(state): State<Arc<AppState>>,
    AppKey(key): AppKey,
    StrictJson(body): StrictJson<CreateRequest>,
) -> Result<Response, Problem> {
    let now = clock::now().map_err(internal)?;
    check_idempotency_key(&body.idempotency_key)?;
    check_context(&body.context)?;
    check_requester(&key, &body.requester.id)?;
    // All zeros is what an application sends when it never bound the request to a session:
    // an approval would then count for any session of the requester.
    if body.session == countersign_core::Digest::ZERO {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::UnboundSession,
            "session must be the SHA-256 of the session the action comes from, not all zeros",
        ));
    }
    let action = state.catalog.get(&body.action).ok_or_else(|| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::UnknownAction,
            format!("{:?} is not in the action catalog", body.action),
        )
    })?;
    for member in &action.requires {
        let present = match member {
            Member::Amount => body.amount.is_some(),
            Member::Scope => body.scope.is_some(),
            Member::Change => body.change.is_some(),
        };
        if !present {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ProblemCode::MissingMember,
                format!("action {} requires {member:?}", action.id),
            ));
        }
    }

    // Validate everything the application sent before policy sees it: a draft transaction with
    // placeholder requirements runs the same checks as the real one.
    let id = format!(
        "req_{}",
        b64::encode(clock::random::<16>().map_err(internal)?)
    );
    let nonce = b64::encode(clock::random::<24>().map_err(internal)?);
    let draft_requirements = Requirements {
        self_step_up: true,
        quorum: Vec::new(),
        user_verification: true,
        execution_ttl_seconds: 1,
        reason: "draft".into(),
    };
    let later = |s: i64| {
        now.plus_seconds(s)
            .ok_or_else(|| internal("deadline out of range"))
    };
    let mut tx = Transaction {
        version: draft_requirements.version(),
        id,
        action: body.action.clone(),
        object: body.object.clone(),
        amount: body.amount.clone(),
        scope: body.scope.clone(),
        change: body.change.clone(),
        requester: body.requester.clone(),
        session: body.session,
        audience: key.audience.clone(),
        created_at: now,
        approve_by: later(1)?,
        execute_by: later(2)?,
        nonce,
        requirements: draft_requirements,
    };
    tx.validate().map_err(|e| unprocessable(&e))?;
    if let Err(limited) = state.limits.check_api_key(&key.id) {
        return Ok(limited.into_response());
    }
    if let Err(limited) = state.limits.check_requester(&tx.requester.id) {
        return Ok(limited.into_response());
    }

    let input = PolicyInput {
        action: &tx.action,
        object: &tx.object,
        amount: tx.amount.as_ref(),
        requester_id: &tx.requester.id,
        requester_kind: tx.requester.kind,
        context: &RuntimeContext {
            ip: body.context.ip,
            geo: body.context.geo.clone(),
            device_posture: body.context.device_posture.clone(),
            privileges: body.context.privileges.clone(),
        },
        hour_utc: u8::try_from(tx.created_at.unix().rem_euclid(86_400) / 3600).unwrap_or(0),
    };
    let outcome = state.policy.evaluate(&input).map_err(|e| {
        // The amount's range is the application's to fix; Cedar's own text stays in the log.
        let detail = match e {
            crate::policy::PolicyError::AmountRange => e.to_string(),
            _ => {
                tracing::warn!(error = %e, "the request cannot be put to policy");
                "the request cannot be evaluated by policy".into()
            }
        };
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::PolicyInput,
            detail,
        )
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
            refuse_if_frozen(&state, &tx.requester.id).await?;
            state.metrics.event("not_required");
            state
                .store
                .audit(event(EventKind::RequestNotRequired, serde_json::json!({"action": tx.action, "object": tx.object, "requester": tx.requester.id, "policies": policies})))
                .await
                .map_err(internal)?;
            return Ok((
                StatusCode::OK,
                Json(StepUpAnswer::<Transaction>::NotRequired),
            )
                .into_response());
        }
        Outcome::Forbidden { reason, policies } => {
            refuse_if_frozen(&state, &tx.requester.id).await?;
            state.metrics.event("forbidden");
            state
                .store
                .audit(event(EventKind::RequestForbidden, serde_json::json!({"action": tx.action, "object": tx.object, "requester": tx.requester.id, "policies": policies, "reason": reason})))
                .await
                .map_err(internal)?;
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                ProblemCode::PolicyForbids,
                reason,
            ));
        }
        Outcome::StepUp(step_up) => step_up,
    };

    tx.requirements = Requirements {
        self_step_up: step_up.self_step_up,
        quorum: step_up.quorum.clone(),
        user_verification: step_up.user_verification,
        execution_ttl_seconds: step_up.execution_ttl_seconds,
        reason: step_up.reason.clone(),
    };
    tx.version = tx.requirements.version();
    tx.approve_by = later(i64::from(step_up.approval_ttl_seconds))?;
    tx.execute_by =
        later(i64::from(step_up.approval_ttl_seconds) + i64::from(step_up.execution_ttl_seconds))?;
    let digest = tx.digest().map_err(|e| unprocessable(&e))?;
    let fingerprint =
        canonical::digest_of(b"countersign/idempotency/v1\n", &body).map_err(internal)?;
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
        Ok(Created::New(r)) => {
            state.changed(&r.transaction.id);
            state.metrics.event("created");
            Ok((StatusCode::CREATED, Json(view(&r))).into_response())
        }
        Ok(Created::Existing(r)) => Ok((StatusCode::OK, Json(view(&r))).into_response()),
        Err(StoreError::RequesterFrozen) => Err(frozen(&record.transaction.requester.id)),
        // The requester's count may include other applications' requests: it is logged, not
        // answered.
        Err(StoreError::PendingCap(PendingCap::Requester)) => {
            tracing::info!(requester = %record.transaction.requester.id, "requester pending cap reached");
            Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                ProblemCode::TooManyPending,
                "this requester has as many pending requests as allowed; wait for them to be decided",
            ))
        }
        Err(StoreError::PendingCap(PendingCap::ApiKey)) => Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            ProblemCode::ApiKeyPendingCap,
            "this API key has as many pending requests as allowed; wait for them to be decided",
        )),
        Err(StoreError::IdempotencyConflict) => Err(Problem::new(
            StatusCode::CONFLICT,
            ProblemCode::IdempotencyConflict,
            "this idempotency key was used for a different request",
        )),
        Err(e) => Err(internal(e)),
    }
}

/// `GET /v1/requests/{id}?wait=N` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds to wait (at most 60) for a pending request to change before answering.
    #[serde(default)]
    pub wait: Option<u64>,
}

/// The longest long-poll.
const MAX_WAIT_SECONDS: u64 = 60;

/// `GET /v1/requests/{id}`: only requests of the caller's audience are visible. With `?wait=N`
/// a pending request is answered when it changes, or after N seconds.
pub async fn get(
    State(state): State<Arc<AppState>>,
    AppKey(key): AppKey,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let axum::extract::Query(query) =
        query.map_err(|e| Problem::bad_request(ProblemCode::InvalidQuery, e.body_text()))?;
    let wait = query.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(Problem::bad_request(
            ProblemCode::InvalidQuery,
            format!("wait is at most {MAX_WAIT_SECONDS} seconds"),
        ));
    }
    // Subscribe before reading, so a change between the read and the wait is not missed.
    let mut changes = state.changes.subscribe();
    let load = || async {
        state
            .store
            .request(&key.audience, &id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Problem::not_found(format!("no request {id:?} for this application")))
    };
    let mut record = load().await?;
    let now = clock::now().map_err(internal)?;
    if wait > 0 && visible_state(&record, now) == RequestState::Pending {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
        loop {
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Ok(Ok(changed)) if changed != id => continue,
                // Our request changed, or we lagged and cannot tell: read it again.
                Ok(_) => {
                    record = load().await?;
                    if record.state != RequestState::Pending {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    Ok(Json(view(&record)).into_response())
}

fn check_idempotency_key(key: &str) -> Result<(), Problem> {
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::bad_request(
            ProblemCode::InvalidIdempotencyKey,
            "idempotency_key must be 1-128 printable ASCII characters",
        ));
    }
    Ok(())
}

fn check_context(context: &RequestContext) -> Result<(), Problem> {
    let bad = |detail: &str| {
        Err(Problem::bad_request(
            ProblemCode::InvalidContext,
            detail.to_owned(),
        ))
    };
    if let Some(geo) = &context.geo {
        if geo.len() != 2 || !geo.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad("context.geo must be an ISO 3166 alpha-2 code");
        }
    }
    if let Some(posture) = &context.device_posture {
        if !["managed", "unmanaged", "compromised", "unknown"].contains(&posture.as_str()) {
            return bad(
                "context.device_posture must be managed, unmanaged, compromised or unknown",
            );
        }
    }
    if context.privileges.len() > 64
        || context
            .privileges
            .iter()
            .any(|p| p.is_empty() || p.len() > 128)
    {
        return bad("context.privileges: at most 64 entries of 1-128 characters");
    }
    Ok(())
}

/// `GET /v1/requests/{id}/decision`: the signed decision, once there is one.
pub async fn decision(
    State(state): State<Arc<AppState>>,
    AppKey(key): AppKey,
    Path(id): Path<String>,
) -> Result<Json<DecisionAnswer>, Problem> {
    let record = state
        .store
        .request(&key.audience, &id)
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found(format!("no request {id:?} for this application")))?;
    let token = record.decision_token.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::CONFLICT,
            ProblemCode::NotDecided,
            format!("request is {}", record.state.as_str()),
        )
    })?;
    Ok(Json(DecisionAnswer {
        state: record.state,
        token: token.clone(),
        exp: record.decision_exp,
    }))
}

fn app_event(
    now: countersign_core::Timestamp,
    kind: EventKind,
    key: &crate::store::ApiKeyRecord,
    id: &str,
    data: serde_json::Value,
) -> Event {
    Event {
        at: now,
        kind: kind.into(),
        request_id: Some(id.to_owned()),
        actor: format!("api-key:{}", key.id),
        data,
    }
}

/// `POST /v1/requests/{id}/redeem`: consumes an approved decision exactly once, before its `exp`.
pub async fn redeem(
    State(state): State<Arc<AppState>>,
    AppKey(key): AppKey,
    Path(id): Path<String>,
) -> Result<Json<RedeemAnswer>, Problem> {
    let now = clock::now().map_err(internal)?;
    let event = app_event(
        now,
        EventKind::DecisionRedeemed,
        &key,
        &id,
        serde_json::json!({}),
    );
    match state
        .store
        .redeem(&key.audience, &id, now.unix(), event)
        .await
        .map_err(internal)?
    {
        Redeemed::Now(token) => {
            state.changed(&id);
            state.metrics.event("redeemed");
            Ok(Json(RedeemAnswer {
                redeemed: true,
                token,
            }))
        }
        Redeemed::NotFound => Err(Problem::not_found(format!(
            "no request {id:?} for this application"
        ))),
        Redeemed::Expired => Err(Problem::new(
            StatusCode::GONE,
            ProblemCode::DecisionExpired,
            "the execution deadline has passed",
        )),
        Redeemed::WrongState(
            RequestState::Redeemed | RequestState::Executed | RequestState::Failed,
        ) => Err(Problem::new(
            StatusCode::CONFLICT,
            ProblemCode::AlreadyRedeemed,
            "this decision was already redeemed",
        )),
        Redeemed::WrongState(s) => Err(Problem::new(
            StatusCode::CONFLICT,
            ProblemCode::NotApproved,
            format!("request is {}", s.as_str()),
        )),
        Redeemed::RequesterFrozen => Err(Problem::new(
            StatusCode::CONFLICT,
            ProblemCode::RequesterFrozen,
            "the requester was reported and is frozen: this decision is not redeemed",
        )),
    }
}

/// `POST /v1/requests/{id}/outcome`: closes the audit chain of a redeemed request.
pub async fn outcome(
    State(state): State<Arc<AppState>>,
    AppKey(key): AppKey,
    Path(id): Path<String>,
    StrictJson(body): StrictJson<OutcomeReport>,
) -> Result<Json<RequestStatus>, Problem> {
    let to = match body.outcome {
        ExecutionOutcome::Succeeded => RequestState::Executed,
        ExecutionOutcome::Failed => RequestState::Failed,
    };
    if body
        .detail
        .as_ref()
        .is_some_and(|d| d.len() > 1024 || d.chars().any(char::is_control))
    {
        return Err(Problem::bad_request(
            ProblemCode::InvalidValue,
            "detail must be at most 1024 characters without control characters",
        ));
    }
    let now = clock::now().map_err(internal)?;
    let event = app_event(
        now,
        EventKind::ExecutionReported,
        &key,
        &id,
        serde_json::json!({"outcome": body.outcome, "detail": body.detail}),
    );
    transition(&state, &key, &id, &[RequestState::Redeemed], to, now, event).await
}

/// `POST /v1/requests/{id}/cancel`: withdraws a pending request.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    AppKey(key): AppKey,
    Path(id): Path<String>,
) -> Result<Json<RequestStatus>, Problem> {
    let now = clock::now().map_err(internal)?;
    let event = app_event(
        now,
        EventKind::RequestCancelled,
        &key,
        &id,
        serde_json::json!({}),
    );
    transition(
        &state,
        &key,
        &id,
        &[RequestState::Pending],
        RequestState::Cancelled,
        now,
        event,
    )
    .await
}

async fn transition(
    state: &AppState,
    key: &crate::store::ApiKeyRecord,
    id: &str,
    from: &[RequestState],
    to: RequestState,
    now: countersign_core::Timestamp,
    event: Event,
) -> Result<Json<RequestStatus>, Problem> {
    match state
        .store
        .transition(&key.audience, id, from, to, now.unix(), event)
        .await
        .map_err(internal)?
    {
        Ok(()) => {
            state.changed(id);
            state.metrics.event(to.as_str());
            Ok(Json(RequestStatus { state: to }))
        }
        Err(None) => Err(Problem::not_found(format!(
            "no request {id:?} for this application"
        ))),
        Err(Some(found)) => Err(Problem::new(
            StatusCode::CONFLICT,
            ProblemCode::WrongState,
            format!("request is {}", found.as_str()),
        )),
    }
}
