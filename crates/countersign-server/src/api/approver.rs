//! The approver's endpoints: enrollment with a one-time code, then calls signed by the device
//! key (see `countersign_core::device_auth`): the pending list, approve, deny.

use super::extract::{parse_json, RawBody};
use super::openapi::{AnswerResponses, DeviceCallErrors, RequestId};
use super::AppState;
use crate::changes::Change;
use crate::clock;
use crate::lifecycle;
use crate::problem::{Problem, ProblemCode};
use crate::service::approval::{self, Refused};
use crate::service::enrollment;
use crate::store::{ApprovalRecord, ApproverRecord, NonceUse};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Json;
use countersign_core::device_auth::{self, DeviceAuth};
use countersign_core::jwk::VerifyingKey;
use countersign_core::push::{ActionDisplay, CountedApproval, PushedRequest, SignedRequest};
use countersign_core::wire::approver::{ApprovalAnswer, AssertionBody, EnrollBody, Enrolled};
use countersign_core::wire::Verdict;
use countersign_core::{Decision, Timestamp};
use std::sync::Arc;

/// Largest clock difference accepted on a signed device request, in seconds.
const MAX_SKEW_SECONDS: i64 = 60;

fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "approver request failed");
    Problem::internal()
}

fn forbidden(code: ProblemCode, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, code, detail)
}

fn conflict(code: ProblemCode, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::CONFLICT, code, detail)
}

/// `POST /v1/enroll`: redeems a one-time code, registering the device key and a FIDO credential.
#[utoipa::path(post, path = "/v1/enroll", tag = "approver",
    summary = "Redeem a one-time enrollment code: register the device key and a FIDO credential (attestation bound to the code and device key)",
    request_body = EnrollBody,
    responses(
        (status = 200, description = "Enrolled", body = Enrolled),
        (status = 400, description = "Malformed body or attestation (`malformed_json`, `invalid_base64`, `invalid_device_key`, `invalid_device_name`, ...)"),
        (status = 403, description = "`invalid_enrollment_code` (unknown, used or expired), `authenticator_not_allowed`, `attestation_not_verified` (an allow-listed model whose attestation does not verify against the FIDO metadata), `demo_key_not_allowed`, `approver_disabled`, or a registration check"),
        (status = 409, description = "`already_enrolled`"),
        (status = 413, description = "`body_too_large`: over `limits.max_body_bytes`"),
        (status = 429, description = "Rate limited (`rate_limited`)"),
    ))]
pub async fn enroll(
    State(state): State<Arc<AppState>>,
    RawBody(body): RawBody,
) -> Result<Json<Enrolled>, Problem> {
    let body: EnrollBody = parse_json(&body)?;
    enrollment::enroll(&state, &body)
        .await
        .map(Json)
        .map_err(enrollment_problem)
}

/// The problem document for a refused enrollment.
fn enrollment_problem(refused: enrollment::Refused) -> Problem {
    use enrollment::Refused as R;
    let detail = refused.to_string();
    match refused {
        R::InvalidCode => forbidden(ProblemCode::InvalidEnrollmentCode, detail),
        R::InvalidDeviceName => Problem::bad_request(ProblemCode::InvalidDeviceName, detail),
        R::InvalidBase64(_) => Problem::bad_request(ProblemCode::InvalidBase64, detail),
        R::DeviceKeyLength | R::DeviceKeyInvalid => {
            Problem::bad_request(ProblemCode::InvalidDeviceKey, detail)
        }
        R::Registration(e) => Problem::bad_request(ProblemCode::check(e.code()), detail),
        R::DemoKeyNotAllowed => forbidden(ProblemCode::DemoKeyNotAllowed, detail),
        R::AuthenticatorNotAllowed(_) => forbidden(ProblemCode::AuthenticatorNotAllowed, detail),
        R::AttestationNotVerified(_) => forbidden(ProblemCode::AttestationNotVerified, detail),
        R::ApproverDisabled => forbidden(ProblemCode::ApproverDisabled, detail),
        R::AlreadyEnrolled => conflict(ProblemCode::AlreadyEnrolled, detail),
        R::Fault(fault) => internal(fault),
    }
}

