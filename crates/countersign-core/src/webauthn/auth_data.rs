//! authenticatorData (WebAuthn Level 3 §6.1):
//!
//! ```text
//! rpIdHash (32) | flags (1) | signCount (4, big-endian)
//!   | [attestedCredentialData: aaguid (16) | credentialIdLength (2) | credentialId | COSE_Key]
//!   | [extensions: CBOR map]
//! ```
//!
//! The parser borrows the input, checks every length before reading, and refuses trailing
//! bytes, a flag that promises data that is not there, and data that no flag announced.

use super::cbor::{self, CborError};
use super::cose::{CoseKeyError, CredentialPublicKey};
use ciborium::Value;

/// Largest authenticatorData accepted; real ones are a few hundred bytes.
pub const MAX_LEN: usize = 8 * 1024;
/// Longest credential id (§5.8.3: at most 1023 bytes).
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;

/// The flags byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    /// User Present.
    pub const UP: u8 = 0x01;
    /// User Verified.
    pub const UV: u8 = 0x04;
    /// Backup Eligible.
    pub const BE: u8 = 0x08;
    /// Backup State.
    pub const BS: u8 = 0x10;
    /// Attested credential data included.
    pub const AT: u8 = 0x40;
    /// Extension data included.
    pub const ED: u8 = 0x80;

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    /// The user touched the key.
    pub fn user_present(self) -> bool {
        self.has(Self::UP)
    }
    /// The key verified the user (PIN or biometrics).
    pub fn user_verified(self) -> bool {
        self.has(Self::UV)
    }
    /// The credential may be backed up (a synced passkey rather than a hardware-bound key).
    pub fn backup_eligible(self) -> bool {
        self.has(Self::BE)
    }
    /// The credential is currently backed up.
    pub fn backed_up(self) -> bool {
        self.has(Self::BS)
    }
    /// Attested credential data follows the counter.
    pub fn attested_data(self) -> bool {
        self.has(Self::AT)
    }
    /// Extensions follow.
    pub fn extension_data(self) -> bool {
        self.has(Self::ED)
    }
}

/// The credential being registered, present only during registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedCredentialData {
    /// Model identifier of the authenticator.
    pub aaguid: [u8; 16],
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The validated public key.
    pub public_key: CredentialPublicKey,
}

/// Parsed authenticatorData.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthenticatorData {
    /// SHA-256 of the RP id the authenticator scoped the credential to.
    pub rp_id_hash: [u8; 32],
    /// The flags byte.
    pub flags: Flags,
    /// Signature counter; 0 when the authenticator keeps none.
    pub sign_count: u32,
    /// Present when the AT flag is set.
    pub attested: Option<AttestedCredentialData>,
    /// The extensions map, present when the ED flag is set.
    pub extensions: Option<Value>,
}

/// Why authenticatorData was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum AuthDataError {
    /// Shorter than the 37 fixed bytes, or cut inside a field.
    #[error("authenticatorData truncated: {0}")]
    Truncated(&'static str),
    /// Longer than [`MAX_LEN`].
    #[error("authenticatorData is {0} bytes; the limit is {MAX_LEN}")]
    TooLong(usize),
    /// Credential id longer than 1023 bytes.
    #[error("credential id of {0} bytes exceeds 1023")]
    CredentialIdTooLong(usize),
    /// The credential public key was refused.
    #[error(transparent)]
    CoseKey(#[from] CoseKeyError),
    /// The extensions are not a CBOR map.
    #[error("extensions are not a CBOR map")]
    ExtensionsNotMap,
    /// The extensions are not well-formed CBOR.
    #[error("extensions: {0}")]
    Extensions(CborError),
    /// Bytes after the last announced field.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// BS set without BE (§6.1: a credential that cannot be backed up is not backed up).
    #[error("backup state set on a credential that is not backup eligible")]
    BackupStateWithoutEligibility,
}

impl AuthDataError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            AuthDataError::CoseKey(e) => e.code(),
            other => other.into(),
        }
    }
}

impl AuthenticatorData {
    /// Parses authenticatorData from untrusted bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, AuthDataError> {
        if bytes.len() > MAX_LEN {
            return Err(AuthDataError::TooLong(bytes.len()));
        }
        let (rp_id_hash, rest) = take::<32>(bytes, "rpIdHash")?;
        let ([flags], rest) = take::<1>(rest, "flags")?;
        let (count, mut rest) = take::<4>(rest, "signCount")?;
        let flags = Flags(flags);
        if flags.backed_up() && !flags.backup_eligible() {
            return Err(AuthDataError::BackupStateWithoutEligibility);
        }

        let attested = if flags.attested_data() {
            let (aaguid, after) = take::<16>(rest, "aaguid")?;
            let (len, after) = take::<2>(after, "credentialIdLength")?;
            let len = usize::from(u16::from_be_bytes(len));
            if len > MAX_CREDENTIAL_ID_LEN {
                return Err(AuthDataError::CredentialIdTooLong(len));
            }
            if after.len() < len {
                return Err(AuthDataError::Truncated("credentialId"));
            }
            let (credential_id, after) = after.split_at(len);
            let (key, after) = cbor::read_item(after).map_err(CoseKeyError::from)?;
            rest = after;
            Some(AttestedCredentialData {
                aaguid,
                credential_id: credential_id.to_vec(),
                public_key: CredentialPublicKey::from_cbor_value(key)?,
            })
        } else {
            None
        };

