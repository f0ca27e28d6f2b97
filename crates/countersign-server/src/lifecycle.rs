//! The rules of a request's life that need no I/O: who may act on a request, when a quorum
//! is met, and the decision that results. The store calls [`decide`] inside the approval's
//! database transaction, so these rules see every approval recorded so far.

use crate::store::{ApprovalRecord, DecisionWrite, RequestRecord, RequestState};
use countersign_core::audit::{Event, EventKind};
use countersign_core::jwk::SigningKey;
use countersign_core::quorum::{self, GroupFill};
use countersign_core::token::{self, DecisionClaims};
use countersign_core::transaction::Transaction;
use countersign_core::{Decision, Timestamp};

/// The role in which an approver acts on a request (defined with the API types).
pub use countersign_core::wire::Role;

/// Why a decision that was due could not be issued (nothing of the approval is then stored).
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// The transaction gave no valid claims (its digest or deadlines).
    #[error("the decision's claims: {0}")]
    Claims(#[source] countersign_core::token::TokenError),
    /// Signing the token failed.
    #[error("signing the decision: {0}")]
    Sign(#[source] countersign_core::token::TokenError),
}

/// Why an approver may not act on a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ineligible {
    /// The requester of a request that needs other people's approval, not their own.
    #[error("requesters cannot approve their own request unless it asks for a self step-up")]
    OwnRequest,
    /// In none of the groups the policy names, or the policy needs no other approvers.
    #[error("not an approver for this request")]
    NotInGroup,
}

/// The role `approver` may take on `tx`, given their groups.
pub fn role_for(tx: &Transaction, approver: &str, groups: &[String]) -> Result<Role, Ineligible> {
    let req = &tx.requirements;
    if crate::identity::same(approver, &tx.requester.id) {
        return if req.self_step_up {
            Ok(Role::Requester)
        } else {
            Err(Ineligible::OwnRequest)
        };
    }
    if counting_groups(tx, groups).is_empty() {
        Err(Ineligible::NotInGroup)
    } else {
        Ok(Role::Approver)
    }
}

/// The groups of `tx`'s requirements among `groups` (an approver's), in the requirements'
/// order: the places that approver may fill, recorded with their approval.
pub fn counting_groups(tx: &Transaction, groups: &[String]) -> Vec<String> {
    tx.requirements
        .quorum
        .iter()
        .filter(|q| groups.contains(&q.group))
        .map(|q| q.group.clone())
        .collect()
}

/// Quorum progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The requester's own approval, when required, is in.
    pub self_done: bool,
    /// Each group's places and who fills them, in the requirements' order.
    pub groups: Vec<GroupFill>,
    /// Everything the policy asked for is in.
    pub complete: bool,
}

impl Progress {
    /// Places filled over all groups.
    pub fn approvers(&self) -> u32 {
        self.groups.iter().map(GroupFill::filled).sum()
    }
}

/// Counts distinct approvals per role: the requester's own, and each other approver in one
/// place of a group they belonged to when they approved (a largest matching, so every
/// group's count must hold on its own).
pub fn progress(tx: &Transaction, approvals: &[ApprovalRecord]) -> Progress {
    let approving = approvals.iter().filter(|a| a.decision == Decision::Approve);
    let others: Vec<(String, Vec<String>)> = approving
        .clone()
        .filter(|a| a.role == Role::Approver && a.approver_id != tx.requester.id)
        .map(|a| (a.approver_id.clone(), a.groups.clone()))
        .collect();
    let self_done = approving
        .clone()
        .any(|a| a.role == Role::Requester && a.approver_id == tx.requester.id);
    let groups = quorum::fill(&tx.requirements.quorum, &others);
    let complete = (!tx.requirements.self_step_up || self_done) && quorum::complete(&groups);
    Progress {
        self_done,
        groups,
        complete,
    }
}

