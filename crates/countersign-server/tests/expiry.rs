//! Approval and execution deadlines, with the shortest windows policy allows (30 s to approve,
//! 10 s to execute), against the real binary. The waits are real: no clock is faked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::Decision;
use countersign_testkit::*;
use std::time::{Duration, Instant};

const SHORT_WINDOWS: &str = r#"
@id("short-windows")
@reason("short windows")
@self_step_up("true")
@approval_ttl("30")
@execution_ttl("10")
permit(principal, action == Action::"payout.send", resource);
"#;

#[test]
fn late_approvals_and_late_redemptions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.cedar");
    std::fs::write(&policies, SHORT_WINDOWS).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[policy]\npolicies = {policies:?}\n"),
    )
    .unwrap();
    let server = Server::start_in(dir);
    let app = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let started = Instant::now();
    let create = |key: &str| {
        let (status, created) = server.post(
            &app,
            "/v1/requests",
            &payout(key, "2500", "alice@example.com"),
        );
        assert_eq!(status, 201, "{created}");
        (
            created["id"].as_str().unwrap().to_owned(),
            created["digest"].as_str().unwrap().to_owned(),
        )
    };
    let (late_id, late_digest) = create("late");
    let (quick_id, quick_digest) = create("quick");
    let (_, stream) = EventStream::open(&server, &alice, None);
    let stream = stream.unwrap();
    let (status, _) = alice.decide(&server, &quick_id, &quick_digest, Decision::Approve);
    assert_eq!(status, 200);
    let (status, decision) = server.get(&app, &format!("/v1/requests/{quick_id}/decision"));
    assert_eq!(status, 200);
    let exp = decision["exp"].as_i64().unwrap();

    // Past the execution deadline the decision cannot be redeemed, and stays unredeemed.
    sleep_until_after(exp);
    let (status, problem) = server.post(
        &app,
        &format!("/v1/requests/{quick_id}/redeem"),
        &serde_json::json!({}),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (410, Some("decision_expired")),
        "{problem}"
    );
    let (_, now) = server.get(&app, &format!("/v1/requests/{quick_id}"));
    assert_eq!(
        now["state"].as_str(),
        Some("approved"),
        "nothing was consumed"
    );

    // Past the approval deadline the request reads as expired and approvals are refused.
    let deadline = started + Duration::from_secs(32);
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    let (_, now) = server.get(&app, &format!("/v1/requests/{late_id}"));
    assert_eq!(now["state"].as_str(), Some("expired"));

    // The server's sweep expires it once, audited, and tells the approver's stream.
    let swept_by = Instant::now() + Duration::from_secs(20);
    let expired = loop {
        let export = admin(&server.data_dir(), &["audit", "export"]);
        let expired: Vec<String> = export
            .lines()
            .filter(|l| l.contains("\"request.expired\""))
            .map(str::to_owned)
            .collect();
        if !expired.is_empty() {
            break expired;
        }
        assert!(Instant::now() < swept_by, "no request.expired entry");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert!(expired[0].contains(&late_id), "{expired:?}");
    assert!(expired[0].contains("\"actor\":\"server\""), "{expired:?}");
    let pushed = std::iter::from_fn(|| stream.next_event(10))
        .map(|e| verify_pushed(&server, &e.data))
        .find(|p| p.transaction.id == late_id && p.state == "expired");
    assert!(pushed.is_some(), "the stream says it expired");

    let entries = server.audit_len();
    let (status, problem) = alice.decide(&server, &late_id, &late_digest, Decision::Approve);
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("approval_expired")),
        "{problem}"
    );
    assert_eq!(server.audit_len(), entries, "the refusal changed nothing");
    let pending: Vec<String> = alice
        .pending(&server)
        .into_iter()
        .map(|p| p.transaction.id)
        .collect();
    assert!(
        !pending.contains(&late_id),
        "an expired request is not offered to approvers: {pending:?}"
    );
}
