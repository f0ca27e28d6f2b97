//! The tamper-evident audit chain.
//!
//! Each entry names the hash of the one before it; its own hash is
//! `SHA-256("countersign/audit/v1\n" || JCS(entry without "hash"))`. A checkpoint signs the head
//! (`seq` and hash) with the server's Ed25519 key, so an exported log can be verified offline:
//! a modified, deleted, reordered or inserted entry is reported at its position, and a log cut
//! short or rewritten after a checkpoint no longer matches it.

use crate::canonical::{self, CanonicalError, Digest};
use crate::jwk::{KeySet, SigningKey};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// The only entry and checkpoint version this crate speaks.
pub const VERSION: u32 = 1;

/// The content of an entry, before it is sealed into the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// When it happened.
    pub at: Timestamp,
    /// What happened, e.g. `request.created`, `approval.accepted`, `decision.redeemed`.
    pub kind: String,
    /// The request it concerns, if any.
    pub request_id: Option<String>,
    /// Who caused it (approver id, API key id, `server`).
    pub actor: String,
    /// Details; JSON without floats or integers beyond 2^53.
    pub data: serde_json::Value,
}

/// Every kind of event the server writes into the chain: one list, so that a reader of the
/// log (or of this code) finds them all in one place. The chain stores the spelling
/// ([`Event::kind`] is text), so a verifier also reads kinds it does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[non_exhaustive]
pub enum EventKind {
    /// An application's request needed a step-up and is pending.
    #[strum(serialize = "request.created")]
    RequestCreated,
    /// Policy let the action through without a step-up.
    #[strum(serialize = "request.not_required")]
    RequestNotRequired,
    /// Policy forbade the action.
    #[strum(serialize = "request.forbidden")]
    RequestForbidden,
    /// The application withdrew the request, or a report cancelled it.
    #[strum(serialize = "request.cancelled")]
    RequestCancelled,
    /// Its approval window closed before a decision.
    #[strum(serialize = "request.expired")]
    RequestExpired,
    /// An approver's approval was counted.
    #[strum(serialize = "approval.approve")]
    ApprovalApprove,
    /// An approver's denial (or report) was recorded.
    #[strum(serialize = "approval.deny")]
    ApprovalDeny,
    /// The quorum was met: the request is approved.
    #[strum(serialize = "decision.approved")]
    DecisionApproved,
    /// A denial decided the request.
    #[strum(serialize = "decision.denied")]
    DecisionDenied,
    /// The application redeemed the decision (exactly once).
    #[strum(serialize = "decision.redeemed")]
    DecisionRedeemed,
    /// Redemption was refused (a frozen requester).
    #[strum(serialize = "decision.refused")]
    DecisionRefused,
    /// The application reported how the execution went.
    #[strum(serialize = "execution.reported")]
    ExecutionReported,
    /// A report froze the requester.
    #[strum(serialize = "requester.frozen")]
    RequesterFrozen,
    /// An administrator lifted a freeze.
    #[strum(serialize = "requester.unfrozen")]
    RequesterUnfrozen,
    /// An administrator added an approver.
    #[strum(serialize = "approver.added")]
    ApproverAdded,
    /// An administrator disabled an approver.
    #[strum(serialize = "approver.disabled")]
    ApproverDisabled,
    /// An approver enrolled a device and a security key.
    #[strum(serialize = "approver.enrolled")]
    ApproverEnrolled,
    /// An administrator made an enrollment code.
    #[strum(serialize = "enrollment_code.created")]
    EnrollmentCodeCreated,
    /// A credential's signature counter went back: flagged as possibly cloned.
    #[strum(serialize = "credential.cloned")]
    CredentialCloned,
    /// An administrator made an API key.
    #[strum(serialize = "api_key.created")]
    ApiKeyCreated,
    /// An administrator revoked an API key.
    #[strum(serialize = "api_key.revoked")]
    ApiKeyRevoked,
    /// The server's signing key was rotated.
    #[strum(serialize = "signing_key.rotated")]
    SigningKeyRotated,
    /// The security team's webhook took a report.
    #[strum(serialize = "webhook.delivered")]
    WebhookDelivered,
    /// The security team's webhook could not be reached.
    #[strum(serialize = "webhook.failed")]
    WebhookFailed,
}

impl EventKind {
    /// The spelling stored in the chain.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The kind of an approver's recorded answer.
    pub fn approval(decision: crate::Decision) -> Self {
        match decision {
            crate::Decision::Approve => EventKind::ApprovalApprove,
            crate::Decision::Deny => EventKind::ApprovalDeny,
        }
    }
}

