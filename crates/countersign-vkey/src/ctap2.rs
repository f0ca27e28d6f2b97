//! The CTAP2 commands of the virtual key (CTAP 2.1 §6), on the bytes of a CTAPHID_CBOR request:
//! a command byte, then a CBOR map with integer keys; the answer is a status byte, then (on
//! success) a CBOR map. So far: authenticatorGetInfo, authenticatorMakeCredential (ES256 or
//! EdDSA, "packed" self attestation), authenticatorGetAssertion (with an allow list; `up`
//! false for a silent check), authenticatorReset and authenticatorSelection. Credentials are
//! not discoverable and live in memory; the person's touch is asked of a [`Presence`] the test
//! controls. clientPIN is not offered yet (getInfo says so), so PIN requests are refused.

use ciborium::Value;
use countersign_core::webauthn::auth_data::{self, AttestedCredentialData};
use countersign_core::webauthn::{CoseAlgorithm, CredentialSecret, Flags};
use sha2::{Digest, Sha256};

/// CTAP status codes (CTAP 2.1 §8.2) the key answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Ok = 0x00,
    InvalidCommand = 0x01,
    InvalidParameter = 0x02,
    CborUnexpectedType = 0x11,
    InvalidCbor = 0x12,
    MissingParameter = 0x14,
    CredentialExcluded = 0x19,
    UnsupportedAlgorithm = 0x26,
    UnsupportedOption = 0x2b,
    InvalidOption = 0x2c,
    KeepaliveCancel = 0x2d,
    NoCredentials = 0x2e,
    UserActionTimeout = 0x2f,
    PinAuthInvalid = 0x33,
    PinNotSet = 0x35,
    Other = 0x7f,
}

/// The person at the key: asked for a touch before anything is signed.
pub trait Presence {
    /// Waits for a touch; a cancel from the host or no touch in time is the error to answer.
    fn confirm(&self) -> Result<(), Status>;
}

/// The virtual key's model id (AAGUID), the same for every virtual key.
pub const AAGUID: [u8; 16] = *b"countersign-vkey";

/// One credential the key made.
struct Credential {
    id: Vec<u8>,
    rp_id: String,
    secret: CredentialSecret,
    sign_count: u32,
}

/// The key's CTAP2 side.
#[derive(Default)]
pub struct Authenticator {
    credentials: Vec<Credential>,
}

// Command bytes (§6).
const MAKE_CREDENTIAL: u8 = 0x01;
const GET_ASSERTION: u8 = 0x02;
const GET_INFO: u8 = 0x04;
const RESET: u8 = 0x07;
const SELECTION: u8 = 0x0b;

impl Authenticator {
    /// Answers one CTAPHID_CBOR request.
    pub fn handle(&mut self, request: &[u8], presence: &dyn Presence) -> Vec<u8> {
        let answer = match request.split_first() {
            None => Err(Status::InvalidCommand),
            Some((&GET_INFO, _)) => Ok(Some(get_info())),
            Some((&MAKE_CREDENTIAL, body)) => {
                parameters(body).and_then(|p| self.make_credential(&p, presence).map(Some))
            }
            Some((&GET_ASSERTION, body)) => {
                parameters(body).and_then(|p| self.get_assertion(&p, presence).map(Some))
            }
            Some((&RESET, _)) => presence.confirm().map(|()| {
                self.credentials.clear();
                None
            }),
            Some((&SELECTION, _)) => presence.confirm().map(|()| None),
            Some(_) => Err(Status::InvalidCommand),
        };
        match answer {
            Ok(None) => vec![Status::Ok as u8],
            Ok(Some(map)) => {
                let mut out = vec![Status::Ok as u8];
                match ciborium::into_writer(&map, &mut out) {
                    Ok(()) => out,
                    Err(_) => vec![Status::Other as u8],
                }
            }
            Err(status) => vec![status as u8],
        }
    }

