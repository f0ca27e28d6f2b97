//! One approver's answer to a request (approve, deny, report): the body's rules, eligibility,
//! the request's state, the credential, the WebAuthn assertion over the approval statement,
//! clone detection, recording, and for a report the freeze and the security team's webhook.
//! The caller is already authenticated by its device signature.

use super::{base64_field, Fault, InvalidBase64};
use crate::api::AppState;
use crate::clock;
use crate::lifecycle::{self, Ineligible, Role};
use crate::store::{
    ApprovalRecord, ApproverRecord, AttestationTrust, Decide, Freeze, FreezeRecord, RequestRecord,
    RequestState, StoreError,
};
use countersign_core::audit::{Event, EventKind};
use countersign_core::webauthn::{
    verify_assertion, AssertionError, AssertionInput, AssertionPolicy, CredentialPublicKey,
};
use countersign_core::wire::approver::{
    ApprovalAnswer, ApprovalProgress, AssertionBody, GroupProgress,
};
use countersign_core::wire::Verdict;
use countersign_core::{ApprovalStatement, Timestamp};
use std::sync::Arc;

/// What a report's freeze cancels: everything of the requester's that could still run —
/// pending requests, and approved decisions not redeemed yet (a redeemed one is already
/// executing; the application reports its outcome).
pub const CANCELLED_BY_FREEZE: &[RequestState] = &[RequestState::Pending, RequestState::Approved];

/// The longest reason an approver may give, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

/// Who answers: the authenticated approver and the device that signed the call.
pub struct Answerer<'a> {
    /// The approver, as stored when the call was authenticated.
    pub approver: &'a ApproverRecord,
    /// The device whose key signed the call.
    pub device_id: &'a str,
}

/// Why an answer was not recorded. Every refusal leaves nothing written, except
/// `CounterRegression`, which flags the credential as cloned.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// A report without a reason.
    #[error("a report needs a reason the security team can act on")]
    ReasonRequired,
    /// A reason too long or with control characters.
    #[error("reason must be at most {MAX_REASON_BYTES} characters without control characters")]
    InvalidReason,
    /// A binary field that is not unpadded base64url.
    #[error(transparent)]
    InvalidBase64(#[from] InvalidBase64),
    /// No request with this id.
    #[error("no request {0:?}")]
    NoSuchRequest(String),
    /// The approver may not act on this request.
    #[error(transparent)]
    Ineligible(#[from] Ineligible),
    /// The approval window closed (or the request expired).
    #[error("approvals closed at {0}")]
    ApprovalClosed(Timestamp),
    /// The request is no longer pending.
    #[error("request is {}", .0.as_str())]
    NotPending(RequestState),
    /// This approver's decision on the request is already recorded.
    #[error("your decision on this request is already recorded")]
    AlreadyDecided,
    /// The credential is not one of this approver's.
    #[error("this credential is not enrolled for you")]
    UnknownCredential,
    /// The credential was flagged as cloned earlier.
    #[error("this credential was flagged as cloned and is refused")]
    CredentialRevoked,
    /// The assertion's signature counter did not move forward: the credential is now flagged.
    #[error("signature counter went from {stored} to {received}")]
    CounterRegression {
        /// The counter stored for the credential.
        stored: u32,
        /// The counter in the assertion.
        received: u32,
    },
    /// The assertion failed a WebAuthn check.
    #[error(transparent)]
    Assertion(AssertionError),
    /// The approver or the device was disabled while the call was under way.
    #[error("this approver or device was disabled; nothing was recorded")]
    CallerDisabled,
    /// The server failed.
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Fault(Fault::Store(e))
    }
}

/// Checks the body's own rules: a report has a reason, and a reason is short plain text.
fn check_reason(verdict: Verdict, reason: Option<&str>) -> Result<(), Refused> {
    if verdict.needs_reason() && reason.is_none_or(str::is_empty) {
        return Err(Refused::ReasonRequired);
    }
    if let Some(reason) = reason {
        if reason.len() > MAX_REASON_BYTES || reason.chars().any(char::is_control) {
            return Err(Refused::InvalidReason);
        }
    }
    Ok(())
}

