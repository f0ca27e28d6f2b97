//! A software CTAP2 authenticator for tests and demos. It implements the `authenticator`
//! crate's public device traits (`FidoDevice`, `VirtualFidoDevice`), so the crate's own
//! register, sign, pre-flight and PIN logic runs against it exactly as it does against a USB
//! key; only the USB HID transport is left out. It speaks CTAP 2.0 with PIN protocol 1:
//! retries that survive restarts, a PIN blocked after eight wrong tries, and three wrong
//! tries in a row needing a "power cycle" (a new device value). Without a PIN it verifies the
//! user by itself (as a fingerprint key would) — acceptable only because it is a test key
//! that a deployment refuses by its AAGUID.

use super::soft_key_file::{
    SoftAlgorithm, SoftCredential, SoftKeyFileError, SoftKeyState, PIN_RETRIES, SOFT_KEY_AAGUID,
};
use authenticator::crypto::{
    COSEAlgorithm, COSEEC2Key, COSEKey, COSEKeyType, COSEOKPKey, Curve, SharedSecret,
};
use authenticator::ctap2::attestation::{
    AAGuid, AttestationObject, AttestationStatement, AttestationStatementPacked,
    AttestedCredentialData, AuthenticatorData, AuthenticatorDataFlags, Extension, Signature,
};
use authenticator::ctap2::commands::client_pin::{ClientPIN, ClientPinResponse, PINSubcommand};
use authenticator::ctap2::commands::get_assertion::{Assertion, GetAssertion, GetAssertionResult};
use authenticator::ctap2::commands::get_info::{
    AuthenticatorInfo, AuthenticatorOptions, AuthenticatorVersion,
};
use authenticator::ctap2::commands::get_version::{GetVersion, U2FInfo};
use authenticator::ctap2::commands::make_credentials::{MakeCredentials, MakeCredentialsResult};
use authenticator::ctap2::commands::reset::Reset;
use authenticator::ctap2::commands::selection::Selection;
use authenticator::ctap2::commands::{CommandError, RequestCtap1, RequestCtap2, StatusCode};
use authenticator::ctap2::preflight::CheckKeyHandle;
use authenticator::ctap2::server::{
    AuthenticationExtensionsClientOutputs, AuthenticatorAttachment, PublicKeyCredentialDescriptor,
    RpIdHash,
};
use authenticator::errors::HIDError;
use authenticator::{FidoDevice, FidoDeviceIO, FidoProtocol, VirtualFidoDevice};
use countersign_core::canonical::sha256;
use countersign_core::webauthn::{CoseAlgorithm, CredentialPublicKey, CredentialSecret};
use hmac::Mac;
use std::path::PathBuf;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

/// Consecutive wrong PINs after which the key wants a power cycle (CTAP2 §6.5.2.2).
const WRONG_PINS_BEFORE_POWER_CYCLE: u8 = 3;

/// A CTAP2 status code as the `authenticator` crate's error.
fn status(code: StatusCode) -> HIDError {
    HIDError::Command(CommandError::StatusCode(code, None))
}

/// What lives only while the key is "plugged in".
struct Session {
    /// The key-agreement key for PIN protocol 1, renewed after each wrong PIN.
    key_agreement: p256::SecretKey,
    /// The PIN token handed out after the right PIN.
    pin_token: Option<[u8; 32]>,
    /// Wrong PINs since the key was plugged in.
    wrong_pins: u8,
}

/// The software key as a CTAP2 device.
pub struct DemoAuthenticator {
    path: Option<PathBuf>,
    state: Mutex<SoftKeyState>,
    session: Mutex<Session>,
    info: Option<AuthenticatorInfo>,
    shared_secret: Option<SharedSecret>,
    touch: SimulatedTouch,
}

