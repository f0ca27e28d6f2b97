//! Where the server's signing keys live: in files of their own, never in the database.
//!
//! Whoever reads a database backup must not be able to forge decisions, and whoever can write
//! the database must not be able to add a key that the JWKS then publishes: the keys and the
//! JWKS come from here only. By default each key is a file `<sequence>-<kid>.key` in a
//! directory made 0700, written 0600 (atomically: a temporary file, fsync, rename), and the
//! server refuses to start if the directory or a key file is readable by group or others.
//! With a key-encryption key (32 bytes, base64url, from `COUNTERSIGN_KEY_ENCRYPTION_KEY` or
//! the systemd credential `countersign-key-encryption-key`) the seeds are sealed with
//! XChaCha20-Poly1305, the key id bound as associated data.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use countersign_core::b64;
use countersign_core::jwk::SigningKey;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The environment variable that may hold the key-encryption key.
pub const KEK_ENV: &str = "COUNTERSIGN_KEY_ENCRYPTION_KEY";
/// The systemd credential (`LoadCredential=`) that may hold it.
pub const KEK_CREDENTIAL: &str = "countersign-key-encryption-key";
const AAD_DOMAIN: &str = "countersign/signing-key/v1\n";

/// Why keys could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The directory or a key file is open to group or others.
    #[error("{path} has mode {mode:o}: signing keys must be readable by the server's user only (chmod 700 the directory, 600 the files)")]
    Permissions { path: PathBuf, mode: u32 },
    /// A key file does not parse, or its seed does not match its key id.
    #[error("{path}: not a valid signing key file ({problem})")]
    Invalid {
        path: PathBuf,
        problem: &'static str,
    },
    /// A sealed key and no key-encryption key, or a plain key while one is configured.
    #[error("{path}: {problem}")]
    Encryption {
        path: PathBuf,
        problem: &'static str,
    },
    /// The key-encryption key is not 32 bytes of base64url.
    #[error("the key-encryption key ({0}) must be 32 bytes, base64url")]
    BadKek(&'static str),
    /// No randomness for a nonce.
    #[error(transparent)]
    Random(#[from] crate::clock::RandomError),
}

/// One signing key as kept at rest. Its `Debug` never shows the seed.
pub struct KeyFile {
    /// The key.
    pub key: SigningKey,
    /// Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("kid", &self.key.kid())
            .field("seed", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// The one job of a key store: list the keys, add one.
pub trait KeyProvider: Send + Sync {
    /// Every key, newest (the one that signs) first.
    fn keys(&self) -> Result<Vec<KeyFile>, KeyFileError>;
    /// Adds a key; it becomes the newest.
    fn add(&self, key: &KeyFile) -> Result<(), KeyFileError>;
}

/// Key files in one directory.
pub struct FileKeys {
    dir: PathBuf,
    kek: Option<Zeroizing<[u8; 32]>>,
}

/// The stored form of a key file.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u32,
    kid: String,
    created_at: i64,
    /// Order of addition: the highest signs (two keys can share a second).
    sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

impl FileKeys {
    /// Keys in `dir` (made 0700 if missing), sealed with `kek` when one is given.
    pub fn open(dir: &Path, kek: Option<Zeroizing<[u8; 32]>>) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: dir.to_owned(),
            source,
        };
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        private(dir)?;
        Ok(FileKeys {
            dir: dir.to_owned(),
            kek,
        })
    }

    /// The key-encryption key from the environment or the systemd credential, if either is
    /// set.
    pub fn kek_from_environment() -> Result<Option<Zeroizing<[u8; 32]>>, KeyFileError> {
        if let Some(text) = std::env::var_os(KEK_ENV) {
            let text = Zeroizing::new(text.to_string_lossy().trim().to_owned());
            return parse_kek(&text, KEK_ENV).map(Some);
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let path = Path::new(&dir).join(KEK_CREDENTIAL);
            if path.exists() {
                let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|source| {
                    KeyFileError::Io {
                        path: path.clone(),
                        source,
                    }
                })?);
                return parse_kek(text.trim(), KEK_CREDENTIAL).map(Some);
            }
        }
        Ok(None)
    }

    fn aad(kid: &str) -> Vec<u8> {
        format!("{AAD_DOMAIN}{kid}").into_bytes()
    }

    fn read(&self, path: &Path) -> Result<(u64, KeyFile), KeyFileError> {
        private(path)?;
        let invalid = |problem| KeyFileError::Invalid {
            path: path.to_owned(),
            problem,
        };
        let text = Zeroizing::new(std::fs::read(path).map_err(|source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        })?);
        let stored: Stored = serde_json::from_slice(&text).map_err(|_| invalid("not JSON"))?;
        if stored.version != 1 {
            return Err(invalid("unknown version"));
        }
        let seed: Zeroizing<Vec<u8>> = match (&stored.seed, &stored.nonce, &stored.sealed, &self.kek) {
            (Some(_), _, _, Some(_)) => {
                return Err(KeyFileError::Encryption {
                    path: path.to_owned(),
                    problem: "this key is stored in plain text but a key-encryption key is configured; rotate to a sealed key and remove this file",
                })
            }
            (Some(seed), None, None, None) => {
                Zeroizing::new(b64::decode(seed).map_err(|_| invalid("bad seed"))?)
            }
            (None, Some(_), Some(_), None) => {
                return Err(KeyFileError::Encryption {
                    path: path.to_owned(),
                    problem: "this key is sealed: set COUNTERSIGN_KEY_ENCRYPTION_KEY or the systemd credential countersign-key-encryption-key",
                })
            }
            (None, Some(nonce), Some(sealed), Some(kek)) => {
                let nonce: [u8; 24] = b64::decode(nonce)
                    .ok()
                    .and_then(|n| n.try_into().ok())
                    .ok_or_else(|| invalid("bad nonce"))?;
                let sealed = b64::decode(sealed).map_err(|_| invalid("bad sealed seed"))?;
                let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
                let aad = Self::aad(&stored.kid);
                Zeroizing::new(
                    cipher
                        .decrypt(
                            &XNonce::from(nonce),
                            Payload {
                                msg: &sealed,
                                aad: &aad,
                            },
                        )
                        .map_err(|_| KeyFileError::Encryption {
                            path: path.to_owned(),
                            problem: "cannot unseal: wrong key-encryption key, or the file was altered",
                        })?,
                )
            }
            _ => return Err(invalid("neither a seed nor a sealed seed")),
        };
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            seed.as_slice()
                .try_into()
                .map_err(|_| invalid("seed length"))?,
        );
        let key = SigningKey::from_seed(&seed);
        if key.kid() != stored.kid {
            return Err(invalid("the seed does not match the key id"));
        }
        Ok((
            stored.sequence,
            KeyFile {
                key,
                created_at: stored.created_at,
            },
        ))
    }

    /// Every key with its sequence number, highest first.
    fn numbered(&self) -> Result<Vec<(u64, KeyFile)>, KeyFileError> {
        private(&self.dir)?;
        let entries = std::fs::read_dir(&self.dir).map_err(|source| KeyFileError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut keys = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| KeyFileError::Io {
                    path: self.dir.clone(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|e| e == "key") {
                keys.push(self.read(&path)?);
            }
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.0));
        Ok(keys)
    }
}