    /// authenticatorMakeCredential (§6.1.2).
    fn make_credential(
        &mut self,
        p: &[(Value, Value)],
        presence: &dyn Presence,
    ) -> Result<Value, Status> {
        let client_data_hash = hash_param(p, 1)?;
        let rp_id = text(map_param(p, 2)?, "id")?.to_owned();
        map_param(p, 3).and_then(|user| bytes(user, "id"))?;
        let algorithms = array_param(p, 4)?;
        check_pin_auth(p, 8, presence)?;
        let options = options(p, 7)?;
        if options.rk == Some(true) {
            return Err(Status::UnsupportedOption);
        }
        if options.uv == Some(true) {
            return Err(Status::InvalidOption);
        }
        let excluded = optional_array(p, 5)?
            .iter()
            .filter_map(|d| d.as_map().and_then(|m| bytes(m, "id").ok()))
            .any(|id| self.find(&rp_id, id).is_some());
        if excluded {
            presence.confirm()?;
            return Err(Status::CredentialExcluded);
        }
        let algorithm = algorithms
            .iter()
            .filter_map(|a| a.as_map())
            .filter(|a| text(a, "type").is_ok_and(|t| t == "public-key"))
            .filter_map(|a| integer(a, "alg"))
            .find_map(CoseAlgorithm::from_cose_id)
            .ok_or(Status::UnsupportedAlgorithm)?;
        presence.confirm()?;
        let secret = new_secret(algorithm)?;
        let id = random::<32>()?.to_vec();
        let attested = AttestedCredentialData {
            aaguid: AAGUID,
            credential_id: id.clone(),
            public_key: secret.public(),
        };
        let auth_data = auth_data::encode(
            &sha256(rp_id.as_bytes()),
            Flags::UP | Flags::AT,
            0,
            Some(&attested),
        );
        // "packed" self attestation: the new credential signs authData || clientDataHash.
        let signature = secret.sign(&[auth_data.as_slice(), &client_data_hash].concat());
        self.credentials.push(Credential {
            id,
            rp_id,
            secret,
            sign_count: 0,
        });
        Ok(Value::Map(vec![
            (1.into(), "packed".into()),
            (2.into(), Value::Bytes(auth_data)),
            (
                3.into(),
                Value::Map(vec![
                    ("alg".into(), algorithm.cose_id().into()),
                    ("sig".into(), Value::Bytes(signature)),
                ]),
            ),
        ]))
    }

    /// authenticatorGetAssertion (§6.2.2), for credentials named in the allow list.
    fn get_assertion(
        &mut self,
        p: &[(Value, Value)],
        presence: &dyn Presence,
    ) -> Result<Value, Status> {
        let rp_id = match param(p, 1) {
            Some(Value::Text(rp)) => rp.clone(),
            Some(_) => return Err(Status::CborUnexpectedType),
            None => return Err(Status::MissingParameter),
        };
        let client_data_hash = hash_param(p, 2)?;
        check_pin_auth(p, 6, presence)?;
        let options = options(p, 5)?;
        if options.rk.is_some() {
            return Err(Status::InvalidOption);
        }
        if options.uv == Some(true) {
            return Err(Status::InvalidOption);
        }
        let user_present = options.up != Some(false);
        let allowed: Vec<Vec<u8>> = optional_array(p, 3)?
            .iter()
            .filter_map(|d| d.as_map().and_then(|m| bytes(m, "id").ok()))
            .map(<[u8]>::to_vec)
            .collect();
        let index = allowed
            .iter()
            .find_map(|id| self.find(&rp_id, id))
            .ok_or(Status::NoCredentials)?;
        if user_present {
            presence.confirm()?;
        }
        let credential = self
            .credentials
            .get_mut(index)
            .ok_or(Status::NoCredentials)?;
        credential.sign_count = credential.sign_count.saturating_add(1);
        let flags = if user_present { Flags::UP } else { 0 };
        let auth_data = auth_data::encode(
            &sha256(rp_id.as_bytes()),
            flags,
            credential.sign_count,
            None,
        );
        let signature = credential
            .secret
            .sign(&[auth_data.as_slice(), &client_data_hash].concat());
        Ok(Value::Map(vec![
            (
                1.into(),
                Value::Map(vec![
                    ("id".into(), Value::Bytes(credential.id.clone())),
                    ("type".into(), "public-key".into()),
                ]),
            ),
            (2.into(), Value::Bytes(auth_data)),
            (3.into(), Value::Bytes(signature)),
        ]))
    }

    fn find(&self, rp_id: &str, id: &[u8]) -> Option<usize> {
        self.credentials
            .iter()
            .position(|c| c.rp_id == rp_id && c.id == id)
    }
}

/// authenticatorGetInfo (§6.4): CTAP 2.0 and 2.1, no discoverable credentials, no PIN yet.
fn get_info() -> Value {
    let algorithm = |alg: CoseAlgorithm| {
        Value::Map(vec![
            ("alg".into(), alg.cose_id().into()),
            ("type".into(), "public-key".into()),
        ])
    };
    // Keys in CTAP2's canonical order (§8: shorter text first, then bytewise).
    Value::Map(vec![
        (
            1.into(),
            Value::Array(vec!["FIDO_2_0".into(), "FIDO_2_1".into()]),
        ),
        (3.into(), Value::Bytes(AAGUID.to_vec())),
        (
            4.into(),
            Value::Map(vec![
                ("rk".into(), false.into()),
                ("up".into(), true.into()),
                ("plat".into(), false.into()),
            ]),
        ),
        (5.into(), 1200.into()),
        (9.into(), Value::Array(vec!["usb".into()])),
        (
            10.into(),
            Value::Array(vec![
                algorithm(CoseAlgorithm::Es256),
                algorithm(CoseAlgorithm::EdDsa),
            ]),
        ),
    ])
}

