//! The transaction: exactly one high-risk action, as the approver sees it and the key signs it.
//!
//! The server builds a transaction from the protected application's request and the policy
//! outcome; its digest `SHA-256("countersign/tx/v1\n" || JCS(tx))` is what every approval and
//! the decision token name. [`Transaction::from_json`] is the one way in from untrusted bytes.

use crate::amount::{Amount, AmountError};
use crate::b64;
use crate::canonical::{self, CanonicalError, Digest};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// The transaction versions this crate speaks: 1 names at most one group of approvers, 2
/// several ([`Requirements::version`] says which one a transaction must carry).
pub const VERSIONS: std::ops::RangeInclusive<u32> = 1..=2;
/// Largest accepted transaction document, in bytes.
pub const MAX_JSON_BYTES: usize = 16 * 1024;
/// Most before/after changes in one transaction.
pub const MAX_CHANGES: usize = 32;
pub use crate::requirements::{GroupQuorum, Requirements, MAX_APPROVERS, MAX_GROUPS};
/// Shortest and longest nonce, in bytes.
pub const NONCE_BYTES: std::ops::RangeInclusive<usize> = 16..=64;

/// Who asked for the action.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequesterKind {
    /// A person.
    Human,
    /// A service account.
    Service,
    /// An AI agent acting for an owner.
    Agent,
}

/// The identity behind the request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requester {
    /// Stable identifier in the protected application (e-mail, service name, agent id).
    pub id: String,
    /// Human, service or agent.
    pub kind: RequesterKind,
}

/// One field that the action changes, shown to the approver as before → after.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Name of the field, for example `iban`.
    pub field: String,
    /// Value before the action; null when the field is new.
    pub before: Option<String>,
    /// Value after the action; null when the field is removed.
    pub after: Option<String>,
}

/// One high-risk action awaiting approval.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// Format version: the one its requirements need ([`Requirements::version`]).
    pub version: u32,
    /// Request identifier assigned by the server.
    pub id: String,
    /// Action id from the catalog, for example `payout.bank_details.change`.
    pub action: String,
    /// The resource acted on, for example `vendor:4711`.
    pub object: String,
    /// Money moved or put at risk, when the action has an amount.
    pub amount: Option<Amount>,
    /// What the action reaches when it has no amount, for example `role:admin`.
    pub scope: Option<String>,
    /// Field changes, when the action edits a record.
    pub change: Option<Vec<Change>>,
    /// Who asked.
    pub requester: Requester,
    /// SHA-256 of the originating session identifier, binding the approval to that session.
    pub session: Digest,
    /// The application that will execute the action (decision token `aud`).
    pub audience: String,
    /// When the server accepted the request.
    pub created_at: Timestamp,
    /// Approvals after this instant are refused.
    pub approve_by: Timestamp,
    /// The decision cannot be redeemed after this instant.
    pub execute_by: Timestamp,
    /// Random bytes (unpadded base64url) that make every transaction unique.
    pub nonce: String,
    /// What the policy demanded.
    pub requirements: Requirements,
}

