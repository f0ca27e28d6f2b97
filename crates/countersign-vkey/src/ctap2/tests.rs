#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use countersign_core::webauthn::{
    verify_assertion, verify_registration, AssertionInput, AssertionPolicy, AttestationType,
    CeremonyType, ClientData, CredentialPublicKey, RegistrationPolicy,
};
use std::cell::Cell;

const RP: &str = "approvals.example.com";
const ORIGIN: &str = "https://approvals.example.com";

/// A person who touches (or never does, or cancels), counting how often they were asked.
struct Touch {
    answer: Result<(), Status>,
    asked: Cell<usize>,
}

impl Touch {
    fn now() -> Touch {
        Touch {
            answer: Ok(()),
            asked: Cell::new(0),
        }
    }
    fn failing(status: Status) -> Touch {
        Touch {
            answer: Err(status),
            asked: Cell::new(0),
        }
    }
}

impl Presence for Touch {
    fn confirm(&self) -> Result<(), Status> {
        self.asked.set(self.asked.get() + 1);
        self.answer
    }
}

fn request(command: u8, map: Vec<(Value, Value)>) -> Vec<u8> {
    let mut out = vec![command];
    ciborium::into_writer(&Value::Map(map), &mut out).unwrap();
    out
}

fn client_data(ceremony: CeremonyType, challenge: &[u8]) -> Vec<u8> {
    ClientData {
        ceremony,
        challenge: challenge.to_vec(),
        origin: ORIGIN.into(),
    }
    .to_json()
    .into_bytes()
}

fn make_credential_request(client_data_json: &[u8], algs: &[i64]) -> Vec<(Value, Value)> {
    vec![
        (1.into(), Value::Bytes(sha256(client_data_json).to_vec())),
        (2.into(), Value::Map(vec![("id".into(), RP.into())])),
        (
            3.into(),
            Value::Map(vec![("id".into(), Value::Bytes(b"dana".to_vec()))]),
        ),
        (
            4.into(),
            Value::Array(
                algs.iter()
                    .map(|alg| {
                        Value::Map(vec![
                            ("alg".into(), (*alg).into()),
                            ("type".into(), "public-key".into()),
                        ])
                    })
                    .collect(),
            ),
        ),
    ]
}

fn get_assertion_request(client_data_json: &[u8], id: &[u8]) -> Vec<(Value, Value)> {
    vec![
        (1.into(), RP.into()),
        (2.into(), Value::Bytes(sha256(client_data_json).to_vec())),
        (
            3.into(),
            Value::Array(vec![Value::Map(vec![
                ("id".into(), Value::Bytes(id.to_vec())),
                ("type".into(), "public-key".into()),
            ])]),
        ),
    ]
}

/// The answer's status and its map.
fn answer(bytes: &[u8]) -> (u8, Vec<(Value, Value)>) {
    let (status, body) = bytes.split_first().unwrap();
    if body.is_empty() {
        return (*status, Vec::new());
    }
    let value: Value = ciborium::from_reader(body).unwrap();
    (*status, value.into_map().unwrap())
}

fn get(map: &[(Value, Value)], key: i64) -> &Value {
    param(map, key).unwrap_or_else(|| panic!("no member {key} in {map:?}"))
}

/// Makes a credential and checks it as the server does; returns it.
fn register(key: &mut Authenticator, algs: &[i64]) -> (Vec<u8>, CredentialPublicKey) {
    let challenge = [5u8; 32];
    let client_data_json = client_data(CeremonyType::Create, &challenge);
    let touch = Touch::now();
    let reply = key.handle(
        &request(1, make_credential_request(&client_data_json, algs)),
        &touch,
    );
    let (status, map) = answer(&reply);
    assert_eq!(status, 0, "{reply:02x?}");
    assert_eq!(touch.asked.get(), 1);
    // The WebAuthn attestation object a client makes of CTAP2's answer.
    let attestation = Value::Map(vec![
        ("fmt".into(), get(&map, 1).clone()),
        ("attStmt".into(), get(&map, 3).clone()),
        ("authData".into(), get(&map, 2).clone()),
    ]);
    let mut attestation_object = Vec::new();
    ciborium::into_writer(&attestation, &mut attestation_object).unwrap();
    let policy = RegistrationPolicy {
        rp_id: RP,
        origin: ORIGIN,
        challenge: &challenge,
        require_user_verification: false,
    };
    let registered = verify_registration(&policy, &attestation_object, &client_data_json).unwrap();
    assert_eq!(registered.aaguid, AAGUID);
    assert_eq!(registered.attestation, AttestationType::SelfAttestation);
    assert!(registered.flags.user_present());
    (registered.credential_id, registered.public_key)
}

