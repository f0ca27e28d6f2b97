//! Credential public keys as COSE_Key (RFC 9052/9053), restricted to what Countersign accepts:
//! EC2 P-256 with ES256 (-7) and OKP Ed25519 with EdDSA (-8). Everything else is refused at
//! enrollment, so verification later never meets an algorithm it did not expect.

use super::cbor::{self, CborError};
use super::signature::{self, SignatureError};
use ciborium::Value;
use coset::iana::{self, EnumI64};
use coset::{AsCborValue, CborSerializable, CoseKey, KeyType, Label, RegisteredLabelWithPrivate};

/// The signature algorithms a credential may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoseAlgorithm {
    /// ECDSA P-256 SHA-256, COSE -7.
    Es256,
    /// EdDSA over Ed25519, COSE -8.
    EdDsa,
}

impl CoseAlgorithm {
    /// The COSE algorithm identifier.
    pub fn cose_id(self) -> i64 {
        match self {
            CoseAlgorithm::Es256 => -7,
            CoseAlgorithm::EdDsa => -8,
        }
    }

    /// The algorithm for a COSE identifier, if accepted.
    pub fn from_cose_id(id: i64) -> Option<Self> {
        match id {
            -7 => Some(CoseAlgorithm::Es256),
            -8 => Some(CoseAlgorithm::EdDsa),
            _ => None,
        }
    }
}

/// A verified credential public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialPublicKey {
    /// P-256 point, SEC1 uncompressed (`0x04 || x || y`), validated on the curve.
    Es256([u8; 65]),
    /// Ed25519 point, validated as a decompressible point.
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// Why a COSE key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum CoseKeyError {
    /// Not a well-formed CBOR item.
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// Not a well-formed COSE_Key (not a map, duplicate labels, bad label types).
    #[error("malformed COSE key: {0}")]
    Malformed(String),
    /// The key carries no `alg`; WebAuthn requires it.
    #[error("COSE key has no alg")]
    MissingAlgorithm,
    /// An algorithm other than ES256 or EdDSA.
    #[error("unsupported COSE algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The key type does not fit the algorithm.
    #[error("COSE key type does not match its algorithm")]
    KeyTypeMismatch,
    /// A curve other than P-256 (ES256) or Ed25519 (EdDSA).
    #[error("unsupported or missing curve")]
    UnsupportedCurve,
    /// A coordinate is missing, not a byte string, or of the wrong length.
    #[error("bad or missing coordinate {0}")]
    BadCoordinate(&'static str),
    /// The coordinates are not a valid point of the curve.
    #[error("public key is not a valid point on its curve")]
    InvalidPoint,
    /// A private key component (`d`) is present.
    #[error("COSE key contains private key material")]
    PrivateKeyPresent,
}

impl CoseKeyError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

const CRV: i64 = -1;
const X: i64 = -2;
const Y: i64 = -3;
const D: i64 = -4;

impl CredentialPublicKey {
    /// The algorithm this key verifies, fixed at enrollment.
    pub fn algorithm(&self) -> CoseAlgorithm {
        match self {
            CredentialPublicKey::Es256(_) => CoseAlgorithm::Es256,
            CredentialPublicKey::Ed25519(_) => CoseAlgorithm::EdDsa,
        }
    }

    /// Parses a COSE_Key that must fill `bytes` exactly.
    pub fn from_cose_bytes(bytes: &[u8]) -> Result<Self, CoseKeyError> {
        Self::from_cbor_value(cbor::read_exactly_one(bytes)?)
    }