impl From<EventKind> for String {
    fn from(kind: EventKind) -> Self {
        kind.as_str().to_owned()
    }
}

/// One sealed entry of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Always [`VERSION`].
    pub version: u32,
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Hash of the previous entry; all zeros for the first.
    pub prev: Digest,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// This entry's hash.
    pub hash: Digest,
}

#[derive(Serialize)]
struct Unsealed<'a> {
    version: u32,
    seq: u64,
    prev: &'a Digest,
    #[serde(flatten)]
    event: &'a Event,
}

/// Why the chain or a checkpoint does not verify, naming the first bad position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum AuditError {
    /// The event data holds floats or unsafe integers.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// An entry of another version.
    #[error("entry at index {index} has unsupported version {version}")]
    UnsupportedVersion { index: usize, version: u32 },
    /// Entry content does not match its hash: modified.
    #[error("entry seq {seq} (index {index}) was modified: its hash does not match its content")]
    Modified { index: usize, seq: u64 },
    /// Sequence numbers skip: entries were deleted.
    #[error("entries {from}..={to} are missing before index {index}")]
    Missing { index: usize, from: u64, to: u64 },
    /// A sequence number repeats: an entry was inserted.
    #[error("entry seq {seq} at index {index} repeats an earlier sequence number: inserted")]
    Duplicate { index: usize, seq: u64 },
    /// A sequence number goes backwards: entries were reordered.
    #[error("entry seq {seq} at index {index} is out of order (expected {expected})")]
    OutOfOrder {
        index: usize,
        seq: u64,
        expected: u64,
    },
    /// `prev` is not the previous entry's hash: an entry was replaced or inserted.
    #[error("entry seq {seq} (index {index}) does not link to the entry before it")]
    BrokenLink { index: usize, seq: u64 },
    /// A sequence number at the end of the counter's range.
    #[error("sequence number overflow after seq {0}")]
    SequenceOverflow(u64),
    /// The checkpoint's signature does not verify, or its key is unknown.
    #[error("checkpoint signature invalid or by an unknown key")]
    CheckpointSignature,
    /// The log ends before the checkpointed head: truncated.
    #[error("log ends at seq {last} but the checkpoint covers seq {checkpoint}")]
    Truncated { last: u64, checkpoint: u64 },
    /// The entry at the checkpointed position has another hash: rewritten.
    #[error("entry seq {seq} does not match the signed checkpoint")]
    CheckpointMismatch { seq: u64 },
    /// Entries after the checkpointed head: not covered by any signature (appended or forged).
    #[error("entries from seq {first} on are not covered by the signed checkpoint")]
    PastCheckpoint { first: u64 },
}

impl AuditError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            AuditError::Canonical(e) => e.code(),
            other => other.into(),
        }
    }
}

/// The head of a chain: what the next entry links to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Sequence number of the last entry (0 for an empty chain).
    pub seq: u64,
    /// Hash of the last entry (zeros for an empty chain).
    pub hash: Digest,
}

impl Head {
    /// The head of an empty chain.
    pub const GENESIS: Head = Head {
        seq: 0,
        hash: Digest::ZERO,
    };

    /// Seals `event` as the entry after this head.
    pub fn append(&self, event: Event) -> Result<Entry, AuditError> {
        let seq = self
            .seq
            .checked_add(1)
            .ok_or(AuditError::SequenceOverflow(self.seq))?;
        let hash = entry_hash(seq, &self.hash, &event)?;
        Ok(Entry {
            version: VERSION,
            seq,
            prev: self.hash,
            event,
            hash,
        })
    }
}

impl Entry {
    /// The head this entry makes.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }
}

fn entry_hash(seq: u64, prev: &Digest, event: &Event) -> Result<Digest, AuditError> {
    let unsealed = Unsealed {
        version: VERSION,
        seq,
        prev,
        event,
    };
    Ok(canonical::digest_of(canonical::AUDIT_DOMAIN, &unsealed)?)
}

