//! The CTAP2 software key driven through the `authenticator` crate's own register, sign,
//! pre-flight and PIN code: what it makes verifies with the protocol crate; the PIN path
//! produces the typed events a UI shows (touch, enter PIN, tries left, blocked); its file
//! keeps credentials and counters across runs. The USB signer, without a key plugged in,
//! ends with an error instead of hanging.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_approver::signer::{
    DemoKeySigner, KeyEvent, KeyPrompt, Signer, SignerError, SoftAlgorithm, SoftKeyFileError,
    SoftKeyState, UsbSigner, PIN_RETRIES, SOFT_KEY_AAGUID,
};
use countersign_core::b64;
use countersign_core::webauthn::attestation::{verify_registration, RegistrationPolicy};
use countersign_core::webauthn::{
    verify_assertion, AssertionInput, AssertionPolicy, ClientData, CredentialPublicKey,
};
use std::sync::{Arc, Mutex};

const RP_ID: &str = "approvals.example.com";
const ORIGIN: &str = "https://approvals.example.com";

/// A person at the key who types the given PINs in order (then cancels) and whose screen
/// is recorded.
#[derive(Default)]
struct ScriptedPerson {
    pins: Mutex<Vec<&'static str>>,
    seen: Mutex<Vec<KeyEvent>>,
}

impl ScriptedPerson {
    fn typing(pins: &[&'static str]) -> Arc<Self> {
        Arc::new(ScriptedPerson {
            pins: Mutex::new(pins.iter().rev().copied().collect()),
            seen: Mutex::default(),
        })
    }

    fn seen(&self) -> Vec<KeyEvent> {
        self.seen.lock().unwrap().clone()
    }
}

impl KeyPrompt for ScriptedPerson {
    fn show(&self, event: &KeyEvent) {
        self.seen.lock().unwrap().push(event.clone());
    }