/// A defect in a transaction, one variant per cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum TransactionError {
    /// The document exceeds [`MAX_JSON_BYTES`].
    #[error("transaction is {0} bytes; the limit is {MAX_JSON_BYTES}")]
    TooLarge(usize),
    /// Not JSON at all.
    #[error("transaction is not valid JSON: {0}")]
    NotJson(String),
    /// A float or an unsafe integer.
    #[error(transparent)]
    Number(#[from] CanonicalError),
    /// A member this version does not define.
    #[error("unknown field in transaction: {0}")]
    UnknownField(String),
    /// Wrong type, missing member, duplicate member or bad enum value.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// A version outside [`VERSIONS`].
    #[error("unsupported transaction version {0}")]
    UnsupportedVersion(u32),
    /// A known version that is not the one the requirements are written in.
    #[error("transaction version {version} with requirements written as version {written}")]
    VersionMismatch { version: u32, written: u32 },
    /// A required text field is empty.
    #[error("field {0} is empty")]
    Empty(&'static str),
    /// A text field is longer than allowed.
    #[error("field {field} is longer than {max} bytes")]
    TooLong { field: &'static str, max: usize },
    /// A text field holds characters it may not (control characters, or outside an id's charset).
    #[error("field {0} contains characters it may not")]
    InvalidCharacters(&'static str),
    /// A bad amount.
    #[error(transparent)]
    Amount(#[from] AmountError),
    /// An amount and a scope at once; an action has one or the other (or neither).
    #[error("an action names an amount or a scope, not both")]
    AmountAndScope,
    /// Empty or oversized change list, or a change that changes nothing.
    #[error("invalid change list: {0}")]
    Change(&'static str),
    /// created_at < approve_by <= execute_by does not hold.
    #[error("deadlines out of order: need created_at < approve_by <= execute_by")]
    DeadlinesOutOfOrder,
    /// The nonce is not 16–64 bytes of base64url.
    #[error("nonce must be 16 to 64 bytes of unpadded base64url")]
    BadNonce,
    /// Requirements that no approval could satisfy or that exceed limits.
    #[error("invalid requirements: {0}")]
    Requirements(&'static str),
}

impl TransactionError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            TransactionError::Number(e) => e.code(),
            TransactionError::Amount(e) => e.code(),
            other => other.into(),
        }
    }
}

impl Transaction {
    /// Parses and validates a transaction from untrusted JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TransactionError> {
        if bytes.len() > MAX_JSON_BYTES {
            return Err(TransactionError::TooLarge(bytes.len()));
        }
        // First pass: numbers, with a precise path for each float or unsafe integer.
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| TransactionError::NotJson(e.to_string()))?;
        canonical::check_numbers(&value, "")?;
        // Second pass: the typed structure. Parsing the bytes again (not the Value) is what
        // catches duplicate members, which a Value would silently collapse.
        let tx: Transaction = serde_json::from_slice(bytes).map_err(|e| {
            let text = e.to_string();
            if text.starts_with("unknown field") {
                TransactionError::UnknownField(text)
            } else {
                TransactionError::Malformed(text)
            }
        })?;
        tx.validate()?;
        Ok(tx)
    }

    /// Checks every rule a valid transaction obeys.
    pub fn validate(&self) -> Result<(), TransactionError> {
        if !VERSIONS.contains(&self.version) {
            return Err(TransactionError::UnsupportedVersion(self.version));
        }
        let written = self.requirements.version();
        if self.version != written {
            return Err(TransactionError::VersionMismatch {
                version: self.version,
                written,
            });
        }
        check_id("id", &self.id, 128)?;
        self.subject().validate()?;
        if !(self.created_at < self.approve_by && self.approve_by <= self.execute_by) {
            return Err(TransactionError::DeadlinesOutOfOrder);
        }
        let nonce = b64::decode(&self.nonce).map_err(|_| TransactionError::BadNonce)?;
        if !NONCE_BYTES.contains(&nonce.len()) {
            return Err(TransactionError::BadNonce);
        }
        check_requirements(&self.requirements)
    }

    /// What this transaction is about, as its application asked.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            action: &self.action,
            object: &self.object,
            amount: self.amount.as_ref(),
            scope: self.scope.as_deref(),
            change: self.change.as_deref(),
            requester_id: &self.requester.id,
            audience: &self.audience,
        }
    }

    /// RFC 8785 canonical JSON of this transaction.
    pub fn canonical_json(&self) -> Result<Vec<u8>, TransactionError> {
        Ok(canonical::to_canonical_json(self)?)
    }

    /// `SHA-256("countersign/tx/v1\n" || JCS(self))`, after validation.
    pub fn digest(&self) -> Result<Digest, TransactionError> {
        self.validate()?;
        Ok(canonical::domain_digest(
            canonical::TX_DOMAIN,
            &self.canonical_json()?,
        ))
    }
}

