//! Extractors for untrusted input: strict JSON bodies and API-key authentication.

use super::AppState;
use crate::problem::{Problem, ProblemCode};
use crate::store::ApiKeyRecord;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// A JSON body parsed strictly: `application/json`, within the size limit, no unknown fields,
/// every defect named by a stable code.
pub struct StrictJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for StrictJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Problem> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(Problem::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ProblemCode::UnsupportedMediaType,
                "send Content-Type: application/json",
            ));
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(StrictJson)
    }
}

/// The raw body within the size limit; too large or unreadable bodies get a problem, like
/// every other error. (Device-signed calls need the exact bytes the signature covers.)
pub struct RawBody(pub axum::body::Bytes);

impl FromRequest<Arc<AppState>> for RawBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Problem> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        e.status(),
                        ProblemCode::BodyTooLarge,
                        format!("body exceeds {} bytes", state.config.limits.max_body_bytes),
                    )
                } else {
                    Problem::bad_request(ProblemCode::UnreadableBody, e.body_text())
                }
            })
    }
}

/// Parses JSON bytes into `T`, naming the kind of defect.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        let detail = e.to_string();
        let code = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ProblemCode::MalformedJson
            }
            serde_json::error::Category::Io => ProblemCode::UnreadableBody,
            serde_json::error::Category::Data if detail.starts_with("unknown field") => {
                ProblemCode::UnknownField
            }
            serde_json::error::Category::Data if detail.starts_with("missing field") => {
                ProblemCode::MissingField
            }
            serde_json::error::Category::Data if detail.starts_with("duplicate field") => {
                ProblemCode::DuplicateField
            }
            serde_json::error::Category::Data => ProblemCode::InvalidValue,
        };
        Problem::bad_request(code, detail)
    })
}

/// A protected application authenticated by its API key (`Authorization: Bearer cs_<id>_<secret>`).
pub struct AppKey(pub ApiKeyRecord);

impl FromRequestParts<Arc<AppState>> for AppKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Problem> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Problem::unauthorized("missing Authorization: Bearer <api key>"))?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| Problem::unauthorized("Authorization must use the Bearer scheme"))?;
        let (id, secret) = crate::admin::split_api_key(token)
            .ok_or_else(|| Problem::unauthorized("malformed API key"))?;
        let record = state.store.api_key(id).await.map_err(|e| {
            tracing::error!(error = %e, "api key lookup failed");
            Problem::internal()
        })?;
        // Unknown id, wrong secret and revoked key look the same to the caller.
        let refused = || Problem::unauthorized("invalid or revoked API key");
        let record = record.ok_or_else(refused)?;
        let hash = crate::admin::api_key_secret_hash(secret);
        if !bool::from(hash.ct_eq(&record.secret_hash)) || record.revoked_at.is_some() {
            return Err(refused());
        }
        Ok(AppKey(record))
    }
}
