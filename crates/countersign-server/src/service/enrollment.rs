//! Enrolling a device with a one-time code: the body's rules, the code (once, unexpired), the
//! WebAuthn registration bound to code and device key, what the server may believe about the
//! key's model (FIDO metadata, demo keys), then device and credential recorded together with
//! the code spent.

use super::{base64_field, Fault, InvalidBase64};
use crate::api::AppState;
use crate::clock;
use crate::metadata::TrustError;
use crate::store::{AttestationTrust, CredentialRecord, DeviceRecord, StoreError};
use countersign_core::audit::{Event, EventKind};
use countersign_core::jwk::VerifyingKey;
use countersign_core::webauthn::{
    verify_registration, AttestationError, AttestationType, RegisteredCredential,
    RegistrationPolicy, PROJECT_SOFTWARE_AAGUIDS,
};
use countersign_core::wire::approver::{EnrollBody, Enrolled, ServerKey};
use countersign_core::{b64, enrollment};

/// Why a device was not enrolled. The code stays unspent for every one of them.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The code is malformed, unknown, used or expired.
    #[error("enrollment code invalid, used or expired")]
    InvalidCode,
    /// The device name is empty, too long or has control characters.
    #[error("device_name must be 1-128 characters without control characters")]
    InvalidDeviceName,
    /// A binary field that is not unpadded base64url.
    #[error(transparent)]
    InvalidBase64(#[from] InvalidBase64),
    /// The device key is not 32 bytes.
    #[error("device_key must be a 32-byte Ed25519 public key")]
    DeviceKeyLength,
    /// The device key is not a valid Ed25519 point.
    #[error("device_key is not a valid Ed25519 key")]
    DeviceKeyInvalid,
    /// The registration failed a WebAuthn check.
    #[error(transparent)]
    Registration(AttestationError),
    /// One of this project's software keys, on a server that accepts security keys only.
    #[error(
        "this is a Countersign demo or test software key; this server accepts security keys only"
    )]
    DemoKeyNotAllowed,
    /// The key's model is not on the allow-list.
    #[error("authenticator model {0} is not on this server's allow-list")]
    AuthenticatorNotAllowed(String),
    /// The model is listed, but its attestation did not verify against the FIDO metadata.
    #[error("the security key's attestation could not be verified: {0}")]
    AttestationNotVerified(TrustError),
    /// The approver is disabled.
    #[error("this approver is disabled")]
    ApproverDisabled,
    /// The credential or the device key is enrolled already.
    #[error("this credential or device key is already enrolled")]
    AlreadyEnrolled,
    /// The server failed.
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Fault(Fault::Store(e))
    }
}