/// How the software key's "person" touches it: after `delay` (none by default), unless the
/// touch is cancelled first, which ends the operation as a real key's cancel does. It lets a
/// demo show the "touch your key" step and a test cancel at it.
#[derive(Clone, Debug, Default)]
pub struct SimulatedTouch {
    delay: std::time::Duration,
    cancelled: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SimulatedTouch {
    /// A touch that comes `delay` after the key asks for it.
    pub fn after(delay: std::time::Duration) -> Self {
        SimulatedTouch {
            delay,
            cancelled: Default::default(),
        }
    }

    /// Cancels the touch being waited for (and the next one, until [`SimulatedTouch::reset`]).
    pub fn cancel(&self) {
        self.cancelled
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Clears a cancel, before a new operation.
    pub fn reset(&self) {
        self.cancelled
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits for the touch; a cancel answers as CTAP2's KEEPALIVE_CANCEL.
    fn wait(&self) -> Result<(), HIDError> {
        let until = std::time::Instant::now() + self.delay;
        loop {
            if self.cancelled.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(status(StatusCode::KeepaliveCancel));
            }
            let now = std::time::Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(std::time::Duration::from_millis(20)));
        }
    }
}

impl std::fmt::Debug for DemoAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoAuthenticator")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N], HIDError> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).map_err(|_| HIDError::DeviceError)?;
    Ok(out)
}

fn new_p256_secret() -> Result<p256::SecretKey, HIDError> {
    // A random 32-byte string is a valid scalar except with probability ~2^-32; retry then.
    for _ in 0..8 {
        if let Ok(key) = p256::SecretKey::from_slice(&random::<32>()?) {
            return Ok(key);
        }
    }
    Err(HIDError::DeviceError)
}

impl DemoAuthenticator {
    /// A key whose state lives in `path` (written after every change), or only in memory.
    pub fn new(state: SoftKeyState, path: Option<PathBuf>) -> Result<Self, HIDError> {
        Ok(DemoAuthenticator {
            path,
            state: Mutex::new(state),
            session: Mutex::new(Session {
                key_agreement: new_p256_secret()?,
                pin_token: None,
                wrong_pins: 0,
            }),
            info: None,
            shared_secret: None,
            touch: SimulatedTouch::default(),
        })
    }

    /// Sets how the key is touched (see [`SimulatedTouch`]).
    pub fn set_touch(&mut self, touch: SimulatedTouch) {
        self.touch = touch;
    }

    /// The file this key saves to, if any.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// The key's state now (credentials, counters, PIN retries).
    pub fn state(&self) -> Result<SoftKeyState, HIDError> {
        Ok(self.lock_state()?.clone())
    }

