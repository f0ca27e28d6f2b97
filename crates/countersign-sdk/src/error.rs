//! Why a step-up could not go ahead. Every variant means: do not execute the action.

use countersign_core::jwk::JwkError;
use countersign_core::token::TokenError;
use countersign_core::transaction::TransactionError;
use countersign_core::wire::ProblemCode;

/// Why the SDK refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The server could not be reached or answered unreadably.
    #[error("countersign server: {0}")]
    Http(#[from] reqwest::Error),
    /// The server refused with a problem document (RFC 9457); `code` is stable.
    #[error("countersign refused ({status} {code}): {detail}")]
    Problem {
        /// HTTP status.
        status: u16,
        /// Stable machine-readable code, e.g. `policy_forbids`, `already_redeemed`.
        code: ProblemCode,
        /// For people.
        detail: String,
    },
    /// The server answered something this SDK does not understand.
    #[error("unexpected answer from the server: {0}")]
    Unexpected(String),
    /// The server's transaction is not the one this application asked for.
    #[error("the server's transaction differs from the request in {0}")]
    TransactionMismatch(&'static str),
    /// The transaction does not parse or validate.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// The decision token does not verify.
    #[error("decision token refused: {0}")]
    Token(#[from] TokenError),
    /// The server's key set does not parse.
    #[error("server keys: {0}")]
    Keys(#[from] JwkError),
    /// The request was not approved (denied, cancelled, expired): the action must not run.
    #[error("request {id} ended {state}: do not execute")]
    NotApproved {
        /// Request id.
        id: String,
        /// Final state.
        state: countersign_core::wire::RequestState,
    },
    /// No decision before the caller's deadline.
    #[error("no decision on request {0} in time")]
    Timeout(String),
}

impl SdkError {
    /// The problem code, when the server refused.
    pub fn code(&self) -> Option<&ProblemCode> {
        match self {
            SdkError::Problem { code, .. } => Some(code),
            _ => None,
        }
    }
}
