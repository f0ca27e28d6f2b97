//! Ed25519 signing keys of the server and their publication as a JWKS (RFC 7517, RFC 8037).
//!
//! Every key's `kid` is its RFC 7638 JWK thumbprint, so a `kid` names exactly one key and a
//! JWKS entry whose `kid` does not match its key is refused.

use crate::b64;
use crate::canonical::sha256;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a JWK or JWKS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum JwkError {
    /// Not JSON of the JWKS shape.
    #[error("malformed JWKS: {0}")]
    Malformed(String),
    /// A key that is not OKP/Ed25519.
    #[error("unsupported key type {kty}/{crv}")]
    UnsupportedKeyType { kty: String, crv: String },
    /// `alg` present and not `EdDSA`, or `use` present and not `sig`.
    #[error("key is not for EdDSA signatures")]
    NotASigningKey,
    /// `x` is not 32 bytes of base64url, or not a valid point.
    #[error("invalid Ed25519 public key")]
    InvalidKey,
    /// A private component (`d`) was published.
    #[error("JWKS contains private key material")]
    PrivateKeyPresent,
    /// `kid` is not the key's thumbprint.
    #[error("kid {0:?} is not the RFC 7638 thumbprint of its key")]
    KidMismatch(String),
    /// Two entries with the same `kid`.
    #[error("duplicate kid {0:?}")]
    DuplicateKid(String),
    /// No keys at all.
    #[error("JWKS holds no keys")]
    Empty,
}

impl JwkError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

/// The server's Ed25519 signing key.
#[derive(Clone)]
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    public: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public.kid)
    }
}

impl SigningKey {
    /// The key for a 32-byte seed (RFC 8032 private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let public = VerifyingKey::from_dalek(key.verifying_key());
        SigningKey { key, public }
    }

    /// The seed, for storage by the caller.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The key id (thumbprint).
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// Signs `message` (Ed25519, deterministic).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.key.sign(message).to_bytes()
    }
}

/// A public Ed25519 key with its thumbprint `kid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    key: ed25519_dalek::VerifyingKey,
    kid: String,
}

impl VerifyingKey {
    fn from_dalek(key: ed25519_dalek::VerifyingKey) -> Self {
        let kid = thumbprint(key.as_bytes());
        VerifyingKey { key, kid }
    }

    /// From the 32 public key bytes; refuses invalid and small-order points.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, JwkError> {
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| JwkError::InvalidKey)?;
        if key.is_weak() {
            return Err(JwkError::InvalidKey);
        }
        Ok(Self::from_dalek(key))
    }

    /// The 32 public key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// RFC 7638 thumbprint, used as `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Strict Ed25519 verification.
    pub fn verify(
        &self,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), crate::webauthn::SignatureError> {
        crate::webauthn::signature::verify_ed25519(&self.key, message, signature)
    }

    /// The public JWK.
    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: b64::encode(self.key.as_bytes()),
            kid: Some(self.kid.clone()),
            alg: Some("EdDSA".into()),
            key_use: Some("sig".into()),
            d: None,
        }
    }
}

/// RFC 7638 thumbprint of an Ed25519 key: SHA-256 of `{"crv":"Ed25519","kty":"OKP","x":…}`.
pub fn thumbprint(public_key: &[u8; 32]) -> String {
    let members = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        b64::encode(public_key)
    );
    b64::encode(sha256(members.as_bytes()))
}

/// One JSON Web Key, as published.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// Public key, base64url.
    pub x: String,
    /// Thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// Private key; must never be present in a published set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub d: Option<String>,
}

impl Jwk {
    /// Validates this JWK as a public Ed25519 signing key.
    pub fn to_verifying_key(&self) -> Result<VerifyingKey, JwkError> {
        if self.d.is_some() {
            return Err(JwkError::PrivateKeyPresent);
        }
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(JwkError::UnsupportedKeyType {
                kty: self.kty.clone(),
                crv: self.crv.clone(),
            });
        }
        if self.alg.as_deref().is_some_and(|a| a != "EdDSA")
            || self.key_use.as_deref().is_some_and(|u| u != "sig")
        {
            return Err(JwkError::NotASigningKey);
        }
        let x = b64::decode_array::<32>(&self.x).map_err(|_| JwkError::InvalidKey)?;
        let key = VerifyingKey::from_bytes(&x)?;
        if let Some(kid) = &self.kid {
            if kid != key.kid() {
                return Err(JwkError::KidMismatch(kid.clone()));
            }
        }
        Ok(key)
    }
}

