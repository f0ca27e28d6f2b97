//! A software FIDO2 authenticator for tests and demos. It produces authenticatorData,
//! signatures and attestation objects exactly as a CTAP2 key does, from deterministic or
//! caller-supplied key material, so failures are reproducible. It never stands in for a
//! hardware key in production: a deployment can refuse it by its AAGUID, [`AAGUID`].
#![forbid(unsafe_code)]

pub mod metadata;

use ciborium::Value;
use countersign_core::canonical::sha256;
use countersign_core::webauthn::auth_data::{self, AttestedCredentialData, Flags};
use countersign_core::webauthn::{AssertionInput, CredentialPublicKey};

/// RP id used by the tests.
pub const RP_ID: &str = "approvals.example.com";
/// Origin used by the tests.
pub const ORIGIN: &str = "https://approvals.example.com";
/// This software authenticator's AAGUID (ASCII "countersign-test").
pub const AAGUID: [u8; 16] = countersign_core::webauthn::TEST_KEY_AAGUID;

/// Why the software key could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoftKeyError {
    /// The key bytes are not a valid private key.
    #[error("invalid private key")]
    InvalidKey,
    /// A certificate could not be made.
    #[error("certificate: {0}")]
    Certificate(String),
    /// CBOR encoding failed.
    #[error("cbor: {0}")]
    Cbor(String),
}

/// A credential private key.
pub enum TestKey {
    /// P-256, signing ES256.
    Es256(p256::ecdsa::SigningKey),
    /// Ed25519, signing EdDSA.
    Ed25519(ed25519_dalek::SigningKey),
}

impl TestKey {
    /// A P-256 key from 32 secret bytes.
    pub fn es256_from_bytes(secret: &[u8; 32]) -> Result<Self, SoftKeyError> {
        p256::ecdsa::SigningKey::from_slice(secret)
            .map(TestKey::Es256)
            .map_err(|_| SoftKeyError::InvalidKey)
    }

    /// An Ed25519 key from a 32-byte seed.
    pub fn ed25519_from_bytes(seed: &[u8; 32]) -> Self {
        TestKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// A deterministic P-256 key (every byte `seed`, clamped to 1..=0xFE), for reproducible tests.
    pub fn es256(seed: u8) -> Self {
        // 32 equal bytes in 1..=0xFE form a scalar in [1, n), so this never falls back.
        let bytes = [seed.clamp(1, 0xFE); 32];
        match p256::ecdsa::SigningKey::from_slice(&bytes) {
            Ok(key) => TestKey::Es256(key),
            Err(_) => Self::ed25519(seed),
        }
    }

    /// A deterministic Ed25519 key (every seed byte `seed`).
    pub fn ed25519(seed: u8) -> Self {
        Self::ed25519_from_bytes(&[seed; 32])
    }

    /// The credential public key.
    pub fn public(&self) -> CredentialPublicKey {
        match self {
            TestKey::Es256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                let mut sec1 = [0u8; 65];
                sec1.copy_from_slice(point.as_bytes());
                CredentialPublicKey::Es256(sec1)
            }
            TestKey::Ed25519(k) => CredentialPublicKey::Ed25519(k.verifying_key()),
        }
    }

    /// The COSE algorithm identifier.
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

    /// PKCS#8 DER of a P-256 key, for certificate tooling.
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, SoftKeyError> {
        use p256::pkcs8::EncodePrivateKey;
        match self {
            TestKey::Es256(k) => k
                .to_pkcs8_der()
                .map(|d| d.as_bytes().to_vec())
                .map_err(|_| SoftKeyError::InvalidKey),
            TestKey::Ed25519(_) => Err(SoftKeyError::InvalidKey),
        }
    }
}

/// An assertion as an authenticator returns it.
#[derive(Clone, Debug)]
pub struct Assertion {
    /// authenticatorData.
    pub authenticator_data: Vec<u8>,
    /// clientDataJSON.
    pub client_data_json: Vec<u8>,
    /// Signature.
    pub signature: Vec<u8>,
}

