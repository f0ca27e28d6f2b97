//! The server's Ed25519 signing keys: created on first start, rotated by the admin CLI; the
//! newest signs, all are published in the JWKS until removed. The keys themselves live with a
//! [`KeyProvider`] (files outside the database, see `key_provider`); the database records only
//! which key ids exist and when they were made and retired, for the audit chain.

use crate::clock;
use crate::config::Config;
use crate::key_provider::{FileKeys, KeyFile, KeyFileError, KeyProvider};
use crate::store::{SigningKeyRecord, Store, StoreError};
use countersign_core::audit::{Event, EventKind};
use countersign_core::jwk::{KeySet, SigningKey};
use countersign_core::rollover::KeyRollover;

/// Why keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key files could not be read or written.
    #[error(transparent)]
    Files(#[from] KeyFileError),
    /// No randomness.
    #[error(transparent)]
    Random(#[from] clock::RandomError),
    /// No usable clock.
    #[error(transparent)]
    Clock(#[from] clock::ClockError),
    /// The previous key's endorsement of the new one could not be made.
    #[error(transparent)]
    Rollover(#[from] countersign_core::rollover::RolloverError),
    /// The database records signing keys but this instance's key directory holds none.
    #[error("the database records signing key {0} but the key directory is empty: copy the key files from an instance that has them (every instance signs with the same keys)")]
    Missing(String),
    /// A key stored in the database by an older version does not match its id.
    #[error("stored signing key {0} does not match its kid")]
    Mismatch(String),
}

/// The active key and every published key.
#[derive(Clone, Debug)]
pub struct Keys {
    /// Signs decisions, pushed requests and checkpoints.
    pub active: SigningKey,
    /// What `/.well-known/jwks.json` publishes.
    pub published: KeySet,
}

/// The key files of this configuration: `<data_dir>/keys`, sealed when a key-encryption key
/// is in the environment or a systemd credential.
pub fn provider(config: &Config) -> Result<FileKeys, KeyError> {
    let kek = FileKeys::kek_from_environment()?;
    Ok(FileKeys::open(&config.keys_dir(), kek)?)
}

/// Loads the keys, moving any an older version kept in the database into `provider` first,
/// and creating the first one if there is none.
pub async fn load_or_create(
    store: &dyn Store,
    provider: &dyn KeyProvider,
) -> Result<Keys, KeyError> {
    move_legacy_seeds(store, provider).await?;
    let mut files = provider.keys()?;
    if files.is_empty() {
        // A database that already has keys is served by an instance that lost them, or by a
        // new instance nobody gave them to: a key of its own would split the JWKS.
        if let Some(newest) = store.signing_keys().await?.into_iter().next() {
            return Err(KeyError::Missing(newest.kid));
        }
        rotate(store, provider, "server").await?;
        files = provider.keys()?;
    }
    let published = KeySet::new(files.iter().map(|f| f.key.verifying_key().clone()));
    let active = files
        .into_iter()
        .next()
        .map(|f| f.key)
        .ok_or(KeyError::Mismatch("none".into()))?;
    Ok(Keys { active, published })
}

/// Before key files existed, seeds were a column of the database: write them out as key files
/// and blank them in the database (operators should still rotate: old backups hold them).
async fn move_legacy_seeds(store: &dyn Store, provider: &dyn KeyProvider) -> Result<(), KeyError> {
    let legacy = store.legacy_signing_seeds().await?;
    if legacy.is_empty() {
        return Ok(());
    }
    let present: Vec<String> = provider
        .keys()?
        .iter()
        .map(|f| f.key.kid().to_owned())
        .collect();
    for (kid, seed, created_at) in legacy {
        let key = SigningKey::from_seed(&seed);
        if key.kid() != kid {
            return Err(KeyError::Mismatch(kid));
        }
        if !present.contains(&kid) {
            provider.add(&KeyFile { key, created_at })?;
        }
    }
    store.forget_signing_seeds().await?;
    tracing::warn!("signing keys moved out of the database into key files; rotate them, since older backups of the database still hold them");
    Ok(())
}

/// Makes a new active key; the previous one stays published.
pub async fn rotate(
    store: &dyn Store,
    provider: &dyn KeyProvider,
    actor: &str,
) -> Result<String, KeyError> {
    let now = clock::now()?;
    let key = SigningKey::from_seed(&clock::random::<32>()?);
    let kid = key.kid().to_owned();
    // The key that signed until now endorses its successor (approvers pinned an older one).
    let rollover = provider
        .keys()?
        .first()
        .map(|previous| KeyRollover::sign(&previous.key, key.verifying_key(), now.unix()))
        .transpose()?;
    // The file first: a key recorded but missing would be worse than a file not yet recorded.
    provider.add(&KeyFile {
        key,
        created_at: now.unix(),
    })?;
    let record = SigningKeyRecord {
        kid: kid.clone(),
        created_at: now.unix(),
        retired_at: None,
    };
    let event = Event {
        at: now,
        kind: EventKind::SigningKeyRotated.into(),
        request_id: None,
        actor: actor.into(),
        data: serde_json::json!({"kid": kid}),
    };
    store
        .rotate_signing_key(&record, rollover.as_ref(), event)
        .await?;
    Ok(kid)
}
