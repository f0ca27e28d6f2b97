//! The protected-application SDK against the real server binary: ask, wait, verify offline,
//! redeem once, report; and every way it refuses to let an action run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::wire::{ProblemCode, RequestState};
use countersign_core::Decision;
use countersign_sdk::{verify_decision, Client, Context, Created, SdkError, StepUp};
use countersign_testkit::*;
use std::sync::Arc;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn payout_step_up(key: &str, value: &str, requester: &str) -> StepUp {
    StepUp::new(key, "payout.send", "vendor:4711", requester, "session-1").amount(value, "EUR")
}

#[test]
fn approved_step_up_is_verified_redeemed_once_and_reported() {
    let server = Arc::new(Server::start());
    let key = server.api_key("payouts", "payouts-service");
    let alice = Arc::new(Approver::add_and_enroll(
        &server,
        "alice@example.com",
        &[],
        1,
    ));
    let id = runtime().block_on(async {
        let client = Client::connect(&server.base, &key, "payouts-service")
            .await
            .unwrap();
        assert!(matches!(
            client
                .request(&payout_step_up("small", "50", "alice@example.com"))
                .await
                .unwrap(),
            Created::NotRequired
        ));
        let Created::StepUp(pending) = client
            .request(&payout_step_up("p1", "2500", "alice@example.com"))
            .await
            .unwrap()
        else {
            panic!("a 2500 EUR payout needs a step-up")
        };
        assert_eq!(pending.transaction.amount.as_ref().unwrap().value, "2500");
        assert_eq!(pending.transaction.audience, "payouts-service");

        let (s, a, id, digest) = (
            server.clone(),
            alice.clone(),
            pending.id.clone(),
            pending.transaction.digest().unwrap().to_base64url(),
        );
        let approving = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(300));
            a.decide(&s, &id, &digest, Decision::Approve).0
        });
        client
            .wait(&pending, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(approving.await.unwrap(), 200);

        let decision = client.verified_decision(&pending).await.unwrap();
        assert_eq!(
            decision.claims().approvers,
            vec!["alice@example.com".to_owned()]
        );
        let proof = client.redeem(decision.clone()).await.unwrap();
        assert_eq!(proof.decision().token(), decision.token());
        let again = client.redeem(decision).await.unwrap_err();
        assert_eq!(again.code(), Some(&ProblemCode::AlreadyRedeemed), "{again}");
        client.report(&pending, true, Some("paid")).await.unwrap();
        pending.id
    });
    let (_, request) = server.get(&key, &format!("/v1/requests/{id}"));
    assert_eq!(request["state"].as_str(), Some("executed"));
}

#[test]
fn denials_and_refusals_never_let_the_action_run() {
    let server = Arc::new(Server::start());
    let key = server.api_key("payouts", "payouts-service");
    let other_key = server.api_key("admin-console", "admin-console");
    let bob = Arc::new(Approver::add_and_enroll(
        &server,
        "bob@example.com",
        &["finance-approvers"],
        2,
    ));
    let alice = Arc::new(Approver::add_and_enroll(
        &server,
        "alice@example.com",
        &[],
        1,
    ));
    let jwks = server.jwks_bytes();
    runtime().block_on(async {
        let client = Client::connect(&server.base, &key, "payouts-service")
            .await
            .unwrap();

        // Four eyes: Alice's own approval is not enough, Bob denies.
        let Created::StepUp(pending) = client
            .request(&payout_step_up("big", "20000", "alice@example.com"))
            .await
            .unwrap()
        else {
            panic!("step-up expected")
        };
        let digest = pending.transaction.digest().unwrap().to_base64url();
        let (s, a, b, id, d) = (
            server.clone(),
            alice.clone(),
            bob.clone(),
            pending.id.clone(),
            digest.clone(),
        );
        let statuses = tokio::task::spawn_blocking(move || {
            (
                a.decide(&s, &id, &d, Decision::Approve).0,
                b.decide(&s, &id, &d, Decision::Deny).0,
            )
        })
        .await
        .unwrap();
        assert_eq!(statuses, (200, 200));
        let ended = client
            .wait(&pending, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(
            matches!(&ended, SdkError::NotApproved { state, .. } if *state == RequestState::Denied),
            "{ended}"
        );
        let refused = client.verified_decision(&pending).await.unwrap_err();
        assert!(matches!(refused, SdkError::NotApproved { .. }), "{refused}");

        // Policy forbids: the server says so precisely, and there is nothing to approve.
        let compromised = payout_step_up("c1", "2500", "alice@example.com").context(Context {
            device_posture: Some("compromised".into()),
            ..Context::default()
        });
        let forbidden = client.request(&compromised).await.unwrap_err();
        assert_eq!(forbidden.code(), Some(&ProblemCode::PolicyForbids), "{forbidden}");

        // Nothing pending expires on its own here; a wait with no time left times out.
        let Created::StepUp(waiting) = client
            .request(&payout_step_up("slow", "2500", "alice@example.com"))
            .await
            .unwrap()
        else {
            panic!("step-up expected")
        };
        let timeout = client
            .wait(&waiting, Duration::from_millis(0))
            .await
            .unwrap_err();
        assert!(matches!(timeout, SdkError::Timeout(_)), "{timeout}");
        client.cancel(&waiting).await.unwrap();
        let cancelled = client
            .wait(&waiting, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(&cancelled, SdkError::NotApproved { state, .. } if *state == RequestState::Cancelled));

        // Another application's key cannot see this audience's requests.
        let other = Client::connect(&server.base, &other_key, "admin-console")
            .await
            .unwrap();
        let hidden = other.verified_decision(&pending).await.unwrap_err();
        assert_eq!(hidden.code(), Some(&ProblemCode::NotFound), "{hidden}");
    });

    // Offline verification, as `countersign verify-decision` will run it.
    let app = server.api_key("payouts2", "payouts-service");
    let (_, created) = server.post(
        &app,
        "/v1/requests",
        &payout("v1", "2500", "alice@example.com"),
    );
    let (id, digest) = (
        created["id"].as_str().unwrap(),
        created["digest"].as_str().unwrap(),
    );
    assert_eq!(alice.decide(&server, id, digest, Decision::Approve).0, 200);
    let (_, decision) = server.get(&app, &format!("/v1/requests/{id}/decision"));
    let token = decision["token"].as_str().unwrap();
    let tx_json = serde_json::to_vec(&created["transaction"]).unwrap();
    let now = unix_now();
    let claims =
        verify_decision(token, &jwks, &tx_json, ORIGIN, "payouts-service", now, 0).unwrap();
    assert_eq!(claims.jti, id);
    let mut changed = created["transaction"].clone();
    changed["amount"]["value"] = "2600".into();
    let changed = serde_json::to_vec(&changed).unwrap();
    let refused =
        verify_decision(token, &jwks, &changed, ORIGIN, "payouts-service", now, 0).unwrap_err();
    assert!(matches!(refused, SdkError::Token(_)), "{refused}");
    let refused =
        verify_decision(token, &jwks, &tx_json, ORIGIN, "admin-console", now, 0).unwrap_err();
    assert!(matches!(refused, SdkError::Token(_)), "{refused}");
    let refused = verify_decision(
        token,
        &jwks,
        &tx_json,
        "https://evil.example",
        "payouts-service",
        now,
        0,
    )
    .unwrap_err();
    assert!(matches!(refused, SdkError::Token(_)), "{refused}");
}