    fn pin(&self, _event: &KeyEvent) -> Option<zeroize::Zeroizing<String>> {
        self.pins
            .lock()
            .unwrap()
            .pop()
            .map(|p| zeroize::Zeroizing::new(p.to_owned()))
    }
}

fn create_json(challenge: &[u8]) -> String {
    format!(
        r#"{{"type":"webauthn.create","challenge":"{}","origin":"{ORIGIN}","crossOrigin":false}}"#,
        b64::encode(challenge)
    )
}

/// Registers a credential and verifies it as the server does.
fn register(key: &DemoKeySigner, uv: bool) -> (Vec<u8>, CredentialPublicKey) {
    let challenge = [7u8; 32];
    let client_data = create_json(&challenge);
    let registration = key
        .make_credential(RP_ID, client_data.as_bytes(), uv)
        .unwrap();
    let policy = RegistrationPolicy {
        rp_id: RP_ID,
        origin: ORIGIN,
        challenge: &challenge,
        require_user_verification: uv,
    };
    let credential = verify_registration(
        &policy,
        &registration.attestation_object,
        client_data.as_bytes(),
    )
    .unwrap();
    assert_eq!(credential.credential_id, registration.credential_id);
    assert_eq!(credential.aaguid, SOFT_KEY_AAGUID);
    assert_eq!(credential.sign_count, 0);
    (credential.credential_id, credential.public_key)
}

/// Signs a challenge and verifies it as the server does; returns (counter, UV flag).
fn sign_and_verify(
    key: &DemoKeySigner,
    credential_id: &[u8],
    public_key: &CredentialPublicKey,
    stored_count: u32,
    uv: bool,
) -> Result<(u32, bool), SignerError> {
    let challenge = [3u8; 32];
    let client_data = ClientData::get(&challenge, ORIGIN).to_json();
    let assertion = key.get_assertion(RP_ID, client_data.as_bytes(), credential_id, uv)?;
    let verified = verify_assertion(
        public_key,
        stored_count,
        &AssertionPolicy {
            rp_id: RP_ID,
            origin: ORIGIN,
            challenge: &challenge,
            require_user_verification: uv,
        },
        &AssertionInput {
            authenticator_data: &assertion.authenticator_data,
            client_data_json: client_data.as_bytes(),
            signature: &assertion.signature,
        },
    )
    .unwrap();
    Ok((verified.sign_count, verified.flags.user_verified()))
}

fn soft_key(
    algorithm: SoftAlgorithm,
    pin: Option<&str>,
    person: Arc<ScriptedPerson>,
) -> DemoKeySigner {
    DemoKeySigner::in_memory(SoftKeyState::new(algorithm, pin).unwrap(), person).unwrap()
}

#[test]
fn es256_and_eddsa_credentials_verify_with_the_protocol_crate() {
    for algorithm in [SoftAlgorithm::ES256, SoftAlgorithm::EdDSA] {
        let person = ScriptedPerson::typing(&[]);
        let key = soft_key(algorithm, None, person.clone());
        let (id, public_key) = register(&key, true);
        let expected = match algorithm {
            SoftAlgorithm::ES256 => countersign_core::webauthn::CoseAlgorithm::Es256,
            SoftAlgorithm::EdDSA => countersign_core::webauthn::CoseAlgorithm::EdDsa,
        };
        assert_eq!(public_key.algorithm(), expected);
        // Without a PIN the key verifies the user itself when asked, and only then.
        assert_eq!(
            sign_and_verify(&key, &id, &public_key, 0, true).unwrap(),
            // The crate's pre-flight (a silent assertion) counts too, as on real keys.
            (2, true)
        );
        assert_eq!(
            sign_and_verify(&key, &id, &public_key, 2, false).unwrap(),
            (4, false)
        );
        assert!(person.seen().contains(&KeyEvent::TouchKey));
        assert!(!person.seen().contains(&KeyEvent::PinRequired));
    }
}

#[test]
fn the_pin_path_reports_tries_left_and_verifies_the_user() {
    let person = ScriptedPerson::typing(&["123456", "0000", "482913"]);
    let key = soft_key(SoftAlgorithm::ES256, Some("482913"), person.clone());
    // Registration with a PIN set needs the PIN.
    let (id, public_key) = register(&key, true);
    assert_eq!(person.seen()[0], KeyEvent::PinRequired);
    assert_eq!(
        person.seen()[1..3],
        [
            KeyEvent::WrongPin {
                retries_left: Some(PIN_RETRIES - 1)
            },
            KeyEvent::WrongPin {
                retries_left: Some(PIN_RETRIES - 2)
            },
        ]
    );
    // The right PIN resets the tries.
    assert_eq!(key.state().unwrap().pin_retries, PIN_RETRIES);

    let person_sign = ScriptedPerson::typing(&["482913"]);
    let key = DemoKeySigner::in_memory(key.state().unwrap(), person_sign.clone()).unwrap();
    let (count, uv) = sign_and_verify(&key, &id, &public_key, 0, true).unwrap();
    assert!(uv, "the PIN verified the user");
    assert!(count >= 1);
    assert_eq!(
        person_sign.seen(),
        [KeyEvent::PinRequired, KeyEvent::TouchKey]
    );
}

#[test]
fn three_wrong_pins_in_a_row_need_a_replug_and_eight_block_the_pin() {
    let person = ScriptedPerson::typing(&["1111", "2222", "3333", "4444"]);
    let key = soft_key(SoftAlgorithm::ES256, Some("482913"), person.clone());
    let refused = key.make_credential(RP_ID, create_json(&[1; 32]).as_bytes(), true);
    assert_eq!(refused.unwrap_err(), SignerError::PinAuthBlocked);
    assert_eq!(
        person.seen(),
        [
            KeyEvent::PinRequired,
            KeyEvent::WrongPin {
                retries_left: Some(7)
            },
            KeyEvent::WrongPin {
                retries_left: Some(6)
            },
            KeyEvent::PinAuthBlocked,
        ]
    );
    assert_eq!(key.state().unwrap().pin_retries, PIN_RETRIES - 3);

    // Until it is unplugged, even the right PIN is refused.
    let state = key.state().unwrap();
    let right = ScriptedPerson::typing(&["482913"]);
    let replugged = DemoKeySigner::in_memory(state.clone(), right.clone()).unwrap();
    register(&replugged, true);
    assert_eq!(replugged.state().unwrap().pin_retries, PIN_RETRIES);

    // With one try left, a wrong PIN blocks it for good; the right one no longer helps.
    let mut last_try = state;
    last_try.pin_retries = 1;
    let person = ScriptedPerson::typing(&["9999", "482913"]);
    let key = DemoKeySigner::in_memory(last_try, person.clone()).unwrap();
    let refused = key.make_credential(RP_ID, create_json(&[1; 32]).as_bytes(), true);
    assert_eq!(refused.unwrap_err(), SignerError::PinBlocked);
    assert!(person.seen().contains(&KeyEvent::PinBlocked));
    assert_eq!(key.state().unwrap().pin_retries, 0);
    key.replug().unwrap();
    let again = key.make_credential(RP_ID, create_json(&[1; 32]).as_bytes(), true);
    assert_eq!(again.unwrap_err(), SignerError::PinBlocked);
}

#[test]
fn no_pin_typed_cancels_and_an_unknown_credential_is_refused() {
    let person = ScriptedPerson::typing(&[]);
    let key = soft_key(SoftAlgorithm::ES256, Some("482913"), person.clone());
    let cancelled = key.make_credential(RP_ID, create_json(&[1; 32]).as_bytes(), true);
    assert_eq!(cancelled.unwrap_err(), SignerError::Cancelled);
    assert_eq!(person.seen(), [KeyEvent::PinRequired]);
    assert!(key.state().unwrap().credentials.is_empty());

    let person = ScriptedPerson::typing(&[]);
    let key = soft_key(SoftAlgorithm::ES256, None, person);
    let client_data = ClientData::get(&[3; 32], ORIGIN).to_json();
    let unknown = key.get_assertion(RP_ID, client_data.as_bytes(), b"not-mine", true);
    assert_eq!(unknown.unwrap_err(), SignerError::UnknownCredential);
    // A credential made for another RP id is not offered for this one either.
    let (id, _) = register(&key, true);
    let other_rp = key.get_assertion("evil.example.com", client_data.as_bytes(), &id, true);
    assert_eq!(other_rp.unwrap_err(), SignerError::UnknownCredential);
    assert_eq!(
        key.state().unwrap().credentials.len(),
        1,
        "nothing else made"
    );
}

#[test]
fn the_key_file_keeps_credentials_and_counters_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.json");
    let person = ScriptedPerson::typing(&[]);
    let key = DemoKeySigner::create(&path, SoftAlgorithm::EdDSA, None, person.clone()).unwrap();
    let (id, public_key) = register(&key, true);
    let (first, _) = sign_and_verify(&key, &id, &public_key, 0, true).unwrap();
    drop(key);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only the owner may read the key file");
    }

    let key = DemoKeySigner::open(&path, person.clone()).unwrap();
    let (second, _) = sign_and_verify(&key, &id, &public_key, first, true).unwrap();
    assert!(second > first, "the counter continues after a restart");

    // Never overwritten by a new key; a damaged file is refused with its path.
    assert!(matches!(
        DemoKeySigner::create(&path, SoftAlgorithm::ES256, None, person.clone()),
        Err(SoftKeyFileError::Io { .. })
    ));
    std::fs::write(&path, b"{\"version\":1").unwrap();
    match DemoKeySigner::open(&path, person) {
        Err(SoftKeyFileError::Invalid { path: p, .. }) => assert_eq!(p, path),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a damaged key file was accepted"),
    }
}