    fn lock_state(&self) -> Result<std::sync::MutexGuard<'_, SoftKeyState>, HIDError> {
        self.state.lock().map_err(|_| HIDError::DeviceError)
    }

    fn lock_session(&self) -> Result<std::sync::MutexGuard<'_, Session>, HIDError> {
        self.session.lock().map_err(|_| HIDError::DeviceError)
    }

    /// Persists `state` if this key has a file; a key that cannot save refuses to sign.
    fn save(&self, state: &SoftKeyState) -> Result<(), HIDError> {
        match &self.path {
            Some(path) => state.save(path).map_err(|e: SoftKeyFileError| {
                HIDError::IO(Some(path.clone()), std::io::Error::other(e.to_string()))
            }),
            None => Ok(()),
        }
    }

    /// Checks a pinAuth (`LEFT(HMAC-SHA-256(pinToken, clientDataHash), 16)`, protocol 1).
    fn user_verified_by_pin(
        &self,
        pin_auth: Option<Vec<u8>>,
        client_data_hash: &[u8],
    ) -> Result<bool, HIDError> {
        let Some(pin_auth) = pin_auth else {
            return Ok(false);
        };
        let session = self.lock_session()?;
        let token = session
            .pin_token
            .ok_or_else(|| status(StatusCode::PinAuthInvalid))?;
        let expected = hmac_sha256(&token, client_data_hash)?;
        if pin_auth.len() == 16 && bool::from(expected[..16].ct_eq(&pin_auth)) {
            Ok(true)
        } else {
            Err(status(StatusCode::PinAuthInvalid))
        }
    }

    /// Whether the user is verified for this command: by a PIN token, or (without a PIN)
    /// internally when the client asks for `uv`.
    fn user_verification(
        &self,
        pin_auth: Option<Vec<u8>>,
        uv_option: Option<bool>,
        client_data_hash: &[u8],
    ) -> Result<bool, HIDError> {
        let pin_set = self.lock_state()?.pin_hash.is_some();
        if pin_auth.is_some() {
            return self.user_verified_by_pin(pin_auth, client_data_hash);
        }
        match (uv_option, pin_set) {
            (Some(true), true) => Err(status(StatusCode::InvalidOption)),
            (Some(true), false) => Ok(true),
            _ => Ok(false),
        }
    }

    fn pin_token(&self, req: &ClientPIN) -> Result<ClientPinResponse, HIDError> {
        let mut state = self.lock_state()?;
        let mut session = self.lock_session()?;
        let stored = state
            .pin_hash
            .clone()
            .ok_or_else(|| status(StatusCode::PinNotSet))?;
        if state.pin_retries == 0 {
            return Err(status(StatusCode::PinBlocked));
        }
        if session.wrong_pins >= WRONG_PINS_BEFORE_POWER_CYCLE {
            return Err(status(StatusCode::PinAuthBlocked));
        }
        let platform_key = req
            .key_agreement
            .as_ref()
            .ok_or_else(|| status(StatusCode::MissingParameter))?;
        let encrypted = req
            .pin_hash_enc
            .as_ref()
            .ok_or_else(|| status(StatusCode::MissingParameter))?;
        let shared = shared_secret(&session.key_agreement, platform_key)?;
        // The try counts before it is checked, and is saved before the answer.
        state.pin_retries -= 1;
        self.save(&state)?;
        let given = aes256_cbc(&shared, encrypted, Direction::Decrypt)?;
        if !bool::from(given.ct_eq(&stored)) {
            session.key_agreement = new_p256_secret()?;
            session.wrong_pins += 1;
            return Err(status(if state.pin_retries == 0 {
                StatusCode::PinBlocked
            } else if session.wrong_pins >= WRONG_PINS_BEFORE_POWER_CYCLE {
                StatusCode::PinAuthBlocked
            } else {
                StatusCode::PinInvalid
            }));
        }
        state.pin_retries = PIN_RETRIES;
        session.wrong_pins = 0;
        self.save(&state)?;
        let token = random::<32>()?;
        session.pin_token = Some(token);
        Ok(ClientPinResponse {
            pin_token: Some(aes256_cbc(&shared, &token, Direction::Encrypt)?),
            ..ClientPinResponse::default()
        })
    }
}

impl FidoDeviceIO for DemoAuthenticator {
    fn send_msg_cancellable<Out, Req: RequestCtap1<Output = Out> + RequestCtap2<Output = Out>>(
        &mut self,
        msg: &Req,
        keep_alive: &dyn Fn() -> bool,
    ) -> Result<Out, HIDError> {
        self.send_cbor_cancellable(msg, keep_alive)
    }

    fn send_cbor_cancellable<Req: RequestCtap2>(
        &mut self,
        msg: &Req,
        keep_alive: &dyn Fn() -> bool,
    ) -> Result<Req::Output, HIDError> {
        if !keep_alive() {
            return Err(status(StatusCode::KeepaliveCancel));
        }
        msg.send_to_virtual_device(self)
    }

    fn send_ctap1_cancellable<Req: RequestCtap1>(
        &mut self,
        _msg: &Req,
        _keep_alive: &dyn Fn() -> bool,
    ) -> Result<Req::Output, HIDError> {
        Err(HIDError::UnsupportedCommand)
    }
}

impl FidoDevice for DemoAuthenticator {
    fn pre_init(&mut self) -> Result<(), HIDError> {
        Ok(())
    }
    fn initialized(&self) -> bool {
        self.info.is_some()
    }
    fn is_u2f(&mut self) -> bool {
        true
    }
    fn should_try_ctap2(&self) -> bool {
        true
    }
    fn get_authenticator_info(&self) -> Option<&AuthenticatorInfo> {
        self.info.as_ref()
    }
    fn set_authenticator_info(&mut self, authenticator_info: AuthenticatorInfo) {
        self.info = Some(authenticator_info);
    }
    fn get_protocol(&self) -> FidoProtocol {
        FidoProtocol::CTAP2
    }
    fn downgrade_to_ctap1(&mut self) {}
    fn get_shared_secret(&self) -> Option<&SharedSecret> {
        self.shared_secret.as_ref()
    }
    fn set_shared_secret(&mut self, secret: SharedSecret) {
        self.shared_secret = Some(secret);
    }
}

