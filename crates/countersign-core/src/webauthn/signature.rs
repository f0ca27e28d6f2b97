//! The raw signature checks, one function per algorithm the protocol accepts.
//!
//! ES256 uses `ring`, measured several times faster than RustCrypto `p256` here
//! (docs/benchmarks.md); Ed25519 uses `ed25519-dalek`'s strict verification, which also refuses
//! small-order keys and non-canonical signatures.

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature is not valid for this key and message.
    #[error("signature verification failed")]
    #[strum(serialize = "bad_signature")]
    Invalid,
    /// The signature bytes are not in the algorithm's encoding.
    #[error("signature is not encoded as the algorithm requires")]
    #[strum(serialize = "signature_encoding")]
    Encoding,
}

impl SignatureError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

/// ECDSA P-256 with SHA-256; `public_key` is SEC1 uncompressed, `signature` ASN.1 DER.
pub fn verify_es256(
    public_key: &[u8; 65],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, public_key)
        .verify(message, signature)
        .map_err(|_| SignatureError::Invalid)
}

/// Ed25519 (RFC 8032), strict.
pub fn verify_ed25519(
    public_key: &ed25519_dalek::VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let signature =
        ed25519_dalek::Signature::from_slice(signature).map_err(|_| SignatureError::Encoding)?;
    public_key
        .verify_strict(message, &signature)
        .map_err(|_| SignatureError::Invalid)
}
