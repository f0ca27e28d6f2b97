//! The HTTP API: routes, shared state, and the extractors that turn untrusted requests into
//! typed values or precise problems.

mod approver;
mod extract;
pub mod openapi;
mod public;
mod requests;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::keys::Keys;
use crate::policy::PolicyEngine;
use crate::store::Store;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    /// Requests whose state changed, for long-polls and approver streams.
    pub changes: crate::changes::Changes,
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
        let _ = self
            .changes
            .send(crate::changes::Change::Request(request_id.to_owned()));
    }
}

/// Every route, each with its OpenAPI operation: the router and the document come from this
/// one list, so they cannot disagree.
fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(public::health))
        .routes(routes!(public::metrics))
        .routes(routes!(public::openapi))
        .routes(routes!(public::info))
        .routes(routes!(public::jwks))
        .routes(routes!(public::key_rollovers))
        .routes(routes!(requests::create))
        .routes(routes!(requests::get))
        .routes(routes!(requests::decision))
        .routes(routes!(requests::redeem))
        .routes(routes!(requests::outcome))
        .routes(routes!(requests::cancel))
        .routes(routes!(approver::enroll))
        .routes(routes!(approver::pending))
        .routes(routes!(approver::stream))
        .routes(routes!(approver::approve))
        .routes(routes!(approver::deny))
        .routes(routes!(approver::report))
}

/// The application's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.limits.max_body_bytes;
    let (routes, _document) = routes().split_for_parts();
    routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .fallback(public::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