impl VirtualFidoDevice for DemoAuthenticator {
    fn check_key_handle(&self, _req: &CheckKeyHandle) -> Result<(), HIDError> {
        Err(HIDError::UnsupportedCommand)
    }

    fn client_pin(&self, req: &ClientPIN) -> Result<ClientPinResponse, HIDError> {
        // getPinRetries needs no protocol (CTAP 2.1 §6.5.5.1); everything else protocol 1.
        let protocol = req.pin_protocol.as_ref().map(|p| p.id());
        if protocol != Some(1) && !matches!(req.subcommand, PINSubcommand::GetPinRetries) {
            return Err(status(StatusCode::InvalidParameter));
        }
        match req.subcommand {
            PINSubcommand::GetPinRetries => Ok(ClientPinResponse {
                pin_retries: Some(self.lock_state()?.pin_retries),
                ..ClientPinResponse::default()
            }),
            PINSubcommand::GetKeyAgreement => Ok(ClientPinResponse {
                key_agreement: Some(cose_key_agreement(&self.lock_session()?.key_agreement)),
                ..ClientPinResponse::default()
            }),
            PINSubcommand::GetPINToken => self.pin_token(req),
            _ => Err(status(StatusCode::InvalidCommand)),
        }
    }

    fn get_assertion(&self, req: &GetAssertion) -> Result<Vec<GetAssertionResult>, HIDError> {
        let uv = self.user_verification(
            pin_auth_bytes(req.pin_uv_auth_param.as_ref())?,
            req.options.user_verification,
            &req.client_data_hash.0,
        )?;
        let up = req.options.user_presence.unwrap_or(true);
        if up {
            self.touch.wait()?;
        }
        let mut state = self.lock_state()?;
        let credential = state
            .credentials
            .iter_mut()
            .find(|c| c.rp_id == req.rp.id && req.allow_list.iter().any(|d| d.id == c.id))
            .ok_or_else(|| status(StatusCode::NoCredentials))?;
        credential.sign_count = credential
            .sign_count
            .checked_add(1)
            .ok_or_else(|| status(StatusCode::LimitExceeded))?;
        let mut flags = AuthenticatorDataFlags::empty();
        flags.set(AuthenticatorDataFlags::USER_PRESENT, up);
        flags.set(AuthenticatorDataFlags::USER_VERIFIED, uv);
        let auth_data = AuthenticatorData {
            rp_id_hash: RpIdHash(sha256(req.rp.id.as_bytes())),
            flags,
            counter: credential.sign_count,
            credential_data: None,
            extensions: Extension::default(),
        };
        let signature = sign(credential, &auth_data.to_vec(), &req.client_data_hash.0)?;
        let descriptor = PublicKeyCredentialDescriptor {
            id: credential.id.clone(),
            transports: Vec::new(),
        };
        let snapshot = state.clone();
        drop(state);
        self.save(&snapshot)?;
        Ok(vec![GetAssertionResult {
            assertion: Assertion {
                credentials: Some(descriptor),
                auth_data,
                signature,
                user: None,
            },
            attachment: AuthenticatorAttachment::Unknown,
            extensions: AuthenticationExtensionsClientOutputs::default(),
        }])
    }

    fn get_info(&self) -> Result<AuthenticatorInfo, HIDError> {
        let pin_set = self.lock_state()?.pin_hash.is_some();
        Ok(AuthenticatorInfo {
            versions: vec![AuthenticatorVersion::FIDO_2_0],
            aaguid: AAGuid(SOFT_KEY_AAGUID),
            options: AuthenticatorOptions {
                client_pin: Some(pin_set),
                user_verification: (!pin_set).then_some(true),
                ..AuthenticatorOptions::default()
            },
            pin_protocols: Some(vec![1]),
            max_credential_count_in_list: Some(8),
            max_credential_id_length: Some(64),
            ..AuthenticatorInfo::default()
        })
    }

    fn get_version(&self, _req: &GetVersion) -> Result<U2FInfo, HIDError> {
        Err(HIDError::UnsupportedCommand)
    }