/// The device and approver behind a signed request.
struct Caller {
    approver: ApproverRecord,
    device_id: String,
}

/// How often an open event stream checks that its approver and device are still enabled, when
/// no event makes it check sooner.
const STREAM_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether the approver and the device a stream was opened with are both still enabled (a
/// disable by the admin CLI is written to the database by another process). A failed read
/// counts as disabled: the stream ends, and the client reconnects through authentication.
async fn still_enabled(state: &AppState, approver_id: &str, device_id: &str) -> bool {
    let device = state.store.device(device_id).await;
    let approver = state.store.approver(approver_id).await;
    matches!(device, Ok(Some(d)) if d.disabled_at.is_none())
        && matches!(approver, Ok(Some(a)) if a.disabled_at.is_none())
}

/// Verifies a `Countersign-Device` signature over method, path, time, nonce and body.
async fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, Problem> {
    let unauthorized = |detail: &str| Problem::unauthorized(detail.to_owned());
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized("missing Countersign-Device authorization"))?;
    let auth = DeviceAuth::parse(header).map_err(|e| unauthorized(&e.to_string()))?;
    let now = clock::now().map_err(internal)?.unix();
    if (now - auth.timestamp).abs() > MAX_SKEW_SECONDS {
        return Err(unauthorized(
            "request timestamp outside the allowed clock skew",
        ));
    }
    let device = state
        .store
        .device(&auth.device_id)
        .await
        .map_err(internal)?;
    let refused = || unauthorized("unknown or disabled device, or bad signature");
    let device = device
        .filter(|d| d.disabled_at.is_none())
        .ok_or_else(refused)?;
    let key = VerifyingKey::from_bytes(&device.device_key).map_err(internal)?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let signed =
        device_auth::signing_input(method.as_str(), path, auth.timestamp, &auth.nonce, body);
    key.verify(&signed, &auth.signature)
        .map_err(|_| refused())?;
    // Checked after the signature, so nobody can burn another device's nonces, and stored on
    // its own before the call writes anything: a replay is refused alone, and never inside a
    // group commit beside other apps' writes, which its refusal would otherwise roll back.
    let nonce = NonceUse {
        device_id: device.id.clone(),
        nonce: auth.nonce.clone(),
        expires_at: auth.timestamp + 2 * MAX_SKEW_SECONDS,
    };
    use_nonce(state, &nonce).await?;
    let approver = state
        .store
        .approver(&device.approver_id)
        .await
        .map_err(internal)?;
    let approver = approver
        .filter(|a| a.disabled_at.is_none())
        .ok_or_else(|| forbidden(ProblemCode::ApproverDisabled, "this approver is disabled"))?;
    Ok(Caller {
        approver,
        device_id: device.id,
    })
}

/// Stores a nonce on its own; refuses a replay.
async fn use_nonce(state: &AppState, nonce: &NonceUse) -> Result<(), Problem> {
    let now = clock::now().map_err(internal)?.unix();
    if state.store.use_nonce(nonce, now).await.map_err(internal)? {
        Ok(())
    } else {
        Err(replayed())
    }
}

fn replayed() -> Problem {
    Problem::unauthorized("replayed request: nonce already used")
}

/// `GET /v1/approver/requests`: the pending requests this approver may decide, server-signed.
#[utoipa::path(get, path = "/v1/approver/requests", tag = "approver",
    summary = "Pending requests this approver may act on, each signed by the server",
    security(("device" = [])),
    responses(
        (status = 200, description = "Signed requests", body = Vec<SignedRequest>),
        DeviceCallErrors,
    ))]