        let extensions = if flags.extension_data() {
            let (value, after) = cbor::read_item(rest).map_err(AuthDataError::Extensions)?;
            if !matches!(value, Value::Map(_)) {
                return Err(AuthDataError::ExtensionsNotMap);
            }
            rest = after;
            Some(value)
        } else {
            None
        };

        if !rest.is_empty() {
            return Err(AuthDataError::TrailingBytes(rest.len()));
        }
        Ok(AuthenticatorData {
            rp_id_hash,
            flags,
            sign_count: u32::from_be_bytes(count),
            attested,
            extensions,
        })
    }
}

/// Splits `N` bytes off the front, or names the field that was cut.
fn take<'a, const N: usize>(
    bytes: &'a [u8],
    field: &'static str,
) -> Result<([u8; N], &'a [u8]), AuthDataError> {
    match bytes.split_first_chunk::<N>() {
        Some((head, rest)) => Ok((*head, rest)),
        None => Err(AuthDataError::Truncated(field)),
    }
}

/// Builds authenticatorData bytes; used by software authenticators and tests.
pub fn encode(
    rp_id_hash: &[u8; 32],
    flags: u8,
    sign_count: u32,
    attested: Option<&AttestedCredentialData>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(37 + attested.map_or(0, |a| 18 + a.credential_id.len() + 77));
    out.extend_from_slice(rp_id_hash);
    out.push(flags);
    out.extend_from_slice(&sign_count.to_be_bytes());
    if let Some(a) = attested {
        out.extend_from_slice(&a.aaguid);
        // Callers hold ids of at most 1023 bytes, so the length always fits in two bytes.
        out.extend_from_slice(&(a.credential_id.len() as u16).to_be_bytes());
        out.extend_from_slice(&a.credential_id);
        out.extend_from_slice(&a.public_key.to_cose_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CredentialPublicKey {
        CredentialPublicKey::Ed25519(
            ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key(),
        )
    }

    #[test]
    fn parses_assertion_and_registration_forms() {
        let plain = encode(&[9; 32], Flags::UP | Flags::UV, 7, None);
        let parsed = AuthenticatorData::parse(&plain).unwrap();
        assert_eq!(
            (
                parsed.sign_count,
                parsed.flags.user_verified(),
                parsed.attested
            ),
            (7, true, None)
        );

        let attested = AttestedCredentialData {
            aaguid: [5; 16],
            credential_id: vec![1, 2, 3],
            public_key: key(),
        };
        let bytes = encode(&[9; 32], Flags::UP | Flags::AT, 0, Some(&attested));
        assert_eq!(
            AuthenticatorData::parse(&bytes).unwrap().attested,
            Some(attested)
        );
    }

    #[test]
    fn rejects_each_structural_defect() {
        let plain = encode(&[9; 32], Flags::UP, 1, None);
        assert_eq!(
            AuthenticatorData::parse(&plain[..36]),
            Err(AuthDataError::Truncated("signCount"))
        );
        let mut trailing = plain.clone();
        trailing.push(0);
        assert_eq!(
            AuthenticatorData::parse(&trailing),
            Err(AuthDataError::TrailingBytes(1))
        );
        let mut at_without_data = plain.clone();
        at_without_data[32] |= Flags::AT;
        assert_eq!(
            AuthenticatorData::parse(&at_without_data),
            Err(AuthDataError::Truncated("aaguid"))
        );
        let mut ed_without_data = plain.clone();
        ed_without_data[32] |= Flags::ED;
        assert!(matches!(
            AuthenticatorData::parse(&ed_without_data),
            Err(AuthDataError::Extensions(_))
        ));
        let mut ext_not_map = ed_without_data.clone();
        ext_not_map.push(0x01);
        assert_eq!(
            AuthenticatorData::parse(&ext_not_map),
            Err(AuthDataError::ExtensionsNotMap)
        );
        let mut ext_map = ed_without_data;
        ext_map.push(0xa0);
        assert!(AuthenticatorData::parse(&ext_map)
            .unwrap()
            .extensions
            .is_some());
        let mut bs = plain.clone();
        bs[32] |= Flags::BS;
        assert_eq!(
            AuthenticatorData::parse(&bs),
            Err(AuthDataError::BackupStateWithoutEligibility)
        );

        let attested = AttestedCredentialData {
            aaguid: [5; 16],
            credential_id: vec![1; 1023],
            public_key: key(),
        };
        let mut long_id = encode(&[9; 32], Flags::UP | Flags::AT, 0, Some(&attested));
        long_id[53] = 0x04; // length 0x04ff = 1279
        assert_eq!(
            AuthenticatorData::parse(&long_id),
            Err(AuthDataError::CredentialIdTooLong(1279))
        );
        let short = encode(&[9; 32], Flags::UP | Flags::AT, 0, Some(&attested));
        assert_eq!(
            AuthenticatorData::parse(&short[..100]),
            Err(AuthDataError::Truncated("credentialId"))
        );
        assert_eq!(
            AuthenticatorData::parse(&vec![0; MAX_LEN + 1]),
            Err(AuthDataError::TooLong(MAX_LEN + 1))
        );
    }
}