    /// Validates a decoded COSE_Key.
    pub fn from_cbor_value(value: Value) -> Result<Self, CoseKeyError> {
        let key =
            CoseKey::from_cbor_value(value).map_err(|e| CoseKeyError::Malformed(e.to_string()))?;
        let alg = match &key.alg {
            None => return Err(CoseKeyError::MissingAlgorithm),
            Some(RegisteredLabelWithPrivate::Assigned(a)) => {
                CoseAlgorithm::from_cose_id(a.to_i64())
                    .ok_or_else(|| CoseKeyError::UnsupportedAlgorithm(format!("{a:?}")))?
            }
            Some(other) => return Err(CoseKeyError::UnsupportedAlgorithm(format!("{other:?}"))),
        };
        if param(&key, D).is_some() {
            return Err(CoseKeyError::PrivateKeyPresent);
        }
        match alg {
            CoseAlgorithm::Es256 => {
                if key.kty != KeyType::Assigned(iana::KeyType::EC2) {
                    return Err(CoseKeyError::KeyTypeMismatch);
                }
                if param(&key, CRV) != Some(&Value::from(iana::EllipticCurve::P_256.to_i64())) {
                    return Err(CoseKeyError::UnsupportedCurve);
                }
                let x = coordinate(&key, X, "x")?;
                let y = coordinate(&key, Y, "y")?;
                let mut sec1 = [0u8; 65];
                sec1[0] = 0x04;
                sec1[1..33].copy_from_slice(&x);
                sec1[33..].copy_from_slice(&y);
                p256::PublicKey::from_sec1_bytes(&sec1).map_err(|_| CoseKeyError::InvalidPoint)?;
                Ok(CredentialPublicKey::Es256(sec1))
            }
            CoseAlgorithm::EdDsa => {
                if key.kty != KeyType::Assigned(iana::KeyType::OKP) {
                    return Err(CoseKeyError::KeyTypeMismatch);
                }
                if param(&key, CRV) != Some(&Value::from(iana::EllipticCurve::Ed25519.to_i64())) {
                    return Err(CoseKeyError::UnsupportedCurve);
                }
                if param(&key, Y).is_some() {
                    return Err(CoseKeyError::BadCoordinate("y"));
                }
                let x = coordinate(&key, X, "x")?;
                let point = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| CoseKeyError::InvalidPoint)?;
                if point.is_weak() {
                    return Err(CoseKeyError::InvalidPoint);
                }
                Ok(CredentialPublicKey::Ed25519(point))
            }
        }
    }

    /// The CTAP2-canonical COSE_Key encoding, for storage and for software authenticators.
    pub fn to_cose_bytes(&self) -> Vec<u8> {
        let key = match self {
            CredentialPublicKey::Es256(sec1) => coset::CoseKeyBuilder::new_ec2_pub_key(
                iana::EllipticCurve::P_256,
                sec1[1..33].to_vec(),
                sec1[33..].to_vec(),
            )
            .algorithm(iana::Algorithm::ES256)
            .build(),
            CredentialPublicKey::Ed25519(point) => coset::CoseKeyBuilder::new_okp_key()
                .param(CRV, Value::from(iana::EllipticCurve::Ed25519.to_i64()))
                .param(X, Value::Bytes(point.as_bytes().to_vec()))
                .algorithm(iana::Algorithm::EdDSA)
                .build(),
        };
        let mut key = key;
        key.canonicalize(coset::CborOrdering::LengthFirstLexicographic);
        // Serializing a key built from validated parts cannot fail; an empty vector would be
        // refused by every parser, so the failure stays closed.
        key.to_vec().unwrap_or_default()
    }

    /// Verifies `signature` over `message` with this key's enrolled algorithm.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match self {
            CredentialPublicKey::Es256(sec1) => signature::verify_es256(sec1, message, signature),
            CredentialPublicKey::Ed25519(point) => {
                signature::verify_ed25519(point, message, signature)
            }
        }
    }
}

fn param(key: &CoseKey, label: i64) -> Option<&Value> {
    key.params
        .iter()
        .find(|(l, _)| *l == Label::Int(label))
        .map(|(_, v)| v)
}