impl Assertion {
    /// Borrowed view for verification.
    pub fn input(&self) -> AssertionInput<'_> {
        AssertionInput {
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
    /// Format `none`.
    None,
    /// `packed`, self attestation.
    PackedSelf,
    /// `packed` with x5c: the attestation certificate (DER) and its private key.
    PackedX5c {
        /// DER certificate.
        certificate: &'a [u8],
        /// Its private key.
        key: &'a TestKey,
    },
    /// `packed` with an x5c chain: the attestation certificate first, then the intermediates
    /// above it (DER), and the attestation certificate's private key.
    PackedX5cChain {
        /// DER certificates, leaf first.
        chain: &'a [Vec<u8>],
        /// The leaf's private key.
        key: &'a TestKey,
    },
}

/// The attested credential data for `key` under this authenticator's AAGUID.
pub fn credential(key: &TestKey, credential_id: &[u8]) -> AttestedCredentialData {
    AttestedCredentialData {
        aaguid: AAGUID,
        credential_id: credential_id.to_vec(),
        public_key: key.public(),
    }
}

/// Registration authenticatorData for `key` with credential id `credential-1`.
pub fn registration_auth_data(key: &TestKey, rp_id: &str, flags: u8) -> Vec<u8> {
    registration_auth_data_for(key, rp_id, flags, b"credential-1")
}

/// Registration authenticatorData for `key` with the given credential id.
pub fn registration_auth_data_for(
    key: &TestKey,
    rp_id: &str,
    flags: u8,
    credential_id: &[u8],
) -> Vec<u8> {
    registration_auth_data_as(key, rp_id, flags, credential_id, AAGUID)
}

/// Registration authenticatorData claiming to be model `aaguid` (a claim only: the
/// attestation is what proves a model).
pub fn registration_auth_data_as(
    key: &TestKey,
    rp_id: &str,
    flags: u8,
    credential_id: &[u8],
    aaguid: [u8; 16],
) -> Vec<u8> {
    let attested = AttestedCredentialData {
        aaguid,
        ..credential(key, credential_id)
    };
    auth_data::encode(
        &sha256(rp_id.as_bytes()),
        flags | Flags::AT,
        0,
        Some(&attested),
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
        } => ("packed", x5c_statement(att_key, &signed, &[certificate])),
        Attest::PackedX5cChain {
            chain,
            key: att_key,
        } => {
            let chain: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
            ("packed", x5c_statement(att_key, &signed, &chain))
        }
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

/// A packed statement signed by the attestation key, with its certificate chain.
fn x5c_statement(key: &TestKey, signed: &[u8], chain: &[&[u8]]) -> Vec<(Value, Value)> {
    vec![
        (Value::Text("alg".into()), Value::from(key.cose_alg())),
        (Value::Text("sig".into()), Value::Bytes(key.sign(signed))),
        (
            Value::Text("x5c".into()),
            Value::Array(chain.iter().map(|c| Value::Bytes(c.to_vec())).collect()),
        ),
    ]
}

/// CBOR bytes of a value (writing to a vector cannot fail).
pub fn encode_cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = ciborium::ser::into_writer(value, &mut out);
    out
}

/// Options for a test attestation certificate.
pub struct CertOptions {
    /// Subject OU.
    pub organizational_unit: &'static str,
    /// Basic constraints CA flag.
    pub is_ca: bool,
    /// The FIDO AAGUID extension, if any.
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
pub fn attestation_certificate(
    key: &TestKey,
    options: CertOptions,
) -> Result<Vec<u8>, SoftKeyError> {
    metadata::attestation_params(options.organizational_unit, options.is_ca, options.aaguid)
        .self_signed(&metadata::key_pair(key)?)
        .map(|c| c.der().to_vec())
        .map_err(metadata::cert_err)
}
