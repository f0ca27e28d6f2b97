//! Every body of the HTTP API, defined once in the spirit of `webauthn-rs-proto`: the server
//! writes and reads them, the SDK, the approver and the CLI read and write the same types, so
//! nobody builds or indexes JSON by hand. Serde only; checks beyond the shape (lengths,
//! catalogs, signatures) stay with whoever acts on a body.
//!
//! - [`application`]: what a protected application sends and receives (`/v1/requests…`).
//! - [`approver`]: what an approver's device sends and receives (`/v1/info`, `/v1/enroll`,
//!   `/v1/approver/…`).
//! - [`state`]: the values both compare: request state, role, verdict.
//! - [`problem`]: the error document.
//! - [`Health`]: the liveness answer.

pub mod application;
pub mod approver;
pub mod problem;
pub mod state;

pub use problem::{ProblemCode, ProblemDocument, PROBLEM_TYPE_BASE};
pub use state::{RequestState, Role, Verdict};

/// `GET /health`: the server is up and its database answers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
}
