//! What the USB key and the software key share: the `authenticator` crate's arguments built
//! from what the client decided, its status updates turned into typed [`KeyEvent`]s for a UI,
//! PIN requests answered through a [`KeyPrompt`], and its results and errors turned into the
//! [`Signer`](super::Signer) types. Because both keys go through this one path, the software
//! key exercises exactly the status and PIN handling a person meets with a real key.

use super::{Assertion, Registration, SignerError};
use authenticator::authenticatorservice::{RegisterArgs, SignArgs};
use authenticator::crypto::COSEAlgorithm;
use authenticator::ctap2::commands::StatusCode;
use authenticator::ctap2::server::{
    PublicKeyCredentialDescriptor, PublicKeyCredentialParameters, PublicKeyCredentialUserEntity,
    RelyingParty, ResidentKeyRequirement, UserVerificationRequirement,
};
use authenticator::errors::{AuthenticatorError, CommandError, HIDError, PinError, U2FTokenError};
use authenticator::statecallback::StateCallback;
use authenticator::{Pin, StatusPinUv, StatusUpdate};
use countersign_core::canonical::sha256;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

/// What the key is waiting for or just reported, for a UI to show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyEvent {
    /// Touch the key (user presence).
    TouchKey,
    /// Several keys are plugged in: touch the one to use.
    SelectKey,
    /// The key needs its PIN.
    PinRequired,
    /// The PIN was wrong; this many tries are left (when the key says).
    WrongPin {
        /// Tries left before the PIN is blocked.
        retries_left: Option<u8>,
    },
    /// Too many wrong PINs in a row: unplug the key and plug it in again.
    PinAuthBlocked,
    /// The PIN is blocked; only resetting the key (losing its credentials) helps.
    PinBlocked,
    /// User verification is required but the key has no PIN set.
    PinNotSet,
    /// Built-in user verification (e.g. fingerprint) failed.
    UvFailed {
        /// Tries left, when the key says.
        retries_left: Option<u8>,
    },
    /// Built-in user verification is blocked; the PIN is asked instead.
    UvBlocked,
}

impl std::fmt::Display for KeyEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyEvent::TouchKey => f.write_str("touch your security key"),
            KeyEvent::SelectKey => f.write_str("several keys found: touch the one to use"),
            KeyEvent::PinRequired => f.write_str("enter your security key's PIN"),
            KeyEvent::WrongPin {
                retries_left: Some(n),
            } => write!(f, "wrong PIN: enter it again, {n} tries left"),
            KeyEvent::WrongPin { retries_left: None } => f.write_str("wrong PIN: enter it again"),
            KeyEvent::PinAuthBlocked => {
                f.write_str("too many wrong PINs: unplug the key and plug it in again")
            }
            KeyEvent::PinBlocked => f.write_str("PIN blocked: the key must be reset"),
            KeyEvent::PinNotSet => f.write_str("this key has no PIN: set one first"),
            KeyEvent::UvFailed {
                retries_left: Some(n),
            } => write!(f, "not recognised: try again, {n} tries left"),
            KeyEvent::UvFailed { retries_left: None } => f.write_str("not recognised: try again"),
            KeyEvent::UvBlocked => f.write_str("built-in verification blocked: use the PIN"),
        }
    }
}

/// The person at the key: sees events and types the PIN.
pub trait KeyPrompt: Send + Sync {
    /// Shows what the key is waiting for.
    fn show(&self, event: &KeyEvent);
    /// Asks for the key's PIN after `event` ([`KeyEvent::PinRequired`] or
    /// [`KeyEvent::WrongPin`]); `None` cancels.
    fn pin(&self, event: &KeyEvent) -> Option<zeroize::Zeroizing<String>>;
}

/// The `authenticator` crate's registration arguments: ES256 or EdDSA, no resident key, no
/// extensions, user verification required or discouraged.
pub(crate) fn register_args(
    rp_id: &str,
    client_data_json: &[u8],
    user_verification: bool,
) -> RegisterArgs {
    RegisterArgs {
        client_data_hash: sha256(client_data_json),
        relying_party: RelyingParty {
            id: rp_id.to_owned(),
            name: None,
        },
        origin: String::new(),
        user: PublicKeyCredentialUserEntity {
            id: b"countersign-approver".to_vec(),
            name: Some("Countersign approver".into()),
            display_name: None,
        },
        pub_cred_params: vec![
            PublicKeyCredentialParameters {
                alg: COSEAlgorithm::ES256,
            },
            PublicKeyCredentialParameters {
                alg: COSEAlgorithm::EDDSA,
            },
        ],
        exclude_list: Vec::new(),
        user_verification_req: uv_requirement(user_verification),
        resident_key_req: ResidentKeyRequirement::Discouraged,
        extensions: Default::default(),
        pin: None,
        use_ctap1_fallback: false,
    }
}

