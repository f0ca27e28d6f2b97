//! RFC 8785 canonical JSON and the protocol's domain-separated digests.
//!
//! Every signed or hashed structure is serialized with the JSON Canonicalization Scheme and
//! hashed as `SHA-256(prefix || JCS(value))`, where the prefix names the structure and its
//! version (`countersign/tx/v1\n`, ...). Signed data never holds floats or integers beyond
//! 2^53, so every JSON implementation reads the same numbers back.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// Prefix of the transaction digest.
pub const TX_DOMAIN: &[u8] = b"countersign/tx/v1\n";
/// Prefix of the approval challenge.
pub const APPROVAL_DOMAIN: &[u8] = b"countersign/approval/v1\n";
/// Prefix of an audit entry hash.
pub const AUDIT_DOMAIN: &[u8] = b"countersign/audit/v1\n";
/// Prefix of the bytes an audit checkpoint signature covers.
pub const CHECKPOINT_DOMAIN: &[u8] = b"countersign/checkpoint/v1\n";

/// Largest integer that survives a round trip through an IEEE 754 double (2^53).
pub const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// Why a value could not be canonicalized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum CanonicalError {
    /// A number with a fraction or exponent; signed data carries decimals as strings.
    #[error("floating-point number at {path}: use a decimal string")]
    Float { path: String },
    /// An integer whose magnitude exceeds 2^53.
    #[error("integer at {path} exceeds 2^53")]
    IntegerTooLarge { path: String },
    /// The value could not be serialized at all.
    #[error("value cannot be serialized as JSON: {detail}")]
    Serialize { detail: String },
}

impl CanonicalError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

/// A SHA-256 digest, written as unpadded base64url in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The all-zero digest, used as the `prev` of the first audit entry.
    pub const ZERO: Digest = Digest([0; 32]);

    /// A short form people compare across screens (the approver's and the requester's): the
    /// first six bytes as uppercase hex in groups of four, e.g. `3F9A-1C0B-77DE` (48 bits).
    pub fn fingerprint(&self) -> String {
        let hex: String = self.0[..6].iter().map(|b| format!("{b:02X}")).collect();
        format!("{}-{}-{}", &hex[..4], &hex[4..8], &hex[8..12])
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Unpadded base64url text.
    pub fn to_base64url(&self) -> String {
        crate::b64::encode(self.0)
    }

    /// Parses unpadded base64url text of exactly 32 bytes.
    pub fn from_base64url(text: &str) -> Result<Self, crate::b64::Base64Error> {
        crate::b64::decode_array(text).map(Digest)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_base64url())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64url())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::from_base64url(&text)
            .map_err(|_| serde::de::Error::custom("digest must be 32 bytes of unpadded base64url"))
    }
}

/// Checks that a JSON value holds only integers within ±2^53 and no floats.
///
/// `path` names the value in errors, as a JSON Pointer (RFC 6901).
pub fn check_numbers(value: &serde_json::Value, path: &str) -> Result<(), CanonicalError> {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::IntegerTooLarge {
                        path: path.to_owned(),
                    });
                }
            } else if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::IntegerTooLarge {
                        path: path.to_owned(),
                    });
                }
            } else {
                return Err(CanonicalError::Float {
                    path: path.to_owned(),
                });
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_numbers(item, &format!("{path}/{i}"))),
        Value::Object(members) => members.iter().try_for_each(|(key, item)| {
            let escaped = key.replace('~', "~0").replace('/', "~1");
            check_numbers(item, &format!("{path}/{escaped}"))
        }),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

/// RFC 8785 canonical JSON of a value, refusing floats and unsafe integers.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let json = serde_json::to_value(value).map_err(|e| CanonicalError::Serialize {
        detail: e.to_string(),
    })?;
    check_numbers(&json, "")?;
    serde_json_canonicalizer::to_vec(&json).map_err(|e| CanonicalError::Serialize {
        detail: e.to_string(),
    })
}

/// `SHA-256(domain || bytes)`.
pub fn domain_digest(domain: &[u8], bytes: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(bytes);
    Digest(hasher.finalize().into())
}

/// `SHA-256(domain || JCS(value))`.
pub fn digest_of<T: Serialize + ?Sized>(
    domain: &[u8],
    value: &T,
) -> Result<Digest, CanonicalError> {
    Ok(domain_digest(domain, &to_canonical_json(value)?))
}

/// Plain SHA-256, for WebAuthn's rpIdHash and clientDataHash.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_floats_and_unsafe_integers_with_their_path() {
        assert_eq!(
            to_canonical_json(&json!({"a": [1, {"b/c": 1.5}]})),
            Err(CanonicalError::Float {
                path: "/a/1/b~1c".into()
            })
        );
        assert_eq!(
            to_canonical_json(&json!({"n": 9_007_199_254_740_993u64})),
            Err(CanonicalError::IntegerTooLarge { path: "/n".into() })
        );
        assert_eq!(
            to_canonical_json(&json!({"n": -9_007_199_254_740_993i64})),
            Err(CanonicalError::IntegerTooLarge { path: "/n".into() })
        );
        assert!(to_canonical_json(&json!({"n": 9_007_199_254_740_992u64})).is_ok());
    }

    #[test]
    fn sorts_members_and_strips_whitespace() {
        let bytes = to_canonical_json(&json!({"b": 1, "a": {"d": true, "c": null}})).unwrap();
        assert_eq!(bytes, br#"{"a":{"c":null,"d":true},"b":1}"#);
    }

    #[test]
    fn domain_separates_digests() {
        let a = domain_digest(TX_DOMAIN, b"{}");
        let b = domain_digest(APPROVAL_DOMAIN, b"{}");
        assert_ne!(a, b);
        assert_eq!(Digest::from_base64url(&a.to_base64url()).unwrap(), a);
    }
}
