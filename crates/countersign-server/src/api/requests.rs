//! The protected application's request endpoints.

use super::extract::{AppKey, StrictJson};
use super::openapi::{RequestCallErrors, RequestId};
use super::AppState;
use crate::changes::Change;
use crate::clock;
use crate::problem::{Problem, ProblemCode};
use crate::service::request::{self, Created, Refused};
use crate::store::{Redeemed, RequestRecord, RequestState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use countersign_core::audit::{Event, EventKind};
use countersign_core::transaction::{Transaction, TransactionError};
use countersign_core::wire::application::{
    CreateRequest, DecisionAnswer, ExecutionOutcome, OutcomeReport, RedeemAnswer, RequestStatus,
    RequestView, StepUpAnswer,
};
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

/// `POST /v1/requests`: evaluates policy and, when a step-up is needed, creates the request.
#[utoipa::path(post, path = "/v1/requests", tag = "application",
    summary = "Ask for a step-up before a high-risk action",
    security(("apiKey" = [])),
    request_body = CreateRequest,
    responses(
        (status = 201, description = "Step-up needed; the request is pending (`outcome: step_up`)", body = StepUpAnswer),
        (status = 200, description = "Either the same request created earlier under this idempotency key, or `{\"outcome\":\"not_required\"}` when policy needs no step-up", body = StepUpAnswer),
        (status = 400, description = "Malformed body (`malformed_json`, `unknown_field`, `missing_field`, `duplicate_field`, `invalid_value`, `invalid_context`, `invalid_idempotency_key`, `body_too_large`)"),
        (status = 401, description = "Missing, unknown or revoked API key (`unauthorized`)"),
        (status = 403, description = "`policy_forbids`, `requester_frozen`, or `requester_not_allowed` (outside this API key's requester patterns)"),
        (status = 409, description = "`idempotency_conflict`: the key was used for a different body"),
        (status = 413, description = "`body_too_large`: over `limits.max_body_bytes`"),
        (status = 415, description = "`unsupported_media_type`: send `Content-Type: application/json`"),
        (status = 422, description = "Invalid transaction (`unknown_action`, `missing_member`, `unbound_session`, `requester_not_canonical`, amount/field codes, `policy_input`)"),
        (status = 429, description = "`too_many_pending` (the requester's cap), `api_key_pending_cap`, `requester_rate_limited`, `api_key_rate_limited` or `rate_limited`; see `Retry-After`"),
    ))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    AppKey(key): AppKey,
    StrictJson(body): StrictJson<CreateRequest>,
) -> Response {
    match request::create(&state, &key, &body).await {
        Ok(Created::NotRequired) => (
            StatusCode::OK,
            Json(StepUpAnswer::<Transaction>::NotRequired),
        )
            .into_response(),
        Ok(Created::New(r)) => (StatusCode::CREATED, Json(view(&r))).into_response(),
        Ok(Created::Existing(r)) => (StatusCode::OK, Json(view(&r))).into_response(),
        Err(refused) => refusal_response(refused),
    }
}

