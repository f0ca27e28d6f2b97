//! Prometheus metrics at `/metrics` (OpenMetrics text): HTTP traffic per route and status,
//! latency, every refusal by its problem code, and the approval lifecycle. Labels hold only
//! route templates, codes and states, never ids, amounts or people.

use crate::problem::ProblemLabel;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

/// The server's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    http: Family<HttpLabels, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    problems: Family<CodeLabel, Counter>,
    lifecycle: Family<OutcomeLabel, Counter>,
    audit_head: Gauge,
}

impl Metrics {
    /// Registers every metric, the storage backend's own among them.
    pub fn new(store: &dyn crate::store::Store) -> Self {
        let mut registry = Registry::with_prefix("countersign");
        let http = Family::<HttpLabels, Counter>::default();
        let latency = Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let problems = Family::<CodeLabel, Counter>::default();
        let lifecycle = Family::<OutcomeLabel, Counter>::default();
        let audit_head = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "problems",
            "Refused requests by problem code",
            problems.clone(),
        );
        registry.register(
            "lifecycle_events",
            "Step-up lifecycle events: created, not_required, forbidden, approval, denial, report, approved, denied, redeemed, executed, failed, cancelled",
            lifecycle.clone(),
        );
        registry.register(
            "audit_head_seq",
            "Sequence number of the newest audit entry, at the last scrape",
            audit_head.clone(),
        );
        store.register_metrics(&mut registry);
        Metrics {
            registry,
            http,
            latency,
            problems,
            lifecycle,
            audit_head,
        }
    }

    /// Counts one lifecycle event.
    pub fn event(&self, outcome: &str) {
        self.lifecycle
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The text exposition, with the audit head as of now.
    pub fn render(&self, audit_head_seq: u64) -> String {
        self.audit_head
            .set(i64::try_from(audit_head_seq).unwrap_or(i64::MAX));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Middleware on matched routes: counts and times each request and its problem code.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .latency
        .get_or_create(&RouteLabel {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http
        .get_or_create(&HttpLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    if let Some(ProblemLabel(code)) = response.extensions().get::<ProblemLabel>() {
        metrics
            .problems
            .get_or_create(&CodeLabel {
                code: code.to_string(),
            })
            .inc();
    }
    response
}