/// The crate's sign arguments: one allowed credential, presence always, no extensions (the
/// crate re-serializes authenticatorData from a parsed struct, which only round-trips without
/// them).
pub(crate) fn sign_args(
    rp_id: &str,
    client_data_json: &[u8],
    credential_id: &[u8],
    user_verification: bool,
) -> SignArgs {
    SignArgs {
        client_data_hash: sha256(client_data_json),
        origin: String::new(),
        relying_party_id: rp_id.to_owned(),
        allow_list: vec![PublicKeyCredentialDescriptor {
            id: credential_id.to_vec(),
            transports: Vec::new(),
        }],
        user_verification_req: uv_requirement(user_verification),
        user_presence_req: true,
        extensions: Default::default(),
        pin: None,
        use_ctap1_fallback: false,
    }
}

fn uv_requirement(required: bool) -> UserVerificationRequirement {
    if required {
        UserVerificationRequirement::Required
    } else {
        UserVerificationRequirement::Discouraged
    }
}

/// How an operation ends, which decides whether every status update can be shown before
/// its result is returned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    /// `start` runs the whole operation and drops its status sender when it returns (the
    /// software key): all its updates are shown before the result is returned.
    WhenStartReturns,
    /// `start` hands the operation to a background service that may hold the status sender
    /// longer (USB): the result is returned as soon as it arrives.
    InBackground,
}

/// Runs one operation: `start` gets the status sender and the result callback; status
/// updates are shown and PIN requests answered on a helper thread while it runs.
pub(crate) fn drive<T: Send + 'static>(
    prompt: Arc<dyn KeyPrompt>,
    completion: Completion,
    start: impl FnOnce(
        Sender<StatusUpdate>,
        StateCallback<authenticator::Result<T>>,
    ) -> Result<(), AuthenticatorError>,
) -> Result<T, SignerError> {
    let (status_tx, status_rx) = channel::<StatusUpdate>();
    let (result_tx, result_rx) = channel();
    let callback = StateCallback::new(Box::new(move |result| {
        let _ = result_tx.send(result);
    }));
    let status_thread = std::thread::Builder::new()
        .name("countersign-key-status".into())
        .spawn(move || {
            for update in status_rx {
                handle_status(prompt.as_ref(), update);
            }
        })
        .map_err(|e| SignerError::Device(format!("status thread: {e}")))?;
    start(status_tx, callback).map_err(signer_error)?;
    if completion == Completion::WhenStartReturns {
        // Every sender is gone, so the status loop ends once it has shown everything.
        status_thread
            .join()
            .map_err(|_| SignerError::Device("status handling failed".into()))?;
    }
    let result = result_rx
        .recv()
        .map_err(|_| SignerError::Device("the key stopped without an answer".into()))?;
    result.map_err(signer_error)
}

/// Shows one status update and answers it when it asks for something.
fn handle_status(prompt: &dyn KeyPrompt, update: StatusUpdate) {
    let ask_pin = |event: KeyEvent, reply: Sender<Pin>| {
        prompt.show(&event);
        // No PIN (the person cancelled): dropping `reply` makes the crate cancel.
        if let Some(pin) = prompt.pin(&event) {
            let _ = reply.send(Pin::new(&pin));
        }
    };
    match update {
        StatusUpdate::PresenceRequired => prompt.show(&KeyEvent::TouchKey),
        StatusUpdate::SelectDeviceNotice => prompt.show(&KeyEvent::SelectKey),
        StatusUpdate::PinUvError(StatusPinUv::PinRequired(reply)) => {
            ask_pin(KeyEvent::PinRequired, reply);
        }
        StatusUpdate::PinUvError(StatusPinUv::InvalidPin(reply, retries_left)) => {
            ask_pin(KeyEvent::WrongPin { retries_left }, reply);
        }
        StatusUpdate::PinUvError(StatusPinUv::PinAuthBlocked) => {
            prompt.show(&KeyEvent::PinAuthBlocked);
        }
        StatusUpdate::PinUvError(StatusPinUv::PinBlocked) => prompt.show(&KeyEvent::PinBlocked),
        StatusUpdate::PinUvError(StatusPinUv::PinNotSet) => prompt.show(&KeyEvent::PinNotSet),
        StatusUpdate::PinUvError(StatusPinUv::InvalidUv(retries_left)) => {
            prompt.show(&KeyEvent::UvFailed { retries_left });
        }
        StatusUpdate::PinUvError(StatusPinUv::UvBlocked) => prompt.show(&KeyEvent::UvBlocked),
        // A one-entry allow list never yields several assertions; refuse to choose.
        StatusUpdate::SelectResultNotice(reply, _) => {
            let _ = reply.send(None);
        }
        // PIN length problems only arise when setting a PIN; management is not used here.
        StatusUpdate::PinUvError(_) | StatusUpdate::InteractiveManagement(_) => {}
    }
}

