//! The example payouts service (its real binary) against the real Countersign server: it pays
//! what needs no step-up, pays an approved payout once, and pays nothing that was denied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use countersign_core::Decision;
use support::payouts_service::*;
use support::server::*;

#[test]
fn pays_only_what_policy_or_an_approver_allowed() {
    let server = Server::start();
    let key = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let service = start_service(&server, &key);

    let (status, answer) = pay(&service, "small-1", "50");
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("executed")),
        "{answer}"
    );
    assert_eq!(ledger(&service).len(), 1);

    // A 2,500 EUR payout waits for Alice's own key; nothing is paid before.
    let (status, answer) = pay(&service, "big-1", "2500");
    assert_eq!(
        (status, answer["status"].as_str()),
        (202, Some("pending")),
        "{answer}"
    );
    assert_eq!(ledger(&service).len(), 1);
    let pushed = alice.pending(&server);
    let request = pushed
        .iter()
        .find(|p| p.transaction.id == answer["request_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        answer["fingerprint"].as_str().unwrap(),
        request.digest.fingerprint(),
        "the requester and the approver see the same fingerprint"
    );
    let (code, _) = alice.decide(
        &server,
        &request.transaction.id,
        &request.digest.to_base64url(),
        Decision::Approve,
    );
    assert_eq!(code, 200);
    let done = wait_for(&service, "big-1", "pending");
    assert_eq!(done["status"].as_str(), Some("executed"), "{done}");
    let paid = ledger(&service);
    assert_eq!(paid.len(), 2);
    assert_eq!(paid[1]["payout"]["id"].as_str(), Some("big-1"));
    assert_eq!(
        paid[1]["approvers"],
        serde_json::json!(["alice@example.com"])
    );
    let (_, state) = server.get(&key, &format!("/v1/requests/{}", request.transaction.id));
    assert_eq!(
        state["state"].as_str(),
        Some("executed"),
        "the outcome was reported"
    );

    // A denied payout is never paid.
    let (_, answer) = pay(&service, "big-2", "2600");
    let id = answer["request_id"].as_str().unwrap().to_owned();
    let digest = alice
        .pending(&server)
        .into_iter()
        .find(|p| p.transaction.id == id)
        .unwrap()
        .digest;
    let (code, _) = alice.decide(&server, &id, &digest.to_base64url(), Decision::Deny);
    assert_eq!(code, 200);
    let done = wait_for(&service, "big-2", "pending");
    assert_eq!(done["status"].as_str(), Some("refused"), "{done}");
    assert!(
        done["reason"].as_str().unwrap().contains("denied"),
        "{done}"
    );
    assert_eq!(
        ledger(&service).len(),
        2,
        "nothing paid for the denied request"
    );
}
