//! The security key, behind one trait. The client hands it only a clientDataJSON it built
//! itself (from a challenge it derived from what the person saw and the origin pinned at
//! enrollment); the key signs `authenticatorData || SHA-256(clientDataJSON)` as CTAP2 does.
//! Implementations: [`UsbSigner`] (a security key over USB HID through `authenticator`) and
//! [`DemoKeySigner`] (the demo key: [`DemoAuthenticator`], a software CTAP2 authenticator
//! driven through the same `authenticator` code; feature `demo-key`, on by default — a build
//! without it has no software key at all, and a server refuses its AAGUID unless demo keys are
//! allowed). Both report progress as [`KeyEvent`]s and ask for the PIN through
//! a [`KeyPrompt`].

mod ctap;
#[cfg(feature = "demo-key")]
mod soft;
#[cfg(feature = "demo-key")]
mod soft_key;
#[cfg(feature = "demo-key")]
mod soft_key_file;
mod usb;

pub use ctap::{KeyEvent, KeyPrompt};
#[cfg(feature = "demo-key")]
pub use soft::DemoKeySigner;
#[cfg(feature = "demo-key")]
pub use soft_key::{DemoAuthenticator, SimulatedTouch};
#[cfg(feature = "demo-key")]
pub use soft_key_file::{
    SoftAlgorithm, SoftCredential, SoftKeyFileError, SoftKeyState, PIN_RETRIES, SOFT_KEY_AAGUID,
};
pub use usb::UsbSigner;

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
    /// Too many wrong PINs in a row: unplug the key and plug it in again.
    #[error("too many wrong PINs: unplug the security key and plug it in again")]
    PinAuthBlocked,
    /// The PIN is blocked; the key must be reset (its credentials are lost).
    #[error("the security key's PIN is blocked; the key must be reset and enrolled again")]
    PinBlocked,
    /// User verification is required but the key has no PIN.
    #[error("user verification is required but this security key has no PIN: set one first")]
    PinNotSet,
    /// The key went away (pulled out) before it answered.
    #[error("the security key was removed before it answered: plug it in and try again")]
    KeyRemoved,
    /// No way to reach security keys on this system.
    #[error("cannot reach security keys: {0}")]
    NoTransport(String),
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
