//! The security key, behind one trait. The client hands it only a clientDataJSON it built
//! itself (from a challenge it derived from what the person saw and the origin pinned at
//! enrollment); the key signs `authenticatorData || SHA-256(clientDataJSON)` as CTAP2 does.
//! Implementations: the USB key through `authenticator` and a software key for tests and
//! demos (both to come with the rest of issue 4); tests use a direct software signer.

/// A new credential, from a WebAuthn `create`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Credential id.
    pub credential_id: Vec<u8>,
    /// CBOR attestation object.
    pub attestation_object: Vec<u8>,
}

/// An assertion, from a WebAuthn `get`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assertion {
    /// authenticatorData.
    pub authenticator_data: Vec<u8>,
    /// Signature over `authenticatorData || SHA-256(clientDataJSON)`.
    pub signature: Vec<u8>,
}

/// Why the key did not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The person cancelled or the key timed out.
    #[error("cancelled or timed out at the security key")]
    Cancelled,
    /// The key does not hold this credential.
    #[error("this security key does not hold the enrolled credential")]
    UnknownCredential,
    /// Anything else the key or its transport reported.
    #[error("security key: {0}")]
    Device(String),
}

/// A FIDO2 authenticator.
pub trait Signer {
    /// Creates a credential for `rp_id` over `client_data_json`.
    fn make_credential(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        user_verification: bool,
    ) -> Result<Registration, SignerError>;

    /// Signs with `credential_id` for `rp_id` over `client_data_json`.
    fn get_assertion(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        credential_id: &[u8],
        user_verification: bool,
    ) -> Result<Assertion, SignerError>;
}
