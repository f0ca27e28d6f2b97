//! Verifying a registration (WebAuthn Level 3 §7.1, "Registering a New Credential") for the
//! `none` (§8.7) and `packed` (§8.2) attestation formats, self attestation and x5c.
//!
//! For x5c, this module verifies the attestation signature and the certificate requirements
//! of §8.2.1 and returns the chain; whether that chain leads to a trusted root is the
//! deployment's decision (an AAGUID allow-list or a root store), made by the caller.

use super::auth_data::{AttestedCredentialData, AuthDataError, AuthenticatorData, Flags};
use super::cbor::{self, CborError};
use super::client_data::{CeremonyType, ClientData, ClientDataError};
use super::cose::{CoseAlgorithm, CredentialPublicKey};
use super::signature::{self, SignatureError};
use crate::canonical::sha256;
use ciborium::Value;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

/// Largest attestation object accepted.
pub const MAX_LEN: usize = 16 * 1024;
/// Most certificates in an x5c chain.
pub const MAX_CHAIN: usize = 5;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_FIDO_AAGUID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724.1.1.4");
const OID_C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const OID_OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// What the relying party expects of this registration.
#[derive(Clone, Copy, Debug)]
pub struct RegistrationPolicy<'a> {
    /// The RP id.
    pub rp_id: &'a str,
    /// The exact origin.
    pub origin: &'a str,
    /// The challenge the server issued for this enrollment.
    pub challenge: &'a [u8],
    /// Whether the key must verify the user during registration.
    pub require_user_verification: bool,
}

/// How the authenticator vouched for the new key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttestationType {
    /// Format `none`: no statement about the authenticator.
    None,
    /// `packed` signed by the credential key itself.
    SelfAttestation,
    /// `packed` with an x5c chain, leaf first (DER). The chain's trust is the caller's decision.
    Basic {
        /// DER certificates, attestation certificate first.
        certificates: Vec<Vec<u8>>,
    },
}