pub async fn pending(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Vec<SignedRequest>>, Problem> {
    let caller = authenticate(&state, &method, &uri, &headers, &body).await?;
    let now = clock::now().map_err(internal)?;
    let mut out = Vec::new();
    let listed = state.config.limits.max_pending_listed;
    for request in state
        .store
        .pending_requests(now.unix(), listed)
        .await
        .map_err(internal)?
    {
        let tx = &request.transaction;
        if now > tx.approve_by
            || lifecycle::role_for(tx, &caller.approver.id, &caller.approver.groups).is_err()
        {
            continue;
        }
        let approvals = state.store.approvals(&tx.id).await.map_err(internal)?;
        if approvals
            .iter()
            .any(|a| a.approver_id == caller.approver.id)
        {
            continue;
        }
        out.push(sign(&state, &request, &approvals)?);
    }
    Ok(Json(out))
}

/// The catalog's wording for an action; an action missing from the catalog (it was removed
/// after the request was made) is shown by its id.
fn display_for(catalog: &crate::catalog::Catalog, action: &str) -> ActionDisplay {
    match catalog.get(action) {
        Some(a) => ActionDisplay {
            title: a.title.clone(),
            template: a.display.clone(),
        },
        None => ActionDisplay {
            title: action.to_owned(),
            template: format!("{action} on {{object}}"),
        },
    }
}

fn sign(
    state: &AppState,
    request: &crate::store::RequestRecord,
    approvals: &[ApprovalRecord],
) -> Result<SignedRequest, Problem> {
    let pushed = PushedRequest {
        transaction: request.transaction.clone(),
        digest: request.digest,
        state: request.state.as_str().to_owned(),
        approvals: approvals
            .iter()
            .filter(|a| a.decision == Decision::Approve)
            .map(|a| {
                Ok(CountedApproval {
                    approver_id: a.approver_id.clone(),
                    at: Timestamp::from_unix(a.created_at)
                        .ok_or_else(|| internal("approval time out of range"))?,
                    // Only a transaction with several groups needs them, and approvers that
                    // predate version 2 refuse members they do not know.
                    groups: if request.transaction.requirements.version() >= 2 {
                        a.groups.clone()
                    } else {
                        Vec::new()
                    },
                })
            })
            .collect::<Result<_, Problem>>()?,
        display: display_for(&state.catalog, &request.transaction.action),
    };
    SignedRequest::sign(pushed, &state.keys.active).map_err(internal)
}

/// `POST /v1/approver/requests/{id}/approve`.
#[utoipa::path(post, path = "/v1/approver/requests/{id}/approve",
    tag = "approver",
    summary = "Approve with a WebAuthn assertion over the approval statement (decision `approve`)",
    security(("device" = [])),
    params(RequestId),
    request_body = AssertionBody,
    responses(AnswerResponses, DeviceCallErrors))]
pub async fn approve(
    state: State<Arc<AppState>>,
    path: Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<ApprovalAnswer>, Problem> {
    decide(state, path, method, uri, headers, body, Verdict::Approve).await
}

/// `POST /v1/approver/requests/{id}/deny`.
#[utoipa::path(post, path = "/v1/approver/requests/{id}/deny",
    tag = "approver",
    summary = "Deny with a WebAuthn assertion over the approval statement (decision `deny`)",
    security(("device" = [])),
    params(RequestId),
    request_body = AssertionBody,
    responses(AnswerResponses, DeviceCallErrors))]
pub async fn deny(
    state: State<Arc<AppState>>,
    path: Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<ApprovalAnswer>, Problem> {
    decide(state, path, method, uri, headers, body, Verdict::Deny).await
}

/// `POST /v1/approver/requests/{id}/report`: a denial signed by the key like any other, with a
/// required reason, that also freezes the requester (cancelling their other pending requests)
/// and calls the configured webhook.
#[utoipa::path(post, path = "/v1/approver/requests/{id}/report",
    tag = "approver",
    summary = "Report as suspicious: a denial (assertion over decision `deny`) with a required reason; freezes the requester, cancels their other pending requests and calls the configured webhook",
    security(("device" = [])),
    params(RequestId),
    request_body = AssertionBody,
    responses(AnswerResponses, DeviceCallErrors))]
