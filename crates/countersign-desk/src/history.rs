//! This device's own decisions, kept locally (JSON Lines next to the profile, owner-only):
//! what was decided, on which transaction fingerprint, when, and what the server answered.

use crate::error::ShellError;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

/// One decision this device made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the server accepted it (Unix seconds).
    pub at: i64,
    /// Request id.
    pub id: String,
    /// Catalog title.
    pub title: String,
    /// The sentence that was shown.
    pub headline: String,
    /// `approve`, `deny` or `report`.
    pub decision: String,
    /// The reason given, if any.
    pub reason: Option<String>,
    /// Fingerprint of the signed transaction digest.
    pub fingerprint: String,
    /// The request's state after the server recorded it (`pending`, `approved`, `denied`).
    pub state: String,
}

/// The history file.
#[derive(Clone, Debug)]
pub struct History {
    path: PathBuf,
}

impl History {
    /// History kept at `path`.
    pub fn at(path: PathBuf) -> Self {
        History { path }
    }

    /// Appends one entry (the file is created owner-only).
    pub fn record(&self, entry: &HistoryEntry) -> Result<(), ShellError> {
        let storage = |e: std::io::Error| ShellError::Storage {
            message: format!("history {}: {e}", self.path.display()),
        };
        let mut line = serde_json::to_vec(entry).map_err(ShellError::internal)?;
        line.push(b'\n');
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&self.path).map_err(storage)?;
        file.write_all(&line).map_err(storage)?;
        file.sync_data().map_err(storage)
    }

    /// Every entry, newest first; a damaged line is skipped rather than hiding the rest.
    pub fn entries(&self) -> Result<Vec<HistoryEntry>, ShellError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(ShellError::Storage {
                    message: format!("history {}: {e}", self.path.display()),
                })
            }
        };
        let mut entries: Vec<HistoryEntry> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        entries.reverse();
        Ok(entries)
    }

    /// Forgets everything (at unenroll).
    pub fn clear(&self) -> Result<(), ShellError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ShellError::Storage {
                message: format!("history {}: {e}", self.path.display()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> HistoryEntry {
        HistoryEntry {
            at: 1,
            id: id.into(),
            title: "Send a payout".into(),
            headline: "Pay 25,000.00 EUR to vendor:4711".into(),
            decision: "approve".into(),
            reason: None,
            fingerprint: "3F9A-1C0B-77DE".into(),
            state: "approved".into(),
        }
    }

    #[test]
    fn newest_first_damaged_lines_skipped_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::at(dir.path().join("history.jsonl"));
        assert!(history.entries().unwrap().is_empty());
        history.record(&entry("a")).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("history.jsonl"))
            .unwrap()
            .write_all(b"{not json\n")
            .unwrap();
        history.record(&entry("b")).unwrap();
        let ids: Vec<String> = history
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["b", "a"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("history.jsonl"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        history.clear().unwrap();
        assert!(history.entries().unwrap().is_empty());
    }
}