    fn make_credentials(&self, req: &MakeCredentials) -> Result<MakeCredentialsResult, HIDError> {
        let uv = self.user_verification(
            pin_auth_bytes(req.pin_uv_auth_param.as_ref())?,
            req.options.user_verification,
            &req.client_data_hash.0,
        )?;
        self.touch.wait()?;
        let mut state = self.lock_state()?;
        if state.pin_hash.is_some() && !uv {
            // CTAP 2.0: with a PIN set, making a credential needs the PIN.
            return Err(status(StatusCode::PinRequired));
        }
        if req.exclude_list.iter().any(|d| {
            state
                .credentials
                .iter()
                .any(|c| c.rp_id == req.rp.id && c.id == d.id)
        }) {
            return Err(status(StatusCode::CredentialExcluded));
        }
        let offered = |alg| req.pub_cred_params.iter().any(|p| p.alg == alg);
        let algorithm = match (
            state.preferred_algorithm,
            offered(COSEAlgorithm::ES256),
            offered(COSEAlgorithm::EDDSA),
        ) {
            (SoftAlgorithm::EdDSA, _, true) | (SoftAlgorithm::ES256, false, true) => {
                SoftAlgorithm::EdDSA
            }
            (_, true, _) => SoftAlgorithm::ES256,
            _ => return Err(status(StatusCode::UnsupportedAlgorithm)),
        };
        let private_key = match algorithm {
            SoftAlgorithm::ES256 => new_p256_secret()?.to_bytes().to_vec(),
            SoftAlgorithm::EdDSA => random::<32>()?.to_vec(),
        };
        let credential = SoftCredential {
            id: random::<32>()?.to_vec(),
            rp_id: req.rp.id.clone(),
            algorithm,
            private_key,
            sign_count: 0,
        };
        let mut flags = AuthenticatorDataFlags::USER_PRESENT | AuthenticatorDataFlags::ATTESTED;
        flags.set(AuthenticatorDataFlags::USER_VERIFIED, uv);
        let auth_data = AuthenticatorData {
            rp_id_hash: RpIdHash(sha256(req.rp.id.as_bytes())),
            flags,
            counter: 0,
            credential_data: Some(AttestedCredentialData {
                aaguid: AAGuid(SOFT_KEY_AAGUID),
                credential_id: credential.id.clone(),
                credential_public_key: public_cose_key(&credential)?,
            }),
            extensions: Extension::default(),
        };
        // Self attestation: the new credential signs authData || clientDataHash.
        let sig = sign(&credential, &auth_data.to_vec(), &req.client_data_hash.0)?;
        state.credentials.push(credential);
        let snapshot = state.clone();
        drop(state);
        self.save(&snapshot)?;
        Ok(MakeCredentialsResult {
            att_obj: AttestationObject {
                auth_data,
                att_stmt: AttestationStatement::Packed(AttestationStatementPacked {
                    alg: match algorithm {
                        SoftAlgorithm::ES256 => COSEAlgorithm::ES256,
                        SoftAlgorithm::EdDSA => COSEAlgorithm::EDDSA,
                    },
                    sig: Signature(sig),
                    attestation_cert: Vec::new(),
                }),
            },
            attachment: AuthenticatorAttachment::Unknown,
            extensions: AuthenticationExtensionsClientOutputs::default(),
        })
    }

    fn reset(&self, _req: &Reset) -> Result<(), HIDError> {
        Err(HIDError::UnsupportedCommand)
    }

    fn selection(&self, _req: &Selection) -> Result<(), HIDError> {
        Ok(())
    }
}

/// The pinAuth bytes a client sent (the crate keeps them private; its CBOR form is the bytes).
fn pin_auth_bytes(
    param: Option<&authenticator::crypto::PinUvAuthParam>,
) -> Result<Option<Vec<u8>>, HIDError> {
    let Some(param) = param else {
        return Ok(None);
    };
    if param.pin_protocol.id() != 1 {
        return Err(status(StatusCode::InvalidParameter));
    }
    let mut cbor = Vec::new();
    ciborium::into_writer(param, &mut cbor).map_err(|_| status(StatusCode::InvalidCBOR))?;
    match ciborium::from_reader::<ciborium::Value, _>(cbor.as_slice()) {
        Ok(ciborium::Value::Bytes(bytes)) => Ok(Some(bytes)),
        _ => Err(status(StatusCode::InvalidCBOR)),
    }
}

