//! The server's Ed25519 signing keys: created on first start, rotated by the admin CLI; the
//! newest signs, all are published in the JWKS until removed.

use crate::clock;
use crate::store::{SigningKeyRecord, Store, StoreError};
use countersign_core::audit::Event;
use countersign_core::jwk::{KeySet, SigningKey};

/// Why keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No randomness.
    #[error(transparent)]
    Random(#[from] clock::RandomError),
    /// No usable clock.
    #[error(transparent)]
    Clock(#[from] clock::ClockError),
    /// A stored key's id does not match its seed.
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

/// Loads the keys, creating the first one if there is none.
pub async fn load_or_create(store: &dyn Store) -> Result<Keys, KeyError> {
    let mut records = store.signing_keys().await?;
    if records.is_empty() {
        rotate(store, "server").await?;
        records = store.signing_keys().await?;
    }
    let mut keys = Vec::new();
    for record in &records {
        let key = SigningKey::from_seed(&record.seed);
        if key.kid() != record.kid {
            return Err(KeyError::Mismatch(record.kid.clone()));
        }
        keys.push(key);
    }
    let published = KeySet::new(keys.iter().map(|k| k.verifying_key().clone()));
    let active = keys
        .into_iter()
        .next()
        .ok_or(KeyError::Mismatch("none".into()))?;
    Ok(Keys { active, published })
}

/// Makes a new active key; the previous one stays published.
pub async fn rotate(store: &dyn Store, actor: &str) -> Result<String, KeyError> {
    let now = clock::now()?;
    let key = SigningKey::from_seed(&clock::random::<32>()?);
    let record = SigningKeyRecord {
        kid: key.kid().to_owned(),
        seed: key.seed(),
        created_at: now.unix(),
        retired_at: None,
    };
    let event = Event {
        at: now,
        kind: "signing_key.rotated".into(),
        request_id: None,
        actor: actor.into(),
        data: serde_json::json!({"kid": key.kid()}),
    };
    store.rotate_signing_key(&record, event).await?;
    Ok(record.kid)
}
