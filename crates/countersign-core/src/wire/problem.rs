//! The problem details document every API error is answered with.

use serde::{Deserialize, Serialize};

/// Where problem types live; a problem's `type` is this followed by its code.
pub const PROBLEM_TYPE_BASE: &str = "https://countersign.invalid/problems/";

/// Every code the server names itself, one list; a client matches on these. A protocol
/// check's own code (a transaction, amount, WebAuthn or device-signature check: the `code()`
/// of the core error that refused) is [`ProblemCode::Check`], as is any code this version
/// does not know (a newer server's), kept as written.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum ProblemCode {
    /// Your decision on this request is already recorded.
    AlreadyDecided,
    /// This credential or device key is already enrolled.
    AlreadyEnrolled,
    /// The decision was already redeemed.
    AlreadyRedeemed,
    /// This API key has as many pending requests as it may.
    ApiKeyPendingCap,
    /// This API key asks for step-ups faster than it may.
    ApiKeyRateLimited,
    /// The request's approval window has closed.
    ApprovalExpired,
    /// The approver or device is disabled.
    ApproverDisabled,
    /// The key's attestation did not verify against the allowed models.
    AttestationNotVerified,
    /// The key's model is not on the allow-list.
    AuthenticatorNotAllowed,
    /// The body is larger than the server accepts.
    BodyTooLarge,
    /// The key's signature counter did not move forward (a cloned key, or two answers crossing).
    CounterRegression,
    /// The credential is revoked.
    CredentialRevoked,
    /// The execution deadline has passed.
    DecisionExpired,
    /// The project's software keys are refused on this server.
    DemoKeyNotAllowed,
    /// A JSON member appears twice.
    DuplicateField,
    /// The idempotency key was used with a different body.
    IdempotencyConflict,
    /// Something failed inside the server; its log says what.
    Internal,
    /// A binary member is not unpadded base64url.
    InvalidBase64,
    /// The runtime context is malformed.
    InvalidContext,
    /// The device key is not an Ed25519 public key.
    InvalidDeviceKey,
    /// The device name is empty, too long or has control characters.
    InvalidDeviceName,
    /// The enrollment code is invalid, used or expired.
    InvalidEnrollmentCode,
    /// The idempotency key is not 1-128 printable ASCII characters.
    InvalidIdempotencyKey,
    /// Last-Event-ID is not an event id.
    InvalidLastEventId,
    /// The query string is malformed.
    InvalidQuery,
    /// The reason is too long or has control characters.
    InvalidReason,
    /// A member has a value of the wrong type or spelling.
    InvalidValue,
    /// The body is not JSON.
    MalformedJson,
    /// A required JSON member is missing.
    MissingField,
    /// A member the action's catalog entry requires is missing.
    MissingMember,
    /// The request is not approved.
    NotApproved,
    /// The request has no decision yet.
    NotDecided,
    /// The approver is in none of the groups the request needs.
    NotEligible,
    /// No such resource for this caller.
    NotFound,
    /// The request is no longer pending.
    NotPending,
    /// Requesters cannot approve their own request unless it asks for a self step-up.
    OwnRequest,
    /// Policy forbids the action outright.
    PolicyForbids,
    /// The request cannot be put to policy.
    PolicyInput,
    /// Too many requests from this caller.
    RateLimited,
    /// A report needs a reason.
    ReasonRequired,
    /// The requester was reported and is frozen.
    RequesterFrozen,
    /// This API key may not ask step-ups for this requester.
    RequesterNotAllowed,
    /// The requester id is not in canonical (lowercase) form.
    RequesterNotCanonical,
    /// This requester asks for step-ups faster than allowed.
    RequesterRateLimited,
    /// The requester has as many pending requests as allowed.
    TooManyPending,
    /// Missing or wrong credentials.
    Unauthorized,
    /// The database is unavailable.
    Unavailable,
    /// The request names no session.
    UnboundSession,
    /// The action is not in the catalog.
    UnknownAction,
    /// The credential is not enrolled for this approver.
    UnknownCredential,
    /// The body has a member the API does not know.
    UnknownField,
    /// The body could not be read.
    UnreadableBody,
    /// The body is not application/json.
    UnsupportedMediaType,
    /// The request is not in a state that allows this.
    WrongState,
    /// A protocol check's code, or one this version does not know.
    #[strum(default)]
    Check(String),
}