/// A verified new credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredCredential {
    /// Credential id.
    pub credential_id: Vec<u8>,
    /// Public key, with the algorithm fixed from now on.
    pub public_key: CredentialPublicKey,
    /// Authenticator model.
    pub aaguid: [u8; 16],
    /// Flags at registration (UV, BE, BS).
    pub flags: Flags,
    /// Initial signature counter.
    pub sign_count: u32,
    /// The attestation that was verified.
    pub attestation: AttestationType,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum AttestationError {
    /// clientDataJSON malformed, or type, challenge or origin wrong.
    #[error(transparent)]
    ClientData(#[from] ClientDataError),
    /// Larger than [`MAX_LEN`].
    #[error("attestation object is {0} bytes; the limit is {MAX_LEN}")]
    TooLong(usize),
    /// Not CBOR.
    #[error("attestation object: {0}")]
    Cbor(#[from] CborError),
    /// Not a map of exactly `fmt`, `attStmt`, `authData` with the right types.
    #[error("malformed attestation object: {0}")]
    Malformed(&'static str),
    /// authenticatorData malformed.
    #[error(transparent)]
    AuthData(#[from] AuthDataError),
    /// §7.1 step 13: rpIdHash is not SHA-256 of the RP id.
    #[error("rpIdHash does not match the RP id")]
    RpIdMismatch,
    /// §7.1 step 14: the user was not present.
    #[error("user presence flag not set")]
    UserNotPresent,
    /// §7.1 step 15: user verification required but not performed.
    #[error("user verification required but the UV flag is not set")]
    UserNotVerified,
    /// The AT flag is not set: there is no credential to register.
    #[error("no attested credential data")]
    NoCredential,
    /// §7.1 step 21: a format other than `none` and `packed`.
    #[error("unsupported attestation format {0:?}")]
    UnsupportedFormat(String),
    /// A statement that does not have the format's members.
    #[error("malformed {format} attestation statement: {detail}")]
    Statement {
        format: &'static str,
        detail: &'static str,
    },
    /// `alg` does not match the signing key.
    #[error("attestation alg {0} does not match the signing key")]
    AlgorithmMismatch(i64),
    /// The attestation certificate is malformed or breaks §8.2.1.
    #[error("attestation certificate: {0}")]
    Certificate(&'static str),
    /// The certificate's AAGUID extension differs from authenticatorData's AAGUID.
    #[error("attestation certificate AAGUID does not match authenticator data")]
    AaguidMismatch,
    /// The attestation signature does not verify.
    #[error("attestation signature: {0}")]
    Signature(#[from] SignatureError),
}

impl AttestationError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            AttestationError::ClientData(e) => e.code(),
            AttestationError::AuthData(e) => e.code(),
            AttestationError::Signature(e) => e.code(),
            other => other.into(),
        }
    }
}

/// Verifies a registration response and returns the credential to enroll.
pub fn verify_registration(
    policy: &RegistrationPolicy<'_>,
    attestation_object: &[u8],
    client_data_json: &[u8],
) -> Result<RegisteredCredential, AttestationError> {
    // §7.1 steps 5–6: parse clientDataJSON strictly.
    let client_data = ClientData::parse(client_data_json)?;
    // §7.1 steps 7–9: type "webauthn.create", the issued challenge, the exact origin;
    // step 10 (topOrigin) is refused by the parser.
    client_data.check(CeremonyType::Create, policy.challenge, policy.origin)?;
    // §7.1 step 11: hash of clientDataJSON.
    let client_data_hash = sha256(client_data_json);

    // §7.1 step 12: decode the attestation object.
    if attestation_object.len() > MAX_LEN {
        return Err(AttestationError::TooLong(attestation_object.len()));
    }
    let parts = split_attestation_object(cbor::read_exactly_one(attestation_object)?)?;
    let auth_data = AuthenticatorData::parse(&parts.auth_data)?;

    // §7.1 step 13: rpIdHash.
    if auth_data.rp_id_hash != sha256(policy.rp_id.as_bytes()) {
        return Err(AttestationError::RpIdMismatch);
    }
    // §7.1 step 14: UP.
    if !auth_data.flags.user_present() {
        return Err(AttestationError::UserNotPresent);
    }
    // §7.1 step 15: UV when required.
    if policy.require_user_verification && !auth_data.flags.user_verified() {
        return Err(AttestationError::UserNotVerified);
    }
    // §7.1 step 16 (BE/BS) is enforced by the parser; step 19 (alg among the accepted ones)
    // by the COSE key parser, which accepts only ES256 and EdDSA.
    let Some(credential) = auth_data.attested.clone() else {
        return Err(AttestationError::NoCredential);
    };

    // §7.1 steps 21–22: determine the format and verify the statement.
    let attestation = match parts.fmt.as_str() {
        "none" => verify_none(&parts.att_stmt)?,
        "packed" => verify_packed(
            &parts.att_stmt,
            &parts.auth_data,
            &client_data_hash,
            &credential,
        )?,
        other => return Err(AttestationError::UnsupportedFormat(other.to_owned())),
    };

    Ok(RegisteredCredential {
        credential_id: credential.credential_id,
        public_key: credential.public_key,
        aaguid: credential.aaguid,
        flags: auth_data.flags,
        sign_count: auth_data.sign_count,
        attestation,
    })
}

struct AttestationParts {
    fmt: String,
    att_stmt: Vec<(Value, Value)>,
    auth_data: Vec<u8>,
}

fn split_attestation_object(value: Value) -> Result<AttestationParts, AttestationError> {
    let Value::Map(entries) = value else {
        return Err(AttestationError::Malformed("not a map"));
    };
    let (mut fmt, mut att_stmt, mut auth_data) = (None, None, None);
    for (key, value) in entries {
        let slot_taken = match (key.as_text(), value) {
            (Some("fmt"), Value::Text(t)) => fmt.replace(t).is_some(),
            (Some("attStmt"), Value::Map(m)) => att_stmt.replace(m).is_some(),
            (Some("authData"), Value::Bytes(b)) => auth_data.replace(b).is_some(),
            (Some("fmt" | "attStmt" | "authData"), _) => {
                return Err(AttestationError::Malformed("member of the wrong type"))
            }
            _ => return Err(AttestationError::Malformed("unknown member")),
        };
        if slot_taken {
            return Err(AttestationError::Malformed("duplicate member"));
        }
    }
    match (fmt, att_stmt, auth_data) {
        (Some(fmt), Some(att_stmt), Some(auth_data)) => Ok(AttestationParts {
            fmt,
            att_stmt,
            auth_data,
        }),
        _ => Err(AttestationError::Malformed(
            "missing fmt, attStmt or authData",
        )),
    }
}

/// §8.7: the statement is an empty map.
fn verify_none(att_stmt: &[(Value, Value)]) -> Result<AttestationType, AttestationError> {
    if !att_stmt.is_empty() {
        return Err(AttestationError::Statement {
            format: "none",
            detail: "attStmt is not empty",
        });
    }
    Ok(AttestationType::None)
}

/// §8.2 verification procedure.
fn verify_packed(
    att_stmt: &[(Value, Value)],
    auth_data: &[u8],
    client_data_hash: &[u8; 32],
    credential: &AttestedCredentialData,
) -> Result<AttestationType, AttestationError> {
    let bad = |detail| AttestationError::Statement {
        format: "packed",
        detail,
    };
    let (mut alg, mut sig, mut x5c) = (None, None, None);
    for (key, value) in att_stmt {
        let taken = match (key.as_text(), value) {
            (Some("alg"), Value::Integer(i)) => {
                let i = i64::try_from(*i).map_err(|_| bad("alg out of range"))?;
                alg.replace(i).is_some()
            }
            (Some("sig"), Value::Bytes(b)) => sig.replace(b.as_slice()).is_some(),
            (Some("x5c"), Value::Array(items)) => x5c.replace(items.as_slice()).is_some(),
            _ => return Err(bad("unknown member or wrong type")),
        };
        if taken {
            return Err(bad("duplicate member"));
        }
    }
    let alg = alg.ok_or_else(|| bad("missing alg"))?;
    let sig = sig.ok_or_else(|| bad("missing sig"))?;
    let mut signed = Vec::with_capacity(auth_data.len() + 32);
    signed.extend_from_slice(auth_data);
    signed.extend_from_slice(client_data_hash);

    match x5c {
        // Self attestation: alg must be the credential key's algorithm, and the credential
        // key verifies the signature over authenticatorData || clientDataHash.
        None => {
            if CoseAlgorithm::from_cose_id(alg) != Some(credential.public_key.algorithm()) {
                return Err(AttestationError::AlgorithmMismatch(alg));
            }
            credential.public_key.verify(&signed, sig)?;
            Ok(AttestationType::SelfAttestation)
        }
        // Basic / AttCA: the attestation certificate's key verifies the signature, and the
        // certificate meets §8.2.1.
        Some(items) => {
            if items.is_empty() || items.len() > MAX_CHAIN {
                return Err(bad("x5c must hold 1 to 5 certificates"));
            }
            let certificates = items
                .iter()
                .map(|item| match item {
                    Value::Bytes(der) => Ok(der.clone()),
                    _ => Err(bad("x5c entry is not a byte string")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let leaf = certificates.first().ok_or_else(|| bad("x5c is empty"))?;
            let cert = Certificate::from_der(leaf)
                .map_err(|_| AttestationError::Certificate("not a DER X.509 certificate"))?;
            check_certificate_requirements(&cert, &credential.aaguid)?;
            verify_with_certificate_key(&cert, alg, &signed, sig)?;
            Ok(AttestationType::Basic { certificates })
        }
    }
}

/// §8.2.1: version 3; subject C, O, OU "Authenticator Attestation", CN; not a CA; the
/// FIDO AAGUID extension, when present, is non-critical and equals the authenticator's AAGUID.
fn check_certificate_requirements(
    cert: &Certificate,
    aaguid: &[u8; 16],
) -> Result<(), AttestationError> {
    let tbs = &cert.tbs_certificate;
    if tbs.version != x509_cert::Version::V3 {
        return Err(AttestationError::Certificate("not version 3"));
    }
    let attribute = |oid: ObjectIdentifier| {
        tbs.subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == oid)
            .and_then(|atv| {
                std::str::from_utf8(atv.value.value())
                    .ok()
                    .map(str::to_owned)
            })
    };
    if attribute(OID_C).is_none() || attribute(OID_O).is_none() || attribute(OID_CN).is_none() {
        return Err(AttestationError::Certificate("subject lacks C, O or CN"));
    }
    if attribute(OID_OU).as_deref() != Some("Authenticator Attestation") {
        return Err(AttestationError::Certificate(
            "subject OU is not \"Authenticator Attestation\"",
        ));
    }
    let mut basic_constraints_seen = false;
    for ext in tbs.extensions.iter().flatten() {
        if ext.extn_id == OID_BASIC_CONSTRAINTS {
            let bc = x509_cert::ext::pkix::BasicConstraints::from_der(ext.extn_value.as_bytes())
                .map_err(|_| AttestationError::Certificate("malformed basic constraints"))?;
            if bc.ca {
                return Err(AttestationError::Certificate(
                    "attestation certificate is a CA",
                ));
            }
            basic_constraints_seen = true;
        } else if ext.extn_id == OID_FIDO_AAGUID {
            if ext.critical {
                return Err(AttestationError::Certificate(
                    "AAGUID extension marked critical",
                ));
            }
            let inner = x509_cert::der::asn1::OctetString::from_der(ext.extn_value.as_bytes())
                .map_err(|_| AttestationError::Certificate("malformed AAGUID extension"))?;
            if inner.as_bytes() != aaguid {
                return Err(AttestationError::AaguidMismatch);
            }
        }
    }
    if !basic_constraints_seen {
        return Err(AttestationError::Certificate(
            "no basic constraints extension",
        ));
    }
    Ok(())
}

fn verify_with_certificate_key(
    cert: &Certificate,
    alg: i64,
    signed: &[u8],
    sig: &[u8],
) -> Result<(), AttestationError> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or(AttestationError::Certificate("public key has unused bits"))?;
    if spki.algorithm.oid == OID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.to_der().ok())
            .and_then(|der| ObjectIdentifier::from_der(&der).ok());
        if curve != Some(OID_P256) {
            return Err(AttestationError::Certificate("EC key not on P-256"));
        }
        if alg != CoseAlgorithm::Es256.cose_id() {
            return Err(AttestationError::AlgorithmMismatch(alg));
        }
        let sec1: &[u8; 65] = key_bytes
            .try_into()
            .map_err(|_| AttestationError::Certificate("P-256 key is not uncompressed SEC1"))?;
        Ok(signature::verify_es256(sec1, signed, sig)?)
    } else if spki.algorithm.oid == OID_ED25519 {
        if alg != CoseAlgorithm::EdDsa.cose_id() {
            return Err(AttestationError::AlgorithmMismatch(alg));
        }
        let bytes: &[u8; 32] = key_bytes
            .try_into()
            .map_err(|_| AttestationError::Certificate("Ed25519 key is not 32 bytes"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| AttestationError::Certificate("invalid Ed25519 key"))?;
        Ok(signature::verify_ed25519(&key, signed, sig)?)
    } else {
        Err(AttestationError::Certificate(
            "unsupported attestation key type",
        ))
    }
}
