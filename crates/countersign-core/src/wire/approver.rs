//! What an approver's device sends and receives: the server's identity, enrollment, and the
//! answer to a request. Binary members are unpadded base64url text, as WebAuthn's JSON forms
//! are; whoever acts on them decodes and checks them.

use super::state::{RequestState, Role};
use serde::{Deserialize, Serialize};

/// The server's signing key as an approver pins it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerKey {
    /// Its id: the JWK thumbprint.
    pub kid: String,
    /// `EdDSA`, where the answer names the algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// The Ed25519 public key, base64url.
    pub x: String,
}

/// `GET /v1/info`: what an approver checks against an enrollment code before it enrolls.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The software's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The WebAuthn RP id keys sign for.
    pub rp_id: String,
    /// The WebAuthn origin clientDataJSON names.
    pub origin: String,
    /// The key that signs now.
    pub server_key: ServerKey,
}

/// `POST /v1/enroll` body: a device and a security key bound to a one-time code.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    /// The secret part of the one-time code.
    pub code: String,
    /// A label for the device.
    pub device_name: String,
    /// The device's Ed25519 public key, base64url.
    pub device_key: String,
    /// WebAuthn attestationObject, base64url.
    pub attestation_object: String,
    /// WebAuthn clientDataJSON, base64url.
    pub client_data_json: String,
}

/// The answer to a successful enrollment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    /// The person the code was issued to.
    pub approver_id: String,
    /// This device, as its signed calls name it.
    pub device_id: String,
    /// The WebAuthn RP id keys sign for.
    pub rp_id: String,
    /// The WebAuthn origin clientDataJSON names.
    pub origin: String,
    /// The key that signs now; the approver checks it is the one it pinned.
    pub server_key: ServerKey,
}

/// `POST /v1/approver/requests/{id}/{approve|deny|report}` body: the security key's WebAuthn
/// assertion over the challenge derived from the request, base64url.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionBody {
    /// Credential id.
    pub credential_id: String,
    /// authenticatorData.
    pub authenticator_data: String,
    /// clientDataJSON.
    pub client_data_json: String,
    /// Signature.
    pub signature: String,
    /// Why, for a denial (required for a report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to an approval, denial or report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalAnswer {
    /// Whether this answer was recorded (a report of a request no longer pending is not).
    pub counted: bool,
    /// The role the approver acted in.
    pub role: Role,
    /// Where the request stands now.
    pub state: RequestState,
    /// What is still needed, after an approval or a denial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ApprovalProgress>,
    /// After a report: the requester is frozen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_frozen: Option<bool>,
    /// After a report: the requester's other pending requests, cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_requests: Option<Vec<String>>,
}

/// How far a request's approvals have come.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalProgress {
    /// Whether the requester's own step-up is recorded (when policy asks for one).
    pub self_step_up_done: bool,
    /// Distinct approvers counted, over all groups.
    pub approvers: u32,
    /// Distinct approvers needed, over all groups.
    pub approvers_required: u32,
    /// Each group's places filled and needed.
    pub groups: Vec<GroupProgress>,
}

/// One group's share of the quorum.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupProgress {
    /// The group's name.
    pub group: String,
    /// Its places filled.
    pub approvers: u32,
    /// Its places.
    pub required: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_answer_names_the_freeze_and_an_approval_its_progress() {
        let report: ApprovalAnswer = serde_json::from_str(
            r#"{"counted":true,"role":"approver","state":"denied","requester_frozen":true,"cancelled_requests":["r2"]}"#,
        )
        .unwrap();
        assert_eq!(report.requester_frozen, Some(true));
        assert_eq!(report.progress, None);
        let approval = ApprovalAnswer {
            counted: true,
            role: Role::Requester,
            state: RequestState::Pending,
            progress: Some(ApprovalProgress {
                self_step_up_done: true,
                approvers: 0,
                approvers_required: 1,
                groups: vec![GroupProgress {
                    group: "finance".into(),
                    approvers: 0,
                    required: 1,
                }],
            }),
            requester_frozen: None,
            cancelled_requests: None,
        };
        let json = serde_json::to_value(&approval).unwrap();
        assert!(json.get("requester_frozen").is_none());
        assert_eq!(json["progress"]["groups"][0]["group"], "finance");
        assert_eq!(
            serde_json::from_value::<ApprovalAnswer>(json).unwrap(),
            approval
        );
    }

    #[test]
    fn an_assertion_body_with_an_unknown_member_is_refused() {
        let body = r#"{"credential_id":"a","authenticator_data":"b","client_data_json":"c","signature":"d","extra":1}"#;
        assert!(serde_json::from_str::<AssertionBody>(body).is_err());
        let without_reason = AssertionBody {
            credential_id: "a".into(),
            authenticator_data: "b".into(),
            client_data_json: "c".into(),
            signature: "d".into(),
            reason: None,
        };
        let text = serde_json::to_string(&without_reason).unwrap();
        assert!(!text.contains("reason"));
    }
}