/// Verifies a run of entries that continues from `from` (use [`Head::GENESIS`] for a whole
/// log); returns the new head or the first defect.
pub fn verify_chain(from: Head, entries: &[Entry]) -> Result<Head, AuditError> {
    let mut head = from;
    for (index, entry) in entries.iter().enumerate() {
        if entry.version != VERSION {
            return Err(AuditError::UnsupportedVersion {
                index,
                version: entry.version,
            });
        }
        let expected = head
            .seq
            .checked_add(1)
            .ok_or(AuditError::SequenceOverflow(head.seq))?;
        if entry.seq > expected {
            // The expected entry further on means the log was reordered, not cut.
            let later = entries.get(index + 1..).unwrap_or_default();
            if later.iter().any(|e| e.seq == expected) {
                return Err(AuditError::OutOfOrder {
                    index,
                    seq: entry.seq,
                    expected,
                });
            }
            return Err(AuditError::Missing {
                index,
                from: expected,
                to: entry.seq - 1,
            });
        }
        if entry.seq == head.seq && index > 0 {
            return Err(AuditError::Duplicate {
                index,
                seq: entry.seq,
            });
        }
        if entry.seq < expected {
            return Err(AuditError::OutOfOrder {
                index,
                seq: entry.seq,
                expected,
            });
        }
        if entry_hash(entry.seq, &entry.prev, &entry.event)? != entry.hash {
            return Err(AuditError::Modified {
                index,
                seq: entry.seq,
            });
        }
        if entry.prev != head.hash {
            return Err(AuditError::BrokenLink {
                index,
                seq: entry.seq,
            });
        }
        head = entry.head();
    }
    Ok(head)
}

/// The signed body of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointBody {
    /// Always [`VERSION`].
    pub version: u32,
    /// Last covered sequence number.
    pub seq: u64,
    /// Hash of that entry.
    pub head: Digest,
    /// When the checkpoint was made.
    pub at: Timestamp,
    /// Signing key thumbprint.
    pub kid: String,
}

/// A checkpoint with its Ed25519 signature over
/// `"countersign/checkpoint/v1\n" || JCS(body)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// What is signed.
    #[serde(flatten)]
    pub body: CheckpointBody,
    /// Signature, base64url.
    pub signature: String,
}

impl Checkpoint {
    /// Signs the given head.
    pub fn sign(head: Head, at: Timestamp, key: &SigningKey) -> Result<Self, AuditError> {
        let body = CheckpointBody {
            version: VERSION,
            seq: head.seq,
            head: head.hash,
            at,
            kid: key.kid().into(),
        };
        let signature = key.sign(&signing_bytes(&body)?);
        Ok(Checkpoint {
            body,
            signature: crate::b64::encode(signature),
        })
    }

    /// Checks the signature against the trusted keys.
    pub fn verify_signature(&self, keys: &KeySet) -> Result<(), AuditError> {
        let key = keys
            .get(&self.body.kid)
            .ok_or(AuditError::CheckpointSignature)?;
        let signature =
            crate::b64::decode(&self.signature).map_err(|_| AuditError::CheckpointSignature)?;
        key.verify(&signing_bytes(&self.body)?, &signature)
            .map_err(|_| AuditError::CheckpointSignature)
    }
}

fn signing_bytes(body: &CheckpointBody) -> Result<Vec<u8>, AuditError> {
    let mut bytes = canonical::CHECKPOINT_DOMAIN.to_vec();
    bytes.extend_from_slice(&canonical::to_canonical_json(body)?);
    Ok(bytes)
}

/// Verifies a whole exported log against a signed checkpoint: the chain from genesis, the
/// checkpoint's signature, and that the log ends exactly at the checkpointed entry, unchanged
/// (entries past it are covered by no signature: refused).
pub fn verify_log(
    entries: &[Entry],
    checkpoint: &Checkpoint,
    keys: &KeySet,
) -> Result<Head, AuditError> {
    checkpoint.verify_signature(keys)?;
    let head = verify_chain(Head::GENESIS, entries)?;
    if head.seq > checkpoint.body.seq {
        return Err(AuditError::PastCheckpoint {
            first: checkpoint.body.seq + 1,
        });
    }
    consistent_with(entries, head, checkpoint)?;
    Ok(head)
}

/// Checks a verified log (whose last entry gives `head`) against one more signed checkpoint,
/// made earlier and kept elsewhere: the log must still reach it, with the same entry there.
/// Truncation and rewriting are reported by sequence number.
pub fn verify_against_earlier(
    entries: &[Entry],
    earlier: &[Checkpoint],
    keys: &KeySet,
) -> Result<(), AuditError> {
    let head = entries.last().map_or(Head::GENESIS, Entry::head);
    for checkpoint in earlier {
        checkpoint.verify_signature(keys)?;
        consistent_with(entries, head, checkpoint)?;
    }
    Ok(())
}

