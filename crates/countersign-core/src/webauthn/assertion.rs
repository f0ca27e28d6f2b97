//! Verifying an authentication assertion (WebAuthn Level 3 §7.2, "Verifying an
//! Authentication Assertion"), with the challenge derived from the approval statement.
//!
//! The caller (the server) has already found the credential by id among the approver's enrolled
//! credentials (§7.2 steps 5–6) and derived the expected challenge from the statement; this
//! function performs every cryptographic and protocol check and returns the new counter. The
//! algorithm is the one stored at enrollment, never one named by the request.

use super::auth_data::{AuthDataError, AuthenticatorData, Flags};
use super::client_data::{CeremonyType, ClientData, ClientDataError};
use super::cose::CredentialPublicKey;
use super::signature::SignatureError;
use crate::canonical::sha256;

/// What the relying party expects of this assertion.
#[derive(Clone, Copy, Debug)]
pub struct AssertionPolicy<'a> {
    /// The RP id the credential is scoped to, e.g. `approvals.example.com`.
    pub rp_id: &'a str,
    /// The exact origin, e.g. `https://approvals.example.com`.
    pub origin: &'a str,
    /// The challenge derived from the approval statement.
    pub challenge: &'a [u8; 32],
    /// Whether the policy demands user verification.
    pub require_user_verification: bool,
}

/// The assertion as received.
#[derive(Clone, Copy, Debug)]
pub struct AssertionInput<'a> {
    /// `response.authenticatorData`.
    pub authenticator_data: &'a [u8],
    /// `response.clientDataJSON`.
    pub client_data_json: &'a [u8],
    /// `response.signature`.
    pub signature: &'a [u8],
}

/// What a successful verification established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The counter to store for the credential.
    pub sign_count: u32,
    /// The flags the authenticator reported.
    pub flags: Flags,
}

/// Why an assertion was refused; one variant per check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum AssertionError {
    /// clientDataJSON malformed, or type, challenge or origin wrong.
    #[error(transparent)]
    ClientData(#[from] ClientDataError),
    /// authenticatorData malformed.
    #[error(transparent)]
    AuthData(#[from] AuthDataError),
    /// §7.2 step 15: rpIdHash is not SHA-256 of the RP id.
    #[error("rpIdHash does not match the RP id")]
    RpIdMismatch,
    /// §7.2 step 16: the user was not present.
    #[error("user presence flag not set")]
    UserNotPresent,
    /// §7.2 step 17: user verification required but not performed.
    #[error("user verification required but the UV flag is not set")]
    UserNotVerified,
    /// An assertion carried attested credential data, which only registration may.
    #[error("assertion carries attested credential data")]
    UnexpectedAttestedData,
    /// §7.2 step 21: the signature does not verify with the enrolled key.
    #[error("assertion signature: {0}")]
    Signature(#[from] SignatureError),
    /// §7.2 step 22: the counter did not increase, which signals a cloned authenticator.
    #[error("signature counter went from {stored} to {received}: possible cloned authenticator")]
    CounterRegression { stored: u32, received: u32 },
}

impl AssertionError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            AssertionError::ClientData(e) => e.code(),
            AssertionError::AuthData(e) => e.code(),
            AssertionError::Signature(e) => e.code(),
            other => other.into(),
        }
    }
}

/// Verifies one assertion against the enrolled credential key and its stored counter.
pub fn verify_assertion(
    key: &CredentialPublicKey,
    stored_sign_count: u32,
    policy: &AssertionPolicy<'_>,
    input: &AssertionInput<'_>,
) -> Result<VerifiedAssertion, AssertionError> {
    // §7.2 steps 9–10: parse clientDataJSON (strictly; see client_data).
    let client_data = ClientData::parse(input.client_data_json)?;
    // §7.2 step 11: type is "webauthn.get".
    // §7.2 step 12: challenge equals the expected challenge (recomputed from the statement).
    // §7.2 step 13: origin is the expected origin.
    // §7.2 step 14: crossOrigin/topOrigin were refused by the parser.
    client_data.check(CeremonyType::Get, policy.challenge, policy.origin)?;

    let auth_data = AuthenticatorData::parse(input.authenticator_data)?;
    if auth_data.attested.is_some() {
        return Err(AssertionError::UnexpectedAttestedData);
    }
    // §7.2 step 15: rpIdHash is SHA-256 of the RP id.
    if auth_data.rp_id_hash != sha256(policy.rp_id.as_bytes()) {
        return Err(AssertionError::RpIdMismatch);
    }
    // §7.2 step 16: UP is set.
    if !auth_data.flags.user_present() {
        return Err(AssertionError::UserNotPresent);
    }
    // §7.2 step 17: UV is set when required.
    if policy.require_user_verification && !auth_data.flags.user_verified() {
        return Err(AssertionError::UserNotVerified);
    }
    // §7.2 step 18 (BE/BS consistency) is enforced by the authenticatorData parser.
    // §7.2 step 19: extensions are not requested; any present are covered by the signature
    // and otherwise ignored.
    // §7.2 steps 20–21: hash = SHA-256(clientDataJSON); verify sig over authData || hash with
    // the algorithm fixed at enrollment.
    let mut signed = Vec::with_capacity(input.authenticator_data.len() + 32);
    signed.extend_from_slice(input.authenticator_data);
    signed.extend_from_slice(&sha256(input.client_data_json));
    key.verify(&signed, input.signature)?;
    // §7.2 step 22: if either counter is non-zero, the new one must be greater.
    let received = auth_data.sign_count;
    if (received != 0 || stored_sign_count != 0) && received <= stored_sign_count {
        return Err(AssertionError::CounterRegression {
            stored: stored_sign_count,
            received,
        });
    }
    Ok(VerifiedAssertion {
        sign_count: received,
        flags: auth_data.flags,
    })
}
