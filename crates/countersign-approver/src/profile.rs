//! What an enrolled approver keeps between runs: which server, the server keys pinned at
//! enrollment, the device and credential ids, which security key, and where the device key
//! is. The device key itself is never in this file: it stays in the keyring (or, by explicit
//! opt-in, its own file), see [`crate::device_key`].

use crate::audit_memory::CheckpointMemory;
use crate::client::{ClientError, ServerClient};
use crate::device_key::{DeviceKeyError, DeviceKeyStore};
use crate::serde_b64::b64_bytes;
use countersign_core::jwk::{Jwks, KeySet, SigningKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// No profile there: enroll first.
    #[error("no approver profile at {0}: enroll this device first")]
    NotEnrolled(PathBuf),
    /// Reading or writing failed.
    #[error("approver profile {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Not a profile this version understands.
    #[error("approver profile {path} is not valid: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The device key could not be read or stored.
    #[error(transparent)]
    DeviceKey(#[from] DeviceKeyError),
    /// The pinned keys or the server address are unusable.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Where the device key of a profile lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DeviceKeyLocation {
    /// The OS keyring, under this account (the device id).
    Keyring {
        /// Keyring account name.
        account: String,
    },
    /// A plain file, by explicit opt-in.
    InsecureFile {
        /// The file.
        path: PathBuf,
    },
}

impl DeviceKeyLocation {
    /// The store behind this location.
    pub fn store(&self) -> DeviceKeyStore {
        match self {
            DeviceKeyLocation::Keyring { account } => DeviceKeyStore::Keyring {
                account: account.clone(),
            },
            DeviceKeyLocation::InsecureFile { path } => DeviceKeyStore::InsecureFile(path.clone()),
        }
    }
}

/// An enrolled approver's saved state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Format version (1).
    pub version: u32,
    /// The server's base URL.
    pub server: String,
    /// The approver this device belongs to.
    pub approver_id: String,
    /// The enrolled device's id.
    pub device_id: String,
    /// The enrolled credential's id (base64url in the file).
    #[serde(with = "b64_bytes")]
    pub credential_id: Vec<u8>,
    /// WebAuthn RP id the server gave at enrollment.
    pub rp_id: String,
    /// WebAuthn origin the server gave at enrollment.
    pub origin: String,
    /// The server keys pinned at enrollment.
    pub server_keys: Jwks,
    /// Which security key enrolled (`usb` or `soft:PATH`), so later commands use the same.
    pub key: String,
    /// Where the device key is.
    pub device_key: DeviceKeyLocation,
    /// The enrolled key's model and algorithm, as it registered (absent in profiles written
    /// before this was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_details: Option<KeyDetails>,
}

/// What the security key said about itself at enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDetails {
    /// AAGUID (the authenticator model), lowercase hex.
    pub aaguid: String,
    /// `ES256` or `EdDSA`.
    pub algorithm: String,
}

impl Profile {
    /// Where a profile lives unless told otherwise, for the CLI and the desktop app alike:
    /// `$XDG_CONFIG_HOME/countersign/profile.json`, else under `$HOME/.config`.
    pub fn default_path() -> PathBuf {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("countersign").join("profile.json")
    }

    /// Whether the key is the software key (tests and demos), which every screen says.
    pub fn is_soft_key(&self) -> bool {
        self.key.starts_with("soft:")
    }

    /// Reads a profile.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProfileError::NotEnrolled(path.to_owned()))
            }
            Err(source) => {
                return Err(ProfileError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let invalid = |detail: String| ProfileError::Invalid {
            path: path.to_owned(),
            detail,
        };
        let profile: Profile =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if profile.version != 1 {
            return Err(invalid(format!("unknown version {}", profile.version)));
        }
        KeySet::from_jwks(&profile.server_keys).map_err(|e| invalid(e.to_string()))?;
        Ok(profile)
    }

    /// Writes the profile (owner-readable, replaced atomically).
    pub fn save(&self, path: &Path) -> Result<(), ProfileError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| ProfileError::Invalid {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        crate::private_file::write_private(path, &json).map_err(|source| ProfileError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Where the newest audit checkpoint of the profile at `profile_path` is kept: beside it
    /// (`profile.json` → `profile.checkpoint.json`).
    pub fn checkpoint_file(profile_path: &Path) -> PathBuf {
        profile_path.with_extension("checkpoint.json")
    }

    /// The signed connection this profile (read from `profile_path`) describes, with the
    /// device key from its store and the newest audit checkpoint kept beside the profile.
    pub fn connect(&self, profile_path: &Path) -> Result<ServerClient, ProfileError> {
        let checkpoint_file = Self::checkpoint_file(profile_path);
        let memory =
            CheckpointMemory::load(checkpoint_file.clone()).map_err(|e| ProfileError::Invalid {
                path: checkpoint_file,
                detail: e.to_string(),
            })?;
        let seed = self.device_key.store().load()?;
        let pinned = KeySet::from_jwks(&self.server_keys).map_err(|e| ProfileError::Invalid {
            path: PathBuf::new(),
            detail: e.to_string(),
        })?;
        Ok(ServerClient::restore(
            &self.server,
            &self.device_id,
            SigningKey::from_seed(&seed),
            pinned,
            &self.rp_id,
            &self.origin,
        )?
        .with_checkpoint_memory(memory))
    }
}