/// What an application asks a step-up about, without what the server adds (id, deadlines,
/// nonce, requirements). The server checks it before policy runs, so that policy only ever
/// sees input a transaction may hold; every transaction's validation checks it too.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Action id from the catalog.
    pub action: &'a str,
    /// The resource acted on.
    pub object: &'a str,
    /// Money moved or put at risk.
    pub amount: Option<&'a Amount>,
    /// What the action reaches when it has no amount.
    pub scope: Option<&'a str>,
    /// Field changes.
    pub change: Option<&'a [Change]>,
    /// Who asks.
    pub requester_id: &'a str,
    /// The application that will execute the action.
    pub audience: &'a str,
}

impl Subject<'_> {
    /// Checks every member as a transaction's validation does.
    pub fn validate(&self) -> Result<(), TransactionError> {
        check_id("action", self.action, 128)?;
        check_text("object", self.object, 512)?;
        check_id("requester.id", self.requester_id, 256)?;
        check_id("audience", self.audience, 256)?;
        match (self.amount, self.scope) {
            (Some(_), Some(_)) => return Err(TransactionError::AmountAndScope),
            (Some(amount), None) => amount.validate()?,
            (None, Some(scope)) => check_text("scope", scope, 512)?,
            (None, None) => {}
        }
        if let Some(changes) = self.change {
            check_changes(changes)?;
        }
        Ok(())
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), TransactionError> {
    if value.is_empty() {
        return Err(TransactionError::Empty(field));
    }
    if value.len() > max {
        return Err(TransactionError::TooLong { field, max });
    }
    // Control characters could hide or reorder what the approver reads.
    if value.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(TransactionError::InvalidCharacters(field));
    }
    Ok(())
}

/// Identifiers: printable ASCII without spaces, so two ids never look alike but differ.
fn check_id(field: &'static str, value: &str, max: usize) -> Result<(), TransactionError> {
    check_text(field, value, max)?;
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TransactionError::InvalidCharacters(field));
    }
    Ok(())
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn check_changes(changes: &[Change]) -> Result<(), TransactionError> {
    if changes.is_empty() {
        return Err(TransactionError::Change(
            "the list is empty; omit it instead",
        ));
    }
    if changes.len() > MAX_CHANGES {
        return Err(TransactionError::Change("more than 32 changes"));
    }
    for change in changes {
        check_id("change.field", &change.field, 128)?;
        if let Some(before) = &change.before {
            check_text("change.before", before, 1024)?;
        }
        if let Some(after) = &change.after {
            check_text("change.after", after, 1024)?;
        }
        if change.before == change.after {
            return Err(TransactionError::Change(
                "a change whose before equals its after",
            ));
        }
    }
    Ok(())
}