/// Checks and records one approver's answer to request `id`.
pub async fn answer(
    state: &Arc<AppState>,
    id: &str,
    answerer: Answerer<'_>,
    body: AssertionBody,
    verdict: Verdict,
) -> Result<ApprovalAnswer, Refused> {
    let decision = verdict.decision();
    check_reason(verdict, body.reason.as_deref())?;
    let approver = answerer.approver;
    let now = clock::now().map_err(Fault::from)?;
    let request = state
        .store
        .request_by_id(id)
        .await?
        .ok_or_else(|| Refused::NoSuchRequest(id.to_owned()))?;
    let tx = &request.transaction;
    let role = lifecycle::role_for(tx, &approver.id, &approver.groups)?;
    // A report is taken in any state and after the approval window: an approval that won
    // the race to the request, or the reporter's own earlier approval, must not keep the
    // requester from being frozen (the freeze then cancels what it still can).
    if verdict != Verdict::Report {
        check_open_for(state, &request, &approver.id, now).await?;
    }

    let credential_id = base64_field("credential_id", &body.credential_id)?;
    let credential = state
        .store
        .credential(&credential_id)
        .await?
        .filter(|c| c.approver_id == approver.id)
        .ok_or(Refused::UnknownCredential)?;
    if credential.cloned_at.is_some() {
        return Err(Refused::CredentialRevoked);
    }
    let key = CredentialPublicKey::from_cose_bytes(&credential.public_key).map_err(Fault::from)?;
    let challenge = ApprovalStatement::new(request.digest, decision, approver.id.clone())
        .challenge()
        .map_err(Fault::from)?;
    let (ad, cd, sig) = (
        base64_field("authenticator_data", &body.authenticator_data)?,
        base64_field("client_data_json", &body.client_data_json)?,
        base64_field("signature", &body.signature)?,
    );
    let policy = AssertionPolicy {
        rp_id: &state.config.rp_id,
        origin: &state.config.origin,
        challenge: &challenge,
        require_user_verification: tx.requirements.user_verification,
    };
    let input = AssertionInput {
        authenticator_data: &ad,
        client_data_json: &cd,
        signature: &sig,
    };
    let verified = match verify_assertion(&key, credential.sign_count, &policy, &input) {
        Ok(v) => v,
        Err(AssertionError::CounterRegression { stored, received }) => {
            // A valid signature over this request's statement whose counter is not new: if
            // this approver's decision on the request is already recorded, it is the same
            // assertion sent twice (a retry racing the first), not a cloned key.
            let recorded = state.store.approvals(&tx.id).await?;
            if recorded.iter().any(|a| a.approver_id == approver.id) {
                return Err(Refused::AlreadyDecided);
            }
            let event = Event {
                at: now,
                kind: EventKind::CredentialCloned.into(),
                request_id: Some(tx.id.clone()),
                actor: approver.id.clone(),
                data: serde_json::json!({"credential_id": body.credential_id, "stored": stored, "received": received}),
            };
            state
                .store
                .mark_cloned(&credential_id, now.unix(), event)
                .await?;
            return Err(Refused::CounterRegression { stored, received });
        }
        Err(e) => return Err(Refused::Assertion(e)),
    };

    let hardware_attested = credential.attestation == AttestationTrust::Verified;
    let approval = ApprovalRecord {
        request_id: tx.id.clone(),
        approver_id: approver.id.clone(),
        role,
        decision,
        credential_id,
        user_verified: verified.flags.user_verified(),
        hardware_attested,
        groups: match role {
            Role::Approver => lifecycle::counting_groups(tx, &approver.groups),
            Role::Requester => Vec::new(),
        },
        created_at: now.unix(),
    };
    let event = Event {
        at: now,
        kind: EventKind::approval(decision).into(),
        request_id: Some(tx.id.clone()),
        actor: approver.id.clone(),
        data: serde_json::json!({"role": role.as_str(), "credential_id": body.credential_id, "sign_count": verified.sign_count, "uv": verified.flags.user_verified(), "hardware_attested": hardware_attested, "reason": body.reason, "reported": verdict == Verdict::Report}),
    };
    let issuer = state.config.origin.clone();
    let signing_key = state.keys.active.clone();
    let decided = request.clone();
    let decide: Arc<Decide<'static>> = Arc::new(move |all: &[ApprovalRecord]| {
        lifecycle::decide(&decided, all, &signing_key, &issuer, now)
    });
    let counters = (credential.sign_count, verified.sign_count);
    if verdict == Verdict::Report {
        let report = VerifiedReport {
            request: &request,
            reporter: &approver.id,
            reason: body.reason,
            role,
            denial: approval,
            counters,
            audit: event,
            now,
        };
        return record_report(state, report, answerer.device_id, decide).await;
    }
    let outcome = state
        .store
        .record_approval(
            &approval,
            answerer.device_id,
            counters.0,
            counters.1,
            decide,
            event,
        )
        .await;
    let recorded = match outcome {
        Ok(d) => d,
        Err(StoreError::AlreadyDecided | StoreError::CounterRace) => {
            return Err(Refused::AlreadyDecided)
        }
        Err(StoreError::NotPending(s)) => return Err(Refused::NotPending(s)),
        Err(StoreError::NoSuchRequest) => return Err(Refused::NoSuchRequest(tx.id.clone())),
        Err(StoreError::ApprovalClosed) => return Err(Refused::ApprovalClosed(tx.approve_by)),
        Err(StoreError::CallerDisabled) => return Err(Refused::CallerDisabled),
        Err(e) => return Err(e.into()),
    };
    state.changed(&tx.id);
    state.metrics.event(match verdict {
        Verdict::Approve => "approval",
        Verdict::Deny | Verdict::Report => "denial",
    });
    if let Some(decision) = &recorded.decision {
        state.metrics.event(decision.state.as_str());
    }
    let progress = lifecycle::progress(tx, &recorded.approvals);
    Ok(ApprovalAnswer {
        counted: true,
        role,
        state: recorded
            .decision
            .as_ref()
            .map_or(RequestState::Pending, |d| d.state),
        progress: Some(ApprovalProgress {
            self_step_up_done: progress.self_done,
            approvers: progress.approvers(),
            approvers_required: tx.requirements.approvers(),
            groups: progress
                .groups
                .iter()
                .map(|g| GroupProgress {
                    group: g.group.clone(),
                    approvers: g.filled(),
                    required: g.required,
                })
                .collect(),
        }),
        requester_frozen: None,
        cancelled_requests: None,
    })
}

