//! Key rollover: when the server rotates its signing key, the key that signed until then
//! endorses the new one, so approvers who pinned a key at enrollment can trust its successors
//! without trusting the network or the server's database:
//!
//! ```text
//! signed = "countersign/key-rollover/v1\n" || JCS({"at": <unix seconds>, "endorsed_by": <old kid>, "new_key": <x, b64url>})
//! signature = Ed25519(old key, signed)
//! ```
//!
//! An approver accepts a key only through a chain of endorsements that starts at a key it
//! pinned ([`extend`]); the new key's `kid` is always recomputed from its bytes.

use crate::b64;
use crate::jwk::{KeySet, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Domain separation for rollover endorsements.
pub const DOMAIN: &[u8] = b"countersign/key-rollover/v1\n";

/// One key endorsing its successor.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRollover {
    /// The new key's 32 public bytes, base64url.
    pub new_key: String,
    /// The endorsing key's `kid`.
    pub endorsed_by: String,
    /// Unix seconds of the rotation.
    pub at: i64,
    /// Ed25519 by the endorsing key over the endorsement's signing input (docs/protocol.md,
    /// key rollover), base64url.
    pub signature: String,
}

/// Why an endorsement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloverError {
    /// The new key is not a valid Ed25519 key.
    #[error("the endorsed key is not a valid Ed25519 key")]
    BadKey,
    /// The endorsing key is not one already trusted.
    #[error("endorsed by {0:?}, a key not trusted here")]
    UnknownEndorser(String),
    /// The signature does not verify.
    #[error("the endorsement's signature does not verify")]
    BadSignature,
    /// What is signed could not be encoded.
    #[error("the endorsement cannot be encoded")]
    Encoding,
}

#[derive(Serialize)]
struct Signed<'a> {
    at: i64,
    endorsed_by: &'a str,
    new_key: &'a str,
}

impl KeyRollover {
    /// `old` endorses `new` at `at`.
    pub fn sign(old: &SigningKey, new: &VerifyingKey, at: i64) -> Result<Self, RolloverError> {
        let new_key = b64::encode(new.as_bytes());
        let input = Self::input(at, old.kid(), &new_key)?;
        Ok(KeyRollover {
            signature: b64::encode(old.sign(&input)),
            new_key,
            endorsed_by: old.kid().to_owned(),
            at,
        })
    }

    fn input(at: i64, endorsed_by: &str, new_key: &str) -> Result<Vec<u8>, RolloverError> {
        let members = Signed {
            at,
            endorsed_by,
            new_key,
        };
        let mut input = DOMAIN.to_vec();
        input.extend(
            crate::canonical::to_canonical_json(&members).map_err(|_| RolloverError::Encoding)?,
        );
        Ok(input)
    }

    /// What the signature covers.
    pub fn signing_input(&self) -> Result<Vec<u8>, RolloverError> {
        Self::input(self.at, &self.endorsed_by, &self.new_key)
    }

    /// The endorsed key, if a key in `trusted` made this endorsement.
    pub fn verify(&self, trusted: &KeySet) -> Result<VerifyingKey, RolloverError> {
        let endorser = trusted
            .get(&self.endorsed_by)
            .ok_or_else(|| RolloverError::UnknownEndorser(self.endorsed_by.clone()))?;
        let signature = b64::decode(&self.signature).map_err(|_| RolloverError::BadSignature)?;
        endorser
            .verify(&self.signing_input()?, &signature)
            .map_err(|_| RolloverError::BadSignature)?;
        let bytes: [u8; 32] = b64::decode(&self.new_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(RolloverError::BadKey)?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| RolloverError::BadKey)
    }
}

/// `pinned` and every key a chain of valid endorsements in `rollovers` leads to from it (in
/// any order); endorsements from untrusted keys or with bad signatures are ignored.
pub fn extend(pinned: &KeySet, rollovers: &[KeyRollover]) -> KeySet {
    let mut keys: Vec<VerifyingKey> = pinned.keys().cloned().collect();
    loop {
        let trusted = KeySet::new(keys.iter().cloned());
        let learned: Vec<VerifyingKey> = rollovers
            .iter()
            .filter_map(|r| r.verify(&trusted).ok())
            .filter(|k| trusted.get(k.kid()).is_none())
            .collect();
        if learned.is_empty() {
            return trusted;
        }
        for key in learned {
            if !keys.iter().any(|k| k.kid() == key.kid()) {
                keys.push(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed(&[seed; 32])
    }

    #[test]
    fn a_chain_from_a_pinned_key_is_followed_in_any_order_and_nothing_else_is() {
        let (first, second, third, stranger) = (key(1), key(2), key(3), key(9));
        let chain = [
            KeyRollover::sign(&second, third.verifying_key(), 200).unwrap(),
            KeyRollover::sign(&first, second.verifying_key(), 100).unwrap(),
            KeyRollover::sign(&stranger, key(10).verifying_key(), 300).unwrap(),
        ];
        let pinned = KeySet::new([first.verifying_key().clone()]);
        let trusted = extend(&pinned, &chain);
        for k in [&first, &second, &third] {
            assert!(trusted.get(k.kid()).is_some(), "{}", k.kid());
        }
        assert!(
            trusted.get(key(10).kid()).is_none(),
            "endorsed by a stranger"
        );
        assert!(extend(
            &KeySet::new([stranger.verifying_key().clone()]),
            &chain[..2]
        )
        .get(second.kid())
        .is_none());
    }

    #[test]
    fn a_tampered_endorsement_is_refused() {
        let (first, second) = (key(1), key(2));
        let pinned = KeySet::new([first.verifying_key().clone()]);
        let good = KeyRollover::sign(&first, second.verifying_key(), 100).unwrap();
        assert_eq!(good.verify(&pinned).unwrap().kid(), second.kid());
        let mut swapped = good.clone();
        swapped.new_key = b64::encode(key(3).verifying_key().as_bytes());
        assert_eq!(swapped.verify(&pinned), Err(RolloverError::BadSignature));
        let mut late = good.clone();
        late.at += 1;
        assert_eq!(late.verify(&pinned), Err(RolloverError::BadSignature));
        let unknown = KeyRollover::sign(&second, first.verifying_key(), 100).unwrap();
        assert!(matches!(
            unknown.verify(&pinned),
            Err(RolloverError::UnknownEndorser(_))
        ));
    }
}
