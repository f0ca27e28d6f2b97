//! Rate limits, so nobody can flood approvers with prompts (MFA fatigue) or the server with
//! work: per client IP on every endpoint (`tower_governor`, per instance: behind a load
//! balancer, limit per client there too), and per requester and per API key on request
//! creation (`governor` in this process, or the database's shared quotas when several
//! instances share it). All refuse with a 429 problem and a `Retry-After` header.

use crate::config::Limits;
use crate::problem::{Problem, ProblemCode};
use crate::store::{SharedQuotas, StoreError};
use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::PeerIpKeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

/// A quota of `per_minute` with bursts of the same size (zero is refused by config validation
/// and clamped to one here).
fn per_minute(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
}

/// The 429 answer with how long to wait.
fn too_many(code: ProblemCode, detail: String, wait: Duration) -> Response<Body> {
    let mut response = Problem::new(StatusCode::TOO_MANY_REQUESTS, code, detail).into_response();
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// A rate limit that cannot be built (a zero quota; config validation refuses it first).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("rate limits must allow at least one request per minute")]
pub struct BadQuota;

/// The per-IP layer for the whole router. Needs the server to provide the peer address
/// (`into_make_service_with_connect_info`).
pub fn ip_layer(
    limits: &Limits,
) -> Result<GovernorLayer<PeerIpKeyExtractor, NoOpMiddleware, Body>, BadQuota> {
    let per_minute = limits.requests_per_minute_per_ip;
    if per_minute == 0 {
        return Err(BadQuota);
    }
    let config = GovernorConfigBuilder::default()
        .per_nanosecond((60_000_000_000 / u64::from(per_minute)).max(1))
        .burst_size(per_minute)
        .finish()
        .ok_or(BadQuota)?;
    Ok(
        GovernorLayer::new(Arc::new(config)).error_handler(|e| match e {
            GovernorError::TooManyRequests { wait_time, .. } => too_many(
                ProblemCode::RateLimited,
                "too many requests from this address".into(),
                Duration::from_secs(wait_time),
            ),
            GovernorError::UnableToExtractKey | GovernorError::Other { .. } => {
                Problem::internal().into_response()
            }
        }),
    )
}

/// Per-requester and per-API-key limits on request creation.
pub struct RequesterLimits {
    counting: Counting,
    per_requester: u32,
    per_api_key: u32,
}

/// Where the quotas are counted.
enum Counting {
    /// In this process: the database has one instance.
    InProcess {
        requesters: DefaultKeyedRateLimiter<String>,
        api_keys: DefaultKeyedRateLimiter<String>,
    },
    /// In the database, where every instance sees the same counts.
    Shared(Arc<dyn SharedQuotas>),
}

impl RequesterLimits {
    /// Limits each requester to `limits.requests_per_minute_per_requester` and each API key to
    /// `limits.requests_per_minute_per_api_key`, counted in `shared` when the database is
    /// shared by several instances, else in this process.
    pub fn new(limits: &Limits, shared: Option<Arc<dyn SharedQuotas>>) -> Self {
        let counting = match shared {
            Some(shared) => Counting::Shared(shared),
            None => Counting::InProcess {
                requesters: RateLimiter::keyed(per_minute(
                    limits.requests_per_minute_per_requester,
                )),
                api_keys: RateLimiter::keyed(per_minute(limits.requests_per_minute_per_api_key)),
            },
        };
        RequesterLimits {
            counting,
            per_requester: limits.requests_per_minute_per_requester,
            per_api_key: limits.requests_per_minute_per_api_key,
        }
    }

    /// Takes one use of `id`'s quota; `Ok(Err(wait))` when it is used up.
    async fn take(&self, kind: BucketKind, id: &str) -> Result<Result<(), Duration>, StoreError> {
        match &self.counting {
            Counting::InProcess {
                requesters,
                api_keys,
            } => {
                let limiter = match kind {
                    BucketKind::Requester => requesters,
                    BucketKind::ApiKey => api_keys,
                };
                Ok(limiter
                    .check_key(&id.to_owned())
                    .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())))
            }
            Counting::Shared(shared) => {
                let per_minute = match kind {
                    BucketKind::Requester => self.per_requester,
                    BucketKind::ApiKey => self.per_api_key,
                };
                shared.take(&kind.bucket(id), per_minute).await
            }
        }
    }

    /// Counts one step-up request made with API key `key_id`.
    pub async fn check_api_key(
        &self,
        key_id: &str,
    ) -> Result<Result<(), ApiKeyRateLimited>, StoreError> {
        Ok(self
            .take(BucketKind::ApiKey, key_id)
            .await?
            .map_err(|wait| ApiKeyRateLimited {
                per_minute: self.per_api_key,
                wait,
            }))
    }

    /// Counts one request creation for `requester`; refuses when over quota.
    pub async fn check_requester(
        &self,
        requester: &str,
    ) -> Result<Result<(), RateLimited>, StoreError> {
        Ok(self
            .take(BucketKind::Requester, requester)
            .await?
            .map_err(|wait| RateLimited {
                requester: requester.to_owned(),
                per_minute: self.per_requester,
                wait,
            }))
    }

    /// Forgets requesters and keys whose quota is full again, so memory stays bounded.
    pub async fn forget_idle(&self) -> Result<(), StoreError> {
        match &self.counting {
            Counting::InProcess {
                requesters,
                api_keys,
            } => {
                requesters.retain_recent();
                requesters.shrink_to_fit();
                api_keys.retain_recent();
                api_keys.shrink_to_fit();
                Ok(())
            }
            Counting::Shared(shared) => shared.forget_idle().await,
        }
    }
}

/// Which quota a bucket belongs to.
#[derive(Clone, Copy)]
enum BucketKind {
    Requester,
    ApiKey,
}

impl BucketKind {
    /// The bucket's name in the shared table (requester ids and key ids never collide there).
    fn bucket(self, id: &str) -> String {
        match self {
            BucketKind::Requester => format!("requester:{id}"),
            BucketKind::ApiKey => format!("api-key:{id}"),
        }
    }
}

/// A requester over their quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{requester} may cause at most {per_minute} requests per minute")]
pub struct RateLimited {
    requester: String,
    per_minute: u32,
    wait: Duration,
}

/// One API key made more step-up requests than its rate allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this API key may make at most {per_minute} step-up requests per minute")]
pub struct ApiKeyRateLimited {
    per_minute: u32,
    wait: Duration,
}

impl IntoResponse for ApiKeyRateLimited {
    fn into_response(self) -> axum::response::Response {
        too_many(ProblemCode::ApiKeyRateLimited, self.to_string(), self.wait)
    }
}

impl IntoResponse for RateLimited {
    fn into_response(self) -> axum::response::Response {
        too_many(
            ProblemCode::RequesterRateLimited,
            self.to_string(),
            self.wait,
        )
    }
}
