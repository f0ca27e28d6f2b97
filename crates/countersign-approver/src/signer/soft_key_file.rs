//! What the software key remembers between runs, in one JSON file: its credentials (private
//! keys included, in plain text — this key is for tests and demos, and a server can refuse it
//! by its AAGUID), their signature counters, and its PIN state. Every change is written to a
//! new file that then replaces the old one, so a crash never leaves half a key file.

use crate::serde_b64::{b64_bytes, b64_opt};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The software key's AAGUID (ASCII "countersign-soft"): a deployment lists hardware AAGUIDs
/// and so refuses this key.
pub const SOFT_KEY_AAGUID: [u8; 16] = countersign_core::webauthn::DEMO_KEY_AAGUID;

/// PIN attempts before the PIN is blocked for good (CTAP2 §6.5.2.2 uses 8).
pub const PIN_RETRIES: u8 = 8;

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoftKeyFileError {
    /// Reading or writing the file failed.
    #[error("software key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a software key file this version understands.
    #[error("software key file {path} is not valid: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A PIN must have 4 to 63 bytes (CTAP2 limits).
    #[error("a PIN must be 4 to 63 bytes long")]
    PinLength,
}

/// The signature algorithm of a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SoftAlgorithm {
    /// ECDSA P-256 with SHA-256 (COSE -7).
    ES256,
    /// Ed25519 (COSE -8).
    EdDSA,
}

/// One credential the key holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoftCredential {
    /// Credential id (base64url in the file).
    #[serde(with = "b64_bytes")]
    pub id: Vec<u8>,
    /// The RP id it was made for.
    pub rp_id: String,
    /// Its algorithm.
    pub algorithm: SoftAlgorithm,
    /// The 32-byte private scalar or seed (base64url in the file).
    #[serde(with = "b64_bytes")]
    pub private_key: Vec<u8>,
    /// Signatures made so far (the signature counter).
    pub sign_count: u32,
}

/// Everything the file holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftKeyState {
    /// File format version (1).
    pub version: u32,
    /// Algorithm chosen for new credentials when the client offers it.
    pub preferred_algorithm: SoftAlgorithm,
    /// `LEFT(SHA-256(PIN), 16)` when a PIN is set (base64url), as CTAP2 stores it.
    #[serde(default, with = "b64_opt")]
    pub pin_hash: Option<Vec<u8>>,
    /// PIN attempts left.
    pub pin_retries: u8,
    /// The credentials.
    pub credentials: Vec<SoftCredential>,
}

impl SoftKeyState {
    /// A new key without credentials.
    pub fn new(
        preferred_algorithm: SoftAlgorithm,
        pin: Option<&str>,
    ) -> Result<Self, SoftKeyFileError> {
        let pin_hash = pin.map(pin_hash).transpose()?;
        Ok(SoftKeyState {
            version: 1,
            preferred_algorithm,
            pin_hash,
            pin_retries: PIN_RETRIES,
            credentials: Vec::new(),
        })
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, SoftKeyFileError> {
        let bytes = std::fs::read(path).map_err(|source| SoftKeyFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |detail: String| SoftKeyFileError::Invalid {
            path: path.to_owned(),
            detail,
        };
        let state: SoftKeyState =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if state.version != 1 {
            return Err(invalid(format!("unknown version {}", state.version)));
        }
        if state.pin_retries > PIN_RETRIES || state.pin_hash.as_ref().is_some_and(|h| h.len() != 16)
        {
            return Err(invalid("PIN state out of range".into()));
        }
        if state.credentials.iter().any(|c| c.private_key.len() != 32) {
            return Err(invalid("a private key is not 32 bytes".into()));
        }
        Ok(state)
    }

    /// Writes the file: to a sibling temporary file first, readable by the owner only, then
    /// renamed over the old one.
    pub fn save(&self, path: &Path) -> Result<(), SoftKeyFileError> {
        let io = |source| SoftKeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| SoftKeyFileError::Invalid {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        crate::private_file::write_private(path, &json).map_err(io)?;
        Ok(())
    }
}

/// `LEFT(SHA-256(pin), 16)`, after checking CTAP2's length limits.
pub fn pin_hash(pin: &str) -> Result<Vec<u8>, SoftKeyFileError> {
    if !(4..=63).contains(&pin.len()) {
        return Err(SoftKeyFileError::PinLength);
    }
    Ok(countersign_core::canonical::sha256(pin.as_bytes())[..16].to_vec())
}