/// The decision the approvals reach, if any: any denial denies; a complete quorum approves.
pub fn decide(
    request: &RequestRecord,
    approvals: &[ApprovalRecord],
    key: &SigningKey,
    issuer: &str,
    now: Timestamp,
) -> Result<Option<DecisionWrite>, DecisionError> {
    let tx = &request.transaction;
    let denied = approvals.iter().any(|a| a.decision == Decision::Deny);
    let decision = if denied {
        Decision::Deny
    } else if progress(tx, approvals).complete {
        Decision::Approve
    } else {
        return Ok(None);
    };
    let counted: Vec<&ApprovalRecord> = approvals
        .iter()
        .filter(|a| a.decision == decision)
        .collect();
    let mut approvers: Vec<String> = counted.iter().map(|a| a.approver_id.clone()).collect();
    approvers.sort();
    // `hwk` only when every counted key's attestation was verified against the FIDO
    // metadata; a key's own claim to be hardware is not enough.
    let all =
        |flag: fn(&ApprovalRecord) -> bool| !counted.is_empty() && counted.iter().all(|a| flag(a));
    let mut amr = Vec::new();
    if all(|a| a.hardware_attested) {
        amr.push("hwk".to_owned());
    }
    amr.push("user".to_owned());
    if all(|a| a.user_verified) {
        amr.push("mfa".to_owned());
    }
    let claims =
        DecisionClaims::for_transaction(tx, issuer, decision, now.unix(), approvers.clone(), amr)
            .map_err(DecisionError::Claims)?;
    let token = token::issue(&claims, key).map_err(DecisionError::Sign)?;
    let state = match decision {
        Decision::Approve => RequestState::Approved,
        Decision::Deny => RequestState::Denied,
    };
    Ok(Some(DecisionWrite {
        state,
        token,
        exp: claims.exp,
        audit: Event {
            at: now,
            kind: match decision {
                Decision::Approve => EventKind::DecisionApproved,
                Decision::Deny => EventKind::DecisionDenied,
            }
            .into(),
            request_id: Some(tx.id.clone()),
            actor: "server".into(),
            data: serde_json::json!({"approvers": approvers, "exp": claims.exp, "kid": key.kid(), "digest": request.digest}),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::transaction::{GroupQuorum, Requirements};

    fn tx(self_step_up: bool, approvers: u32) -> Transaction {
        let quorum = if approvers > 0 {
            vec![("finance", approvers)]
        } else {
            vec![]
        };
        tx_of(self_step_up, &quorum)
    }

    fn tx_of(self_step_up: bool, quorum: &[(&str, u32)]) -> Transaction {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/vectors/transaction.json")).unwrap();
        let mut tx =
            Transaction::from_json(doc["cases"][0]["transaction"].to_string().as_bytes()).unwrap();
        tx.requirements = Requirements {
            self_step_up,
            quorum: quorum
                .iter()
                .map(|(group, approvers)| GroupQuorum {
                    group: (*group).into(),
                    approvers: *approvers,
                })
                .collect(),
            user_verification: true,
            execution_ttl_seconds: 300,
            reason: "r".into(),
        };
        tx.version = tx.requirements.version();
        tx.validate().unwrap();
        tx
    }

    fn approval(who: &str, role: Role, decision: Decision) -> ApprovalRecord {
        let groups = match role {
            Role::Approver => vec!["finance".to_owned()],
            Role::Requester => Vec::new(),
        };
        ApprovalRecord {
            groups,
            request_id: "r".into(),
            approver_id: who.into(),
            role,
            decision,
            credential_id: vec![1],
            user_verified: true,
            hardware_attested: true,
            created_at: 0,
        }
    }

    #[test]
    fn roles_follow_the_requirements() {
        let finance = vec!["finance".to_owned()];
        let four_eyes = tx(false, 1);
        assert_eq!(
            role_for(&four_eyes, "alice@example.com", &finance),
            Err(Ineligible::OwnRequest),
            "the requester of a four-eyes request"
        );
        assert_eq!(
            role_for(&four_eyes, "Alice@Example.com", &finance),
            Err(Ineligible::OwnRequest),
            "the same person whatever the case (rows written before ids were canonical)"
        );
        assert_eq!(role_for(&four_eyes, "bob", &finance), Ok(Role::Approver));
        assert_eq!(
            role_for(&four_eyes, "bob", &[]),
            Err(Ineligible::NotInGroup)
        );
        let self_only = tx(true, 0);
        assert_eq!(
            role_for(&self_only, "alice@example.com", &[]),
            Ok(Role::Requester)
        );
        assert_eq!(
            role_for(&self_only, "bob", &finance),
            Err(Ineligible::NotInGroup)
        );
    }

    #[test]
    fn quorum_counts_distinct_people_in_the_right_roles() {
        let both = tx(true, 2);
        let a = |who, role| approval(who, role, Decision::Approve);
        assert!(
            !progress(
                &both,
                &[a("bob", Role::Approver), a("carol", Role::Approver)]
            )
            .complete,
            "self step-up missing"
        );
        assert!(
            !progress(
                &both,
                &[
                    a("alice@example.com", Role::Requester),
                    a("bob", Role::Approver)
                ]
            )
            .complete
        );
        assert!(
            !progress(
                &both,
                &[
                    a("alice@example.com", Role::Requester),
                    a("bob", Role::Approver),
                    a("bob", Role::Approver)
                ]
            )
            .complete,
            "same approver twice"
        );
        assert!(
            !progress(
                &both,
                &[
                    a("alice@example.com", Role::Requester),
                    a("alice@example.com", Role::Approver),
                    a("bob", Role::Approver)
                ]
            )
            .complete,
            "requester counted as other"
        );
        assert!(
            progress(
                &both,
                &[
                    a("alice@example.com", Role::Requester),
                    a("bob", Role::Approver),
                    a("carol", Role::Approver)
                ]
            )
            .complete
        );
    }

    fn in_groups(who: &str, groups: &[&str]) -> ApprovalRecord {
        ApprovalRecord {
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..approval(who, Role::Approver, Decision::Approve)
        }
    }

    /// Two groups: either group's approvers alone never complete it, one person in both
    /// groups fills one place, and the role follows membership in any of the groups.
    #[test]
    fn every_group_s_count_holds_and_one_person_fills_one_place() {
        let both = tx_of(false, &[("finance", 1), ("security", 1)]);
        let security = vec!["security".to_owned()];
        assert_eq!(role_for(&both, "sam", &security), Ok(Role::Approver));
        assert_eq!(
            counting_groups(&both, &["security".into(), "finance".into(), "x".into()]),
            ["finance", "security"]
        );
        assert_eq!(
            role_for(&both, "sam", &["x".into()]),
            Err(Ineligible::NotInGroup)
        );

        let finance_only = progress(
            &both,
            &[
                in_groups("bob", &["finance"]),
                in_groups("fay", &["finance"]),
            ],
        );
        assert!(
            !finance_only.complete,
            "two from finance, none from security"
        );
        assert_eq!(finance_only.approvers(), 1);
        let one_in_both = progress(&both, &[in_groups("dee", &["finance", "security"])]);
        assert!(!one_in_both.complete, "one person, two places");
        let done = progress(
            &both,
            &[
                in_groups("dee", &["finance", "security"]),
                in_groups("bob", &["finance"]),
            ],
        );
        assert!(done.complete);
        assert_eq!(
            done.groups
                .iter()
                .map(|g| (g.group.as_str(), g.approvers.clone()))
                .collect::<Vec<_>>(),
            [
                ("finance", vec!["bob".to_owned()]),
                ("security", vec!["dee".to_owned()])
            ],
            "dee moves to the place only she can fill"
        );
        let denied = [
            in_groups("dee", &["finance", "security"]),
            ApprovalRecord {
                decision: Decision::Deny,
                ..in_groups("bob", &["finance"])
            },
        ];
        assert!(!progress(&both, &denied).complete, "a denial fills nothing");
    }
}
