//! Unauthenticated endpoints: health, server info, JWKS.

use super::AppState;
use crate::problem::{Problem, ProblemCode};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use countersign_core::b64;
use countersign_core::wire::approver::{ServerInfo, ServerKey};
use std::sync::Arc;

/// `GET /health`.
pub async fn health(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, Problem> {
    state.store.audit_head().await.map_err(|e| {
        tracing::error!(error = %e, "health check: database unavailable");
        Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            ProblemCode::Unavailable,
            "database unavailable",
        )
    })?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}

/// `GET /v1/info`: what an approver pins at enrollment.
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
pub async fn jwks(State(state): State<Arc<AppState>>) -> Json<countersign_core::jwk::Jwks> {
    Json(state.keys.published.to_jwks())
}

/// `GET /v1/keys/rollovers`: each rotation's endorsement of the new key by the previous one,
/// oldest first, so an approver can follow from the key it pinned to the one that signs now.
pub async fn key_rollovers(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<countersign_core::rollover::KeyRollover>>, Problem> {
    let rollovers = state.store.key_rollovers().await.map_err(|e| {
        tracing::error!(error = %e, "key rollovers: database unavailable");
        Problem::internal()
    })?;
    Ok(Json(rollovers))
}

/// `GET /metrics`: Prometheus text exposition.
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
        state.metrics.render(head.seq, state.store.write_stats()),
    ))
}

/// The OpenAPI document, committed as `crates/countersign-server/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// `GET /openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Every unknown path.
pub async fn not_found() -> Problem {
    Problem::not_found("no such endpoint")
}
