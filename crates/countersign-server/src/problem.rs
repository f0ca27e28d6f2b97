//! Every API error as an RFC 9457 problem details document, with a stable `code`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
pub use countersign_core::wire::ProblemCode;

/// An error an API client receives. The `code` is stable and machine-readable; `detail` is
/// for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {detail}")]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `unknown_field`, `policy_forbids` (one list, in `core::wire`).
    pub code: ProblemCode,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
}

impl Problem {
    /// A problem with the given status and code.
    pub fn new(status: StatusCode, code: ProblemCode, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401: missing or wrong credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ProblemCode::Unauthorized, detail)
    }

    /// 404: no such resource visible to this caller.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ProblemCode::NotFound, detail)
    }

    /// 500, without internal details (those go to the log).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ProblemCode::Internal,
            "internal error; see the server log",
        )
    }
}

/// The problem code, attached to the response for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProblemLabel(pub ProblemCode);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = countersign_core::wire::ProblemDocument::new(
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("Error"),
            self.code.clone(),
            &self.detail,
        );
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            json,
        )
            .into_response();
        response.extensions_mut().insert(ProblemLabel(self.code));
        response
    }
}