/// Redeems the one-time code in `body`, registering its device key and FIDO credential.
pub async fn enroll(state: &AppState, body: &EnrollBody) -> Result<Enrolled, Refused> {
    let now = clock::now().map_err(Fault::from)?;
    let code_hash = enrollment::secret_hash(&body.code).ok_or(Refused::InvalidCode)?;
    if body.device_name.is_empty()
        || body.device_name.len() > 128
        || body.device_name.chars().any(char::is_control)
    {
        return Err(Refused::InvalidDeviceName);
    }
    let device_key: [u8; 32] = base64_field("device_key", &body.device_key)?
        .try_into()
        .map_err(|_| Refused::DeviceKeyLength)?;
    VerifyingKey::from_bytes(&device_key).map_err(|_| Refused::DeviceKeyInvalid)?;
    let approver_id = state
        .store
        .enrollment_approver(&code_hash, now.unix())
        .await?
        .ok_or(Refused::InvalidCode)?;

    let challenge = enrollment::challenge(&body.code, &body.device_key).map_err(Fault::from)?;
    let policy = RegistrationPolicy {
        rp_id: &state.config.rp_id,
        origin: &state.config.origin,
        challenge: &challenge,
        require_user_verification: state.config.enrollment.require_user_verification,
    };
    let attestation = base64_field("attestation_object", &body.attestation_object)?;
    let client_data = base64_field("client_data_json", &body.client_data_json)?;
    let credential =
        verify_registration(&policy, &attestation, &client_data).map_err(Refused::Registration)?;
    let aaguid_hex = crate::metadata::aaguid_hex(&credential.aaguid);
    let attestation = judge_attestation(state, &credential, now.unix())?;

    let device_id = format!(
        "dev_{}",
        b64::encode(clock::random::<12>().map_err(Fault::from)?)
    );
    let device = DeviceRecord {
        id: device_id.clone(),
        approver_id: approver_id.clone(),
        name: body.device_name.clone(),
        device_key,
        created_at: now.unix(),
        disabled_at: None,
    };
    let record = CredentialRecord {
        id: credential.credential_id.clone(),
        device_id: device_id.clone(),
        approver_id: approver_id.clone(),
        public_key: credential.public_key.to_cose_bytes(),
        aaguid: credential.aaguid,
        attestation,
        sign_count: credential.sign_count,
        created_at: now.unix(),
        cloned_at: None,
    };
    let event = Event {
        at: now,
        kind: EventKind::ApproverEnrolled.into(),
        request_id: None,
        actor: approver_id.clone(),
        data: serde_json::json!({"device_id": device_id, "device_name": body.device_name, "aaguid": aaguid_hex, "attestation": attestation.as_str(), "credential_id": b64::encode(&credential.credential_id)}),
    };
    match state
        .store
        .enroll(&code_hash, now.unix(), &device, &record, event)
        .await
    {
        Ok(()) => {}
        Err(StoreError::EnrollmentCode) => return Err(Refused::InvalidCode),
        Err(StoreError::ApproverDisabled) => return Err(Refused::ApproverDisabled),
        Err(StoreError::AlreadyEnrolled) => return Err(Refused::AlreadyEnrolled),
        Err(e) => return Err(e.into()),
    }
    let key = state.keys.active.verifying_key();
    Ok(Enrolled {
        approver_id,
        device_id,
        rp_id: state.config.rp_id.clone(),
        origin: state.config.origin.clone(),
        server_key: ServerKey {
            kid: key.kid().to_owned(),
            alg: None,
            x: b64::encode(key.as_bytes()),
        },
    })
}

/// What the server may believe about the key that registered. The AAGUID is the key's own
/// claim; only an attestation chain verified against the FIDO metadata makes it a fact.
/// - This project's software keys are refused unless demo keys are allowed.
/// - With an allow-list, the model must be on it *and* its attestation must verify.
/// - Otherwise the key enrolls, recorded as hardware-attested only when it verified.
fn judge_attestation(
    state: &AppState,
    credential: &RegisteredCredential,
    now: i64,
) -> Result<AttestationTrust, Refused> {
    let enrollment = &state.config.enrollment;
    let aaguid_hex = crate::metadata::aaguid_hex(&credential.aaguid);
    if PROJECT_SOFTWARE_AAGUIDS.contains(&credential.aaguid) && !enrollment.allow_demo_keys {
        return Err(Refused::DemoKeyNotAllowed);
    }
    let chain = match &credential.attestation {
        AttestationType::Basic { certificates } => certificates.as_slice(),
        AttestationType::None | AttestationType::SelfAttestation => &[],
    };
    let verified = match &state.metadata {
        Some(metadata) if !chain.is_empty() => metadata
            .verify_attestation(&credential.aaguid, chain, now)
            .map(|_| ()),
        Some(_) => Err(TrustError::NoCertificate),
        None => Err(TrustError::NoMetadata),
    };
    let allowed = &enrollment.allowed_aaguids;
    if !allowed.is_empty() {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&aaguid_hex)) {
            return Err(Refused::AuthenticatorNotAllowed(aaguid_hex));
        }
        if let Err(reason) = verified {
            tracing::warn!(aaguid = %aaguid_hex, %reason, "enrollment refused: attestation not verified");
            return Err(Refused::AttestationNotVerified(reason));
        }
    }
    Ok(match (&credential.attestation, verified) {
        (_, Ok(())) => AttestationTrust::Verified,
        (AttestationType::None, _) => AttestationTrust::None,
        (AttestationType::SelfAttestation, _) => AttestationTrust::SelfAttested,
        (AttestationType::Basic { .. }, _) => AttestationTrust::Unverified,
    })
}
