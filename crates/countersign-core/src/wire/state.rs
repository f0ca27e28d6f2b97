//! The values that the server and its clients both compare, with one spelling each.

use crate::Decision;
use serde::{Deserialize, Serialize};

/// Where a request stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RequestState {
    /// Waiting for approvals.
    Pending,
    /// Approved; the decision can be redeemed once.
    Approved,
    /// Denied by an approver.
    Denied,
    /// Cancelled by the application.
    Cancelled,
    /// The application redeemed the decision and is executing the action.
    Redeemed,
    /// The application reported success.
    Executed,
    /// The application reported failure.
    Failed,
    /// Its approval window closed before a decision.
    Expired,
}

impl RequestState {
    /// The stored and API spelling.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the stored and API spelling.
    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role in which an approver acts on a request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    /// The requester, stepping up their own action.
    Requester,
    /// A distinct approver from one of the required groups.
    Approver,
}

impl Role {
    /// Stored and API spelling.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What an approver answers to a request; its spelling is the last segment of the endpoint
/// (`/v1/approver/requests/{id}/approve`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Verdict {
    /// Approve exactly this.
    Approve,
    /// Deny, optionally saying why.
    Deny,
    /// Deny and report as suspicious, saying why: the server freezes the requester.
    Report,
}

impl Verdict {
    /// What the key signs: a report is a denial.
    pub fn decision(self) -> Decision {
        match self {
            Verdict::Approve => Decision::Approve,
            Verdict::Deny | Verdict::Report => Decision::Deny,
        }
    }

    /// The endpoint's last path segment.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// A report must say why; the server refuses one without a reason.
    pub fn needs_reason(self) -> bool {
        self == Verdict::Report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_has_one_spelling_in_json_and_in_storage() {
        for state in [
            RequestState::Pending,
            RequestState::Approved,
            RequestState::Denied,
            RequestState::Cancelled,
            RequestState::Redeemed,
            RequestState::Executed,
            RequestState::Failed,
            RequestState::Expired,
        ] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(RequestState::parse(state.as_str()), Some(state));
        }
        assert_eq!(RequestState::parse("unknown"), None);
        assert_eq!(RequestState::parse("Pending"), None);
        assert_eq!(
            serde_json::to_string(&Role::Approver).unwrap(),
            "\"approver\""
        );
        assert!("Approver".parse::<Role>().is_err());
        assert_eq!(
            [Verdict::Approve, Verdict::Deny, Verdict::Report].map(Verdict::as_str),
            ["approve", "deny", "report"]
        );
        assert_eq!(Verdict::Report.decision(), Decision::Deny);
        assert!(serde_json::from_str::<Verdict>("\"freeze\"").is_err());
    }
}
