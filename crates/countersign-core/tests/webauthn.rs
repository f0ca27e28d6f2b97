//! WebAuthn verification: the W3C specification's published vector, then every check of
//! assertion and registration verification, each failing on its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::canonical::Digest;
use countersign_core::webauthn::attestation::{
    verify_registration, AttestationError, AttestationType, RegistrationPolicy,
};
use countersign_core::webauthn::auth_data::Flags;
use countersign_core::webauthn::{
    verify_assertion, AssertionError, AssertionPolicy, ClientData, ClientDataError,
    CredentialPublicKey, SignatureError,
};
use countersign_core::{ApprovalStatement, Decision};
use countersign_forge::*;

fn h(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

/// W3C Web Authentication Level 3, §16.2 "ES256 Credential with No Attestation"
/// (RP id `example.org`, origin `https://example.org`), transcribed from the specification.
mod w3c_es256_none {
    pub const REG_CHALLENGE: &str =
        "00c30fb78531c464d2b6771dab8d7b603c01162f2fa486bea70f283ae556e130";
    pub const REG_CLIENT_DATA: &str = concat!(
        "7b2274797065223a22776562617574686e2e637265617465222c226368616c6c656e6765",
        "223a22414d4d507434557878475453746e63647134313759447742466938767049612d70",
        "77386f4f755657345441222c226f726967696e223a2268747470733a2f2f6578616d706c",
        "652e6f7267222c2263726f73734f726967696e223a66616c73652c226578747261446174",
        "61223a22636c69656e74446174614a534f4e206d617920626520657874656e6465642077",
        "697468206164646974696f6e616c206669656c647320696e20746865206675747572652c",
        "207375636820617320746869733a20426b5165446a646354427258426941774a544c4535",
        "51227d"
    );
    pub const REG_ATTESTATION: &str = concat!(
        "a363666d74646e6f6e656761747453746d74a068617574684461746158a4bfabc3743295",
        "8b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b559000000008446ccb9ab",
        "1db374750b2367ff6f3a1f0020f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33",
        "ad94ff3ec330084be4a5010203262001215820afefa16f97ca9b2d23eb86ccb64098d20d",
        "b90856062eb249c33a9b672f26df61225820930a56b87a2fca66334b03458abf879717c1",
        "2cc68ed73290af2e2664796b9220"
    );
    pub const AAGUID: &str = "8446ccb9ab1db374750b2367ff6f3a1f";
    pub const CREDENTIAL_ID: &str =
        "f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33ad94ff3ec330084be4";
    pub const ASSERT_CHALLENGE: &str =
        "39c0e7521417ba54d43e8dc95174f423dee9bf3cd804ff6d65c857c9abf4d408";
    pub const ASSERT_AUTH_DATA: &str =
        "bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b51900000000";
    pub const ASSERT_CLIENT_DATA: &str = concat!(
        "7b2274797065223a22776562617574686e2e676574222c226368616c6c656e6765223a22",
        "4f63446e55685158756c5455506f334a5558543049393770767a7a59425039745a636858",
        "79617630314167222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f",
        "7267222c2263726f73734f726967696e223a66616c73657d"
    );
    pub const ASSERT_SIGNATURE: &str = concat!(
        "3046022100f50a4e2e4409249c4a853ba361282f09841df4dd4547a13a87780218deffcd",
        "380221008480ac0f0b93538174f575bf11a1dd5d78c6e486013f937295ea13653e331e87"
    );
}

#[test]
fn w3c_vector_registration_and_assertion_verify() {
    use w3c_es256_none::*;
    let challenge = h(REG_CHALLENGE);
    let policy = RegistrationPolicy {
        rp_id: "example.org",
        origin: "https://example.org",
        challenge: &challenge,
        require_user_verification: false,
    };
    let credential =
        verify_registration(&policy, &h(REG_ATTESTATION), &h(REG_CLIENT_DATA)).unwrap();
    assert_eq!(credential.aaguid.to_vec(), h(AAGUID));
    assert_eq!(credential.credential_id, h(CREDENTIAL_ID));
    assert_eq!(credential.attestation, AttestationType::None);
    assert_eq!(credential.sign_count, 0);
    assert!(matches!(
        credential.public_key,
        CredentialPublicKey::Es256(_)
    ));

    let assert_challenge: [u8; 32] = h(ASSERT_CHALLENGE).try_into().unwrap();
    let (auth_data, client_data, signature) = (
        h(ASSERT_AUTH_DATA),
        h(ASSERT_CLIENT_DATA),
        h(ASSERT_SIGNATURE),
    );
    let input = countersign_core::webauthn::AssertionInput {
        authenticator_data: &auth_data,
        client_data_json: &client_data,
        signature: &signature,
    };
    let mut policy = AssertionPolicy {
        rp_id: "example.org",
        origin: "https://example.org",
        challenge: &assert_challenge,
        require_user_verification: false,
    };
    let verified = verify_assertion(&credential.public_key, 0, &policy, &input).unwrap();
    assert_eq!(verified.sign_count, 0);

    // The published assertion has UV clear, so a policy that requires UV refuses it.
    policy.require_user_verification = true;
    assert_eq!(
        verify_assertion(&credential.public_key, 0, &policy, &input),
        Err(AssertionError::UserNotVerified)
    );
    // And it is bound to its own challenge.
    let other: [u8; 32] = h(REG_CHALLENGE).try_into().unwrap();
    policy.require_user_verification = false;
    policy.challenge = &other;
    assert_eq!(
        verify_assertion(&credential.public_key, 0, &policy, &input),
        Err(AssertionError::ClientData(
            ClientDataError::ChallengeMismatch
        ))
    );
}

/// W3C Web Authentication Level 3, §16.11 "Packed Attestation with Ed25519 Credential"
/// (`packed` with an x5c P-256 attestation certificate; EdDSA credential; RP id `example.org`),
/// transcribed from the specification.
mod w3c_packed_ed25519 {
    pub const REG_CHALLENGE: &str =
        "a8abf9dabdc6b0df63466b39bda9e8a34a34e185337a59f1c579990676d3b3bd";
    pub const REG_CLIENT_DATA: &str = "7b2274797065223a22776562617574686e2e637265617465222c226368616c6c656e6765223a22714b763532723347734e396a526d733576616e6f6f306f303459557a656c6e7878586d5a426e6254733730222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73652c22657874726144617461223a22636c69656e74446174614a534f4e206d617920626520657874656e6465642077697468206164646974696f6e616c206669656c647320696e20746865206675747572652c207375636820617320746869733a20425f44543567375a445f2d394f544c59583549764551227d";
    pub const REG_ATTESTATION: &str = "a363666d74667061636b65646761747453746d74a363616c67266373696758483046022100d83f60bd80269537583218858aefb03ac57d45fa06e42feaae332d187f62da9f022100a02bd3cb6f7e1d283c93bad1f3f4b5a4c0494463da7fdbf256949116754d1f17637835638159022730820223308201c8a003020102021100b2cfc9ea33c8643b0e1a760463eaf164300a06082a8648ce3d0403023062311e301c06035504030c15576562417574686e207465737420766563746f7273310c300a060355040a0c0357334331253023060355040b0c1c41757468656e74696361746f72204174746573746174696f6e204341310b30090603550406130241413020170d3234303130313030303030305a180f33303234303130313030303030305a305f311e301c06035504030c15576562417574686e207465737420766563746f7273310c300a060355040a0c0357334331223020060355040b0c1941757468656e74696361746f72204174746573746174696f6e310b30090603550406130241413059301306072a8648ce3d020106082a8648ce3d03010703420004dd2b7a564b73b8c0b81c4c62e521925c4d1198ec9f583dbf1eebe364b65cd9c29a9bdf346aaa81fb6b9507e5249a52fdaf8e39e26b0b7dc45992a7e233b70f70a360305e300c0603551d130101ff04023000300e0603551d0f0101ff040403020780301d0603551d0e041604140ae27546bc7eccb1b4b597bd354f0c0b1f1f8f8e301f0603551d2304183016801445aff715b0dd786741fee996ebc16547a3931b1e300a06082a8648ce3d0403020349003046022100a0d434ecb5fc3bfd7da5f41904517ad2836249f561bd834ba7a438a8ab7a4ce8022100fac845bb7a02513b58e9f319654dbe49b0f02b95835bac568c71f8a18cdde9ab6861757468446174615881bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b54100000000d5aa33581e8ca478e20fe713f5d32ff20020ce9f840ed96599580cd140fbc7bb3230633f50f61041aff73308ae71caa8a2bda401010327200621582044e06ddd331c36a8dc667bab52bcae63486c916aa5e339e6acebaa84934bf832";
    pub const ASSERT_CHALLENGE: &str =
        "895957e01c633a698348a2d8a31a54b7db27e8c1c43b2080d79ae2190267bfd2";
    pub const ASSERT_AUTH_DATA: &str =
        "bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b50100000000";
    pub const ASSERT_CLIENT_DATA: &str = "7b2274797065223a22776562617574686e2e676574222c226368616c6c656e6765223a2269566c583442786a4f6d6d44534b4c596f7870557439736e364d48454f7943413135726947514a6e763949222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73657d";
    pub const ASSERT_SIGNATURE: &str = "f5c59c7e46c34f6f8cc197101ddf9934fa2595f68eb1913a637e8419eb9ba4cfdfc48f85393bc0d40b011f0d6fecb097d6607525713223a0dc0d453993dae00b";
}

#[test]
fn w3c_packed_ed25519_vector_registration_and_assertion_verify() {
    use w3c_packed_ed25519::*;
    let challenge = h(REG_CHALLENGE);
    let policy = RegistrationPolicy {
        rp_id: "example.org",
        origin: "https://example.org",
        challenge: &challenge,
        require_user_verification: false,
    };
    let credential =
        verify_registration(&policy, &h(REG_ATTESTATION), &h(REG_CLIENT_DATA)).unwrap();
    assert!(
        matches!(credential.attestation, AttestationType::Basic { ref certificates } if certificates.len() == 1)
    );
    assert!(matches!(
        credential.public_key,
        CredentialPublicKey::Ed25519(_)
    ));
    assert_eq!(credential.credential_id.len(), 32);

    let assert_challenge: [u8; 32] = h(ASSERT_CHALLENGE).try_into().unwrap();
    let (auth_data, client_data, mut signature) = (
        h(ASSERT_AUTH_DATA),
        h(ASSERT_CLIENT_DATA),
        h(ASSERT_SIGNATURE),
    );
    let policy = AssertionPolicy {
        rp_id: "example.org",
        origin: "https://example.org",
        challenge: &assert_challenge,
        require_user_verification: false,
    };
    let input = countersign_core::webauthn::AssertionInput {
        authenticator_data: &auth_data,
        client_data_json: &client_data,
        signature: &signature,
    };
    assert_eq!(
        verify_assertion(&credential.public_key, 0, &policy, &input)
            .unwrap()
            .sign_count,
        0
    );

    // One flipped bit in the published signature, and it no longer verifies.
    signature[63] ^= 0x01;
    let input = countersign_core::webauthn::AssertionInput {
        authenticator_data: &auth_data,
        client_data_json: &client_data,
        signature: &signature,
    };
    assert_eq!(
        verify_assertion(&credential.public_key, 0, &policy, &input),
        Err(AssertionError::Signature(SignatureError::Invalid))
    );
    // A registration challenge of another ceremony is refused.
    let other = h(w3c_es256_none::REG_CHALLENGE);
    let policy = RegistrationPolicy {
        rp_id: "example.org",
        origin: "https://example.org",
        challenge: &other,
        require_user_verification: false,
    };
    assert_eq!(
        verify_registration(&policy, &h(REG_ATTESTATION), &h(REG_CLIENT_DATA)),
        Err(AttestationError::ClientData(
            ClientDataError::ChallengeMismatch
        ))
    );
}

fn challenge_for(tx: u8, approver: &str) -> [u8; 32] {
    ApprovalStatement::new(Digest([tx; 32]), Decision::Approve, approver)
        .challenge()
        .unwrap()
}

fn policy(challenge: &[u8; 32], uv: bool) -> AssertionPolicy<'_> {
    AssertionPolicy {
        rp_id: RP_ID,
        origin: ORIGIN,
        challenge,
        require_user_verification: uv,
    }
}

