//! Signed checkpoints of the audit chain's head, kept outside the database.
//!
//! Anyone who can write the database can delete its newest audit entries and append from
//! there, and the chain still links. The server therefore signs a checkpoint over the head
//! every `[audit] checkpoint_seconds` (when it moved) and when it stops, and appends it to
//! `<data_dir>/audit-checkpoints.jsonl` (0600, append-only, synced). At start the database
//! must still reach the newest checkpoint with the same entry there, or the server refuses to
//! run; `audit export` refuses the same way, and `audit verify --checkpoints` checks an export
//! against every checkpoint in the file.

use crate::store::Store;
use countersign_core::audit::{AuditError, Checkpoint, Head};
use countersign_core::jwk::{KeySet, SigningKey};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the checkpoint file or the database's agreement with it failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of the file is not a checkpoint.
    #[error("{path} line {line}: not a checkpoint")]
    Malformed { path: PathBuf, line: usize },
    /// A checkpoint's signature does not verify with the server's keys.
    #[error("{path} line {line}: the checkpoint's signature does not verify")]
    Signature { path: PathBuf, line: usize },
    /// The database ends before the newest checkpoint: entries were deleted.
    #[error("the audit log was truncated: the database ends at seq {last}, but a signed checkpoint covers seq {checkpoint}; restore the database from a backup and investigate")]
    Truncated { last: u64, checkpoint: u64 },
    /// The database's entry at a checkpointed position is not the one signed.
    #[error("the audit log was rewritten: entry seq {seq} in the database is not the one a signed checkpoint covers; restore the database from a backup and investigate")]
    Rewritten { seq: u64 },
    /// Signing or reading the chain failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// No usable clock.
    #[error(transparent)]
    Clock(#[from] crate::clock::ClockError),
}

/// The append-only checkpoint file.
pub struct CheckpointLog {
    path: PathBuf,
}

impl CheckpointLog {
    /// The file at `path` (created on the first append).
    pub fn at(path: &Path) -> Self {
        CheckpointLog {
            path: path.to_owned(),
        }
    }

    fn io(&self) -> impl Fn(std::io::Error) -> CheckpointError + '_ {
        |source| CheckpointError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The file's text; empty when there is no file yet.
    fn text(&self) -> Result<String, CheckpointError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(self.io()(e)),
        }
    }

    /// Line `line` of the file as a checkpoint whose signature verifies with `keys`.
    fn parse(&self, line: usize, text: &str, keys: &KeySet) -> Result<Checkpoint, CheckpointError> {
        let checkpoint: Checkpoint =
            serde_json::from_str(text).map_err(|_| CheckpointError::Malformed {
                path: self.path.clone(),
                line,
            })?;
        checkpoint
            .verify_signature(keys)
            .map_err(|_| CheckpointError::Signature {
                path: self.path.clone(),
                line,
            })?;
        Ok(checkpoint)
    }

    /// Every checkpoint in the file, oldest first, each signature checked with `keys`.
    pub fn read(&self, keys: &KeySet) -> Result<Vec<Checkpoint>, CheckpointError> {
        numbered(&self.text()?)
            .map(|(n, line)| self.parse(n, line, keys))
            .collect()
    }

    /// The newest checkpoint in the file, its signature checked with `keys` (the only one the
    /// start-up check needs: entries are hash-linked, so cutting or rewriting anything up to
    /// it changes the entry it covers).
    pub fn newest(&self, keys: &KeySet) -> Result<Option<Checkpoint>, CheckpointError> {
        numbered(&self.text()?)
            .last()
            .map(|(n, line)| self.parse(n, line, keys))
            .transpose()
    }

    /// Appends one checkpoint and syncs it to disk.
    pub fn append(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let mut line = serde_json::to_vec(checkpoint).map_err(|_| CheckpointError::Malformed {
            path: self.path.clone(),
            line: 0,
        })?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(self.io())?;
        file.write_all(&line).map_err(self.io())?;
        file.sync_all().map_err(self.io())
    }

    /// Signs the store's head now and appends it, unless the newest checkpoint already covers
    /// it; returns the new checkpoint, if one was made.
    pub async fn checkpoint(
        &self,
        store: &dyn Store,
        key: &SigningKey,
        last: &mut Option<Head>,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        let head = store.audit_head().await?;
        if *last == Some(head) {
            return Ok(None);
        }
        let checkpoint = Checkpoint::sign(head, crate::clock::now()?, key)?;
        self.append(&checkpoint)?;
        *last = Some(head);
        Ok(Some(checkpoint))
    }
}

/// The non-empty lines of `text` with their line numbers (from 1).
fn numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| (n + 1, l))
}

/// Refuses a database that no longer reaches every checkpoint in `checkpoints` with the same
/// entry there (checked newest first: a truncation shows at the newest). Given the newest
/// alone this is enough: entries are hash-linked, so cutting or rewriting anything up to it
/// changes the entry it covers; a rewrite that leaves stored hashes stale is caught by the
/// chain's own verification at export.
pub async fn check_database(
    store: &dyn Store,
    checkpoints: &[Checkpoint],
) -> Result<(), CheckpointError> {
    let head = store.audit_head().await?;
    for checkpoint in checkpoints.iter().rev() {
        let seq = checkpoint.body.seq;
        if seq > head.seq {
            return Err(CheckpointError::Truncated {
                last: head.seq,
                checkpoint: seq,
            });
        }
        if seq == 0 {
            continue;
        }
        let entry = store.audit_entries(seq - 1, 1).await?;
        if entry.first().map(|e| e.hash) != Some(checkpoint.body.head) {
            return Err(CheckpointError::Rewritten { seq });
        }
    }
    Ok(())
}