#[test]
fn a_usb_signer_without_a_key_ends_with_an_error_not_a_hang() {
    let person = ScriptedPerson::typing(&[]);
    let usb = UsbSigner::new(std::time::Duration::from_secs(1), person);
    let client_data = ClientData::get(&[3; 32], ORIGIN).to_json();
    let started = std::time::Instant::now();
    let outcome = usb.get_assertion(RP_ID, client_data.as_bytes(), b"credential", true);
    assert!(
        matches!(
            outcome,
            Err(SignerError::Cancelled | SignerError::NoTransport(_))
        ),
        "{outcome:?}"
    );
    // Generous bound: the point is that it returns at all.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn a_simulated_touch_waits_and_a_cancel_at_the_touch_signs_nothing() {
    let key = soft_key(SoftAlgorithm::ES256, None, ScriptedPerson::typing(&[]))
        .with_touch_delay(std::time::Duration::from_millis(300));
    let (id, public_key) = register(&key, false);
    let started = std::time::Instant::now();
    let (count, _) = sign_and_verify(&key, &id, &public_key, 0, false).unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));

    // The same credential on a key whose touch never comes in time: cancel at the touch.
    let person = ScriptedPerson::typing(&[]);
    let slow = Arc::new(
        DemoKeySigner::in_memory(key.state().unwrap(), person.clone())
            .unwrap()
            .with_touch_delay(std::time::Duration::from_secs(30)),
    );
    let signing = {
        let (slow, id) = (slow.clone(), id.clone());
        std::thread::spawn(move || {
            let client_data = ClientData::get(&[3; 32], ORIGIN).to_json();
            slow.get_assertion(RP_ID, client_data.as_bytes(), &id, false)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let cancelled_at = std::time::Instant::now();
    slow.cancel();
    assert_eq!(signing.join().unwrap().unwrap_err(), SignerError::Cancelled);
    assert!(
        cancelled_at.elapsed() < std::time::Duration::from_secs(20),
        "the cancel ended the wait for the touch, not its 30 s delay"
    );
    // The crate's silent pre-flight (no presence) may count once; no presence-signed
    // assertion was made.
    assert!(slow.state().unwrap().credentials[0].sign_count <= count + 1);
    assert!(
        person.seen().contains(&KeyEvent::TouchKey),
        "the key asked for the touch first"
    );
}