/// The crate's error as the signer's.
fn signer_error(error: AuthenticatorError) -> SignerError {
    match error {
        AuthenticatorError::CancelledByUser
        | AuthenticatorError::U2FToken(U2FTokenError::NotAllowed)
        | AuthenticatorError::HIDError(HIDError::Command(CommandError::StatusCode(
            StatusCode::KeepaliveCancel | StatusCode::UserActionTimeout,
            _,
        ))) => SignerError::Cancelled,
        AuthenticatorError::PinError(PinError::PinBlocked) => SignerError::PinBlocked,
        AuthenticatorError::PinError(PinError::PinAuthBlocked) => SignerError::PinAuthBlocked,
        AuthenticatorError::PinError(PinError::PinNotSet) => SignerError::PinNotSet,
        AuthenticatorError::HIDError(HIDError::Command(CommandError::StatusCode(
            StatusCode::NoCredentials,
            _,
        ))) => SignerError::UnknownCredential,
        AuthenticatorError::NoConfiguredTransports | AuthenticatorError::Platform => {
            SignerError::NoTransport(error.to_string())
        }
        // hidraw answers EIO (or ENODEV) once its device is gone (seen in the USB-path VM:
        // scripts/vm.sh usb-removed).
        AuthenticatorError::HIDError(HIDError::IO(_, ref io))
            if matches!(io.raw_os_error(), Some(EIO | ENODEV)) =>
        {
            SignerError::KeyRemoved
        }
        other => SignerError::Device(other.to_string()),
    }
}

/// Linux's "I/O error" and "no such device".
const EIO: i32 = 5;
const ENODEV: i32 = 19;

/// The crate's assertion as the signer's, checking it is for the asked credential.
pub(crate) fn assertion_from(
    result: authenticator::SignResult,
    credential_id: &[u8],
) -> Result<Assertion, SignerError> {
    let assertion = result.assertion;
    if assertion
        .credentials
        .as_ref()
        .is_some_and(|c| c.id != credential_id)
    {
        return Err(SignerError::UnknownCredential);
    }
    if assertion.auth_data.credential_data.is_some()
        || assertion.auth_data.extensions != Default::default()
    {
        return Err(SignerError::Device(
            "the key answered with data this client does not accept (extensions)".into(),
        ));
    }
    Ok(Assertion {
        authenticator_data: assertion.auth_data.to_vec(),
        signature: assertion.signature,
    })
}

/// The crate's registration as the signer's: the credential id and the CBOR attestation
/// object the server verifies.
pub(crate) fn registration_from(
    result: authenticator::RegisterResult,
) -> Result<Registration, SignerError> {
    let credential_id = result
        .att_obj
        .auth_data
        .credential_data
        .as_ref()
        .map(|c| c.credential_id.clone())
        .ok_or_else(|| SignerError::Device("the key returned no credential".into()))?;
    let mut attestation_object = Vec::new();
    ciborium::into_writer(&result.att_obj, &mut attestation_object)
        .map_err(|e| SignerError::Device(format!("attestation object: {e}")))?;
    Ok(Registration {
        credential_id,
        attestation_object,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_key_gone_from_hidraw_is_reported_as_removed_and_other_io_errors_are_not() {
        let io = |error: std::io::Error| AuthenticatorError::HIDError(HIDError::IO(None, error));
        for code in [EIO, ENODEV] {
            assert_eq!(
                signer_error(io(std::io::Error::from_raw_os_error(code))),
                SignerError::KeyRemoved
            );
        }
        // EACCES: the person lacks access to hidraw, a different problem (see the README).
        assert!(matches!(
            signer_error(io(std::io::Error::from_raw_os_error(13))),
            SignerError::Device(_)
        ));
        assert!(matches!(
            signer_error(io(std::io::Error::other("demo key file"))),
            SignerError::Device(_)
        ));
    }
}
