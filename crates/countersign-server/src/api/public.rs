//! Unauthenticated endpoints: health, server info, JWKS.

use super::AppState;
use crate::problem::{Problem, ProblemCode};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use countersign_core::b64;
use countersign_core::jwk::Jwks;
use countersign_core::rollover::KeyRollover;
use countersign_core::wire::approver::{ServerInfo, ServerKey};
use countersign_core::wire::Health;
use std::sync::Arc;

/// `GET /health`.
#[utoipa::path(get, path = "/health", tag = "public",
    summary = "Liveness and database reachability",
    responses(
        (status = 200, description = "Up", body = Health),
        (status = 503, description = "Database unavailable (`unavailable`)"),
    ))]
pub async fn health(State(state): State<Arc<AppState>>) -> Result<Json<Health>, Problem> {
    state.store.audit_head().await.map_err(|e| {
        tracing::error!(error = %e, "health check: database unavailable");
        Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            ProblemCode::Unavailable,
            "database unavailable",
        )
    })?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

/// `GET /v1/info`: what an approver pins at enrollment.
#[utoipa::path(get, path = "/v1/info", tag = "public",
    summary = "RP id, origin and the server key an approver pins at enrollment",
    responses((status = 200, description = "Server info", body = ServerInfo)))]
pub async fn info(State(state): State<Arc<AppState>>) -> Json<ServerInfo> {
    let key = state.keys.active.verifying_key();
    Json(ServerInfo {
        name: "countersign".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        rp_id: state.config.rp_id.clone(),
        origin: state.config.origin.clone(),
        server_key: ServerKey {
            kid: key.kid().to_owned(),
            alg: Some("EdDSA".into()),
            x: b64::encode(key.as_bytes()),
        },
    })
}

/// `GET /.well-known/jwks.json`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "public",
    summary = "Keys that verify decision tokens, pushed requests, checkpoints and webhooks (RFC 7517, OKP Ed25519)",
    responses((status = 200, description = "JWKS", body = Jwks)))]
pub async fn jwks(State(state): State<Arc<AppState>>) -> Json<Jwks> {
    Json(state.keys.published.to_jwks())
}

/// `GET /v1/keys/rollovers`: each rotation's endorsement of the new key by the previous one,
/// oldest first, so an approver can follow from the key it pinned to the one that signs now.
#[utoipa::path(get, path = "/v1/keys/rollovers", tag = "public",
    summary = "Each signing-key rotation's endorsement of the new key by the previous one (docs/protocol.md, key rollover), oldest first",
    responses(
        (status = 200, description = "Endorsements", body = Vec<KeyRollover>),
        (status = 500, description = "Database unavailable (`internal`)"),
    ))]
pub async fn key_rollovers(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<KeyRollover>>, Problem> {
    let rollovers = state.store.key_rollovers().await.map_err(|e| {
        tracing::error!(error = %e, "key rollovers: database unavailable");
        Problem::internal()
    })?;
    Ok(Json(rollovers))
}

/// `GET /metrics`: Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "public",
    summary = "Prometheus metrics (OpenMetrics text)",
    responses(
        (status = 200, description = "Metrics", body = String, content_type = "application/openmetrics-text"),
        (status = 500, description = "Database unavailable (`internal`)"),
    ))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, Problem> {
    let head = state.store.audit_head().await.map_err(|e| {
        tracing::error!(error = %e, "metrics: database unavailable");
        Problem::internal()
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(head.seq),
    ))
}

/// `GET /openapi.json`: the document generated from the routes and the wire types.
#[utoipa::path(get, path = "/openapi.json", tag = "public",
    summary = "This document",
    responses(
        (status = 200, description = "OpenAPI 3.1", body = Object),
        (status = 500, description = "The document could not be written (`internal`)"),
    ))]
pub async fn openapi() -> Result<impl IntoResponse, Problem> {
    let json = super::openapi::document_json().ok_or_else(Problem::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json))
}

/// Every unknown path.
pub async fn not_found() -> Problem {
    Problem::not_found("no such endpoint")
}