pub async fn report(
    state: State<Arc<AppState>>,
    path: Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<ApprovalAnswer>, Problem> {
    decide(state, path, method, uri, headers, body, Verdict::Report).await
}

async fn decide(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
    verdict: Verdict,
) -> Result<Json<ApprovalAnswer>, Problem> {
    let caller = authenticate(&state, &method, &uri, &headers, &raw).await?;
    decide_as(&state, &id, &caller, &raw, verdict).await
}

/// Checks and records one approver's answer; the caller is authenticated.
async fn decide_as(
    state: &Arc<AppState>,
    id: &str,
    caller: &Caller,
    raw: &[u8],
    verdict: Verdict,
) -> Result<Json<ApprovalAnswer>, Problem> {
    let body: AssertionBody = parse_json(raw)?;
    let answerer = approval::Answerer {
        approver: &caller.approver,
        device_id: &caller.device_id,
    };
    approval::answer(state, id, answerer, body, verdict)
        .await
        .map(Json)
        .map_err(refusal_problem)
}

/// The problem document for a refused answer.
fn refusal_problem(refused: Refused) -> Problem {
    let detail = refused.to_string();
    match refused {
        Refused::ReasonRequired => Problem::bad_request(ProblemCode::ReasonRequired, detail),
        Refused::InvalidReason => Problem::bad_request(ProblemCode::InvalidReason, detail),
        Refused::InvalidBase64(_) => Problem::bad_request(ProblemCode::InvalidBase64, detail),
        Refused::NoSuchRequest(_) => Problem::not_found(detail),
        Refused::Ineligible(lifecycle::Ineligible::OwnRequest) => {
            forbidden(ProblemCode::OwnRequest, detail)
        }
        Refused::Ineligible(lifecycle::Ineligible::NotInGroup) => {
            forbidden(ProblemCode::NotEligible, detail)
        }
        Refused::ApprovalClosed(_) => conflict(ProblemCode::ApprovalExpired, detail),
        Refused::NotPending(_) => conflict(ProblemCode::NotPending, detail),
        Refused::AlreadyDecided => conflict(ProblemCode::AlreadyDecided, detail),
        Refused::UnknownCredential => forbidden(ProblemCode::UnknownCredential, detail),
        Refused::CredentialRevoked => forbidden(ProblemCode::CredentialRevoked, detail),
        Refused::CounterRegression { stored, received } => forbidden(
            ProblemCode::CounterRegression,
            counter_regression_detail(stored, received),
        ),
        Refused::Assertion(e) => forbidden(ProblemCode::check(e.code()), detail),
        Refused::CallerDisabled => caller_disabled(),
        Refused::Fault(fault) => internal(fault),
    }
}

/// What an approver is told when a key's signature counter did not move forward. A cloned
/// key does this, and so do two approvals signed by one key that reach the server in the
/// opposite order (two requests answered at nearly the same moment): the server cannot tell
/// them apart, so it fails closed either way (docs/security.md).
fn counter_regression_detail(stored: u32, received: u32) -> String {
    format!(
        "this security key's signature counter went from {stored} to {received}: either the \
         key was cloned, or two approvals signed with it arrived out of order. The server \
         cannot tell which, so the credential is now refused. Nothing was approved; enroll the \
         key again (or another one) after checking it, and answer one request at a time."
    )
}

/// The answer when the approver or device was disabled while the call was under way.
fn caller_disabled() -> Problem {
    forbidden(
        ProblemCode::ApproverDisabled,
        "this approver or device was disabled; nothing was recorded",
    )
}

/// A signed audit checkpoint as an SSE event.
fn checkpoint_event(
    checkpoint: &countersign_core::audit::Checkpoint,
) -> Result<axum::response::sse::Event, Problem> {
    axum::response::sse::Event::default()
        .event("checkpoint")
        .json_data(checkpoint)
        .map_err(internal)
}

/// The approver's view of one request as an SSE event, if the approver may act on it.
async fn event_for(
    state: &AppState,
    approver: &ApproverRecord,
    request_id: &str,
) -> Result<Option<axum::response::sse::Event>, Problem> {
    let Some(request) = state
        .store
        .request_by_id(request_id)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    if lifecycle::role_for(&request.transaction, &approver.id, &approver.groups).is_err() {
        return Ok(None);
    }
    let approvals = state.store.approvals(request_id).await.map_err(internal)?;
    let signed = sign(state, &request, &approvals)?;
    let head = state.store.audit_head().await.map_err(internal)?;
    let event = axum::response::sse::Event::default()
        .event("request")
        .id(head.seq.to_string())
        .json_data(&signed)
        .map_err(internal)?;
    Ok(Some(event))
}

/// `GET /v1/approver/stream`: server-sent events of new and changed requests this approver
/// may act on, each server-signed. On connect it sends every pending request (a full
/// resynchronisation); with `Last-Event-ID` it also replays requests changed since then.
#[utoipa::path(get, path = "/v1/approver/stream", tag = "approver",
    summary = "Server-sent events: `request` events (data = SignedRequest, id = audit sequence) for new and changed requests, `resync` after missed changes, keep-alive comments; `Last-Event-ID` replays changes since that id",
    security(("device" = [])),
    params(("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]+$", description = "The id of the last event this approver received")),
    responses(
        (status = 200, description = "Event stream", body = String, content_type = "text/event-stream"),
        (status = 400, description = "`invalid_last_event_id`"),
        DeviceCallErrors,
    ))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    Problem,