impl ProblemCode {
    /// The stable snake_case spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ProblemCode::Check(code) => code,
            named => named.into(),
        }
    }

    /// Every code the server names itself, in the enum's (alphabetical) order; protocol checks
    /// name theirs besides these.
    pub fn server_codes() -> impl Iterator<Item = &'static str> {
        use strum::VariantNames;
        ProblemCode::VARIANTS
            .iter()
            .copied()
            .filter(|code| *code != "check")
    }

    /// The code of a failed protocol check (a core error's `code()`).
    pub fn check(code: &str) -> Self {
        code.parse()
            .unwrap_or_else(|_| ProblemCode::Check(code.to_owned()))
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProblemCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProblemCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(ProblemCode::check(&text))
    }
}

/// An API error as an RFC 9457 problem details document, with Countersign's stable `code`
/// beside the standard members (a client matches on `code`; `detail` is for people).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemDocument {
    /// `https://countersign.invalid/problems/` followed by the code.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The HTTP status's reason phrase.
    #[serde(default)]
    pub title: String,
    /// The HTTP status.
    #[serde(default)]
    pub status: u16,
    /// What went wrong this time, for people.
    pub detail: String,
    /// Stable snake_case code, e.g. `policy_forbids`, `already_redeemed`.
    pub code: ProblemCode,
}

impl ProblemDocument {
    /// The document for `code` at `status`.
    pub fn new(status: u16, title: &str, code: ProblemCode, detail: &str) -> Self {
        ProblemDocument {
            kind: format!("{PROBLEM_TYPE_BASE}{code}"),
            title: title.to_owned(),
            status,
            detail: detail.to_owned(),
            code,
        }
    }

    /// Reads an error response's body; `None` when it is not a problem document (a proxy's
    /// page, say), which a client reports as an unexpected answer rather than guessing a code.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_back_as_written_and_anything_else_is_not_one() {
        let doc = ProblemDocument::new(
            409,
            "Conflict",
            ProblemCode::AlreadyRedeemed,
            "redeemed at 12:00",
        );
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(
            text,
            r#"{"type":"https://countersign.invalid/problems/already_redeemed","title":"Conflict","status":409,"detail":"redeemed at 12:00","code":"already_redeemed"}"#
        );
        assert_eq!(ProblemDocument::from_json(text.as_bytes()), Some(doc));
        let minimal =
            ProblemDocument::from_json(br#"{"code":"x","detail":"y","extra":1}"#).unwrap();
        assert_eq!(minimal.code, ProblemCode::Check("x".into()));
        assert_eq!((minimal.code.as_str(), minimal.status), ("x", 0));
        for not_one in [
            &b"<html>Bad gateway</html>"[..],
            b"{}",
            br#"{"code":1,"detail":"y"}"#,
        ] {
            assert_eq!(ProblemDocument::from_json(not_one), None);
        }
    }

    #[test]
    fn a_named_code_reads_as_its_variant_and_a_check_code_keeps_its_spelling() {
        for (text, code) in [
            ("not_pending", ProblemCode::NotPending),
            ("already_decided", ProblemCode::AlreadyDecided),
            (
                "requester_not_canonical",
                ProblemCode::RequesterNotCanonical,
            ),
            ("api_key_pending_cap", ProblemCode::ApiKeyPendingCap),
        ] {
            assert_eq!(ProblemCode::check(text), code);
            assert_eq!(code.as_str(), text);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(serde_json::from_str::<ProblemCode>(&json).unwrap(), code);
        }
        let check = ProblemCode::check("challenge_mismatch");
        assert_eq!(check, ProblemCode::Check("challenge_mismatch".into()));
        assert_eq!(check.to_string(), "challenge_mismatch");
        // Spellings are exact: another case is not the named code.
        assert_eq!(
            ProblemCode::check("Not_Pending"),
            ProblemCode::Check("Not_Pending".into())
        );
    }

    #[test]
    fn the_server_codes_are_every_named_variant_and_nothing_else() {
        let codes: Vec<&str> = ProblemCode::server_codes().collect();
        assert!(codes.len() >= 50, "{codes:?}");
        assert!(codes.contains(&"policy_forbids") && !codes.contains(&"check"));
        for code in &codes {
            let parsed = ProblemCode::check(code);
            assert!(!matches!(parsed, ProblemCode::Check(_)), "{code}");
            assert_eq!(parsed.as_str(), *code);
        }
    }
}