/// Asks for an assertion and checks it as the server does; returns its counter.
fn assert_with(
    key: &mut Authenticator,
    id: &[u8],
    public_key: &CredentialPublicKey,
    stored: u32,
) -> u32 {
    let challenge = [9u8; 32];
    let client_data_json = client_data(CeremonyType::Get, &challenge);
    let reply = key.handle(
        &request(2, get_assertion_request(&client_data_json, id)),
        &Touch::now(),
    );
    let (status, map) = answer(&reply);
    assert_eq!(status, 0, "{reply:02x?}");
    let credential = get(&map, 1).as_map().unwrap();
    assert_eq!(bytes(credential, "id").unwrap(), id);
    let policy = AssertionPolicy {
        rp_id: RP,
        origin: ORIGIN,
        challenge: &challenge,
        require_user_verification: false,
    };
    let input = AssertionInput {
        authenticator_data: get(&map, 2).as_bytes().unwrap(),
        client_data_json: &client_data_json,
        signature: get(&map, 3).as_bytes().unwrap(),
    };
    let verified = verify_assertion(public_key, stored, &policy, &input).unwrap();
    assert!(verified.flags.user_present());
    verified.sign_count
}

#[test]
fn a_credential_made_and_used_verifies_as_the_server_checks_it() {
    let mut key = Authenticator::default();
    let (id, public_key) = register(&mut key, &[-7]);
    assert_eq!(public_key.algorithm(), CoseAlgorithm::Es256);
    assert_eq!(assert_with(&mut key, &id, &public_key, 0), 1);
    assert_eq!(assert_with(&mut key, &id, &public_key, 1), 2);

    // The first algorithm offered that the key knows is used.
    let (id, public_key) = register(&mut key, &[-257, -8, -7]);
    assert_eq!(public_key.algorithm(), CoseAlgorithm::EdDsa);
    assert_eq!(assert_with(&mut key, &id, &public_key, 0), 1);
}

#[test]
fn get_info_names_the_versions_the_model_and_the_algorithms() {
    let reply = Authenticator::default().handle(&[4], &Touch::now());
    let (status, map) = answer(&reply);
    assert_eq!(status, 0);
    let versions: Vec<&str> = get(&map, 1)
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_text)
        .collect();
    assert_eq!(versions, ["FIDO_2_0", "FIDO_2_1"]);
    assert_eq!(get(&map, 3).as_bytes().unwrap(), &AAGUID);
    let options = get(&map, 4).as_map().unwrap();
    assert_eq!(member(options, "rk"), Some(&Value::Bool(false)));
    assert_eq!(member(options, "clientPin"), None, "no PIN offered yet");
    assert_eq!(get(&map, 10).as_array().unwrap().len(), 2);
    // Canonical CBOR: the keys ascend.
    let keys: Vec<i128> = map
        .iter()
        .map(|(k, _)| k.as_integer().unwrap().into())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
}

#[test]
fn no_touch_means_no_credential_and_no_signature() {
    let mut key = Authenticator::default();
    let client_data_json = client_data(CeremonyType::Create, &[1; 32]);
    for status in [Status::UserActionTimeout, Status::KeepaliveCancel] {
        let touch = Touch::failing(status);
        let reply = key.handle(
            &request(1, make_credential_request(&client_data_json, &[-7])),
            &touch,
        );
        assert_eq!(reply, vec![status as u8]);
        assert_eq!(touch.asked.get(), 1);
    }
    assert!(key.credentials.is_empty());

    let (id, public_key) = register(&mut key, &[-7]);
    let get_json = client_data(CeremonyType::Get, &[2; 32]);
    let reply = key.handle(
        &request(2, get_assertion_request(&get_json, &id)),
        &Touch::failing(Status::UserActionTimeout),
    );
    assert_eq!(reply, vec![Status::UserActionTimeout as u8]);
    // The refused assertion did not move the counter.
    assert_eq!(assert_with(&mut key, &id, &public_key, 0), 1);
}

#[test]
fn a_silent_assertion_asks_no_touch_and_says_the_user_was_not_present() {
    let mut key = Authenticator::default();
    let (id, _) = register(&mut key, &[-7]);
    let json = client_data(CeremonyType::Get, &[3; 32]);
    let mut params = get_assertion_request(&json, &id);
    params.push((5.into(), Value::Map(vec![("up".into(), false.into())])));
    let touch = Touch::now();
    let (status, map) = answer(&key.handle(&request(2, params), &touch));
    assert_eq!(status, 0);
    assert_eq!(touch.asked.get(), 0);
    let auth_data = get(&map, 2).as_bytes().unwrap();
    assert_eq!(auth_data[32] & Flags::UP, 0);
}