fn client_data(challenge: &[u8]) -> String {
    ClientData::get(challenge, ORIGIN).to_json()
}

#[test]
fn es256_and_eddsa_assertions_verify() {
    for key in [ForgingKey::es256(1), ForgingKey::ed25519(2)] {
        let challenge = challenge_for(1, "bob");
        let a = assert_with(
            &key,
            RP_ID,
            Flags::UP | Flags::UV,
            5,
            &client_data(&challenge),
        );
        let verified =
            verify_assertion(&key.public(), 4, &policy(&challenge, true), &a.input()).unwrap();
        assert_eq!(verified.sign_count, 5);
        assert!(verified.flags.user_verified());
    }
}

#[test]
fn each_assertion_check_fails_on_its_own() {
    let key = ForgingKey::es256(1);
    let challenge = challenge_for(1, "bob");
    let good_cd = client_data(&challenge);
    let verify = |a: &Assertion, stored: u32, uv: bool| {
        verify_assertion(&key.public(), stored, &policy(&challenge, uv), &a.input())
    };

    // Replay onto another transaction: the statement, hence the challenge, differs.
    let other = assert_with(
        &key,
        RP_ID,
        Flags::UP,
        1,
        &client_data(&challenge_for(2, "bob")),
    );
    assert_eq!(
        verify(&other, 0, false),
        Err(AssertionError::ClientData(
            ClientDataError::ChallengeMismatch
        ))
    );
    // The same transaction signed for another approver.
    let carol = assert_with(
        &key,
        RP_ID,
        Flags::UP,
        1,
        &client_data(&challenge_for(1, "carol")),
    );
    assert_eq!(
        verify(&carol, 0, false),
        Err(AssertionError::ClientData(
            ClientDataError::ChallengeMismatch
        ))
    );
    // Another origin.
    let phished = assert_with(
        &key,
        RP_ID,
        Flags::UP,
        1,
        &ClientData::get(&challenge, "https://approvals.example.com.evil").to_json(),
    );
    assert!(matches!(
        verify(&phished, 0, false),
        Err(AssertionError::ClientData(
            ClientDataError::OriginMismatch { .. }
        ))
    ));
    // Another RP id.
    let other_rp = assert_with(&key, "example.com", Flags::UP, 1, &good_cd);
    assert_eq!(
        verify(&other_rp, 0, false),
        Err(AssertionError::RpIdMismatch)
    );
    // A registration's client data.
    let create = good_cd.replace("webauthn.get", "webauthn.create");
    let wrong_type = assert_with(&key, RP_ID, Flags::UP, 1, &create);
    assert!(matches!(
        verify(&wrong_type, 0, false),
        Err(AssertionError::ClientData(
            ClientDataError::WrongType { .. }
        ))
    ));
    // No user presence; no user verification where required.
    assert_eq!(
        verify(&assert_with(&key, RP_ID, 0, 1, &good_cd), 0, false),
        Err(AssertionError::UserNotPresent)
    );
    assert_eq!(
        verify(&assert_with(&key, RP_ID, Flags::UP, 1, &good_cd), 0, true),
        Err(AssertionError::UserNotVerified)
    );
    // Signed by another key, or by a key of the other algorithm.
    let stranger = assert_with(&ForgingKey::es256(9), RP_ID, Flags::UP, 1, &good_cd);
    assert_eq!(
        verify(&stranger, 0, false),
        Err(AssertionError::Signature(SignatureError::Invalid))
    );
    let ed = assert_with(&ForgingKey::ed25519(1), RP_ID, Flags::UP, 1, &good_cd);
    assert_eq!(
        verify(&ed, 0, false),
        Err(AssertionError::Signature(SignatureError::Invalid))
    );
    // Flags altered after signing (UV added).
    let mut altered = assert_with(&key, RP_ID, Flags::UP, 1, &good_cd);
    altered.authenticator_data[32] |= Flags::UV;
    assert_eq!(
        verify(&altered, 0, true),
        Err(AssertionError::Signature(SignatureError::Invalid))
    );
    // Client data altered after signing (a member appended).
    let mut appended = assert_with(&key, RP_ID, Flags::UP, 1, &good_cd);
    appended.client_data_json.pop();
    appended.client_data_json.extend_from_slice(br#","x":1}"#);
    assert_eq!(
        verify(&appended, 0, false),
        Err(AssertionError::Signature(SignatureError::Invalid))
    );
    // Cloned key: the counter does not move forward.
    let a = assert_with(&key, RP_ID, Flags::UP, 7, &good_cd);
    assert_eq!(
        verify(&a, 7, false),
        Err(AssertionError::CounterRegression {
            stored: 7,
            received: 7
        })
    );
    assert_eq!(
        verify(&a, 9, false),
        Err(AssertionError::CounterRegression {
            stored: 9,
            received: 7
        })
    );
    let zero = assert_with(&key, RP_ID, Flags::UP, 0, &good_cd);
    assert_eq!(
        verify(&zero, 3, false),
        Err(AssertionError::CounterRegression {
            stored: 3,
            received: 0
        })
    );
    assert!(
        verify(&zero, 0, false).is_ok(),
        "authenticators without a counter send 0 forever"
    );
    // Cross-origin ceremony.
    let framed = good_cd.replace("\"crossOrigin\":false", "\"crossOrigin\":true");
    assert_eq!(
        verify(&assert_with(&key, RP_ID, Flags::UP, 1, &framed), 0, false),
        Err(AssertionError::ClientData(ClientDataError::CrossOrigin))
    );
    // Attested credential data has no place in an assertion.
    let mut with_at = registration_auth_data(&key, RP_ID, Flags::UP);
    let mut signed = with_at.clone();
    signed.extend_from_slice(&countersign_core::canonical::sha256(good_cd.as_bytes()));
    let at = Assertion {
        signature: key.sign(&signed),
        authenticator_data: std::mem::take(&mut with_at),
        client_data_json: good_cd.clone().into_bytes(),
    };
    assert_eq!(
        verify(&at, 0, false),
        Err(AssertionError::UnexpectedAttestedData)
    );
    // The untouched assertion passes, so each failure above is due to its one change.
    assert!(verify(
        &assert_with(&key, RP_ID, Flags::UP | Flags::UV, 1, &good_cd),
        0,
        true
    )
    .is_ok());
}

fn create_client_data(challenge: &[u8]) -> String {
    ClientData {
        ceremony: countersign_core::webauthn::CeremonyType::Create,
        challenge: challenge.to_vec(),
        origin: ORIGIN.into(),
    }
    .to_json()
}

fn reg_policy(challenge: &[u8], uv: bool) -> RegistrationPolicy<'_> {
    RegistrationPolicy {
        rp_id: RP_ID,
        origin: ORIGIN,
        challenge,
        require_user_verification: uv,
    }
}