impl KeyProvider for FileKeys {
    fn keys(&self) -> Result<Vec<KeyFile>, KeyFileError> {
        Ok(self.numbered()?.into_iter().map(|(_, k)| k).collect())
    }

    fn add(&self, file: &KeyFile) -> Result<(), KeyFileError> {
        let kid = file.key.kid().to_owned();
        let sequence = self.numbered()?.first().map_or(1, |(n, _)| n + 1);
        let seed = Zeroizing::new(file.key.seed());
        // In plain text, or sealed with the key-encryption key (the key id bound to it).
        let (seed, nonce, sealed) = match &self.kek {
            None => (Some(b64::encode(seed.as_slice())), None, None),
            Some(kek) => {
                let nonce = crate::clock::random::<24>()?;
                let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
                let aad = Self::aad(&kid);
                let sealed = cipher
                    .encrypt(
                        &XNonce::from(nonce),
                        Payload {
                            msg: seed.as_slice(),
                            aad: &aad,
                        },
                    )
                    .map_err(|_| KeyFileError::Invalid {
                        path: self.dir.clone(),
                        problem: "sealing failed",
                    })?;
                (None, Some(b64::encode(nonce)), Some(b64::encode(sealed)))
            }
        };
        let stored = Stored {
            version: 1,
            kid: kid.clone(),
            created_at: file.created_at,
            sequence,
            seed,
            nonce,
            sealed,
        };
        let bytes =
            Zeroizing::new(
                serde_json::to_vec(&stored).map_err(|_| KeyFileError::Invalid {
                    path: self.dir.clone(),
                    problem: "cannot encode",
                })?,
            );
        let path = self.dir.join(format!("{sequence:06}-{kid}.key"));
        let temp = self.dir.join(format!(".{sequence:06}-{kid}.tmp"));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| KeyFileError::Io { path, source }
        };
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(io(&temp))?;
        out.write_all(&bytes).map_err(io(&temp))?;
        out.sync_all().map_err(io(&temp))?;
        drop(out);
        std::fs::rename(&temp, &path).map_err(io(&path))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(())
    }
}

