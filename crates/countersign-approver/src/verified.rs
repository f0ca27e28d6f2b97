//! A pushed request that may be shown: its server signature verified against the key pinned
//! at enrollment and its digest recomputed from the transaction. The WebAuthn challenge is
//! derived here, from that transaction, so a compromised server cannot obtain an assertion
//! for anything the person did not see.

use countersign_core::jwk::KeySet;
use countersign_core::push::{PushError, PushedRequest, SignedRequest};
use countersign_core::{ApprovalStatement, Decision};

/// A request that passed every check; only [`VerifiedRequest::verify`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRequest {
    request: PushedRequest,
}

/// Why a pushed request must not be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusedRequest {
    /// Bad signature, unknown key or a digest that does not match the transaction.
    #[error("refused: {0}; this request is not shown")]
    Unverified(#[from] PushError),
    /// Not a signed request of the expected shape.
    #[error("refused: the pushed request is not a signed request; it is not shown")]
    Malformed,
    /// The challenge could not be derived.
    #[error("refused: the approval statement cannot be encoded")]
    Statement,
}

/// A refused push, with the request id it claims: unverified, so only for telling refused
/// requests apart (the same one pushed again is one refused request, not two), never shown as
/// the request's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    /// The id the push claims, if it could be read at all.
    pub claimed_id: Option<String>,
    /// Why it is refused.
    pub reason: RefusedRequest,
}

impl Refusal {
    /// A refused `signed` request.
    pub fn of(signed: &SignedRequest, reason: RefusedRequest) -> Self {
        Refusal {
            claimed_id: Some(signed.request.transaction.id.clone()),
            reason,
        }
    }
}

impl VerifiedRequest {
    /// Checks the server's signature with the pinned keys and recomputes the digest.
    pub fn verify(signed: &SignedRequest, pinned: &KeySet) -> Result<Self, RefusedRequest> {
        Ok(VerifiedRequest {
            request: signed.verify(pinned)?.clone(),
        })
    }

    /// The verified request.
    pub fn request(&self) -> &PushedRequest {
        &self.request
    }

    /// The WebAuthn challenge for this approver's `decision` on this transaction: digest
    /// (recomputed at verification) → approval statement → challenge.
    pub fn challenge(
        &self,
        decision: Decision,
        approver_id: &str,
    ) -> Result<[u8; 32], RefusedRequest> {
        ApprovalStatement::new(self.request.digest, decision, approver_id.to_owned())
            .challenge()
            .map_err(|_| RefusedRequest::Statement)
    }
}