/// Refuses an approval or denial of a request that is no longer pending, past its approval
/// window, or already decided by this approver (checked again inside the transaction).
async fn check_open_for(
    state: &AppState,
    request: &RequestRecord,
    approver_id: &str,
    now: Timestamp,
) -> Result<(), Refused> {
    let tx = &request.transaction;
    if now > tx.approve_by || request.state == RequestState::Expired {
        return Err(Refused::ApprovalClosed(tx.approve_by));
    }
    if request.state != RequestState::Pending {
        return Err(Refused::NotPending(request.state));
    }
    let approvals = state.store.approvals(&tx.id).await?;
    if approvals.iter().any(|a| a.approver_id == approver_id) {
        return Err(Refused::AlreadyDecided);
    }
    Ok(())
}

/// A report whose assertion verified, ready to record.
struct VerifiedReport<'a> {
    request: &'a RequestRecord,
    reporter: &'a str,
    reason: Option<String>,
    role: Role,
    denial: ApprovalRecord,
    /// The credential's counter as read, and the assertion's.
    counters: (u32, u32),
    audit: Event,
    now: Timestamp,
}

/// Records a verified report in one transaction (the reporter's denial while the request is
/// pending, the freeze, the cancellation of everything of the requester's that could still
/// run), then calls the security team's webhook.
async fn record_report(
    state: &Arc<AppState>,
    report: VerifiedReport<'_>,
    device_id: &str,
    decide: Arc<Decide<'static>>,
) -> Result<ApprovalAnswer, Refused> {
    let tx = &report.request.transaction;
    let record = FreezeRecord {
        requester_id: tx.requester.id.clone(),
        frozen_at: report.now.unix(),
        reported_by: report.reporter.to_owned(),
        request_id: tx.id.clone(),
        reason: report.reason.clone(),
    };
    let audit = Event {
        at: report.now,
        kind: EventKind::RequesterFrozen.into(),
        request_id: Some(tx.id.clone()),
        actor: report.reporter.to_owned(),
        data: serde_json::json!({"requester": tx.requester.id, "reason": report.reason}),
    };
    let (at, reporter) = (report.now, report.reporter.to_owned());
    let freeze = Freeze {
        record,
        audit,
        cancels: CANCELLED_BY_FREEZE,
        cancel_audit: Arc::new(move |id, was| Event {
            at,
            kind: EventKind::RequestCancelled.into(),
            request_id: Some(id.to_owned()),
            actor: reporter.clone(),
            data: serde_json::json!({"reason": "requester_frozen", "was": was.as_str()}),
        }),
    };
    let (previous, new) = report.counters;
    let outcome = state
        .store
        .record_report(
            &report.denial,
            device_id,
            previous,
            new,
            decide,
            report.audit,
            freeze,
        )
        .await;
    let reported = match outcome {
        Ok(reported) => reported,
        Err(StoreError::CounterRace) => return Err(Refused::AlreadyDecided),
        Err(StoreError::CallerDisabled) => return Err(Refused::CallerDisabled),
        Err(e) => return Err(e.into()),
    };
    state.metrics.event("report");
    // Once each: the reported request is among the cancelled ones when an approval won.
    if !reported.cancelled.contains(&tx.id) {
        state.changed(&tx.id);
    }
    for id in &reported.cancelled {
        state.changed(id);
    }
    let decision = reported.denial.as_ref().and_then(|d| d.decision.as_ref());
    if let Some(decision) = decision {
        state.metrics.event(decision.state.as_str());
    }
    let now_state = match decision {
        Some(d) => d.state,
        None if reported.cancelled.contains(&tx.id) => RequestState::Cancelled,
        None => report.request.state,
    };
    crate::webhook::notify(
        state.clone(),
        tx.id.clone(),
        serde_json::json!({
            "event": "request.reported",
            "request_id": tx.id,
            "digest": report.request.digest,
            "action": tx.action,
            "object": tx.object,
            "requester": tx.requester,
            "audience": tx.audience,
            "reported_by": report.reporter,
            "reason": report.reason,
            "at": report.now,
            "requester_frozen": true,
            "cancelled_requests": reported.cancelled,
        }),
    );
    Ok(ApprovalAnswer {
        counted: reported.denial.is_some(),
        role: report.role,
        state: now_state,
        progress: None,
        requester_frozen: Some(true),
        cancelled_requests: Some(reported.cancelled),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_needs_a_reason_and_a_reason_is_short_plain_text() {
        assert!(matches!(
            check_reason(Verdict::Report, None),
            Err(Refused::ReasonRequired)
        ));
        assert!(matches!(
            check_reason(Verdict::Report, Some("")),
            Err(Refused::ReasonRequired)
        ));
        assert!(check_reason(Verdict::Report, Some("I did not ask for this")).is_ok());
        assert!(check_reason(Verdict::Deny, None).is_ok());
        assert!(check_reason(Verdict::Approve, None).is_ok());
        let long = "x".repeat(MAX_REASON_BYTES + 1);
        assert!(matches!(
            check_reason(Verdict::Deny, Some(&long)),
            Err(Refused::InvalidReason)
        ));
        assert!(check_reason(Verdict::Deny, Some(&long[1..])).is_ok());
        assert!(matches!(
            check_reason(Verdict::Deny, Some("two\nlines")),
            Err(Refused::InvalidReason)
        ));
    }
}
