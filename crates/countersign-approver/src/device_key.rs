//! Where the device key lives between runs. By default in the operating system's keyring
//! (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows), never on disk
//! in plain text. Where no keyring exists (a server without a desktop session, a CI runner),
//! the error says what to install; a plain file is used only when the person asks for it
//! explicitly ([`DeviceKeyStore::InsecureFile`]), and it is written readable by the owner only.

use std::path::PathBuf;

/// The keyring service name entries are filed under.
pub const KEYRING_SERVICE: &str = "countersign-approver";

/// Why the device key could not be stored or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceKeyError {
    /// No usable keyring: nothing is running or it is locked.
    #[error(
        "no usable OS keyring ({detail}). On Linux, install and unlock a Secret Service \
         provider (for example gnome-keyring or KWallet) in your D-Bus session; or, for tests \
         and demos only, keep the key in a plain file with --insecure-device-key-file PATH"
    )]
    NoKeyring {
        /// What the keyring said.
        detail: String,
    },
    /// The keyring holds no key for this device: enroll again.
    #[error("no device key for {account} in the keyring: enroll this device again")]
    Missing {
        /// The keyring account (the device id).
        account: String,
    },
    /// The stored value is not a device key.
    #[error("the stored device key is damaged")]
    Damaged,
    /// Reading or writing the opted-in key file failed.
    #[error("device key file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Where a device key is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceKeyStore {
    /// The OS keyring, under [`KEYRING_SERVICE`] and this account name (the device id).
    Keyring {
        /// Account name.
        account: String,
    },
    /// A plain file (explicit opt-in for tests and demos; the key is not protected at rest).
    InsecureFile(PathBuf),
}

impl DeviceKeyStore {
    /// Stores the 32-byte Ed25519 seed.
    pub fn save(&self, seed: &[u8; 32]) -> Result<(), DeviceKeyError> {
        match self {
            DeviceKeyStore::Keyring { account } => {
                entry(account)?.set_secret(seed).map_err(keyring_error)
            }
            DeviceKeyStore::InsecureFile(path) => crate::private_file::write_private(path, seed)
                .map_err(|source| DeviceKeyError::File {
                    path: path.clone(),
                    source,
                }),
        }
    }

    /// Reads the seed back.
    pub fn load(&self) -> Result<zeroize::Zeroizing<[u8; 32]>, DeviceKeyError> {
        let bytes = zeroize::Zeroizing::new(match self {
            DeviceKeyStore::Keyring { account } => match entry(account)?.get_secret() {
                Ok(bytes) => bytes,
                Err(keyring::Error::NoEntry) => {
                    return Err(DeviceKeyError::Missing {
                        account: account.clone(),
                    })
                }
                Err(e) => return Err(keyring_error(e)),
            },
            DeviceKeyStore::InsecureFile(path) => {
                std::fs::read(path).map_err(|source| DeviceKeyError::File {
                    path: path.clone(),
                    source,
                })?
            }
        });
        let seed: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| DeviceKeyError::Damaged)?;
        Ok(zeroize::Zeroizing::new(seed))
    }

    /// Removes the key (after the device is disabled or re-enrolled).
    pub fn delete(&self) -> Result<(), DeviceKeyError> {
        match self {
            DeviceKeyStore::Keyring { account } => match entry(account)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(keyring_error(e)),
            },
            DeviceKeyStore::InsecureFile(path) => match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(DeviceKeyError::File {
                    path: path.clone(),
                    source,
                }),
            },
        }
    }
}

fn entry(account: &str) -> Result<keyring::Entry, DeviceKeyError> {
    keyring::Entry::new(KEYRING_SERVICE, account).map_err(keyring_error)
}

fn keyring_error(error: keyring::Error) -> DeviceKeyError {
    match error {
        keyring::Error::BadEncoding(_) | keyring::Error::Ambiguous(_) => DeviceKeyError::Damaged,
        keyring::Error::NoEntry => DeviceKeyError::Missing {
            account: String::new(),
        },
        other => DeviceKeyError::NoKeyring {
            detail: other.to_string(),
        },
    }
}
