//! What the UI receives: plain serializable views built from verified requests and the
//! shell's state. The UI renders these and nothing else; it never sees key material.

use countersign_approver::display::DisplayModel;
use countersign_approver::VerifiedRequest;
use serde::Serialize;

/// The connection to the server, always on screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Connection {
    /// No device enrolled: nothing to connect to.
    NotEnrolled,
    /// The first connection attempt is under way.
    Connecting,
    /// The event stream is open.
    Connected {
        /// Since when (Unix seconds).
        since: i64,
    },
    /// The stream broke off or could not be opened; the next try is at `retry_at`.
    Reconnecting {
        /// Unix seconds of the next attempt.
        retry_at: i64,
        /// Unix seconds since the connection was lost.
        offline_since: i64,
    },
    /// The server refused this device (disabled or unknown): no more attempts.
    Refused {
        /// What the server said.
        message: String,
    },
}

/// The enrolled identity, shown in the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnrolledView {
    /// The approver this device acts for.
    pub approver_id: String,
    /// The server's base URL.
    pub server: String,
    /// Whether the key is the demo software key (labelled everywhere).
    pub soft_key: bool,
}

/// One line of the inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InboxItem {
    /// Request id.
    pub id: String,
    /// Catalog title.
    pub title: String,
    /// Catalog sentence filled from the signed fields.
    pub headline: String,
    /// Amount with currency, when there is one.
    pub amount: Option<String>,
    /// Target object.
    pub object: String,
    /// Requester and kind.
    pub requester: String,
    /// Approval deadline, Unix seconds.
    pub approve_by: i64,
    /// Transaction fingerprint.
    pub fingerprint: String,
}

/// A pushed request that failed verification: shown as a warning, never rendered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefusalView {
    /// When it arrived (Unix seconds).
    pub at: i64,
    /// The request id the push claims (unverified: it only tells refused requests apart).
    pub request: Option<String>,
    /// Why it was refused.
    pub reason: String,
}

/// The server's audit history went back or changed: nothing should be approved until the
/// security team has looked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditAlarmView {
    /// When it was first noticed in this session (Unix seconds).
    pub since: i64,
    /// What was noticed, newest.
    pub message: String,
}

/// Everything the main window needs, sent whenever it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The enrolled device, if any.
    pub enrolled: Option<EnrolledView>,
    /// A problem loading the saved profile (for example no keyring), if any.
    pub profile_problem: Option<crate::error::ShellError>,
    /// The connection.
    pub connection: Connection,
    /// Pending requests, soonest deadline first.
    pub inbox: Vec<InboxItem>,
    /// Recently refused pushed requests (one entry per request), newest last.
    pub refused: Vec<RefusalView>,
    /// The server's audit history went back or changed, if it did.
    pub audit_alarm: Option<AuditAlarmView>,
    /// The shell's clock (Unix seconds) when this was made, for countdowns.
    pub now: i64,
}

/// The exact request, for its own screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestView {
    /// Everything the key's signature commits to, rendered.
    pub model: DisplayModel,
    /// The requester's id on its own.
    pub requester_id: String,
    /// The requester's kind on its own: `person`, `service` or `AI agent`.
    pub requester_kind: &'static str,
    /// Who approved so far (the requester's own confirmation included).
    pub approved_by: Vec<String>,
    /// The transaction digest (base64url), which the approve/deny/report commands carry back.
    pub digest: String,
    /// The digest in hex, for the raw view.
    pub digest_hex: String,
    /// The canonical transaction (RFC 8785 JSON), exactly the bytes that are hashed.
    pub canonical: String,
    /// Approval deadline, Unix seconds.
    pub approve_by: i64,
    /// Whether the key is the demo software key.
    pub soft_key: bool,
}

/// "14 min left", "1 h 05 min left": the time an approver has, rounded up to the minute.
pub fn time_left(seconds: i64) -> String {
    let left = seconds.max(0);
    if left >= 3600 {
        format!("{} h {:02} min left", left / 3600, (left % 3600) / 60)
    } else {
        format!("{} min left", (left + 59) / 60)
    }
}

fn kind_label(kind: countersign_core::transaction::RequesterKind) -> &'static str {
    use countersign_core::transaction::RequesterKind;
    match kind {
        RequesterKind::Human => "person",
        RequesterKind::Service => "service",
        RequesterKind::Agent => "AI agent",
    }
}

impl InboxItem {
    /// The inbox line for `request`.
    pub fn of(request: &VerifiedRequest, approver_id: &str, now: i64) -> Self {
        let model = DisplayModel::render(request, approver_id, now);
        InboxItem {
            id: model.id,
            title: model.title,
            headline: model.headline,
            amount: model.amount,
            object: model.object,
            requester: model.requester,
            approve_by: request.request().transaction.approve_by.unix(),
            fingerprint: model.fingerprint,
        }
    }
}

impl RequestView {
    /// The full view of `request`.
    pub fn of(
        request: &VerifiedRequest,
        approver_id: &str,
        now: i64,
        soft_key: bool,
    ) -> Result<Self, crate::error::ShellError> {
        let pushed = request.request();
        let canonical = pushed
            .transaction
            .canonical_json()
            .map_err(crate::error::ShellError::internal)?;
        let canonical = String::from_utf8(canonical).map_err(crate::error::ShellError::internal)?;
        Ok(RequestView {
            model: DisplayModel::render(request, approver_id, now),
            requester_id: pushed.transaction.requester.id.clone(),
            requester_kind: kind_label(pushed.transaction.requester.kind),
            approved_by: pushed
                .approvals
                .iter()
                .map(|a| a.approver_id.clone())
                .collect(),
            digest: pushed.digest.to_base64url(),
            digest_hex: pushed
                .digest
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            canonical,
            approve_by: pushed.transaction.approve_by.unix(),
            soft_key,
        })
    }
}
