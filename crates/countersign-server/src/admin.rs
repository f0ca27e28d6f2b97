//! Admin commands (subcommands of the server binary) that act on the database directly.

use crate::clock;
use crate::keys;
use crate::store::{ApiKeyRecord, Store};
use countersign_core::audit::{self, Checkpoint, Entry, Event, EventKind, Head};
use countersign_core::b64;
use countersign_core::enrollment::{self, EnrollmentCode};
use countersign_core::jwk::KeySet;
use sha2::{Digest as _, Sha256};
use std::io::{BufRead, Write};

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Keys failed.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    /// No clock or randomness.
    #[error("{0}")]
    System(String),
    /// Bad input from the operator.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The audit log does not verify.
    #[error("audit log does not verify: {0}")]
    Audit(#[from] countersign_core::audit::AuditError),
    /// The database or an export disagrees with the signed checkpoints kept beside it.
    #[error(transparent)]
    Checkpoints(#[from] crate::checkpoints::CheckpointError),
}

const PREFIX: &str = "cs_";
const ID_HEX_LEN: usize = 16;

/// Splits `cs_<16 hex id>_<secret>` into id and secret.
pub fn split_api_key(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let id = rest.get(..ID_HEX_LEN)?;
    let secret = rest.get(ID_HEX_LEN..)?.strip_prefix('_')?;
    let ok = id.bytes().all(|b| b.is_ascii_hexdigit()) && secret.len() == 43;
    ok.then_some((id, secret))
}

/// What the server stores of an API key's secret part: its SHA-256 (the key is random, so no
/// salt or slow hash is needed), compared in constant time at each call.
pub fn api_key_secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn system(e: impl std::fmt::Display) -> AdminError {
    AdminError::System(e.to_string())
}

/// Creates an API key for `audience` that may ask step-ups for the requesters `requesters`
/// cover (see [`crate::identity::RequesterPattern`]); returns the full key, shown once.
pub async fn create_api_key(
    store: &dyn Store,
    name: &str,
    audience: &str,
    requesters: &[String],
) -> Result<String, AdminError> {
    let name_ok = !name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control);
    if !name_ok || !valid_id(audience) {
        return Err(AdminError::Invalid(
            "the name must be 1-256 characters; the audience 1-256 printable ASCII characters without spaces".into(),
        ));
    }
    if requesters.is_empty() {
        return Err(AdminError::Invalid(
            "say which requesters the key may speak for: --requesters '*@example.com' (or an exact id, 'prefix-*', '*')".into(),
        ));
    }
    let patterns = requesters
        .iter()
        .map(|t| crate::identity::RequesterPattern::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let now = clock::now().map_err(system)?;
    let id: String = clock::random::<8>()
        .map_err(system)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let secret = b64::encode(clock::random::<32>().map_err(system)?);
    let record = ApiKeyRecord {
        id: id.clone(),
        name: name.into(),
        audience: audience.into(),
        secret_hash: api_key_secret_hash(&secret),
        created_at: now.unix(),
        revoked_at: None,
        requesters: patterns,
    };
    let event = Event {
        at: now,
        kind: EventKind::ApiKeyCreated.into(),
        request_id: None,
        actor: "admin".into(),
        data: serde_json::json!({"id": id, "name": name, "audience": audience, "requesters": requesters}),
    };
    store.insert_api_key(&record, event).await?;
    Ok(format!("{PREFIX}{id}_{secret}"))
}

/// Revokes an API key.
pub async fn revoke_api_key(store: &dyn Store, id: &str) -> Result<(), AdminError> {
    let now = clock::now().map_err(system)?;
    let event = Event {
        at: now,
        kind: EventKind::ApiKeyRevoked.into(),
        request_id: None,
        actor: "admin".into(),
        data: serde_json::json!({"id": id}),
    };
    if store.revoke_api_key(id, now.unix(), event).await? {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!("no active API key {id:?}")))
    }
}

/// Writes the whole audit log as JSON Lines, then a checkpoint line signed by the active key.
pub async fn export_audit(
    store: &dyn Store,
    keys: &keys::Keys,
    earlier: &[Checkpoint],
    out: &mut dyn Write,
) -> Result<Head, AdminError> {
    // A truncated or rewritten log is reported, never signed over.
    crate::checkpoints::check_database(store, earlier).await?;
    let mut head = Head::GENESIS;
    loop {
        let batch = store.audit_entries(head.seq, 1000).await?;
        if batch.is_empty() {
            break;
        }
        // The export is verified as it is written: a broken chain is reported, not exported.
        head = audit::verify_chain(head, &batch)?;
        for entry in &batch {
            serde_json::to_writer(&mut *out, entry).map_err(system)?;
            out.write_all(b"\n")?;
        }
    }
    let checkpoint = Checkpoint::sign(head, clock::now().map_err(system)?, &keys.active)?;
    serde_json::to_writer(&mut *out, &serde_json::json!({"checkpoint": checkpoint}))
        .map_err(system)?;
    out.write_all(b"\n")?;
    Ok(head)
}