fn coordinate(key: &CoseKey, label: i64, name: &'static str) -> Result<[u8; 32], CoseKeyError> {
    match param(key, label) {
        Some(Value::Bytes(b)) => b
            .as_slice()
            .try_into()
            .map_err(|_| CoseKeyError::BadCoordinate(name)),
        _ => Err(CoseKeyError::BadCoordinate(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::sec1::ToEncodedPoint;

    fn es256_key() -> CredentialPublicKey {
        let secret = p256::SecretKey::from_slice(&[0x11; 32]).unwrap();
        let point = secret.public_key().to_encoded_point(false);
        CredentialPublicKey::Es256(point.as_bytes().try_into().unwrap())
    }

    fn ed25519_key() -> CredentialPublicKey {
        CredentialPublicKey::Ed25519(
            ed25519_dalek::SigningKey::from_bytes(&[0x22; 32]).verifying_key(),
        )
    }

    #[test]
    fn round_trips_both_key_types_in_canonical_order() {
        for key in [es256_key(), ed25519_key()] {
            let bytes = key.to_cose_bytes();
            assert_eq!(CredentialPublicKey::from_cose_bytes(&bytes).unwrap(), key);
        }
        let es = es256_key().to_cose_bytes();
        // a5 01 02 03 26 20 01 21 58 20 ...: kty, alg, crv, x, y in CTAP2 canonical order.
        assert_eq!(
            &es[..10],
            &[0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20]
        );
    }

    fn map(entries: Vec<(i64, Value)>) -> Vec<u8> {
        let value = Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        );
        let mut out = Vec::new();
        ciborium::ser::into_writer(&value, &mut out).unwrap();
        out
    }

    #[test]
    fn rejects_each_defect() {
        let x = Value::Bytes(vec![1; 32]);
        let cases: Vec<(Vec<u8>, CoseKeyError)> = vec![
            (
                map(vec![
                    (1, 2.into()),
                    (-1, 1.into()),
                    (-2, x.clone()),
                    (-3, x.clone()),
                ]),
                CoseKeyError::MissingAlgorithm,
            ),
            (
                map(vec![(1, 3.into()), (3, (-257).into())]),
                CoseKeyError::UnsupportedAlgorithm("RS256".into()),
            ),
            (
                map(vec![(1, 2.into()), (3, (-35).into())]),
                CoseKeyError::UnsupportedAlgorithm("ES384".into()),
            ),
            (
                map(vec![(1, 1.into()), (3, (-7).into()), (-1, 1.into())]),
                CoseKeyError::KeyTypeMismatch,
            ),
            (
                map(vec![
                    (1, 2.into()),
                    (3, (-7).into()),
                    (-1, 2.into()),
                    (-2, x.clone()),
                    (-3, x.clone()),
                ]),
                CoseKeyError::UnsupportedCurve,
            ),
            (
                map(vec![
                    (1, 2.into()),
                    (3, (-7).into()),
                    (-1, 1.into()),
                    (-2, Value::Bytes(vec![1; 31])),
                    (-3, x.clone()),
                ]),
                CoseKeyError::BadCoordinate("x"),
            ),
            (
                map(vec![
                    (1, 2.into()),
                    (3, (-7).into()),
                    (-1, 1.into()),
                    (-2, x.clone()),
                ]),
                CoseKeyError::BadCoordinate("y"),
            ),
            (
                map(vec![
                    (1, 2.into()),
                    (3, (-7).into()),
                    (-1, 1.into()),
                    (-2, x.clone()),
                    (-3, x.clone()),
                ]),
                CoseKeyError::InvalidPoint,
            ),
            (
                map(vec![
                    (1, 1.into()),
                    (3, (-8).into()),
                    (-1, 6.into()),
                    (-2, x.clone()),
                    (-4, x.clone()),
                ]),
                CoseKeyError::PrivateKeyPresent,
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(CredentialPublicKey::from_cose_bytes(&bytes), Err(expected));
        }
        let mut good = ed25519_key().to_cose_bytes();
        good.push(0);
        assert!(matches!(
            CredentialPublicKey::from_cose_bytes(&good),
            Err(CoseKeyError::Cbor(_))
        ));
        let dup = map(vec![(1, 1.into()), (1, 1.into())]);
        assert!(matches!(
            CredentialPublicKey::from_cose_bytes(&dup),
            Err(CoseKeyError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_small_order_ed25519_points() {
        // The identity point (y = 1) decompresses but has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let bytes = map(vec![
            (1, 1.into()),
            (3, (-8).into()),
            (-1, 6.into()),
            (-2, Value::Bytes(identity.to_vec())),
        ]);
        assert_eq!(
            CredentialPublicKey::from_cose_bytes(&bytes),
            Err(CoseKeyError::InvalidPoint)
        );
    }
}
