//! Enrolling an approver: the one-time enrollment code `CSE1.<secret>.<server key id>` (made
//! by the server, read by the approver, both here), and the WebAuthn challenge that binds the
//! new FIDO credential to the code and to the device key being registered, so neither can be
//! swapped.
//!
//! ```text
//! challenge = SHA-256("countersign/enroll/v1\n" || JCS({"version":1,"code":<code secret, base64url>,"device_key":<Ed25519 public key, base64url>}))
//! stored    = base64url(SHA-256(the code secret's bytes))        (the server keeps only this)
//! ```

use crate::b64;
use crate::canonical::{self, CanonicalError};
use crate::jwk::{self, VerifyingKey};
use serde::Serialize;
use std::fmt;

/// What every enrollment code starts with (the format's version).
const PREFIX: &str = "CSE1";

/// Why an enrollment code or the server behind it was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollmentCodeError {
    /// Not `CSE1.<secret>.<kid>` with base64url parts.
    #[error("not an enrollment code (expected CSE1.<secret>.<key id>)")]
    Malformed,
    /// The server's key is not the one the code names: a different or impostor server.
    #[error("the server's key {found} is not the key {expected} this code names")]
    WrongServerKey {
        /// The kid in the code.
        expected: String,
        /// The thumbprint of the key the server presented.
        found: String,
    },
    /// The server presented an invalid key.
    #[error("the server presented an invalid Ed25519 key")]
    InvalidServerKey,
}

/// A one-time enrollment code: `CSE1.<secret>.<server key id>` when written out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollmentCode {
    /// The one-time secret (base64url), bound into the enrollment challenge.
    pub secret: String,
    /// Thumbprint of the server signing key the approver must find, so that its first
    /// contact with the server is authenticated too.
    pub server_kid: String,
}

fn is_b64url(part: &str) -> bool {
    !part.is_empty() && b64::decode(part).is_ok()
}

impl EnrollmentCode {
    /// Parses `CSE1.<secret>.<kid>` (surrounding whitespace allowed, as pasted).
    pub fn parse(text: &str) -> Result<Self, EnrollmentCodeError> {
        let mut parts = text.trim().split('.');
        let (Some(PREFIX), Some(secret), Some(kid), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(EnrollmentCodeError::Malformed);
        };
        if !is_b64url(secret) || !is_b64url(kid) {
            return Err(EnrollmentCodeError::Malformed);
        }
        Ok(EnrollmentCode {
            secret: secret.to_owned(),
            server_kid: kid.to_owned(),
        })
    }

    /// Pins the server: the key it presents (`/v1/info` `server_key.x`, base64url) must have
    /// the thumbprint this code names. Returns the key to pin for every later signature check.
    pub fn pin_server_key(&self, presented_x: &str) -> Result<VerifyingKey, EnrollmentCodeError> {
        let bytes: [u8; 32] = b64::decode(presented_x)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(EnrollmentCodeError::InvalidServerKey)?;
        let found = jwk::thumbprint(&bytes);
        if found != self.server_kid {
            return Err(EnrollmentCodeError::WrongServerKey {
                expected: self.server_kid.clone(),
                found,
            });
        }
        VerifyingKey::from_bytes(&bytes).map_err(|_| EnrollmentCodeError::InvalidServerKey)
    }
}

impl fmt::Display for EnrollmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}.{}.{}", self.secret, self.server_kid)
    }
}

/// What the server stores of a code secret (base64url as sent): the base64url SHA-256 of its
/// bytes; `None` when the secret is not base64url.
pub fn secret_hash(secret: &str) -> Option<String> {
    let bytes = b64::decode(secret).ok()?;
    Some(b64::encode(canonical::sha256(&bytes)))
}

#[derive(Serialize)]
struct EnrollmentStatement<'a> {
    version: u32,
    code: &'a str,
    device_key: &'a str,
}

/// The enrollment challenge for a code secret and a device public key (both base64url).
pub fn challenge(code: &str, device_key: &str) -> Result<[u8; 32], CanonicalError> {
    let statement = EnrollmentStatement {
        version: 1,
        code,
        device_key,
    };
    Ok(canonical::digest_of(b"countersign/enroll/v1\n", &statement)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::SigningKey;

    #[test]
    fn codes_are_written_as_they_are_read_and_pin_only_the_named_server() {
        let server = SigningKey::from_seed(&[7; 32]);
        let x = b64::encode(server.verifying_key().as_bytes());
        let code = EnrollmentCode::parse(&format!(" CSE1.c2VjcmV0.{}\n", server.kid())).unwrap();
        assert_eq!(code.secret, "c2VjcmV0");
        assert_eq!(code.to_string(), format!("CSE1.c2VjcmV0.{}", server.kid()));
        assert_eq!(EnrollmentCode::parse(&code.to_string()), Ok(code.clone()));
        assert_eq!(code.pin_server_key(&x).unwrap().kid(), server.kid());

        let impostor = SigningKey::from_seed(&[8; 32]);
        let impostor_x = b64::encode(impostor.verifying_key().as_bytes());
        assert!(matches!(
            code.pin_server_key(&impostor_x),
            Err(EnrollmentCodeError::WrongServerKey { .. })
        ));
        assert_eq!(
            code.pin_server_key("short"),
            Err(EnrollmentCodeError::InvalidServerKey)
        );
        for bad in [
            "",
            "CSE1.abc",
            "CSE2.abc.def",
            "CSE1.a+b.def",
            "CSE1.abc.def.ghi",
            "CSE1..def",
        ] {
            assert_eq!(
                EnrollmentCode::parse(bad),
                Err(EnrollmentCodeError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_stored_hash_is_sha256_of_the_secret_s_bytes() {
        // "c2VjcmV0" is base64url of "secret".
        assert_eq!(
            secret_hash("c2VjcmV0").as_deref(),
            Some(b64::encode(canonical::sha256(b"secret")).as_str())
        );
        assert_eq!(secret_hash("not base64url!"), None);
    }
}