/// Verifies an exported log offline against a JWKS, and against every signed checkpoint in
/// `checkpoints` (the server's `audit-checkpoints.jsonl`) when given; returns the verified head.
pub fn verify_export(
    export: impl BufRead,
    jwks_json: &[u8],
    checkpoints: Option<&std::path::Path>,
) -> Result<Head, AdminError> {
    let keys =
        KeySet::from_jwks_json(jwks_json).map_err(|e| AdminError::Invalid(format!("JWKS: {e}")))?;
    let mut entries: Vec<Entry> = Vec::new();
    let mut checkpoint: Option<Checkpoint> = None;
    for (n, line) in export.lines().enumerate() {
        let line = line?;
        if checkpoint.is_some() {
            return Err(AdminError::Invalid(format!(
                "line {}: content after the checkpoint",
                n + 1
            )));
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| AdminError::Invalid(format!("line {}: {e}", n + 1)))?;
        if let Some(cp) = value.get("checkpoint") {
            checkpoint = Some(
                serde_json::from_value(cp.clone())
                    .map_err(|e| AdminError::Invalid(format!("line {}: {e}", n + 1)))?,
            );
        } else {
            entries.push(
                serde_json::from_value(value)
                    .map_err(|e| AdminError::Invalid(format!("line {}: {e}", n + 1)))?,
            );
        }
    }
    let checkpoint = checkpoint.ok_or_else(|| {
        AdminError::Invalid("no checkpoint line: the export is incomplete".into())
    })?;
    let head = audit::verify_log(&entries, &checkpoint, &keys)?;
    if let Some(path) = checkpoints {
        let earlier = crate::checkpoints::CheckpointLog::at(path).read(&keys)?;
        audit::verify_against_earlier(&entries, &earlier, &keys)?;
    }
    Ok(head)
}

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Adds an approver with their groups.
pub async fn add_approver(
    store: &dyn Store,
    id: &str,
    name: &str,
    groups: &[String],
) -> Result<(), AdminError> {
    if valid_id(id) && !crate::identity::is_canonical(id) {
        return Err(AdminError::Invalid(format!(
            "approver ids are compared in lowercase: use {:?}",
            id.to_ascii_lowercase()
        )));
    }
    if !valid_id(id)
        || groups.iter().any(|g| !valid_id(g))
        || name.is_empty()
        || name.len() > 256
        || name.chars().any(char::is_control)
    {
        return Err(AdminError::Invalid("approver id and groups must be printable ASCII without spaces; the name 1-256 characters".into()));
    }
    let now = clock::now().map_err(system)?;
    let record = crate::store::ApproverRecord {
        id: id.into(),
        display_name: name.into(),
        groups: groups.to_vec(),
        created_at: now.unix(),
        disabled_at: None,
    };
    let event = Event {
        at: now,
        kind: EventKind::ApproverAdded.into(),
        request_id: None,
        actor: "admin".into(),
        data: serde_json::json!({"id": id, "groups": groups}),
    };
    if store.add_approver(&record, event).await? {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "approver {id:?} already exists"
        )))
    }
}

/// Disables an approver and every device of theirs.
pub async fn disable_approver(store: &dyn Store, id: &str) -> Result<(), AdminError> {
    let now = clock::now().map_err(system)?;
    let event = Event {
        at: now,
        kind: EventKind::ApproverDisabled.into(),
        request_id: None,
        actor: "admin".into(),
        data: serde_json::json!({"id": id}),
    };
    if store.disable_approver(id, now.unix(), event).await? {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!("no active approver {id:?}")))
    }
}

/// Lifts the freeze a report put on a requester.
pub async fn unfreeze_requester(store: &dyn Store, id: &str) -> Result<(), AdminError> {
    let now = clock::now().map_err(system)?;
    let event = Event {
        at: now,
        kind: EventKind::RequesterUnfrozen.into(),
        request_id: None,
        actor: "admin".into(),
        data: serde_json::json!({"requester": id}),
    };
    if store.unfreeze(id, event).await? {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "requester {id:?} is not frozen"
        )))
    }
}

/// Creates a one-time enrollment code for an approver: `CSE1.<secret>.<server kid>`. The kid
/// lets the approver authenticate the server at first contact.
pub async fn create_enrollment_code(
    store: &dyn Store,
    keys: &keys::Keys,
    approver_id: &str,
    ttl_seconds: u32,
) -> Result<String, AdminError> {
    let approver = store
        .approver(approver_id)
        .await?
        .filter(|a| a.disabled_at.is_none());
    if approver.is_none() {
        return Err(AdminError::Invalid(format!(
            "no active approver {approver_id:?}"
        )));
    }
    let now = clock::now().map_err(system)?;
    let code = EnrollmentCode {
        secret: b64::encode(clock::random::<16>().map_err(system)?),
        server_kid: keys.active.kid().to_owned(),
    };
    let hash = enrollment::secret_hash(&code.secret)
        .ok_or_else(|| system("an enrollment secret that is not base64url"))?;
    let expires = now.unix() + i64::from(ttl_seconds);
    let event = Event {
        at: now,
        kind: EventKind::EnrollmentCodeCreated.into(),
        request_id: None,
        actor: "admin".into(),
        data: serde_json::json!({"approver": approver_id, "expires_at": expires}),
    };
    store
        .insert_enrollment_code(&hash, approver_id, now.unix(), expires, event)
        .await?;
    Ok(code.to_string())
}