/// The answer to a request that was not created: a problem document (rate limits with their
/// `Retry-After`).
fn refusal_response(refused: Refused) -> Response {
    let detail = refused.to_string();
    let (status, code) = match refused {
        Refused::InvalidIdempotencyKey => {
            (StatusCode::BAD_REQUEST, ProblemCode::InvalidIdempotencyKey)
        }
        Refused::InvalidContext(_) => (StatusCode::BAD_REQUEST, ProblemCode::InvalidContext),
        Refused::RequesterNotCanonical(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::RequesterNotCanonical,
        ),
        Refused::RequesterNotAllowed => (StatusCode::FORBIDDEN, ProblemCode::RequesterNotAllowed),
        Refused::UnboundSession => (
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::UnboundSession,
        ),
        Refused::UnknownAction(_) => (StatusCode::UNPROCESSABLE_ENTITY, ProblemCode::UnknownAction),
        Refused::MissingMember { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, ProblemCode::MissingMember)
        }
        Refused::Invalid(e) => return unprocessable(&e).into_response(),
        Refused::PolicyInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, ProblemCode::PolicyInput),
        Refused::PolicyForbids(_) => (StatusCode::FORBIDDEN, ProblemCode::PolicyForbids),
        Refused::RequesterFrozen(_) => (StatusCode::FORBIDDEN, ProblemCode::RequesterFrozen),
        Refused::TooManyPending => (StatusCode::TOO_MANY_REQUESTS, ProblemCode::TooManyPending),
        Refused::ApiKeyPendingCap => (StatusCode::TOO_MANY_REQUESTS, ProblemCode::ApiKeyPendingCap),
        Refused::IdempotencyConflict => (StatusCode::CONFLICT, ProblemCode::IdempotencyConflict),
        Refused::ApiKeyRateLimited(limited) => return limited.into_response(),
        Refused::RequesterRateLimited(limited) => return limited.into_response(),
        Refused::Fault(fault) => return internal(fault).into_response(),
    };
    Problem::new(status, code, detail).into_response()
}

/// `GET /v1/requests/{id}?wait=N` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds to wait (at most 60) for a pending request to change before answering.
    #[serde(default)]
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u64>,
}

/// The longest long-poll.
const MAX_WAIT_SECONDS: u64 = 60;

/// `GET /v1/requests/{id}`: only requests of the caller's audience are visible. With `?wait=N`
/// a pending request is answered when it changes, or after N seconds.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "application",
    summary = "Read a request; `?wait=N` long-polls up to N (≤ 60) seconds for a change",
    security(("apiKey" = [])),
    params(RequestId, WaitQuery),
    responses(
        (status = 200, description = "The request", body = StepUpAnswer),
        RequestCallErrors,
    ))]
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
                Ok(Ok(Change::Request(changed))) if changed != id => continue,
                // Our request changed, or we lagged or the feed resynced and we cannot tell:
                // read it again.
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

/// `GET /v1/requests/{id}/decision`: the signed decision, once there is one.
#[utoipa::path(get, path = "/v1/requests/{id}/decision", tag = "application",
    summary = "The signed decision token once approved or denied",
    security(("apiKey" = [])),
    params(RequestId),
    responses(
        (status = 200, description = "Decision", body = DecisionAnswer),
        (status = 409, description = "`not_decided`: still pending, cancelled or expired"),
        RequestCallErrors,
    ))]
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
#[utoipa::path(post, path = "/v1/requests/{id}/redeem", tag = "application",
    summary = "Consume an approved decision exactly once, before its execution deadline",
    security(("apiKey" = [])),
    params(RequestId),
    responses(
        (status = 200, description = "Redeemed by this call", body = RedeemAnswer),
        (status = 409, description = "`already_redeemed`, `not_approved`, or `requester_frozen` (reported; audited as `decision.refused`)"),
        (status = 410, description = "`decision_expired`: the execution deadline passed"),
        RequestCallErrors,
    ))]
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
#[utoipa::path(post, path = "/v1/requests/{id}/outcome", tag = "application",
    summary = "Report how the executed action went; closes the audit chain for the request",
    security(("apiKey" = [])),
    params(RequestId),
    request_body = OutcomeReport,
    responses(
        (status = 200, description = "New state: `executed` or `failed`", body = RequestStatus),
        (status = 409, description = "`wrong_state`: not redeemed"),
        (status = 413, description = "`body_too_large`: over `limits.max_body_bytes`"),
        (status = 415, description = "`unsupported_media_type`: send `Content-Type: application/json`"),
        RequestCallErrors,
    ))]
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
#[utoipa::path(post, path = "/v1/requests/{id}/cancel", tag = "application",
    summary = "Withdraw a pending request",
    security(("apiKey" = [])),
    params(RequestId),
    responses(
        (status = 200, description = "Cancelled: `cancelled`", body = RequestStatus),
        (status = 409, description = "`wrong_state`: not pending"),
        RequestCallErrors,
    ))]
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