fn consistent_with(
    entries: &[Entry],
    head: Head,
    checkpoint: &Checkpoint,
) -> Result<(), AuditError> {
    let covered = checkpoint.body.seq;
    if covered > head.seq {
        return Err(AuditError::Truncated {
            last: head.seq,
            checkpoint: covered,
        });
    }
    let at_checkpoint = match covered {
        0 => Digest::ZERO,
        n => entries
            .get(usize::try_from(n - 1).map_err(|_| AuditError::Truncated {
                last: head.seq,
                checkpoint: covered,
            })?)
            .map(|e| e.hash)
            .ok_or(AuditError::Truncated {
                last: head.seq,
                checkpoint: covered,
            })?,
    };
    if at_checkpoint != checkpoint.body.head {
        return Err(AuditError::CheckpointMismatch { seq: covered });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spellings are what earlier servers wrote into chains that still verify: each reads
    /// back as its kind, and the two an approval or decision picks follow the decision.
    #[test]
    fn event_kinds_keep_their_spellings() {
        use EventKind as K;
        for (kind, text) in [
            (K::RequestCreated, "request.created"),
            (K::ApprovalApprove, "approval.approve"),
            (K::ApprovalDeny, "approval.deny"),
            (K::DecisionApproved, "decision.approved"),
            (K::DecisionRedeemed, "decision.redeemed"),
            (K::RequesterFrozen, "requester.frozen"),
            (K::EnrollmentCodeCreated, "enrollment_code.created"),
            (K::WebhookFailed, "webhook.failed"),
        ] {
            assert_eq!((kind.as_str(), text.parse::<K>().ok()), (text, Some(kind)));
            assert_eq!(String::from(kind), text);
        }
        assert_eq!(K::approval(crate::Decision::Deny), K::ApprovalDeny);
        assert!("request.Created".parse::<K>().is_err());
    }
    use serde_json::json;

    fn event(n: u64) -> Event {
        Event {
            at: Timestamp::from_unix(1_800_000_000 + n as i64).unwrap(),
            kind: "request.created".into(),
            request_id: Some(format!("req_{n}")),
            actor: "api-key:payouts".into(),
            data: json!({"n": n}),
        }
    }

    fn chain(len: u64) -> Vec<Entry> {
        let mut head = Head::GENESIS;
        (1..=len)
            .map(|n| {
                let entry = head.append(event(n)).unwrap();
                head = entry.head();
                entry
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        let entries = chain(5);
        assert_eq!(
            verify_chain(Head::GENESIS, &entries).unwrap(),
            entries[4].head()
        );
        assert_eq!(
            verify_chain(entries[1].head(), &entries[2..]).unwrap(),
            entries[4].head()
        );
    }

    #[test]
    fn pinpoints_each_kind_of_tampering() {
        let entries = chain(5);

        let mut modified = entries.clone();
        modified[2].event.actor = "someone-else".into();
        assert_eq!(
            verify_chain(Head::GENESIS, &modified),
            Err(AuditError::Modified { index: 2, seq: 3 })
        );

        let mut deleted = entries.clone();
        deleted.remove(2);
        assert_eq!(
            verify_chain(Head::GENESIS, &deleted),
            Err(AuditError::Missing {
                index: 2,
                from: 3,
                to: 3
            })
        );

        let out_of_order = |index, seq, expected| {
            Err(AuditError::OutOfOrder {
                index,
                seq,
                expected,
            })
        };
        let mut reordered = entries.clone();
        reordered.swap(1, 3);
        assert_eq!(
            verify_chain(Head::GENESIS, &reordered),
            out_of_order(1, 4, 2)
        );
        let mut adjacent = entries.clone();
        adjacent.swap(2, 3);
        assert_eq!(
            verify_chain(Head::GENESIS, &adjacent),
            out_of_order(2, 4, 3)
        );
        let mut backwards = entries.clone();
        backwards.swap(0, 1);
        assert_eq!(
            verify_chain(Head::GENESIS, &backwards),
            out_of_order(0, 2, 1)
        );
        let mut late = entries.clone();
        let moved = late.remove(1);
        late.push(moved);
        assert_eq!(verify_chain(Head::GENESIS, &late), out_of_order(1, 3, 2));
        let mut cut = entries.clone();
        cut.truncate(3);
        cut.push(entries[4].clone());
        assert_eq!(
            verify_chain(Head::GENESIS, &cut),
            Err(AuditError::Missing {
                index: 3,
                from: 4,
                to: 4
            })
        );

        let mut inserted = entries.clone();
        let forged = entries[1].head().append(event(99)).unwrap();
        inserted.insert(2, forged.clone());
        assert_eq!(
            verify_chain(Head::GENESIS, &inserted),
            Err(AuditError::Duplicate { index: 3, seq: 3 })
        );

        // A replaced entry with a correct own hash breaks the link of the next one.
        let mut replaced = entries.clone();
        replaced[2] = forged;
        assert_eq!(
            verify_chain(Head::GENESIS, &replaced),
            Err(AuditError::BrokenLink { index: 3, seq: 4 })
        );

        let mut out_of_order = entries.clone();
        out_of_order[3] = entries[1].clone();
        assert_eq!(
            verify_chain(Head::GENESIS, &out_of_order),
            Err(AuditError::OutOfOrder {
                index: 3,
                seq: 2,
                expected: 4
            })
        );
    }

    #[test]
    fn checkpoints_catch_truncation_and_rewrites() {
        let key = SigningKey::from_seed(&[4; 32]);
        let keys = KeySet::new([key.verifying_key().clone()]);
        let entries = chain(5);
        let at = Timestamp::from_unix(1_800_000_100).unwrap();
        let cp = Checkpoint::sign(entries[3].head(), at, &key).unwrap();
        assert_eq!(
            verify_log(&entries[..4], &cp, &keys).unwrap(),
            entries[3].head()
        );
        // An entry past the checkpoint is covered by no signature.
        assert_eq!(
            verify_log(&entries, &cp, &keys),
            Err(AuditError::PastCheckpoint { first: 5 })
        );
        // Against an earlier checkpoint kept elsewhere: the full log still reaches it...
        assert_eq!(
            verify_against_earlier(&entries, std::slice::from_ref(&cp), &keys),
            Ok(())
        );
        // ...a truncated one does not, and says where.
        assert_eq!(
            verify_against_earlier(&entries[..2], std::slice::from_ref(&cp), &keys),
            Err(AuditError::Truncated {
                last: 2,
                checkpoint: 4
            })
        );

        assert_eq!(
            verify_log(&entries[..3], &cp, &keys),
            Err(AuditError::Truncated {
                last: 3,
                checkpoint: 4
            })
        );

        // Rewriting history and recomputing every hash keeps the chain consistent, but not the checkpoint.
        let mut head = Head::GENESIS;
        let rewritten: Vec<Entry> = (1..=5)
            .map(|n| {
                let mut e = event(n);
                if n == 2 {
                    e.data = json!({"n": 2, "amount": "1"});
                }
                let entry = head.append(e).unwrap();
                head = entry.head();
                entry
            })
            .collect();
        assert_eq!(
            verify_log(&rewritten[..4], &cp, &keys),
            Err(AuditError::CheckpointMismatch { seq: 4 })
        );

        let mut forged = cp.clone();
        forged.body.seq = 5;
        assert_eq!(
            verify_log(&entries, &forged, &keys),
            Err(AuditError::CheckpointSignature)
        );
        let stranger = KeySet::new([SigningKey::from_seed(&[5; 32]).verifying_key().clone()]);
        assert_eq!(
            verify_log(&entries, &cp, &stranger),
            Err(AuditError::CheckpointSignature)
        );
    }

    #[test]
    fn sequence_overflow_is_an_error_not_a_panic() {
        let end = Head {
            seq: u64::MAX,
            hash: Digest::ZERO,
        };
        assert_eq!(
            end.append(event(1)),
            Err(AuditError::SequenceOverflow(u64::MAX))
        );
        let entry = chain(1).remove(0);
        assert_eq!(
            verify_chain(end, &[entry]),
            Err(AuditError::SequenceOverflow(u64::MAX))
        );
    }

    #[test]
    fn refuses_floats_in_event_data() {
        let mut e = event(1);
        e.data = json!({"amount": 1.5});
        assert!(matches!(
            Head::GENESIS.append(e),
            Err(AuditError::Canonical(CanonicalError::Float { .. }))
        ));
    }

    #[test]
    fn entries_round_trip_through_json_lines() {
        let entries = chain(3);
        let lines: Vec<String> = entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        let back: Vec<Entry> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, entries);
        assert!(verify_chain(Head::GENESIS, &back).is_ok());
    }
}
