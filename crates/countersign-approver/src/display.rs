//! A verified request rendered into exactly what a person must see before touching the key:
//! the catalog's sentence filled from the transaction, and next to it every field the key
//! signs (the catalog wording is the server's; the fields are what the signature commits to).

use crate::verified::VerifiedRequest;
use countersign_core::transaction::RequesterKind;
use serde::Serialize;

/// One changed field, before → after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeLine {
    /// Field name.
    pub field: String,
    /// Value before, or `(none)`.
    pub before: String,
    /// Value after, or `(removed)`.
    pub after: String,
}

/// One counted approval by someone other than the requester.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApprovalLine {
    /// Who approved.
    pub approver_id: String,
    /// When the server counted it (Unix seconds).
    pub at: i64,
    /// "bob@example.com approved 3 min ago".
    pub text: String,
}

/// "just now", "3 min ago", "2 h ago", "3 days ago": how long since `at`, at `now`.
pub fn ago(at: i64, now: i64) -> String {
    let seconds = (now - at).max(0);
    match seconds {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

/// What the approver's screen shows for one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DisplayModel {
    /// Request id.
    pub id: String,
    /// The catalog's title, e.g. "Send a payout".
    pub title: String,
    /// The catalog sentence filled from the transaction, e.g. "Pay 2,500 EUR to vendor:4711".
    pub headline: String,
    /// Catalog action id, as signed.
    pub action: String,
    /// The target, as signed.
    pub object: String,
    /// Amount with currency, digits grouped, as signed.
    pub amount: Option<String>,
    /// Scope, as signed.
    pub scope: Option<String>,
    /// Changed fields.
    pub changes: Vec<ChangeLine>,
    /// "alice@example.com (person)", "payout-bot (service)", "copilot-7 (AI agent)".
    pub requester: String,
    /// The application that will execute the action.
    pub audience: String,
    /// Short fingerprint of the originating session hash, to match with the requester.
    pub session: String,
    /// Why policy asked for this step-up.
    pub reason: String,
    /// One line per thing still asked or done, in the requirements' order: the requester's
    /// own confirmation, then each group's count ("1 of 2 approvers from finance").
    pub progress: Vec<String>,
    /// The approvals counted so far by others than the requester, oldest first.
    pub approvals: Vec<ApprovalLine>,
    /// Whether the key must verify the user (PIN or biometrics).
    pub user_verification: bool,
    /// Approval deadline, RFC 3339 UTC.
    pub approve_by: String,
    /// Seconds left to approve at the time of rendering (0 when past).
    pub seconds_left: i64,
    /// The transaction digest's fingerprint the requester can compare: `XXXX-XXXX-XXXX`.
    pub fingerprint: String,
    /// Server state: `pending`, `approved`, ...
    pub state: String,
    /// Characters in what is shown that could make it read differently from what is signed
    /// (invisible, control, mixed-script, look-alike), one per field and kind; shown above
    /// the request, never silently rendered.
    pub warnings: Vec<crate::text_safety::TextWarning>,
}

/// `1234567.5` with 2 minor units → `1,234,567.50`: digits grouped, decimals padded to the
/// currency's minor units (the canonical decimal drops trailing zeros).
fn group_digits(value: &str, minor_units: usize) -> String {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    let frac = format!("{frac:0<minor_units$}");
    let frac = (!frac.is_empty()).then_some(frac);
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{grouped}.{f}"),
        None => grouped,
    }
}

/// Fills `{name}` placeholders in one pass: a value is never scanned again, so an object
/// named `{amount}` shows as those characters, not as the amount. Anything else in braces
/// stays as written.
pub fn fill_template(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn kind(kind: RequesterKind) -> &'static str {
    match kind {
        RequesterKind::Human => "person",
        RequesterKind::Service => "service",
        RequesterKind::Agent => "AI agent",
    }
}

