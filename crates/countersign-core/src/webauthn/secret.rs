//! A credential's private key in software, and the one way it signs: ES256 as ASN.1 DER
//! (RFC 6979, deterministic), EdDSA as the raw 64 bytes, as WebAuthn carries them. The
//! project's two software keys use it — the forging key of the attack tests
//! (`countersign-forge`) and the demo CTAP2 authenticator (`countersign-approver`, feature
//! `demo-key`) — so what they sign is checked by the same verification code either way.

use super::cose::{CoseAlgorithm, CredentialPublicKey};

/// The secret is not a private key of its algorithm (a P-256 scalar must be in `[1, n)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {0:?} private key")]
pub struct InvalidSecret(pub CoseAlgorithm);

/// A credential private key.
#[derive(Clone)]
pub enum CredentialSecret {
    /// P-256, signing ES256.
    Es256(p256::ecdsa::SigningKey),
    /// Ed25519, signing EdDSA.
    Ed25519(ed25519_dalek::SigningKey),
}

impl CredentialSecret {
    /// The key of `algorithm` from its stored bytes: a 32-byte P-256 scalar, or an Ed25519
    /// seed.
    pub fn from_bytes(algorithm: CoseAlgorithm, secret: &[u8]) -> Result<Self, InvalidSecret> {
        match algorithm {
            CoseAlgorithm::Es256 => p256::ecdsa::SigningKey::from_slice(secret)
                .map(CredentialSecret::Es256)
                .map_err(|_| InvalidSecret(algorithm)),
            CoseAlgorithm::EdDsa => <[u8; 32]>::try_from(secret)
                .map(|seed| CredentialSecret::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
                .map_err(|_| InvalidSecret(algorithm)),
        }
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> CoseAlgorithm {
        match self {
            CredentialSecret::Es256(_) => CoseAlgorithm::Es256,
            CredentialSecret::Ed25519(_) => CoseAlgorithm::EdDsa,
        }
    }

    /// The public key a verifier checks its signatures with.
    pub fn public(&self) -> CredentialPublicKey {
        match self {
            CredentialSecret::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                let mut sec1 = [0u8; 65];
                sec1.copy_from_slice(point.as_bytes());
                CredentialPublicKey::Es256(sec1)
            }
            CredentialSecret::Ed25519(key) => CredentialPublicKey::Ed25519(key.verifying_key()),
        }
    }

    /// Signs `message` (for an assertion: `authData || SHA-256(clientDataJSON)`).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        match self {
            CredentialSecret::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            CredentialSecret::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_sign_what_their_public_key_verifies_and_bad_secrets_are_refused() {
        for secret in [
            CredentialSecret::from_bytes(CoseAlgorithm::Es256, &[7; 32]).unwrap(),
            CredentialSecret::from_bytes(CoseAlgorithm::EdDsa, &[7; 32]).unwrap(),
        ] {
            let signature = secret.sign(b"authData || clientDataHash");
            let public = secret.public();
            assert!(public
                .verify(b"authData || clientDataHash", &signature)
                .is_ok());
            assert!(public.verify(b"something else", &signature).is_err());
        }
        assert_eq!(
            CredentialSecret::from_bytes(CoseAlgorithm::Es256, &[0; 32]).err(),
            Some(InvalidSecret(CoseAlgorithm::Es256))
        );
        assert!(CredentialSecret::from_bytes(CoseAlgorithm::EdDsa, &[1; 31]).is_err());
    }
}