#[test]
fn unknown_credentials_other_relying_parties_and_excluded_ones_are_refused() {
    let mut key = Authenticator::default();
    let (id, _) = register(&mut key, &[-7]);
    let json = client_data(CeremonyType::Get, &[3; 32]);
    let touch = Touch::now();
    let reply = key.handle(
        &request(2, get_assertion_request(&json, b"unknown")),
        &touch,
    );
    assert_eq!(reply, vec![Status::NoCredentials as u8]);
    let mut other_rp = get_assertion_request(&json, &id);
    other_rp[0].1 = "login.example.com".into();
    assert_eq!(
        key.handle(&request(2, other_rp), &touch),
        vec![Status::NoCredentials as u8]
    );
    assert_eq!(
        touch.asked.get(),
        0,
        "no touch asked for a key that cannot answer"
    );

    let create_json = client_data(CeremonyType::Create, &[1; 32]);
    let mut params = make_credential_request(&create_json, &[-7]);
    params.push((
        5.into(),
        Value::Array(vec![Value::Map(vec![
            ("id".into(), Value::Bytes(id.clone())),
            ("type".into(), "public-key".into()),
        ])]),
    ));
    let touch = Touch::now();
    assert_eq!(
        key.handle(&request(1, params), &touch),
        vec![Status::CredentialExcluded as u8]
    );
    assert_eq!(
        touch.asked.get(),
        1,
        "excluded only after a touch (§6.1.2 step 7)"
    );
    assert_eq!(key.credentials.len(), 1);
}

#[test]
fn malformed_and_unsupported_requests_get_precise_statuses() {
    let mut key = Authenticator::default();
    let touch = Touch::now();
    let json = client_data(CeremonyType::Create, &[1; 32]);
    let full = || make_credential_request(&json, &[-7]);
    let with = |extra: (Value, Value)| {
        let mut p = full();
        p.push(extra);
        p
    };
    let cases: Vec<(Vec<u8>, Status)> = vec![
        (vec![], Status::InvalidCommand),
        (vec![0x42], Status::InvalidCommand),
        (vec![1, 0xff, 0x00], Status::InvalidCbor),
        (request(1, full()[1..].to_vec()), Status::MissingParameter),
        (
            request(1, {
                let mut p = full();
                p[0].1 = Value::Bytes(vec![0; 31]);
                p
            }),
            Status::InvalidParameter,
        ),
        (
            request(1, {
                let mut p = full();
                p[1].1 = "approvals.example.com".into();
                p
            }),
            Status::CborUnexpectedType,
        ),
        (
            request(1, make_credential_request(&json, &[-257])),
            Status::UnsupportedAlgorithm,
        ),
        (
            request(
                1,
                with((7.into(), Value::Map(vec![("rk".into(), true.into())]))),
            ),
            Status::UnsupportedOption,
        ),
        (
            request(
                1,
                with((7.into(), Value::Map(vec![("uv".into(), true.into())]))),
            ),
            Status::InvalidOption,
        ),
        (
            request(1, with((8.into(), Value::Bytes(vec![1; 16])))),
            Status::PinAuthInvalid,
        ),
    ];
    for (bytes, status) in cases {
        assert_eq!(
            key.handle(&bytes, &touch),
            vec![status as u8],
            "{bytes:02x?}"
        );
    }
    assert_eq!(touch.asked.get(), 0);
    assert!(key.credentials.is_empty());

    // An empty pinUvAuthParam is the platform asking for a touch: touch, then "no PIN".
    let reply = key.handle(&request(1, with((8.into(), Value::Bytes(vec![])))), &touch);
    assert_eq!(reply, vec![Status::PinNotSet as u8]);
    assert_eq!(touch.asked.get(), 1);
}

#[test]
fn reset_forgets_every_credential_after_a_touch() {
    let mut key = Authenticator::default();
    let (id, _) = register(&mut key, &[-7]);
    assert_eq!(
        key.handle(&[7], &Touch::failing(Status::UserActionTimeout)),
        vec![Status::UserActionTimeout as u8]
    );
    assert_eq!(key.credentials.len(), 1);
    assert_eq!(key.handle(&[7], &Touch::now()), vec![0]);
    let json = client_data(CeremonyType::Get, &[3; 32]);
    assert_eq!(
        key.handle(
            &request(2, get_assertion_request(&json, &id)),
            &Touch::now()
        ),
        vec![Status::NoCredentials as u8]
    );
    assert_eq!(key.handle(&[0x0b], &Touch::now()), vec![0], "selection");
}
