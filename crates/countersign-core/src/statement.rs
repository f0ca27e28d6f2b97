//! The approval statement and the WebAuthn challenge derived from it.
//!
//! The approver never signs a challenge handed to it: it recomputes the transaction digest
//! from what it displays, builds this statement, and derives
//! `challenge = SHA-256("countersign/approval/v1\n" || JCS(statement))`. The server derives the
//! same bytes independently, so an assertion is valid for exactly one transaction, decision
//! and approver.

use crate::canonical::{self, CanonicalError, Digest};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The only statement version this crate speaks.
pub const VERSION: u32 = 1;

/// What the approver decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Decision {
    /// Let the action proceed.
    Approve,
    /// Refuse it.
    Deny,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        })
    }
}

/// What one approver's key signs, through the challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStatement {
    /// Always [`VERSION`].
    pub version: u32,
    /// Digest of the transaction the approver saw.
    pub transaction: Digest,
    /// Approve or deny.
    pub decision: Decision,
    /// The approver's id on the server.
    pub approver: String,
}

impl ApprovalStatement {
    /// A version-1 statement.
    pub fn new(transaction: Digest, decision: Decision, approver: impl Into<String>) -> Self {
        ApprovalStatement {
            version: VERSION,
            transaction,
            decision,
            approver: approver.into(),
        }
    }

    /// `SHA-256("countersign/approval/v1\n" || JCS(self))`, the WebAuthn challenge.
    ///
    /// ```
    /// use countersign_core::{b64, ApprovalStatement, Decision, Digest};
    /// // tests/vectors/approval_statement.json, case ok_approve.
    /// let tx = Digest::from_base64url("2P2a1Z4waC5Lpjbj1GsxStt0ZJFJ4sS0Atjvexp2Jes").unwrap();
    /// let statement = ApprovalStatement::new(tx, Decision::Approve, "bob@example.com");
    /// let challenge = statement.challenge().unwrap();
    /// assert_eq!(b64::encode(challenge), "v-9DxzusvChWdUOgpPF2LA-q2nnn5t1J4ChZyPhJP5k");
    /// ```
    pub fn challenge(&self) -> Result<[u8; 32], CanonicalError> {
        Ok(canonical::digest_of(canonical::APPROVAL_DOMAIN, self)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_binds_every_member() {
        let tx = Digest([7; 32]);
        let base = ApprovalStatement::new(tx, Decision::Approve, "bob")
            .challenge()
            .unwrap();
        let others = [
            ApprovalStatement::new(Digest([8; 32]), Decision::Approve, "bob"),
            ApprovalStatement::new(tx, Decision::Deny, "bob"),
            ApprovalStatement::new(tx, Decision::Approve, "carol"),
        ];
        for other in others {
            assert_ne!(other.challenge().unwrap(), base, "{other:?}");
        }
    }

    #[test]
    fn canonical_form_is_fixed() {
        let s = ApprovalStatement::new(Digest([0; 32]), Decision::Approve, "bob");
        assert_eq!(
            canonical::to_canonical_json(&s).unwrap(),
            br#"{"approver":"bob","decision":"approve","transaction":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","version":1}"#
        );
    }
}
