//! The newest signed audit checkpoint this device has seen, and the alarm when the server's
//! log goes back behind it. Kept in a file beside the profile, so that a server restored from
//! an old backup (or with its log's tail cut) is noticed after the approver restarts too, not
//! only while one stream stays connected.
//!
//! The file holds the checkpoint exactly as the server signed it. It is not verified again
//! when read: it is this device's own file (owner-only), and whoever can rewrite it could
//! delete it as well; its signature was checked before it was kept.

use countersign_core::audit::Checkpoint;
use std::path::{Path, PathBuf};

/// Something is wrong with the server's audit history (or with keeping track of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditAlarm {
    /// The server's signed checkpoint is older than one seen before: history was cut.
    #[error("the server's audit log went back from entry {had} to entry {now}: its history may have been cut or restored from an old backup; tell your security team before approving anything")]
    WentBack {
        /// The newest checkpointed entry seen before.
        had: u64,
        /// The entry the server's checkpoint covers now.
        now: u64,
    },
    /// The same checkpointed entry with another hash: rewritten.
    #[error("the server's audit log entry {seq} changed after it was signed: its history was rewritten; tell your security team before approving anything")]
    Rewritten {
        /// The entry's sequence number.
        seq: u64,
    },
    /// A checkpoint whose signature does not verify with the trusted server keys.
    #[error("the server sent an audit checkpoint that does not verify with its key; tell your security team")]
    Unverified,
    /// The stream carried a checkpoint event that is not a checkpoint.
    #[error("the server sent an audit checkpoint that cannot be read; tell your security team")]
    Malformed,
    /// The newest checkpoint could not be written down: a restart would forget it.
    #[error("the newest audit checkpoint could not be saved in {path}: {reason}; after a restart this device could not tell whether the server's audit log went back")]
    NotKept {
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
}

/// A kept checkpoint file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the saved audit checkpoint {path} cannot be read ({detail}); it is how this device notices the server's audit log going back, so it is not ignored: ask your security team before removing it")]
pub struct MemoryUnreadable {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub detail: String,
}

/// The newest checkpoint seen, and where it is kept (nowhere: in memory only).
#[derive(Debug, Default)]
pub struct CheckpointMemory {
    newest: Option<Checkpoint>,
    file: Option<PathBuf>,
}

impl CheckpointMemory {
    /// Remembers only while this process runs.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Remembers in `file`, starting from what it holds (nothing if it does not exist yet).
    pub fn load(file: PathBuf) -> Result<Self, MemoryUnreadable> {
        let newest = match std::fs::read(&file) {
            Ok(bytes) => Some(serde_json::from_slice::<Checkpoint>(&bytes).map_err(|e| {
                MemoryUnreadable {
                    path: file.clone(),
                    detail: e.to_string(),
                }
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(MemoryUnreadable {
                    path: file,
                    detail: e.to_string(),
                })
            }
        };
        Ok(CheckpointMemory {
            newest,
            file: Some(file),
        })
    }

    /// Removes a kept file (a new enrollment or unenrolling starts over); a missing file is
    /// fine.
    pub fn forget(file: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The newest checkpoint seen.
    pub fn newest(&self) -> Option<&Checkpoint> {
        self.newest.as_ref()
    }

    /// Takes a checkpoint whose signature the caller verified: it must not go back behind
    /// the newest seen, nor give another hash for the same entry. A newer one is kept (and
    /// written down before this returns); a refused one changes nothing.
    pub fn accept(&mut self, checkpoint: &Checkpoint) -> Result<(), AuditAlarm> {
        let now = &checkpoint.body;
        if let Some(had) = self.newest.as_ref().map(|c| &c.body) {
            if now.seq < had.seq {
                return Err(AuditAlarm::WentBack {
                    had: had.seq,
                    now: now.seq,
                });
            }
            if now.seq == had.seq {
                return match now.head == had.head {
                    true => Ok(()),
                    false => Err(AuditAlarm::Rewritten { seq: now.seq }),
                };
            }
        }
        self.newest = Some(checkpoint.clone());
        let Some(file) = &self.file else {
            return Ok(());
        };
        let not_kept = |reason: String| AuditAlarm::NotKept {
            path: file.clone(),
            reason,
        };
        let json = serde_json::to_vec(checkpoint).map_err(|e| not_kept(e.to_string()))?;
        crate::private_file::write_private(file, &json).map_err(|e| not_kept(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::audit::Head;
    use countersign_core::jwk::SigningKey;
    use countersign_core::{Digest, Timestamp};

    fn checkpoint(seq: u64, hash: u8) -> Checkpoint {
        let head = Head {
            seq,
            hash: Digest([hash; 32]),
        };
        let at = Timestamp::from_unix(1_800_000_000).unwrap();
        Checkpoint::sign(head, at, &SigningKey::from_seed(&[7; 32])).unwrap()
    }

    #[test]
    fn the_newest_checkpoint_outlives_the_process_and_going_back_is_an_alarm() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("profile.checkpoint.json");
        let mut memory = CheckpointMemory::load(file.clone()).unwrap();
        assert!(memory.newest().is_none());
        memory.accept(&checkpoint(10, 1)).unwrap();
        memory.accept(&checkpoint(12, 2)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");

        // A new process: what the server shows now must not be older than entry 12.
        let mut again = CheckpointMemory::load(file.clone()).unwrap();
        assert_eq!(again.newest(), Some(&checkpoint(12, 2)));
        assert_eq!(
            again.accept(&checkpoint(11, 3)),
            Err(AuditAlarm::WentBack { had: 12, now: 11 })
        );
        assert_eq!(
            again.accept(&checkpoint(12, 9)),
            Err(AuditAlarm::Rewritten { seq: 12 })
        );
        // Refusals keep the newest; the same one again is fine.
        assert_eq!(again.newest(), Some(&checkpoint(12, 2)));
        again.accept(&checkpoint(12, 2)).unwrap();
        let kept: Checkpoint = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(kept, checkpoint(12, 2));

        CheckpointMemory::forget(&file).unwrap();
        CheckpointMemory::forget(&file).unwrap();
        assert!(CheckpointMemory::load(file).unwrap().newest().is_none());
    }

    #[test]
    fn a_damaged_memory_is_not_silently_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("profile.checkpoint.json");
        std::fs::write(&file, b"{\"seq\": 1").unwrap();
        let error = CheckpointMemory::load(file.clone()).unwrap_err();
        assert_eq!(error.path, file);
        assert!(error.to_string().contains("cannot be read"), "{error}");
    }

    #[test]
    fn a_checkpoint_that_cannot_be_written_down_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("missing-folder").join("cp.json");
        let mut memory = CheckpointMemory::load(file.clone()).unwrap();
        let alarm = memory.accept(&checkpoint(3, 1)).unwrap_err();
        assert!(
            matches!(&alarm, AuditAlarm::NotKept { path, .. } if path == &file),
            "{alarm:?}"
        );
    }
}
