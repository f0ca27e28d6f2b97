//! Requests as the server pushes them to approvers, signed with the server's Ed25519 key that
//! the approver pinned at enrollment. The approver verifies the signature and recomputes the
//! transaction digest before anything is shown.
//!
//! ```text
//! signature = Ed25519("countersign/push/v1\n" || JCS(request))
//! ```

use crate::canonical::{self, CanonicalError, Digest};
use crate::jwk::{KeySet, SigningKey};
use crate::transaction::Transaction;
use serde::{Deserialize, Serialize};

/// Domain prefix of the signed bytes.
pub const DOMAIN: &[u8] = b"countersign/push/v1\n";

/// What an approver is shown about one request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushedRequest {
    /// The transaction.
    pub transaction: Transaction,
    /// Its digest, as the server computed it.
    pub digest: Digest,
    /// `pending`, `approved`, `denied`, ...
    pub state: String,
    /// The approvals counted so far, oldest first: who, and when.
    pub approvals: Vec<CountedApproval>,
    /// How the catalog describes the action. Signed with the rest, but not part of what the
    /// security key signs: an approver shows the transaction's own fields next to it.
    pub display: ActionDisplay,
}

/// One counted approval, as the approver's screen shows it ("Bob approved 3 min ago").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountedApproval {
    /// The approver (or the requester, for a self step-up).
    pub approver_id: String,
    /// When the server counted it.
    pub at: crate::Timestamp,
    /// The transaction's groups this approver belonged to when they approved. Named for
    /// version 2 transactions only: with one group, everyone but the requester counts for it
    /// (and approvers that predate version 2 refuse members they do not know).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl PushedRequest {
    /// Whether `approver_id`'s approval is counted.
    pub fn approved_by(&self, approver_id: &str) -> bool {
        self.approvals.iter().any(|a| a.approver_id == approver_id)
    }

    /// How the approvals so far fill each group's places (the requester's own approval
    /// fills none), counted as the server counts them.
    pub fn quorum_fill(&self) -> Vec<crate::quorum::GroupFill> {
        let tx = &self.transaction;
        let only_group = match tx.requirements.quorum.as_slice() {
            [one] => vec![one.group.clone()],
            _ => Vec::new(),
        };
        let approvers: Vec<(String, Vec<String>)> = self
            .approvals
            .iter()
            .filter(|a| a.approver_id != tx.requester.id)
            .map(|a| {
                let groups = if a.groups.is_empty() {
                    only_group.clone()
                } else {
                    a.groups.clone()
                };
                (a.approver_id.clone(), groups)
            })
            .collect();
        crate::quorum::fill(&tx.requirements.quorum, &approvers)
    }
}

/// The catalog's wording for an action.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionDisplay {
    /// Short title, e.g. "Send a payout".
    pub title: String,
    /// Template with `{object}`, `{amount}`, `{scope}`, `{requester}` placeholders.
    pub template: String,
}

/// A pushed request with the server's signature.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRequest {
    /// The request.
    pub request: PushedRequest,
    /// Signing key thumbprint.
    pub kid: String,
    /// Signature, base64url.
    pub signature: String,
}

/// Why a pushed request must not be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum PushError {
    /// Canonicalization failed.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// Signed by a key the approver did not pin.
    #[error("signed by an unknown server key {0:?}")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("server signature does not verify")]
    BadSignature,
    /// The transaction is invalid, or its digest is not the stated one.
    #[error("transaction does not match its digest or is invalid")]
    DigestMismatch,
}

impl PushError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

fn signed_bytes(request: &PushedRequest) -> Result<Vec<u8>, CanonicalError> {
    let mut bytes = DOMAIN.to_vec();
    bytes.extend_from_slice(&canonical::to_canonical_json(request)?);
    Ok(bytes)
}

impl SignedRequest {
    /// Signs a request.
    pub fn sign(request: PushedRequest, key: &SigningKey) -> Result<Self, PushError> {
        let signature = crate::b64::encode(key.sign(&signed_bytes(&request)?));
        Ok(SignedRequest {
            request,
            kid: key.kid().to_owned(),
            signature,
        })
    }

    /// Verifies the signature with the pinned keys and recomputes the digest.
    pub fn verify(&self, pinned: &KeySet) -> Result<&PushedRequest, PushError> {
        let key = pinned
            .get(&self.kid)
            .ok_or_else(|| PushError::UnknownKey(self.kid.clone()))?;
        let signature = crate::b64::decode(&self.signature).map_err(|_| PushError::BadSignature)?;
        key.verify(&signed_bytes(&self.request)?, &signature)
            .map_err(|_| PushError::BadSignature)?;
        let digest = self
            .request
            .transaction
            .digest()
            .map_err(|_| PushError::DigestMismatch)?;
        if digest != self.request.digest {
            return Err(PushError::DigestMismatch);
        }
        Ok(&self.request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approver_refuses_anything_but_the_signed_transaction() {
        let tx = crate::transaction::tests::sample();
        let key = SigningKey::from_seed(&[3; 32]);
        let pinned = KeySet::new([key.verifying_key().clone()]);
        let request = PushedRequest {
            digest: tx.digest().unwrap(),
            transaction: tx,
            state: "pending".into(),
            approvals: vec![],
            display: ActionDisplay {
                title: "Send a payout".into(),
                template: "Pay {amount} to {object}".into(),
            },
        };
        let signed = SignedRequest::sign(request, &key).unwrap();
        assert!(signed.verify(&pinned).is_ok());

        let mut amount_changed = signed.clone();
        amount_changed
            .request
            .transaction
            .amount
            .as_mut()
            .unwrap()
            .value = "1".into();
        assert_eq!(amount_changed.verify(&pinned), Err(PushError::BadSignature));
        let mut reworded = signed.clone();
        reworded.request.display.template = "Pay nothing to {object}".into();
        assert_eq!(reworded.verify(&pinned), Err(PushError::BadSignature));
        // A server that signs a transaction under someone else's digest is caught too.
        let mut lying = signed.request.clone();
        lying.digest = Digest([0; 32]);
        assert_eq!(
            SignedRequest::sign(lying, &key).unwrap().verify(&pinned),
            Err(PushError::DigestMismatch)
        );
        let other = SigningKey::from_seed(&[4; 32]);
        let foreign = SignedRequest::sign(signed.request.clone(), &other).unwrap();
        assert_eq!(
            foreign.verify(&pinned),
            Err(PushError::UnknownKey(other.kid().into()))
        );
    }
}