impl DisplayModel {
    /// Renders `verified` for `approver_id` at `now` (Unix seconds).
    pub fn render(verified: &VerifiedRequest, approver_id: &str, now: i64) -> Self {
        let pushed = verified.request();
        let tx = &pushed.transaction;
        let amount = tx.amount.as_ref().map(|a| {
            let minor = a.minor_units().map_or(0, usize::from);
            format!("{} {}", group_digits(&a.value, minor), a.currency)
        });
        let requester = format!("{} ({})", tx.requester.id, kind(tx.requester.kind));
        let headline = fill_template(
            &pushed.display.template,
            &[
                ("object", &tx.object),
                ("amount", amount.as_deref().unwrap_or("(no amount)")),
                ("scope", tx.scope.as_deref().unwrap_or("(no scope)")),
                ("requester", &tx.requester.id),
            ],
        );
        let req = &tx.requirements;
        let approvals: Vec<ApprovalLine> = pushed
            .approvals
            .iter()
            .filter(|a| a.approver_id != tx.requester.id)
            .map(|a| ApprovalLine {
                approver_id: a.approver_id.clone(),
                at: a.at.unix(),
                text: format!("{} approved {}", a.approver_id, ago(a.at.unix(), now)),
            })
            .collect();
        let mut progress = Vec::new();
        if req.self_step_up {
            let done = pushed.approved_by(&tx.requester.id);
            let whose = if approver_id == tx.requester.id {
                "your own confirmation".to_owned()
            } else {
                format!("{}'s own confirmation", tx.requester.id)
            };
            progress.push(format!(
                "{whose}: {}",
                if done { "done" } else { "waiting" }
            ));
        }
        for group in pushed.quorum_fill() {
            progress.push(format!(
                "{} of {} approver{} from {}",
                group.filled(),
                group.required,
                if group.required == 1 { "" } else { "s" },
                group.group
            ));
        }
        let mut warnings = Vec::new();
        let mut look = |field: &str, text: &str| {
            warnings.extend(crate::text_safety::check(field, text));
        };
        look("title", &pushed.display.title);
        look("sentence", &pushed.display.template);
        look("object", &tx.object);
        if let Some(scope) = &tx.scope {
            look("scope", scope);
        }
        for change in tx.change.iter().flatten() {
            look(&format!("change {}", change.field), &change.field);
            for (side, value) in [("before", &change.before), ("after", &change.after)] {
                if let Some(value) = value {
                    look(&format!("change {} ({side})", change.field), value);
                }
            }
        }
        look("reason", &req.reason);
        DisplayModel {
            warnings,
            id: tx.id.clone(),
            title: pushed.display.title.clone(),
            headline,
            action: tx.action.clone(),
            object: tx.object.clone(),
            amount,
            scope: tx.scope.clone(),
            changes: tx
                .change
                .iter()
                .flatten()
                .map(|c| ChangeLine {
                    field: c.field.clone(),
                    before: c.before.clone().unwrap_or_else(|| "(none)".into()),
                    after: c.after.clone().unwrap_or_else(|| "(removed)".into()),
                })
                .collect(),
            requester,
            audience: tx.audience.clone(),
            session: tx.session.fingerprint(),
            reason: req.reason.clone(),
            progress,
            approvals,
            user_verification: req.user_verification,
            approve_by: tx.approve_by.to_string(),
            seconds_left: (tx.approve_by.unix() - now).max(0),
            fingerprint: pushed.digest.fingerprint(),
            state: pushed.state.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::jwk::{KeySet, SigningKey};
    use countersign_core::push::{ActionDisplay, PushedRequest, SignedRequest};
    use countersign_core::transaction::{Change, GroupQuorum, Requirements};
    use countersign_core::Transaction;

    fn sample() -> Transaction {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/vectors/transaction.json")).unwrap();
        Transaction::from_json(doc["cases"][0]["transaction"].to_string().as_bytes()).unwrap()
    }

    fn verified(
        tx: Transaction,
        approved_by: Vec<(String, i64)>,
    ) -> (VerifiedRequest, KeySet, SigningKey) {
        let approved_by = approved_by
            .into_iter()
            .map(|(who, at)| (who, at, Vec::new()))
            .collect();
        verified_in_groups(tx, approved_by)
    }

    fn verified_in_groups(
        tx: Transaction,
        approved_by: Vec<(String, i64, Vec<String>)>,
    ) -> (VerifiedRequest, KeySet, SigningKey) {
        let key = SigningKey::from_seed(&[5; 32]);
        let pinned = KeySet::new([key.verifying_key().clone()]);
        let pushed = PushedRequest {
            digest: tx.digest().unwrap(),
            transaction: tx,
            state: "pending".into(),
            approvals: approved_by
                .into_iter()
                .map(
                    |(approver_id, at, groups)| countersign_core::push::CountedApproval {
                        approver_id,
                        at: countersign_core::Timestamp::from_unix(at).unwrap(),
                        groups,
                    },
                )
                .collect(),
            display: ActionDisplay {
                title: "Send a payout".into(),
                template: "Pay {amount} to {object}".into(),
            },
        };
        let signed = SignedRequest::sign(pushed, &key).unwrap();
        (
            VerifiedRequest::verify(&signed, &pinned).unwrap(),
            pinned,
            key,
        )
    }

    #[test]
    fn renders_every_signed_field_and_the_progress() {
        let mut tx = sample();
        tx.amount = Some(countersign_core::amount::Amount {
            value: "1234567.5".into(),
            currency: "EUR".into(),
        });
        tx.change = Some(vec![Change {
            field: "iban".into(),
            before: None,
            after: Some("DE02 1203 0000 0000 2020 51".into()),
        }]);
        tx.requirements = Requirements {
            self_step_up: true,
            quorum: vec![GroupQuorum {
                group: "finance".into(),
                approvers: 2,
            }],
            user_verification: true,
            execution_ttl_seconds: 300,
            reason: "payout of 10000 or more".into(),
        };
        let requester = tx.requester.id.clone();
        let approve_by = tx.approve_by.unix();
        let digest = tx.digest().unwrap();
        let bob_at = approve_by - 90 - 180;
        let (v, _, _) = verified(
            tx,
            vec![(requester.clone(), bob_at - 10), ("bob".into(), bob_at)],
        );
        let model = DisplayModel::render(&v, "carol", approve_by - 90);
        assert_eq!(model.amount.as_deref(), Some("1,234,567.50 EUR"));
        assert_eq!(
            model.headline,
            format!("Pay 1,234,567.50 EUR to {}", model.object)
        );
        assert_eq!(model.changes[0].before, "(none)");
        assert_eq!(
            model.progress,
            [
                format!("{requester}'s own confirmation: done"),
                "1 of 2 approvers from finance".into()
            ]
        );
        assert_eq!(
            model.approvals,
            vec![ApprovalLine {
                approver_id: "bob".into(),
                at: bob_at,
                text: "bob approved 3 min ago".into()
            }]
        );
        assert_eq!(model.seconds_left, 90);
        assert!(model.user_verification);
        assert_eq!(model.fingerprint, digest.fingerprint());
        assert_eq!(model.fingerprint.len(), 14);
        let own = DisplayModel::render(&v, &requester, approve_by + 5);
        assert_eq!(own.progress[0], "your own confirmation: done");
        assert_eq!(own.seconds_left, 0);
    }

    /// A version 2 request shows every group's count on its own line, counted as the server
    /// counts: one person in both groups fills one place.
    #[test]
    fn each_group_of_a_version_2_request_has_its_own_line() {
        let mut tx = sample();
        tx.requirements.self_step_up = false;
        tx.requirements.quorum = vec![
            GroupQuorum {
                group: "finance".into(),
                approvers: 1,
            },
            GroupQuorum {
                group: "security-admins".into(),
                approvers: 1,
            },
        ];
        tx.version = 2;
        let at = tx.approve_by.unix() - 100;
        let both = vec!["finance".to_owned(), "security-admins".to_owned()];
        let (v, _, _) = verified_in_groups(tx.clone(), vec![("dee".into(), at, both.clone())]);
        assert_eq!(
            DisplayModel::render(&v, "carol", at).progress,
            [
                "1 of 1 approver from finance",
                "0 of 1 approver from security-admins"
            ]
        );
        let (v, _, _) = verified_in_groups(
            tx,
            vec![
                ("dee".into(), at, both),
                ("bob".into(), at, vec!["finance".into()]),
            ],
        );
        assert_eq!(
            DisplayModel::render(&v, "carol", at).progress,
            [
                "1 of 1 approver from finance",
                "1 of 1 approver from security-admins"
            ]
        );
    }

    #[test]
    fn a_payee_with_an_invisible_or_foreign_letter_is_flagged_and_plain_fields_are_not() {
        let (v, _, _) = verified(sample(), vec![]);
        assert!(DisplayModel::render(&v, "carol", 0).warnings.is_empty());
        let mut tx = sample();
        tx.object = "vendor:47\u{200B}11".into();
        tx.change = Some(vec![Change {
            field: "payee".into(),
            before: None,
            after: Some("\u{0410}cme Bank".into()),
        }]);
        let (v, _, _) = verified(tx, vec![]);
        let warnings = DisplayModel::render(&v, "carol", 0).warnings;
        let fields: Vec<&str> = warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(fields, ["object", "change payee (after)"], "{warnings:?}");
        assert_eq!(warnings[0].code_points, ["U+200B"]);
        assert_eq!(warnings[1].code_points, ["U+0410"]);
    }

    #[test]
    fn the_challenge_comes_from_the_verified_transaction() {
        let tx = sample();
        let digest = tx.digest().unwrap();
        let (v, pinned, key) = verified(tx, vec![]);
        let expected = countersign_core::ApprovalStatement::new(
            digest,
            countersign_core::Decision::Approve,
            "bob",
        )
        .challenge()
        .unwrap();
        assert_eq!(
            v.challenge(countersign_core::Decision::Approve, "bob")
                .unwrap(),
            expected
        );
        assert_ne!(
            v.challenge(countersign_core::Decision::Deny, "bob")
                .unwrap(),
            expected
        );

        // Anything unverified is refused, never rendered.
        let mut pushed = v.request().clone();
        pushed.transaction.object = "attacker:1".into();
        let forged = SignedRequest {
            request: pushed,
            kid: key.kid().to_owned(),
            signature: SignedRequest::sign(v.request().clone(), &key)
                .unwrap()
                .signature,
        };
        assert!(VerifiedRequest::verify(&forged, &pinned).is_err());
    }

    #[test]
    fn fingerprints_and_digit_groups() {
        let mut d = [0u8; 32];
        d[..6].copy_from_slice(&[0x3f, 0x9a, 0x1c, 0x0b, 0x77, 0xde]);
        assert_eq!(countersign_core::Digest(d).fingerprint(), "3F9A-1C0B-77DE");
        assert_eq!(group_digits("0", 0), "0");
        assert_eq!(group_digits("999", 2), "999.00");
        assert_eq!(group_digits("1000", 0), "1,000");
        assert_eq!(group_digits("12.5", 2), "12.50");
        assert_eq!(group_digits("1234.567", 3), "1,234.567");
    }

    #[test]
    fn ago_says_how_long_since() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(100, 159), "just now");
        assert_eq!(ago(100, 160), "1 min ago");
        assert_eq!(ago(0, 3599), "59 min ago");
        assert_eq!(ago(0, 7200), "2 h ago");
        assert_eq!(ago(0, 3 * 86_400), "3 days ago");
        assert_eq!(ago(200, 100), "just now", "a clock behind the server's");
    }

    #[test]
    fn the_template_is_filled_once_so_a_value_cannot_expand_another() {
        let values = [("object", "vendor:{amount}"), ("amount", "9,999.00 EUR")];
        assert_eq!(
            fill_template("Pay {amount} to {object}", &values),
            "Pay 9,999.00 EUR to vendor:{amount}"
        );
        assert_eq!(
            fill_template("{unknown} {object", &values),
            "{unknown} {object"
        );
        assert_eq!(fill_template("{{object}}", &values), "{vendor:{amount}}");
        assert_eq!(fill_template("", &values), "");
        assert_eq!(fill_template("no placeholders", &[]), "no placeholders");
    }

    #[test]
    fn an_object_named_like_a_placeholder_is_shown_as_written() {
        let mut tx = sample();
        tx.object = "vendor:{amount}".into();
        tx.amount = Some(countersign_core::amount::Amount {
            value: "10".into(),
            currency: "EUR".into(),
        });
        let (v, _, _) = verified(tx, vec![]);
        let model = DisplayModel::render(&v, "carol", 0);
        assert_eq!(model.headline, "Pay 10.00 EUR to vendor:{amount}");
    }
}