fn check_requirements(req: &Requirements) -> Result<(), TransactionError> {
    if !req.self_step_up && req.quorum.is_empty() {
        return Err(TransactionError::Requirements(
            "neither self step-up nor any approver",
        ));
    }
    if req.approvers() > MAX_APPROVERS {
        return Err(TransactionError::Requirements("more than 16 approvers"));
    }
    if req.quorum.len() > MAX_GROUPS {
        return Err(TransactionError::Requirements("more than 8 groups"));
    }
    for q in &req.quorum {
        check_id("requirements.group", &q.group, 128)?;
        if q.approvers == 0 {
            return Err(TransactionError::Requirements(
                "a group named for no approvers",
            ));
        }
    }
    // Sorted and unique, so that one set of requirements has one spelling.
    if req.quorum.windows(2).any(|w| w[0].group >= w[1].group) {
        return Err(TransactionError::Requirements(
            "quorum groups out of order or named twice",
        ));
    }
    if req.execution_ttl_seconds == 0 {
        return Err(TransactionError::Requirements("execution TTL of zero"));
    }
    check_text("requirements.reason", &req.reason, 512)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A typical payout-change transaction, as JSON: the first golden vector.
    pub(crate) fn sample_json() -> serde_json::Value {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/vectors/transaction.json")).unwrap();
        doc["cases"][0]["transaction"].clone()
    }

    pub(crate) fn sample() -> Transaction {
        Transaction::from_json(sample_json().to_string().as_bytes()).unwrap()
    }

    fn parse(value: serde_json::Value) -> Result<Transaction, TransactionError> {
        Transaction::from_json(value.to_string().as_bytes())
    }

    fn with(path: &[&str], value: serde_json::Value) -> serde_json::Value {
        let mut doc = sample_json();
        let mut slot = &mut doc;
        for key in path {
            slot = &mut slot[*key];
        }
        *slot = value;
        doc
    }

    #[test]
    fn sample_round_trips_and_digest_is_stable() {
        let tx = sample();
        let again = Transaction::from_json(&tx.canonical_json().unwrap()).unwrap();
        assert_eq!(tx, again);
        assert_eq!(tx.digest().unwrap(), again.digest().unwrap());
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = sample().digest().unwrap();
        let variants = [
            with(&["object"], json!("vendor:4712")),
            with(&["amount", "value"], json!("12501")),
            with(&["amount", "currency"], json!("USD")),
            with(&["audience"], json!("other-service")),
            with(
                &["session"],
                json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ),
            with(&["requester", "kind"], json!("agent")),
            with(&["requirements", "user_verification"], json!(false)),
        ];
        for doc in variants {
            assert_ne!(parse(doc.clone()).unwrap().digest().unwrap(), base, "{doc}");
        }
    }

    #[test]
    fn rejects_each_defect_precisely() {
        use TransactionError as E;
        type Case = (serde_json::Value, fn(&E) -> bool);
        let cases: Vec<Case> = vec![
            (
                with(&["amount", "value"], json!(12.5)),
                |e| matches!(e, E::Number(CanonicalError::Float { path }) if path == "/amount/value"),
            ),
            (with(&["version"], json!(9_007_199_254_740_993u64)), |e| {
                matches!(e, E::Number(CanonicalError::IntegerTooLarge { .. }))
            }),
            (with(&["amount", "value"], json!("12500.00")), |e| {
                matches!(e, E::Amount(AmountError::NonCanonicalDecimal(_)))
            }),
            (with(&["amount", "currency"], json!("EURO")), |e| {
                matches!(e, E::Amount(AmountError::UnknownCurrency(_)))
            }),
            (with(&["approve_by"], json!("2026-11-28T03:59:00Z")), |e| {
                matches!(e, E::DeadlinesOutOfOrder)
            }),
            (with(&["execute_by"], json!("2026-11-28T04:09:59Z")), |e| {
                matches!(e, E::DeadlinesOutOfOrder)
            }),
            (with(&["object"], json!("")), |e| {
                matches!(e, E::Empty("object"))
            }),
            (with(&["object"], json!("x".repeat(513))), |e| {
                matches!(
                    e,
                    E::TooLong {
                        field: "object",
                        ..
                    }
                )
            }),
            (with(&["object"], json!("vendor:\u{202E}1174")), |e| {
                matches!(e, E::InvalidCharacters("object"))
            }),
            (
                with(&["requester", "id"], json!("alice @example.com")),
                |e| matches!(e, E::InvalidCharacters("requester.id")),
            ),
            (with(&["extra"], json!(1)), |e| {
                matches!(e, E::UnknownField(_))
            }),
            (with(&["requester", "role"], json!("admin")), |e| {
                matches!(e, E::UnknownField(_))
            }),
            (with(&["version"], json!(3)), |e| {
                matches!(e, E::UnsupportedVersion(3))
            }),
            (with(&["version"], json!(2)), |e| {
                matches!(
                    e,
                    E::VersionMismatch {
                        version: 2,
                        written: 1
                    }
                )
            }),
            (with(&["requester", "kind"], json!("robot")), |e| {
                matches!(e, E::Malformed(_))
            }),
            (with(&["nonce"], json!("AAEC")), |e| {
                matches!(e, E::BadNonce)
            }),
            (with(&["session"], json!("AAEC")), |e| {
                matches!(e, E::Malformed(_))
            }),
            (with(&["scope"], json!("role:admin")), |e| {
                matches!(e, E::AmountAndScope)
            }),
            (with(&["change"], json!([])), |e| matches!(e, E::Change(_))),
            (
                with(&["requirements", "approvers"], json!(0)),
                |e| matches!(e, E::Malformed(m) if m.contains("go together")),
            ),
            (with(&["requirements", "approvers"], json!(17)), |e| {
                matches!(e, E::Requirements(_))
            }),
            (
                with(&["created_at"], json!("2026-11-28T04:00:00+00:00")),
                |e| matches!(e, E::Malformed(_)),
            ),
        ];
        for (i, (doc, expected)) in cases.into_iter().enumerate() {
            match parse(doc) {
                Ok(tx) => panic!("case {i} accepted: {tx:?}"),
                Err(e) => assert!(expected(&e), "case {i}: unexpected error {e:?}"),
            }
        }
        // Self step-up alone (no approvers, no group) is valid; with no self step-up either
        // nobody could approve.
        let mut alone = with(&["requirements", "approvers"], json!(0));
        alone["requirements"]["group"] = json!(null);
        assert!(parse(alone.clone()).is_ok());
        alone["requirements"]["self_step_up"] = json!(false);
        assert!(matches!(parse(alone), Err(E::Requirements(_))));
    }

    /// The sample with its one group replaced by `quorum`, as version 2.
    fn two_groups(quorum: serde_json::Value) -> serde_json::Value {
        let mut doc = sample_json();
        let req = doc["requirements"].as_object_mut().unwrap();
        req.remove("approvers");
        req.remove("group");
        req.insert("quorum".into(), quorum);
        doc["version"] = json!(2);
        doc
    }

    #[test]
    fn version_2_names_several_groups_and_round_trips() {
        let doc = two_groups(json!([
            {"group": "finance-approvers", "approvers": 1},
            {"group": "security-admins", "approvers": 2}
        ]));
        let tx = parse(doc.clone()).unwrap();
        assert_eq!(tx.requirements.approvers(), 3);
        assert_eq!(tx.requirements.version(), 2);
        let written: serde_json::Value =
            serde_json::from_slice(&tx.canonical_json().unwrap()).unwrap();
        assert_eq!(written, doc, "written back member for member");
        assert_ne!(tx.digest().unwrap(), sample().digest().unwrap());

        let mut as_v1 = doc.clone();
        as_v1["version"] = json!(1);
        assert_eq!(
            parse(as_v1),
            Err(TransactionError::VersionMismatch {
                version: 1,
                written: 2
            })
        );
    }

    #[test]
    fn version_2_quorum_defects_are_refused() {
        use TransactionError as E;
        let g = |group: &str, n: u32| json!({"group": group, "approvers": n});
        let cases = [
            (json!([g("b", 1), g("a", 1)]), "out of order"),
            (json!([g("a", 1), g("a", 2)]), "out of order"),
            (json!([g("a", 1), g("b", 0)]), "no approvers"),
            (json!([g("a", 9), g("b", 8)]), "more than 16"),
            (
                json!((0..9).map(|i| g(&format!("g{i}"), 1)).collect::<Vec<_>>()),
                "more than 8 groups",
            ),
        ];
        for (quorum, expected) in cases {
            match parse(two_groups(quorum.clone())) {
                Err(E::Requirements(m)) => assert!(m.contains(expected), "{quorum}: {m}"),
                other => panic!("{quorum}: {other:?}"),
            }
        }
        assert_eq!(
            parse(two_groups(json!([g("a b", 1), g("c", 1)]))),
            Err(E::InvalidCharacters("requirements.group"))
        );
    }

    #[test]
    fn rejects_duplicate_members_and_oversized_documents() {
        let text = sample_json().to_string();
        let duplicated = text.replacen(
            "\"object\":\"vendor:4711\"",
            "\"object\":\"vendor:4711\",\"object\":\"vendor:1\"",
            1,
        );
        assert!(
            matches!(Transaction::from_json(duplicated.as_bytes()), Err(TransactionError::Malformed(m)) if m.contains("duplicate"))
        );
        let big = vec![b' '; MAX_JSON_BYTES + 1];
        assert_eq!(
            Transaction::from_json(&big),
            Err(TransactionError::TooLarge(MAX_JSON_BYTES + 1))
        );
        assert!(matches!(
            Transaction::from_json(b"{"),
            Err(TransactionError::NotJson(_))
        ));
    }
}
