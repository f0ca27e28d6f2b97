//! One-time enrollment codes, `CSE1.<secret>.<server key id>`, and pinning the server key they
//! name.

use countersign_core::b64;
use countersign_core::jwk::{self, VerifyingKey};

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

/// A parsed enrollment code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollmentCode {
    /// The one-time secret (base64url), bound into the enrollment challenge.
    pub secret: String,
    /// Thumbprint of the server signing key the approver must find.
    pub server_kid: String,
}

fn is_b64url(part: &str) -> bool {
    !part.is_empty() && b64::decode(part).is_ok()
}

impl EnrollmentCode {
    /// Parses `CSE1.<secret>.<kid>` (surrounding whitespace allowed, as pasted).
    pub fn parse(text: &str) -> Result<Self, EnrollmentCodeError> {
        let mut parts = text.trim().split('.');
        let (Some("CSE1"), Some(secret), Some(kid), None) =
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

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::jwk::SigningKey;

    #[test]
    fn codes_parse_strictly_and_pin_only_the_named_server() {
        let server = SigningKey::from_seed(&[7; 32]);
        let x = b64::encode(server.verifying_key().as_bytes());
        let code = EnrollmentCode::parse(&format!(" CSE1.c2VjcmV0.{}\n", server.kid())).unwrap();
        assert_eq!(code.secret, "c2VjcmV0");
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
}