/// The device's key-agreement public key as CTAP2 sends it.
fn cose_key_agreement(secret: &p256::SecretKey) -> COSEKey {
    p256_cose_key(&secret.public_key(), COSEAlgorithm::ECDH_ES_HKDF256)
}

/// A P-256 public key in COSE form, for `alg`.
fn p256_cose_key(public: &p256::PublicKey, alg: COSEAlgorithm) -> COSEKey {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = public.to_encoded_point(false);
    COSEKey {
        alg,
        key: COSEKeyType::EC2(COSEEC2Key {
            curve: Curve::SECP256R1,
            x: point.x().map(|x| x.to_vec()).unwrap_or_default(),
            y: point.y().map(|y| y.to_vec()).unwrap_or_default(),
        }),
    }
}

/// The credential's private key, as the core's one software signing path holds it.
fn credential_secret(credential: &SoftCredential) -> Result<CredentialSecret, HIDError> {
    let algorithm = match credential.algorithm {
        SoftAlgorithm::ES256 => CoseAlgorithm::Es256,
        SoftAlgorithm::EdDSA => CoseAlgorithm::EdDsa,
    };
    CredentialSecret::from_bytes(algorithm, &credential.private_key)
        .map_err(|_| HIDError::DeviceError)
}

/// PIN protocol 1: `SHA-256(x-coordinate of ECDH(device key, platform key))`.
fn shared_secret(device: &p256::SecretKey, platform: &COSEKey) -> Result<[u8; 32], HIDError> {
    let COSEKeyType::EC2(ec) = &platform.key else {
        return Err(status(StatusCode::InvalidParameter));
    };
    let mut sec1 = vec![0x04];
    sec1.extend_from_slice(&ec.x);
    sec1.extend_from_slice(&ec.y);
    let peer = p256::PublicKey::from_sec1_bytes(&sec1)
        .map_err(|_| status(StatusCode::InvalidParameter))?;
    let z = p256::ecdh::diffie_hellman(device.to_nonzero_scalar(), peer.as_affine());
    Ok(sha256(z.raw_secret_bytes()))
}

enum Direction {
    Encrypt,
    Decrypt,
}

/// AES-256-CBC with a zero IV and no padding, as PIN protocol 1 uses it.
fn aes256_cbc(key: &[u8; 32], data: &[u8], direction: Direction) -> Result<Vec<u8>, HIDError> {
    use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
    let iv = [0u8; 16];
    let bad = || status(StatusCode::InvalidParameter);
    match direction {
        Direction::Encrypt => {
            Ok(cbc::Encryptor::<aes::Aes256>::new(key.into(), &iv.into())
                .encrypt_padded_vec_mut::<aes::cipher::block_padding::NoPadding>(data))
        }
        Direction::Decrypt => cbc::Decryptor::<aes::Aes256>::new(key.into(), &iv.into())
            .decrypt_padded_vec_mut::<aes::cipher::block_padding::NoPadding>(data)
            .map_err(|_| bad()),
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<[u8; 32], HIDError> {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).map_err(|_| HIDError::DeviceError)?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

/// The credential's public key in COSE form.
fn public_cose_key(credential: &SoftCredential) -> Result<COSEKey, HIDError> {
    Ok(match credential_secret(credential)?.public() {
        CredentialPublicKey::Es256(sec1) => COSEKey {
            alg: COSEAlgorithm::ES256,
            key: COSEKeyType::EC2(COSEEC2Key {
                curve: Curve::SECP256R1,
                x: sec1[1..33].to_vec(),
                y: sec1[33..65].to_vec(),
            }),
        },
        CredentialPublicKey::Ed25519(key) => COSEKey {
            alg: COSEAlgorithm::EDDSA,
            key: COSEKeyType::OKP(COSEOKPKey {
                curve: Curve::Ed25519,
                x: key.to_bytes().to_vec(),
            }),
        },
    })
}

/// Signs `authData || clientDataHash` with the credential (ES256: DER; EdDSA: 64 bytes),
/// through the core's one software signing path.
fn sign(
    credential: &SoftCredential,
    auth_data: &[u8],
    client_data_hash: &[u8],
) -> Result<Vec<u8>, HIDError> {
    let mut message = auth_data.to_vec();
    message.extend_from_slice(client_data_hash);
    Ok(credential_secret(credential)?.sign(&message))
}
