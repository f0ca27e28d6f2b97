//! Test-only: forges what a FIDO2 authenticator produces — authenticatorData, signatures,
//! attestation objects and certificates, FIDO metadata — from deterministic or caller-supplied
//! key material, with whatever flags, counters, RP ids and challenges a test asks for, so the
//! attack tests can send what no honest key would and failures are reproducible. The demo
//! key a person uses is a different thing: the CTAP2 software authenticator in
//! `countersign-approver` (feature `demo-key`). A server refuses both by their AAGUID,
//! [`AAGUID`], unless demo keys are allowed.
#![forbid(unsafe_code)]

pub mod metadata;

use ciborium::Value;
use countersign_core::canonical::sha256;
use countersign_core::webauthn::auth_data::{self, AttestedCredentialData, Flags};
use countersign_core::webauthn::{
    AssertionInput, CoseAlgorithm, CredentialPublicKey, CredentialSecret,
};

/// RP id used by the tests.
pub const RP_ID: &str = "approvals.example.com";
/// Origin used by the tests.
pub const ORIGIN: &str = "https://approvals.example.com";
/// This software authenticator's AAGUID (ASCII "countersign-test").
pub const AAGUID: [u8; 16] = countersign_core::webauthn::TEST_KEY_AAGUID;

/// Why the forging key could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForgeError {
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

/// A credential key that signs whatever a test asks: any flags, any counter, any RP, any
/// challenge. It is how the attack tests forge what a real authenticator would never produce;
/// its signatures come from the same [`CredentialSecret`] as the demo authenticator's.
#[derive(Clone)]
pub struct ForgingKey(CredentialSecret);

impl ForgingKey {
    /// A P-256 key from 32 secret bytes.
    pub fn es256_from_bytes(secret: &[u8; 32]) -> Result<Self, ForgeError> {
        CredentialSecret::from_bytes(CoseAlgorithm::Es256, secret)
            .map(ForgingKey)
            .map_err(|_| ForgeError::InvalidKey)
    }

    /// An Ed25519 key from a 32-byte seed.
    pub fn ed25519_from_bytes(seed: &[u8; 32]) -> Self {
        ForgingKey(CredentialSecret::Ed25519(
            ed25519_dalek::SigningKey::from_bytes(seed),
        ))
    }

    /// A deterministic P-256 key (every byte `seed`, clamped to 1..=0xFE), for reproducible tests.
    pub fn es256(seed: u8) -> Self {
        // 32 equal bytes in 1..=0xFE form a scalar in [1, n), so this never falls back.
        Self::es256_from_bytes(&[seed.clamp(1, 0xFE); 32]).unwrap_or_else(|_| Self::ed25519(seed))
    }

    /// A deterministic Ed25519 key (every seed byte `seed`).
    pub fn ed25519(seed: u8) -> Self {
        Self::ed25519_from_bytes(&[seed; 32])
    }

    /// The private key.
    pub fn secret(&self) -> &CredentialSecret {
        &self.0
    }

    /// The credential public key.
    pub fn public(&self) -> CredentialPublicKey {
        self.0.public()
    }

    /// The COSE algorithm identifier.
    pub fn cose_alg(&self) -> i64 {
        self.0.algorithm().cose_id()
    }

    /// ES256 signatures are ASN.1 DER (RFC 6979 deterministic); Ed25519 raw 64 bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message)
    }

    /// PKCS#8 DER of a P-256 key, for certificate tooling.
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, ForgeError> {
        use p256::pkcs8::EncodePrivateKey;
        match &self.0 {
            CredentialSecret::Es256(k) => k
                .to_pkcs8_der()
                .map(|d| d.as_bytes().to_vec())
                .map_err(|_| ForgeError::InvalidKey),
            CredentialSecret::Ed25519(_) => Err(ForgeError::InvalidKey),
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
    key: &ForgingKey,
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
        key: &'a ForgingKey,
    },
    /// `packed` with an x5c chain: the attestation certificate first, then the intermediates
    /// above it (DER), and the attestation certificate's private key.
    PackedX5cChain {
        /// DER certificates, leaf first.
        chain: &'a [Vec<u8>],
        /// The leaf's private key.
        key: &'a ForgingKey,
    },
}

/// The attested credential data for `key` under this authenticator's AAGUID.
pub fn credential(key: &ForgingKey, credential_id: &[u8]) -> AttestedCredentialData {
    AttestedCredentialData {
        aaguid: AAGUID,
        credential_id: credential_id.to_vec(),
        public_key: key.public(),
    }
}

/// Registration authenticatorData for `key` with credential id `credential-1`.
pub fn registration_auth_data(key: &ForgingKey, rp_id: &str, flags: u8) -> Vec<u8> {
    registration_auth_data_for(key, rp_id, flags, b"credential-1")
}

/// Registration authenticatorData for `key` with the given credential id.
pub fn registration_auth_data_for(
    key: &ForgingKey,
    rp_id: &str,
    flags: u8,
    credential_id: &[u8],
) -> Vec<u8> {
    registration_auth_data_as(key, rp_id, flags, credential_id, AAGUID)
}

/// Registration authenticatorData claiming to be model `aaguid` (a claim only: the
/// attestation is what proves a model).
pub fn registration_auth_data_as(
    key: &ForgingKey,
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
    key: &ForgingKey,
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
fn x5c_statement(key: &ForgingKey, signed: &[u8], chain: &[&[u8]]) -> Vec<(Value, Value)> {
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
    key: &ForgingKey,
    options: CertOptions,
) -> Result<Vec<u8>, ForgeError> {
    metadata::attestation_params(options.organizational_unit, options.is_ca, options.aaguid)
        .self_signed(&metadata::key_pair(key)?)
        .map(|c| c.der().to_vec())
        .map_err(metadata::cert_err)
}