#[test]
fn registrations_verify_for_none_self_and_x5c() {
    let challenge = [7u8; 32];
    let cd = create_client_data(&challenge);
    for key in [ForgingKey::es256(3), ForgingKey::ed25519(4)] {
        let ad = registration_auth_data(&key, RP_ID, Flags::UP | Flags::UV);
        for (attest, expected) in [
            (Attest::None, AttestationType::None),
            (Attest::PackedSelf, AttestationType::SelfAttestation),
        ] {
            let obj = attestation_object(&key, &ad, &cd, attest);
            let cred =
                verify_registration(&reg_policy(&challenge, true), &obj, cd.as_bytes()).unwrap();
            assert_eq!(cred.attestation, expected);
            assert_eq!(cred.public_key, key.public());
            assert_eq!(cred.aaguid, AAGUID);
            assert_eq!(cred.credential_id, b"credential-1");
        }
    }
    let att_key = ForgingKey::es256(50);
    let cert = attestation_certificate(&att_key, CertOptions::default()).unwrap();
    let key = ForgingKey::ed25519(5);
    let ad = registration_auth_data(&key, RP_ID, Flags::UP);
    let obj = attestation_object(
        &key,
        &ad,
        &cd,
        Attest::PackedX5c {
            certificate: &cert,
            key: &att_key,
        },
    );
    let cred = verify_registration(&reg_policy(&challenge, false), &obj, cd.as_bytes()).unwrap();
    assert_eq!(
        cred.attestation,
        AttestationType::Basic {
            certificates: vec![cert]
        }
    );
}

