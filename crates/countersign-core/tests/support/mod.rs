//! A minimal software authenticator for the protocol crate's own tests: it produces
//! authenticatorData, signatures and attestation objects the way a CTAP2 key does, with
//! deterministic keys so failures are reproducible. (The approver crate's software key, which
//! runs the `authenticator` crate's CTAP2 logic, is a separate, fuller implementation.)
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ciborium::Value;
use countersign_core::canonical::sha256;
use countersign_core::webauthn::auth_data::{self, AttestedCredentialData, Flags};
use countersign_core::webauthn::CredentialPublicKey;

pub const RP_ID: &str = "approvals.example.com";
pub const ORIGIN: &str = "https://approvals.example.com";
pub const AAGUID: [u8; 16] = *b"countersign-test";

/// A credential private key.
pub enum TestKey {
    Es256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl TestKey {
    pub fn es256(seed: u8) -> Self {
        TestKey::Es256(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap())
    }

    pub fn ed25519(seed: u8) -> Self {
        TestKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    pub fn public(&self) -> CredentialPublicKey {
        match self {
            TestKey::Es256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                CredentialPublicKey::Es256(point.as_bytes().try_into().unwrap())
            }
            TestKey::Ed25519(k) => CredentialPublicKey::Ed25519(k.verifying_key()),
        }
    }

    pub fn cose_alg(&self) -> i64 {
        match self {
            TestKey::Es256(_) => -7,
            TestKey::Ed25519(_) => -8,
        }
    }

    /// ES256 signatures are ASN.1 DER (RFC 6979 deterministic); Ed25519 raw 64 bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        match self {
            TestKey::Es256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            TestKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }

    pub fn pkcs8_der(&self) -> Vec<u8> {
        use p256::pkcs8::EncodePrivateKey;
        match self {
            TestKey::Es256(k) => k.to_pkcs8_der().unwrap().as_bytes().to_vec(),
            TestKey::Ed25519(_) => unimplemented!("x5c tests use P-256 attestation keys"),
        }
    }
}

/// An assertion as an authenticator returns it.
#[derive(Clone, Debug)]
pub struct Assertion {
    pub authenticator_data: Vec<u8>,
    pub client_data_json: Vec<u8>,
    pub signature: Vec<u8>,
}

impl Assertion {
    pub fn input(&self) -> countersign_core::webauthn::AssertionInput<'_> {
        countersign_core::webauthn::AssertionInput {
            authenticator_data: &self.authenticator_data,
            client_data_json: &self.client_data_json,
            signature: &self.signature,
        }
    }
}

/// Signs `authData || SHA-256(clientDataJSON)` the way CTAP2 getAssertion does.
pub fn assert_with(
    key: &TestKey,
    rp_id: &str,
    flags: u8,
    sign_count: u32,
    client_data_json: &str,
) -> Assertion {
    let authenticator_data = auth_data::encode(&sha256(rp_id.as_bytes()), flags, sign_count, None);
    let mut signed = authenticator_data.clone();
    signed.extend_from_slice(&sha256(client_data_json.as_bytes()));
    Assertion {
        signature: key.sign(&signed),
        authenticator_data,
        client_data_json: client_data_json.as_bytes().to_vec(),
    }
}

/// The attestation statement to produce.
pub enum Attest<'a> {
    None,
    PackedSelf,
    /// Packed with x5c: the attestation certificate (DER) and its private key.
    PackedX5c {
        certificate: &'a [u8],
        key: &'a TestKey,
    },
}

pub fn credential(key: &TestKey, credential_id: &[u8]) -> AttestedCredentialData {
    AttestedCredentialData {
        aaguid: AAGUID,
        credential_id: credential_id.to_vec(),
        public_key: key.public(),
    }
}

/// Registration authenticatorData for `key`.
pub fn registration_auth_data(key: &TestKey, rp_id: &str, flags: u8) -> Vec<u8> {
    auth_data::encode(
        &sha256(rp_id.as_bytes()),
        flags | Flags::AT,
        0,
        Some(&credential(key, b"credential-1")),
    )
}

/// An attestation object over `auth_data` for `client_data_json`.
pub fn attestation_object(
    key: &TestKey,
    auth_data: &[u8],
    client_data_json: &str,
    attest: Attest<'_>,
) -> Vec<u8> {
    let mut signed = auth_data.to_vec();
    signed.extend_from_slice(&sha256(client_data_json.as_bytes()));
    let (fmt, stmt) = match attest {
        Attest::None => ("none", vec![]),
        Attest::PackedSelf => (
            "packed",
            vec![
                (Value::Text("alg".into()), Value::from(key.cose_alg())),
                (Value::Text("sig".into()), Value::Bytes(key.sign(&signed))),
            ],
        ),
        Attest::PackedX5c {
            certificate,
            key: att_key,
        } => (
            "packed",
            vec![
                (Value::Text("alg".into()), Value::from(att_key.cose_alg())),
                (
                    Value::Text("sig".into()),
                    Value::Bytes(att_key.sign(&signed)),
                ),
                (
                    Value::Text("x5c".into()),
                    Value::Array(vec![Value::Bytes(certificate.to_vec())]),
                ),
            ],
        ),
    };
    encode_cbor(&Value::Map(vec![
        (Value::Text("fmt".into()), Value::Text(fmt.into())),
        (Value::Text("attStmt".into()), Value::Map(stmt)),
        (
            Value::Text("authData".into()),
            Value::Bytes(auth_data.to_vec()),
        ),
    ]))
}

pub fn encode_cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).unwrap();
    out
}

/// Options for a test attestation certificate.
pub struct CertOptions {
    pub organizational_unit: &'static str,
    pub is_ca: bool,
    pub aaguid: Option<[u8; 16]>,
}

impl Default for CertOptions {
    fn default() -> Self {
        CertOptions {
            organizational_unit: "Authenticator Attestation",
            is_ca: false,
            aaguid: Some(AAGUID),
        }
    }
}

/// A self-signed packed attestation certificate (§8.2.1) for the P-256 `key`.
pub fn attestation_certificate(key: &TestKey, options: CertOptions) -> Vec<u8> {
    use rcgen::{CertificateParams, CustomExtension, DnType, IsCa, KeyPair};
    let key_pair = KeyPair::try_from(key.pkcs8_der().as_slice()).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "SE");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Countersign Test Vendor");
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, options.organizational_unit);
    params
        .distinguished_name
        .push(DnType::CommonName, "Countersign Test Key");
    params.is_ca = if options.is_ca {
        IsCa::Ca(rcgen::BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    if let Some(aaguid) = options.aaguid {
        let mut content = vec![0x04, 0x10];
        content.extend_from_slice(&aaguid);
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4],
                content,
            ));
    }
    params.self_signed(&key_pair).unwrap().der().to_vec()
}