fn parse_kek(text: &str, source: &'static str) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let bytes = Zeroizing::new(b64::decode(text).map_err(|_| KeyFileError::BadKek(source))?);
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyFileError::BadKek(source))?;
    Ok(Zeroizing::new(key))
}

/// Refuses a path that group or others may read, write or enter.
fn private(path: &Path) -> Result<(), KeyFileError> {
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8, created_at: i64) -> KeyFile {
        KeyFile {
            key: SigningKey::from_seed(&[seed; 32]),
            created_at,
        }
    }

    #[test]
    fn keys_round_trip_newest_first_in_private_files() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("keys");
        let store = FileKeys::open(&keys_dir, None).unwrap();
        store.add(&key(1, 100)).unwrap();
        // Made in the same second: the one added last signs.
        store.add(&key(2, 100)).unwrap();
        let kids: Vec<String> = store
            .keys()
            .unwrap()
            .iter()
            .map(|k| k.key.kid().to_owned())
            .collect();
        let expected = [
            key(2, 0).key.kid().to_owned(),
            key(1, 0).key.kid().to_owned(),
        ];
        assert_eq!(kids, expected);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys_dir), 0o700);
        for entry in std::fs::read_dir(&keys_dir).unwrap() {
            assert_eq!(mode(&entry.unwrap().path()), 0o600);
        }
        assert!(!format!("{:?}", store.keys().unwrap()[0]).contains("seed: ["));
    }

    #[test]
    fn wider_permissions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("keys");
        let store = FileKeys::open(&keys_dir, None).unwrap();
        store.add(&key(1, 100)).unwrap();
        let file = std::fs::read_dir(&keys_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            store.keys(),
            Err(KeyFileError::Permissions { mode: 0o644, .. })
        ));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&keys_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            FileKeys::open(&keys_dir, None),
            Err(KeyFileError::Permissions { mode: 0o755, .. })
        ));
    }

    #[test]
    fn sealed_keys_need_the_right_key_encryption_key_and_hold_no_seed() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("keys");
        let kek = || Some(Zeroizing::new([7u8; 32]));
        let sealed = FileKeys::open(&keys_dir, kek()).unwrap();
        sealed.add(&key(1, 100)).unwrap();
        let file = std::fs::read_dir(&keys_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&b64::encode([1u8; 32])), "{text}");
        assert_eq!(sealed.keys().unwrap()[0].key.kid(), key(1, 0).key.kid());
        let wrong = FileKeys::open(&keys_dir, Some(Zeroizing::new([8u8; 32]))).unwrap();
        assert!(matches!(wrong.keys(), Err(KeyFileError::Encryption { .. })));
        let none = FileKeys::open(&keys_dir, None).unwrap();
        assert!(matches!(none.keys(), Err(KeyFileError::Encryption { .. })));
        // A file moved under another key id does not unseal (the id is bound).
        let mut stored: serde_json::Value = serde_json::from_str(&text).unwrap();
        stored["kid"] = key(2, 0).key.kid().into();
        std::fs::write(&file, stored.to_string()).unwrap();
        assert!(matches!(
            sealed.keys(),
            Err(KeyFileError::Encryption { .. })
        ));
    }
}