#[test]
fn each_registration_check_fails_on_its_own() {
    let challenge = [7u8; 32];
    let cd = create_client_data(&challenge);
    let key = ForgingKey::es256(3);
    let ad = registration_auth_data(&key, RP_ID, Flags::UP);
    let run = |obj: &[u8], cd: &str, uv: bool| {
        verify_registration(&reg_policy(&challenge, uv), obj, cd.as_bytes())
    };

    let none = attestation_object(&key, &ad, &cd, Attest::None);
    assert!(run(&none, &cd, false).is_ok());
    assert_eq!(
        run(&none, &cd, true).unwrap_err(),
        AttestationError::UserNotVerified
    );
    assert_eq!(
        run(&none, &create_client_data(&[8; 32]), false).unwrap_err(),
        AttestationError::ClientData(ClientDataError::ChallengeMismatch)
    );
    assert!(matches!(
        run(&none, &client_data(&challenge), false).unwrap_err(),
        AttestationError::ClientData(ClientDataError::WrongType { .. })
    ));
    let other_rp = attestation_object(
        &key,
        &registration_auth_data(&key, "example.com", Flags::UP),
        &cd,
        Attest::None,
    );
    assert_eq!(
        run(&other_rp, &cd, false).unwrap_err(),
        AttestationError::RpIdMismatch
    );
    let absent = attestation_object(
        &key,
        &registration_auth_data(&key, RP_ID, 0),
        &cd,
        Attest::None,
    );
    assert_eq!(
        run(&absent, &cd, false).unwrap_err(),
        AttestationError::UserNotPresent
    );
    let no_cred = attestation_object(
        &key,
        &countersign_core::webauthn::auth_data::encode(
            &countersign_core::canonical::sha256(RP_ID.as_bytes()),
            Flags::UP,
            0,
            None,
        ),
        &cd,
        Attest::None,
    );
    assert_eq!(
        run(&no_cred, &cd, false).unwrap_err(),
        AttestationError::NoCredential
    );

    // Self attestation signed over other client data, or naming another algorithm.
    let self_other =
        attestation_object(&key, &ad, &create_client_data(&[9; 32]), Attest::PackedSelf);
    assert_eq!(
        run(&self_other, &cd, false).unwrap_err(),
        AttestationError::Signature(SignatureError::Invalid)
    );
    let ed_self = attestation_object(&ForgingKey::ed25519(3), &ad, &cd, Attest::PackedSelf);
    assert_eq!(
        run(&ed_self, &cd, false).unwrap_err(),
        AttestationError::AlgorithmMismatch(-8)
    );

    // x5c certificate requirements (§8.2.1).
    let att_key = ForgingKey::es256(50);
    let x5c = |options: CertOptions| {
        let cert = attestation_certificate(&att_key, options).unwrap();
        attestation_object(
            &key,
            &ad,
            &cd,
            Attest::PackedX5c {
                certificate: &cert,
                key: &att_key,
            },
        )
    };
    assert!(run(&x5c(CertOptions::default()), &cd, false).is_ok());
    assert!(run(
        &x5c(CertOptions {
            aaguid: None,
            ..CertOptions::default()
        }),
        &cd,
        false
    )
    .is_ok());
    assert_eq!(
        run(
            &x5c(CertOptions {
                aaguid: Some([0; 16]),
                ..CertOptions::default()
            }),
            &cd,
            false
        )
        .unwrap_err(),
        AttestationError::AaguidMismatch
    );
    assert!(matches!(
        run(
            &x5c(CertOptions {
                is_ca: true,
                ..CertOptions::default()
            }),
            &cd,
            false
        )
        .unwrap_err(),
        AttestationError::Certificate(_)
    ));
    assert!(matches!(
        run(
            &x5c(CertOptions {
                organizational_unit: "Sales",
                ..CertOptions::default()
            }),
            &cd,
            false
        )
        .unwrap_err(),
        AttestationError::Certificate(_)
    ));
    let cert = attestation_certificate(&att_key, CertOptions::default()).unwrap();
    let wrong_signer = attestation_object(
        &key,
        &ad,
        &cd,
        Attest::PackedX5c {
            certificate: &cert,
            key: &ForgingKey::es256(51),
        },
    );
    assert_eq!(
        run(&wrong_signer, &cd, false).unwrap_err(),
        AttestationError::Signature(SignatureError::Invalid)
    );

    // Structure of the attestation object.
    use ciborium::Value;
    let obj = |entries: Vec<(&str, Value)>| {
        encode_cbor(&Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::Text(k.into()), v))
                .collect(),
        ))
    };
    let tpm = obj(vec![
        ("fmt", Value::Text("tpm".into())),
        ("attStmt", Value::Map(vec![])),
        ("authData", Value::Bytes(ad.clone())),
    ]);
    assert_eq!(
        run(&tpm, &cd, false).unwrap_err(),
        AttestationError::UnsupportedFormat("tpm".into())
    );
    let stuffed_none = obj(vec![
        ("fmt", Value::Text("none".into())),
        (
            "attStmt",
            Value::Map(vec![(Value::Text("x".into()), Value::from(1))]),
        ),
        ("authData", Value::Bytes(ad.clone())),
    ]);
    assert!(matches!(
        run(&stuffed_none, &cd, false).unwrap_err(),
        AttestationError::Statement { format: "none", .. }
    ));
    let duplicate = obj(vec![
        ("fmt", Value::Text("none".into())),
        ("fmt", Value::Text("none".into())),
        ("attStmt", Value::Map(vec![])),
        ("authData", Value::Bytes(ad.clone())),
    ]);
    assert_eq!(
        run(&duplicate, &cd, false).unwrap_err(),
        AttestationError::Malformed("duplicate member")
    );
    let missing = obj(vec![
        ("fmt", Value::Text("none".into())),
        ("attStmt", Value::Map(vec![])),
    ]);
    assert!(matches!(
        run(&missing, &cd, false).unwrap_err(),
        AttestationError::Malformed(_)
    ));
    let mut trailing = none.clone();
    trailing.push(0);
    assert!(matches!(
        run(&trailing, &cd, false).unwrap_err(),
        AttestationError::Cbor(_)
    ));
}
