//! WebAuthn relying-party verification for Countersign (WebAuthn Level 3).
//!
//! Layers, bottom up: [`client_data`] (clientDataJSON built and strictly parsed),
//! [`auth_data`] (authenticatorData), [`cose`] (credential public keys),
//! [`signature`] (the raw signature checks), then the two ceremonies, [`assertion`]
//! (§7.2) and [`attestation`] (§7.1, formats `none` and `packed`).

pub mod assertion;
pub mod attestation;
pub mod auth_data;
mod cbor;
pub mod client_data;
pub mod cose;
pub mod secret;
pub mod signature;

pub use assertion::{
    verify_assertion, AssertionError, AssertionInput, AssertionPolicy, VerifiedAssertion,
};
pub use attestation::{
    verify_registration, AttestationError, AttestationType, RegisteredCredential,
    RegistrationPolicy,
};
pub use auth_data::{AuthDataError, AuthenticatorData, Flags};
pub use client_data::{CeremonyType, ClientData, ClientDataError};
pub use cose::{CoseAlgorithm, CoseKeyError, CredentialPublicKey};
pub use secret::{CredentialSecret, InvalidSecret};
pub use signature::SignatureError;

/// The AAGUID of the approver's CTAP2 software key for demos (ASCII "countersign-soft").
pub const DEMO_KEY_AAGUID: [u8; 16] = *b"countersign-soft";
/// The AAGUID of the protocol-level software key of the tests (ASCII "countersign-test").
pub const TEST_KEY_AAGUID: [u8; 16] = *b"countersign-test";
/// This project's own software authenticators: their private keys live in files, so a server
/// refuses them unless demo keys are explicitly allowed.
pub const PROJECT_SOFTWARE_AAGUIDS: [[u8; 16]; 2] = [DEMO_KEY_AAGUID, TEST_KEY_AAGUID];