/// The request's parameter map.
fn parameters(body: &[u8]) -> Result<Vec<(Value, Value)>, Status> {
    let value: Value = ciborium::from_reader(body).map_err(|_| Status::InvalidCbor)?;
    match value {
        Value::Map(map) => Ok(map),
        _ => Err(Status::CborUnexpectedType),
    }
}

fn param(p: &[(Value, Value)], key: i64) -> Option<&Value> {
    p.iter()
        .find(|(k, _)| {
            k.as_integer()
                .is_some_and(|i| i128::from(i) == i128::from(key))
        })
        .map(|(_, v)| v)
}

fn map_param(p: &[(Value, Value)], key: i64) -> Result<&[(Value, Value)], Status> {
    match param(p, key) {
        Some(Value::Map(map)) => Ok(map),
        Some(_) => Err(Status::CborUnexpectedType),
        None => Err(Status::MissingParameter),
    }
}

fn array_param(p: &[(Value, Value)], key: i64) -> Result<&[Value], Status> {
    match param(p, key) {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Status::CborUnexpectedType),
        None => Err(Status::MissingParameter),
    }
}

fn optional_array(p: &[(Value, Value)], key: i64) -> Result<&[Value], Status> {
    match param(p, key) {
        None => Ok(&[]),
        Some(_) => array_param(p, key),
    }
}

/// clientDataHash: exactly 32 bytes.
fn hash_param(p: &[(Value, Value)], key: i64) -> Result<[u8; 32], Status> {
    match param(p, key) {
        Some(Value::Bytes(b)) => {
            <[u8; 32]>::try_from(b.as_slice()).map_err(|_| Status::InvalidParameter)
        }
        Some(_) => Err(Status::CborUnexpectedType),
        None => Err(Status::MissingParameter),
    }
}

fn member<'a>(map: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(name))
        .map(|(_, v)| v)
}

fn text<'a>(map: &'a [(Value, Value)], name: &str) -> Result<&'a str, Status> {
    match member(map, name) {
        Some(Value::Text(t)) => Ok(t),
        Some(_) => Err(Status::CborUnexpectedType),
        None => Err(Status::MissingParameter),
    }
}

fn bytes<'a>(map: &'a [(Value, Value)], name: &str) -> Result<&'a [u8], Status> {
    match member(map, name) {
        Some(Value::Bytes(b)) => Ok(b),
        Some(_) => Err(Status::CborUnexpectedType),
        None => Err(Status::MissingParameter),
    }
}

fn integer(map: &[(Value, Value)], name: &str) -> Option<i64> {
    member(map, name)
        .and_then(Value::as_integer)
        .and_then(|i| i64::try_from(i).ok())
}

/// The `options` map's members this key reads.
#[derive(Default)]
struct Options {
    rk: Option<bool>,
    up: Option<bool>,
    uv: Option<bool>,
}

fn options(p: &[(Value, Value)], key: i64) -> Result<Options, Status> {
    let Some(value) = param(p, key) else {
        return Ok(Options::default());
    };
    let map = value.as_map().ok_or(Status::CborUnexpectedType)?;
    let flag = |name| match member(map, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Status::CborUnexpectedType),
    };
    Ok(Options {
        rk: flag("rk")?,
        up: flag("up")?,
        uv: flag("uv")?,
    })
}

/// A pinUvAuthParam: this key has no PIN yet. An empty one is the platform asking for a touch
/// to pick this key (§6.1.2 step 1): touch, then "PIN not set".
fn check_pin_auth(p: &[(Value, Value)], key: i64, presence: &dyn Presence) -> Result<(), Status> {
    match param(p, key) {
        None => Ok(()),
        Some(Value::Bytes(b)) if b.is_empty() => {
            presence.confirm()?;
            Err(Status::PinNotSet)
        }
        Some(Value::Bytes(_)) => Err(Status::PinAuthInvalid),
        Some(_) => Err(Status::CborUnexpectedType),
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn random<const N: usize>() -> Result<[u8; N], Status> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).map_err(|_| Status::Other)?;
    Ok(out)
}

/// A new private key; a random 32-byte string fails as a P-256 scalar with probability about
/// 2^-32, so a few tries are plenty.
fn new_secret(algorithm: CoseAlgorithm) -> Result<CredentialSecret, Status> {
    for _ in 0..8 {
        if let Ok(secret) = CredentialSecret::from_bytes(algorithm, &random::<32>()?) {
            return Ok(secret);
        }
    }
    Err(Status::Other)
}

#[cfg(test)]
mod tests;
