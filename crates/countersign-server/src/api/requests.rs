//! The protected application's request endpoints.

use super::extract::{AppKey, StrictJson};
use super::AppState;
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
