//! The HTTP API: routes, shared state, and the extractors that turn untrusted requests into
//! typed values or precise problems.

mod approver;
mod extract;
mod public;
mod requests;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::keys::Keys;
use crate::policy::PolicyEngine;
use crate::store::Store;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// What every handler can reach.
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Cedar policies.
    pub policy: PolicyEngine,
    /// The action catalog.
    pub catalog: Catalog,
    /// Signing keys.
    pub keys: Keys,
    /// Configuration.
    pub config: Config,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Per-requester limits on request creation.
    pub limits: crate::ratelimit::RequesterLimits,
    /// Request ids whose state changed, for long-polls and approver streams.
    pub changes: tokio::sync::broadcast::Sender<String>,
    /// The newest signed audit checkpoint, pushed to approver streams (approvers keep the
    /// newest they saw and refuse one that goes backwards).
    pub checkpoint: tokio::sync::watch::Sender<Option<countersign_core::audit::Checkpoint>>,
    /// The FIDO metadata that attestations are verified against, if configured.
    pub metadata: Option<Arc<crate::metadata::Metadata>>,
}

impl AppState {
    /// Announces that a request changed (after its transaction committed).
    pub fn changed(&self, request_id: &str) {
        // No receiver is not an error: nobody is waiting.
        let _ = self.changes.send(request_id.to_owned());
    }
}

/// The application's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.limits.max_body_bytes;
    Router::new()
        .route("/health", get(public::health))
        .route("/metrics", get(public::metrics))
        .route("/openapi.json", get(public::openapi))
        .route("/v1/info", get(public::info))
        .route("/.well-known/jwks.json", get(public::jwks))
        .route("/v1/keys/rollovers", get(public::key_rollovers))
        .route("/v1/requests", post(requests::create))
        .route("/v1/requests/{id}", get(requests::get))
        .route("/v1/requests/{id}/decision", get(requests::decision))
        .route("/v1/requests/{id}/redeem", post(requests::redeem))
        .route("/v1/requests/{id}/outcome", post(requests::outcome))
        .route("/v1/requests/{id}/cancel", post(requests::cancel))
        .route("/v1/enroll", post(approver::enroll))
        .route("/v1/approver/requests", get(approver::pending))
        .route("/v1/approver/stream", get(approver::stream))
        .route(
            "/v1/approver/requests/{id}/approve",
            post(approver::approve),
        )
        .route("/v1/approver/requests/{id}/deny", post(approver::deny))
        .route("/v1/approver/requests/{id}/report", post(approver::report))
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .fallback(public::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    /// The committed OpenAPI document lists exactly the routes this module serves, with the
    /// same methods.
    #[test]
    fn openapi_document_matches_the_router() {
        let doc: serde_json::Value = serde_json::from_str(super::public::OPENAPI).unwrap();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.push((path.clone(), method.clone()));
            }
        }
        let source = include_str!("mod.rs");
        let mut served: Vec<(String, String)> = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let Some(open) = rest.find('"') else { break };
            let Some(len) = rest[open + 1..].find('"') else {
                break;
            };
            let path = &rest[open + 1..open + 1 + len];
            if !path.starts_with('/') {
                continue;
            }
            let after = rest[open + 2 + len..].trim_start_matches([',', ' ', '\n']);
            let method = after.split('(').next().unwrap().trim();
            served.push((path.to_owned(), method.to_owned()));
        }
        documented.sort();
        served.sort();
        assert!(served.len() >= 17, "{served:?}");
        assert_eq!(documented, served);
    }
}