> {
    use futures_util::StreamExt;
    let caller = authenticate(&state, &method, &uri, &headers, &body).await?;
    let last_seen: Option<u64> = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    Problem::bad_request(
                        ProblemCode::InvalidLastEventId,
                        "Last-Event-ID must be an event id this stream sent",
                    )
                })?,
        ),
    };
    let changes = state.changes.subscribe();
    let now = clock::now().map_err(internal)?.unix();
    let mut ids: Vec<String> = state
        .store
        .pending_requests(now, state.config.limits.max_pending_listed)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|r| r.transaction.id)
        .collect();
    if let Some(after) = last_seen {
        for entry in state
            .store
            .audit_entries(after, 10_000)
            .await
            .map_err(internal)?
        {
            if let Some(id) = entry.event.request_id {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    let mut initial = Vec::new();
    for id in &ids {
        if let Some(event) = event_for(&state, &caller.approver, id).await? {
            initial.push(Ok(event));
        }
    }
    // The newest signed audit checkpoint, now and whenever a new one is made.
    let mut checkpoints = state.checkpoint.subscribe();
    if let Some(checkpoint) = checkpoints.borrow_and_update().clone() {
        initial.push(Ok(checkpoint_event(&checkpoint)?));
    }
    let keepalive_seconds = state.config.limits.stream_keepalive_seconds;
    let mut recheck = tokio::time::interval(STREAM_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The stream ends as soon as its approver or device is disabled: checked before every
    // event it sends and every STREAM_RECHECK while idle.
    let live = futures_util::stream::unfold(
        (changes, state, caller, recheck, checkpoints),
        |(mut changes, state, caller, mut recheck, mut checkpoints)| async move {
            loop {
                let change = tokio::select! {
                    change = changes.recv() => Some(change),
                    made = checkpoints.changed() => {
                        if made.is_err() {
                            return None;
                        }
                        None
                    }
                    _ = recheck.tick() => {
                        if still_enabled(&state, &caller.approver.id, &caller.device_id).await {
                            continue;
                        }
                        return None;
                    }
                };
                if !still_enabled(&state, &caller.approver.id, &caller.device_id).await {
                    return None;
                }
                let event = match change {
                    None => {
                        let newest = checkpoints.borrow_and_update().clone();
                        match newest.as_ref().map(checkpoint_event) {
                            Some(Ok(event)) => event,
                            _ => continue,
                        }
                    }
                    Some(Ok(Change::Request(id))) => {
                        match event_for(&state, &caller.approver, &id).await {
                            Ok(Some(event)) => event,
                            Ok(None) | Err(_) => continue,
                        }
                    }
                    // Missed changes: tell the client to resynchronise its list.
                    Some(Ok(Change::Resync))
                    | Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                        axum::response::sse::Event::default()
                            .event("resync")
                            .data("{}")
                    }
                    Some(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
                };
                return Some((Ok(event), (changes, state, caller, recheck, checkpoints)));
            }
        },
    );
    let stream = futures_util::stream::iter(initial).chain(live);
    let keepalive = std::time::Duration::from_secs(keepalive_seconds.max(1));
    Ok(axum::response::sse::Sse::new(stream)
        .keep_alive(axum::response::sse::KeepAlive::new().interval(keepalive)))
}
