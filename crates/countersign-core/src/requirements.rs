//! What the policy demanded of one transaction, and the two ways it is written.
//!
//! A transaction names its requirements so that the approver sees them and the key signs
//! them. Version 1 names at most one group (`approvers` + `group`); version 2 names two or
//! more groups in a `quorum` list, each with its own count. Each meaning has exactly one
//! spelling: requirements with one group are always version 1, so pending requests and
//! digests written before version 2 existed re-serialise byte for byte, and an approver that
//! knows only version 1 keeps working for every request it can show correctly.

use serde::{Deserialize, Deserializer, Serialize};

/// Most approvers other than the requester a transaction may demand, over all its groups.
pub const MAX_APPROVERS: u32 = 16;
/// Most groups one transaction may name.
pub const MAX_GROUPS: usize = 8;

/// How many distinct approvers one group must supply.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupQuorum {
    /// The group, as the server's approver directory names it.
    pub group: String,
    /// Distinct approvers from that group (at least one).
    pub approvers: u32,
}

/// What the policy demanded, carried in the transaction so the approver sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Written", into = "Written")]
pub struct Requirements {
    /// The requester must approve with their own key.
    pub self_step_up: bool,
    /// Per group, the distinct approvers other than the requester it must supply; sorted by
    /// group, each group once. Every count holds: one approver fills one place only, even
    /// when they belong to several of the groups.
    pub quorum: Vec<GroupQuorum>,
    /// The key must verify the user (PIN or biometrics), not just their presence.
    pub user_verification: bool,
    /// Seconds the decision stays redeemable once issued.
    pub execution_ttl_seconds: u32,
    /// Why the policy asked for a step-up, for the approver to read.
    pub reason: String,
}

impl Requirements {
    /// The transaction version that writes these requirements: 1 for at most one group,
    /// 2 for several.
    pub fn version(&self) -> u32 {
        if self.quorum.len() > 1 {
            2
        } else {
            1
        }
    }

    /// Distinct approvers other than the requester, over all groups.
    pub fn approvers(&self) -> u32 {
        self.quorum
            .iter()
            .fold(0u32, |sum, q| sum.saturating_add(q.approvers))
    }
}

/// The requirements as written in JSON: version 1's members or version 2's, never both.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    self_step_up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approvers: Option<u32>,
    /// `None`: absent; `Some(None)`: written as `null` (version 1 without approvers).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    group: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quorum: Option<Vec<GroupQuorum>>,
    user_verification: bool,
    execution_ttl_seconds: u32,
    reason: String,
}

/// Tells a member written as `null` from one left out.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Why written requirements do not read as either version (reported as a malformed document;
/// the counts and names themselves are checked by the transaction's validation).
#[derive(Debug, thiserror::Error)]
pub enum WrittenError {
    /// Members of both versions, or of neither.
    #[error("requirements name `approvers` and `group` (one group) or `quorum` (several groups), exactly one of the two")]
    Shape,
    /// A group named for no approvers, or approvers from no group.
    #[error("requirements.approvers and requirements.group go together: a group needs approvers and approvers need a group")]
    GroupWithoutApprovers,
    /// A quorum list of fewer than two groups: one group is written as `approvers` + `group`.
    #[error("requirements.quorum is for two or more groups; one group is written as approvers and group")]
    ShortQuorum,
}

impl TryFrom<Written> for Requirements {
    type Error = WrittenError;

    fn try_from(w: Written) -> Result<Self, Self::Error> {
        let quorum = match (w.approvers, w.group, w.quorum) {
            (Some(0), None | Some(None), None) => Vec::new(),
            (Some(approvers), Some(Some(group)), None) if approvers > 0 => {
                vec![GroupQuorum { group, approvers }]
            }
            (Some(_), _, None) => return Err(WrittenError::GroupWithoutApprovers),
            (None, None, Some(list)) if list.len() >= 2 => list,
            (None, None, Some(_)) => return Err(WrittenError::ShortQuorum),
            _ => return Err(WrittenError::Shape),
        };
        Ok(Requirements {
            self_step_up: w.self_step_up,
            quorum,
            user_verification: w.user_verification,
            execution_ttl_seconds: w.execution_ttl_seconds,
            reason: w.reason,
        })
    }
}

impl From<Requirements> for Written {
    fn from(r: Requirements) -> Self {
        let (approvers, group, quorum) = match r.quorum.len() {
            0 => (Some(0), Some(None), None),
            1 => {
                let q = r.quorum.into_iter().next();
                (
                    q.as_ref().map(|q| q.approvers),
                    Some(q.map(|q| q.group)),
                    None,
                )
            }
            _ => (None, None, Some(r.quorum)),
        };
        Written {
            self_step_up: r.self_step_up,
            approvers,
            group,
            quorum,
            user_verification: r.user_verification,
            execution_ttl_seconds: r.execution_ttl_seconds,
            reason: r.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: serde_json::Value) -> Result<Requirements, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    fn base() -> serde_json::Value {
        json!({"self_step_up": false, "user_verification": true, "execution_ttl_seconds": 300, "reason": "r"})
    }

    fn with(members: serde_json::Value) -> serde_json::Value {
        let mut doc = base();
        for (k, v) in members.as_object().into_iter().flatten() {
            doc[k] = v.clone();
        }
        doc
    }

    #[test]
    fn each_version_reads_and_writes_back_the_same_members() {
        for doc in [
            with(json!({"approvers": 1, "group": "finance"})),
            with(json!({"approvers": 0, "group": null, "self_step_up": true})),
            with(
                json!({"quorum": [{"group": "finance", "approvers": 1}, {"group": "security-admins", "approvers": 2}]}),
            ),
        ] {
            let r = read(doc.clone()).unwrap();
            assert_eq!(serde_json::to_value(&r).unwrap(), doc);
        }
        let two = read(with(
            json!({"quorum": [{"group": "a", "approvers": 1}, {"group": "b", "approvers": 2}]}),
        ))
        .unwrap();
        assert_eq!((two.version(), two.approvers()), (2, 3));
        let one = read(with(json!({"approvers": 2, "group": "a"}))).unwrap();
        assert_eq!((one.version(), one.approvers()), (1, 2));
    }

    #[test]
    fn mixed_or_half_written_requirements_are_refused() {
        let cases = [
            (json!({}), "exactly one of the two"),
            (json!({"group": "a"}), "exactly one of the two"),
            (
                json!({"approvers": 1, "group": "a", "quorum": [{"group": "a", "approvers": 1}, {"group": "b", "approvers": 1}]}),
                "exactly one of the two",
            ),
            (
                json!({"group": null, "quorum": [{"group": "a", "approvers": 1}, {"group": "b", "approvers": 1}]}),
                "exactly one of the two",
            ),
            (json!({"approvers": 1, "group": null}), "go together"),
            (json!({"approvers": 1}), "go together"),
            (json!({"approvers": 0, "group": "a"}), "go together"),
            (
                json!({"quorum": [{"group": "a", "approvers": 1}]}),
                "two or more groups",
            ),
            (json!({"quorum": []}), "two or more groups"),
            (
                json!({"quorum": [{"group": "a", "approvers": 1, "role": "x"}, {"group": "b", "approvers": 1}]}),
                "unknown field",
            ),
        ];
        for (members, expected) in cases {
            let err = read(with(members.clone())).unwrap_err();
            assert!(err.contains(expected), "{members}: {err}");
        }
    }
}