/// A JWK Set document.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// The verification keys a relying application trusts, by `kid`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: BTreeMap<String, VerifyingKey>,
}

impl KeySet {
    /// A set of the given keys.
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        KeySet {
            keys: keys.into_iter().map(|k| (k.kid.clone(), k)).collect(),
        }
    }

    /// Parses and validates a JWKS document from untrusted bytes.
    pub fn from_jwks_json(bytes: &[u8]) -> Result<Self, JwkError> {
        let jwks: Jwks =
            serde_json::from_slice(bytes).map_err(|e| JwkError::Malformed(e.to_string()))?;
        Self::from_jwks(&jwks)
    }

    /// Validates every key of a JWKS.
    pub fn from_jwks(jwks: &Jwks) -> Result<Self, JwkError> {
        if jwks.keys.is_empty() {
            return Err(JwkError::Empty);
        }
        let mut keys = BTreeMap::new();
        for jwk in &jwks.keys {
            let key = jwk.to_verifying_key()?;
            let kid = key.kid.clone();
            if keys.insert(kid.clone(), key).is_some() {
                return Err(JwkError::DuplicateKid(kid));
            }
        }
        Ok(KeySet { keys })
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// Every key, by `kid`.
    pub fn keys(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.values()
    }

    /// The JWKS to publish.
    pub fn to_jwks(&self) -> Jwks {
        Jwks {
            keys: self.keys.values().map(VerifyingKey::to_jwk).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 appendix A.1 private key.
    pub(crate) const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";

    #[test]
    fn rfc8037_public_key_and_thumbprint() {
        let key = SigningKey::from_seed(&b64::decode_array(RFC8037_D).unwrap());
        // RFC 8037 A.2 (public key) and A.3 (thumbprint).
        assert_eq!(
            b64::encode(key.verifying_key().as_bytes()),
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn jwks_round_trip_and_rejections() {
        let a = SigningKey::from_seed(&[1; 32]);
        let b = SigningKey::from_seed(&[2; 32]);
        let set = KeySet::new([a.verifying_key().clone(), b.verifying_key().clone()]);
        let json = serde_json::to_vec(&set.to_jwks()).unwrap();
        assert_eq!(KeySet::from_jwks_json(&json).unwrap(), set);

        let good = a.verifying_key().to_jwk();
        let cases: Vec<(Jwk, JwkError)> = vec![
            (
                Jwk {
                    kty: "EC".into(),
                    ..good.clone()
                },
                JwkError::UnsupportedKeyType {
                    kty: "EC".into(),
                    crv: "Ed25519".into(),
                },
            ),
            (
                Jwk {
                    alg: Some("ES256".into()),
                    ..good.clone()
                },
                JwkError::NotASigningKey,
            ),
            (
                Jwk {
                    x: "AAAA".into(),
                    ..good.clone()
                },
                JwkError::InvalidKey,
            ),
            (
                Jwk {
                    d: Some("x".into()),
                    ..good.clone()
                },
                JwkError::PrivateKeyPresent,
            ),
            (
                Jwk {
                    kid: Some("other".into()),
                    ..good.clone()
                },
                JwkError::KidMismatch("other".into()),
            ),
        ];
        for (jwk, expected) in cases {
            assert_eq!(KeySet::from_jwks(&Jwks { keys: vec![jwk] }), Err(expected));
        }
        assert_eq!(
            KeySet::from_jwks(&Jwks {
                keys: vec![good.clone(), good]
            }),
            Err(JwkError::DuplicateKid(a.kid().into()))
        );
        assert_eq!(
            KeySet::from_jwks(&Jwks { keys: vec![] }),
            Err(JwkError::Empty)
        );
        assert!(matches!(
            KeySet::from_jwks_json(br#"{"keys":[],"x":1}"#),
            Err(JwkError::Malformed(_))
        ));
    }
}
