//! End to end, the attacks a step-up system exists to stop: the real server binary, the
//! example payouts service's real binary (the protected application) and, for the token
//! checks, the real `countersign verify-decision`. Each attack asserts the exact rejection
//! and that the payouts service paid nothing it should not have. Assertions here come from
//! the protocol-level software key (countersign-forge), which can be made to sign what an
//! attacker would send; the honest CTAP2 path is covered by tests/cli_flows.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use countersign_core::transaction::Transaction;
use countersign_core::{b64, Decision};
use serde_json::json;
use support::payouts_service::{ledger, pay, start_service, wait_for, Service};
use support::server::{session_hash, Approver, Server, ORIGIN, RP_ID};

/// The real server, the payouts service with its API key, and Alice (who asks for payouts
/// and confirms them with her own key).
struct Scene {
    server: Server,
    app_key: String,
    service: Service,
    alice: Approver,
}

fn scene() -> Scene {
    scene_with_alice_in(&[])
}

fn scene_with_alice_in(groups: &[&str]) -> Scene {
    scene_on(Server::start(), groups)
}

fn scene_on(server: Server, groups: &[&str]) -> Scene {
    let app_key = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", groups, 1);
    let service = start_service(&server, &app_key);
    Scene {
        server,
        app_key,
        service,
        alice,
    }
}

impl Scene {
    /// Asks the service for a payout that needs Alice's step-up; returns the request id and
    /// the transaction as Alice's device received it (verified against the server key).
    fn pending_payout(&self, payout_id: &str, amount: &str) -> (String, Transaction) {
        let (status, answer) = pay(&self.service, payout_id, amount);
        assert_eq!(status, 202, "{answer}");
        let id = answer["request_id"].as_str().unwrap().to_owned();
        let pushed = self
            .alice
            .pending(&self.server)
            .into_iter()
            .find(|p| p.transaction.id == id)
            .unwrap();
        (id, pushed.transaction)
    }

    /// Posts an approval body for request `id` as `approver`.
    fn approve(&self, approver: &Approver, id: &str, body: &serde_json::Value) -> (u16, String) {
        let (status, answer) = approver.send(
            &self.server,
            "POST",
            &format!("/v1/approver/requests/{id}/approve"),
            Some(body),
        );
        let code = answer["code"].as_str().unwrap_or("").to_owned();
        (
            status,
            if status == 200 {
                answer.to_string()
            } else {
                code
            },
        )
    }

    /// The payout was not paid and is still waiting.
    fn nothing_paid(&self, payout_id: &str) {
        assert!(
            ledger(&self.service)
                .iter()
                .all(|e| e["payout"]["id"] != payout_id),
            "payout {payout_id} was paid"
        );
        let status: serde_json::Value =
            reqwest::blocking::get(format!("{}/payouts/{payout_id}", self.service.base))
                .unwrap()
                .json()
                .unwrap();
        assert_eq!(status["status"], "pending", "{status}");
    }
}

fn digest_of(tx: &Transaction) -> String {
    tx.digest().unwrap().to_base64url()
}

/// An approval body signed by `approver`'s key over `digest`, with a chosen counter, RP id
/// and origin.
fn signed_body(
    approver: &Approver,
    digest: &str,
    count: u32,
    rp_id: &str,
    origin: &str,
) -> serde_json::Value {
    approver.assertion_for_rp(digest, Decision::Approve, rp_id, origin, count)
}

#[test]
fn an_assertion_for_one_request_is_refused_on_another() {
    let s = scene();
    let (_, tx1) = s.pending_payout("p1", "2500");
    let (second, _) = s.pending_payout("p2", "2600");
    let for_first = signed_body(&s.alice, &digest_of(&tx1), 1, RP_ID, ORIGIN);
    assert_eq!(
        s.approve(&s.alice, &second, &for_first),
        (403, "challenge_mismatch".into())
    );
    s.nothing_paid("p2");
    s.nothing_paid("p1");
}

#[test]
fn amount_object_audience_or_session_changed_after_signing_is_refused() {
    let s = scene();
    let (id, tx) = s.pending_payout("p1", "2500");
    type Change = (&'static str, fn(&mut Transaction));
    let changes: [Change; 4] = [
        ("amount", |t| {
            if let Some(a) = t.amount.as_mut() {
                a.value = "25000".into();
            }
        }),
        ("object", |t| t.object = "vendor:6666".into()),
        ("audience", |t| t.audience = "treasury".into()),
        ("session", |t| {
            t.session = countersign_core::Digest::from_base64url(&session_hash("attacker-session"))
                .unwrap();
        }),
    ];
    for (n, (what, change)) in changes.iter().enumerate() {
        let mut altered = tx.clone();
        change(&mut altered);
        assert_ne!(
            digest_of(&altered),
            digest_of(&tx),
            "{what} changes the digest"
        );
        let count = u32::try_from(n).unwrap() + 1;
        let body = signed_body(&s.alice, &digest_of(&altered), count, RP_ID, ORIGIN);
        assert_eq!(
            s.approve(&s.alice, &id, &body),
            (403, "challenge_mismatch".into()),
            "{what}"
        );
    }
    s.nothing_paid("p1");
}

#[test]
fn an_assertion_for_another_rp_id_or_origin_is_refused() {
    let s = scene();
    let (id, tx) = s.pending_payout("p1", "2500");
    let digest = digest_of(&tx);
    let other_rp = signed_body(&s.alice, &digest, 1, "evil.example.com", ORIGIN);
    assert_eq!(
        s.approve(&s.alice, &id, &other_rp),
        (403, "rp_id_mismatch".into())
    );
    let other_origin = signed_body(&s.alice, &digest, 2, RP_ID, "https://evil.example.com");
    assert_eq!(
        s.approve(&s.alice, &id, &other_origin),
        (403, "origin_mismatch".into())
    );
    s.nothing_paid("p1");
}

#[test]
fn an_unknown_credential_or_a_disabled_approver_is_refused() {
    let s = scene();
    let (id, tx) = s.pending_payout("p1", "2500");
    let mut unknown = signed_body(&s.alice, &digest_of(&tx), 1, RP_ID, ORIGIN);
    unknown["credential_id"] = b64::encode(b"not-enrolled").into();
    assert_eq!(
        s.approve(&s.alice, &id, &unknown),
        (403, "unknown_credential".into())
    );

    support::server::admin(
        &s.server.data_dir(),
        &["approver", "disable", "alice@example.com"],
    );
    // Disabling the approver disables their devices: the call is not even authenticated.
    let body = signed_body(&s.alice, &digest_of(&tx), 2, RP_ID, ORIGIN);
    assert_eq!(
        s.approve(&s.alice, &id, &body),
        (401, "unauthorized".into())
    );
    s.nothing_paid("p1");
}

#[test]
fn a_cloned_key_is_caught_by_its_counter_and_then_refused() {
    let s = scene();
    let (first, tx1) = s.pending_payout("p1", "2500");
    let (status, _) = s.approve(
        &s.alice,
        &first,
        &signed_body(&s.alice, &digest_of(&tx1), 5, RP_ID, ORIGIN),
    );
    assert_eq!(status, 200);
    assert_eq!(wait_for(&s.service, "p1", "pending")["status"], "executed");

    // A copy of the key signs with an older counter: flagged as cloned.
    let (second, tx2) = s.pending_payout("p2", "2600");
    let stale = signed_body(&s.alice, &digest_of(&tx2), 3, RP_ID, ORIGIN);
    assert_eq!(
        s.approve(&s.alice, &second, &stale),
        (403, "counter_regression".into())
    );
    // From then on the credential is refused, whatever the counter.
    let fresh = signed_body(&s.alice, &digest_of(&tx2), 50, RP_ID, ORIGIN);
    assert_eq!(
        s.approve(&s.alice, &second, &fresh),
        (403, "credential_revoked".into())
    );
    s.nothing_paid("p2");
    assert_eq!(ledger(&s.service).len(), 1, "only the first, honest payout");
}

#[test]
fn the_requester_cannot_fill_the_second_pair_of_eyes() {
    // Alice is also a finance approver; a 20,000 EUR payout needs her own key and one
    // other finance approver.
    let s = scene_with_alice_in(&["finance-approvers"]);
    let (id, tx) = s.pending_payout("p1", "20000");
    let (status, answer) = s.approve(
        &s.alice,
        &id,
        &signed_body(&s.alice, &digest_of(&tx), 1, RP_ID, ORIGIN),
    );
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer["role"], "requester",
        "counted as her own step-up only"
    );
    assert_eq!(answer["state"], "pending");
    assert_eq!(answer["progress"]["approvers"], 0);
    // Trying again to count as the other approver: already decided.
    let again = signed_body(&s.alice, &digest_of(&tx), 2, RP_ID, ORIGIN);
    assert_eq!(
        s.approve(&s.alice, &id, &again),
        (409, "already_decided".into())
    );
    s.nothing_paid("p1");
}

/// Every payout needs two finance approvers (and not the requester's own key).
const TWO_FINANCE_APPROVERS: &str = r#"
@id("two-finance-approvers")
@reason("two finance approvers")
@approvers("2")
@group("finance-approvers")
@approval_ttl("600")
@execution_ttl("300")
permit(principal, action == Action::"payout.send", resource);
"#;

#[test]
fn the_same_approver_counts_once_toward_a_quorum_even_from_a_second_device() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.cedar");
    std::fs::write(&policies, TWO_FINANCE_APPROVERS).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[policy]\npolicies = {policies:?}\n"),
    )
    .unwrap();
    let s = scene_on(Server::start_in(dir), &[]);
    let bob = Approver::add_and_enroll(&s.server, "bob@example.com", &["finance-approvers"], 2);
    let bob_laptop = Approver::enroll(&s.server, "bob@example.com", 3).unwrap();
    let carol = Approver::add_and_enroll(&s.server, "carol@example.com", &["finance-approvers"], 4);
    let (status, answer) = pay(&s.service, "p1", "2500");
    assert_eq!(status, 202, "{answer}");
    let id = answer["request_id"].as_str().unwrap();
    let digest = bob
        .pending(&s.server)
        .into_iter()
        .find(|p| p.transaction.id == id)
        .unwrap()
        .digest
        .to_base64url();

    let (status, answer) = bob.decide(&s.server, id, &digest, Decision::Approve);
    assert_eq!(
        (status, answer["state"].as_str()),
        (200, Some("pending")),
        "{answer}"
    );
    let (status, answer) = bob.decide(&s.server, id, &digest, Decision::Approve);
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("already_decided"))
    );
    let (status, answer) = bob_laptop.decide(&s.server, id, &digest, Decision::Approve);
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("already_decided")),
        "a second device is the same person"
    );
    s.nothing_paid("p1");

    // A second, different approver completes the quorum: paid once, both named.
    let (status, answer) = carol.decide(&s.server, id, &digest, Decision::Approve);
    assert_eq!((status, answer["state"].as_str()), (200, Some("approved")));
    assert_eq!(wait_for(&s.service, "p1", "pending")["status"], "executed");
    let paid = ledger(&s.service);
    assert_eq!(paid.len(), 1);
    assert_eq!(
        paid[0]["approvers"],
        json!(["bob@example.com", "carol@example.com"])
    );
}

/// Approves payout `p1` honestly and waits until the service paid it; returns the request id,
/// the transaction and the decision token.
fn approved_and_paid(s: &Scene) -> (String, Transaction, String) {
    let (id, tx) = s.pending_payout("p1", "2500");
    let (status, _) = s.approve(
        &s.alice,
        &id,
        &signed_body(&s.alice, &digest_of(&tx), 1, RP_ID, ORIGIN),
    );
    assert_eq!(status, 200);
    assert_eq!(wait_for(&s.service, "p1", "pending")["status"], "executed");
    let (_, decision) = s
        .server
        .get(&s.app_key, &format!("/v1/requests/{id}/decision"));
    (id, tx, decision["token"].as_str().unwrap().to_owned())
}

#[test]
fn a_decision_is_redeemed_once() {
    let s = scene();
    let (id, _, _) = approved_and_paid(&s);
    let (status, answer) =
        s.server
            .post(&s.app_key, &format!("/v1/requests/{id}/redeem"), &json!({}));
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("already_redeemed")),
        "{answer}"
    );
    // Another application's key does not even see the request.
    let other = s.server.api_key("treasury", "treasury-service");
    let (status, _) = s
        .server
        .post(&other, &format!("/v1/requests/{id}/redeem"), &json!({}));
    assert_eq!(status, 404);
    assert_eq!(ledger(&s.service).len(), 1, "paid exactly once");
}

/// `countersign verify-decision` on `token` for `tx`, as `audience`; returns (exit, JSON).
fn verify(s: &Scene, token: &str, tx: &Transaction, audience: &str) -> (i32, serde_json::Value) {
    support::verify_decision(
        &s.server,
        &s.app_key,
        token,
        &tx.canonical_json().unwrap(),
        audience,
    )
}

#[test]
fn a_token_for_another_audience_or_from_an_unknown_key_is_refused() {
    let s = scene();
    let (_, tx, token) = approved_and_paid(&s);
    let jwks = s.server.jwks_bytes();
    // The genuine token checks out for its own audience...
    let (status, out) = verify(&s, &token, &tx, "payouts-service");
    assert_eq!((status, &out["valid"]), (0, &json!(true)), "{out}");
    // ...not for another application.
    let (status, out) = verify(&s, &token, &tx, "treasury-service");
    assert_eq!(
        (status, out["code"].as_str()),
        (1, Some("wrong_audience")),
        "{out}"
    );

    // The same claims signed by a key the server never published.
    let forger = countersign_core::jwk::SigningKey::from_seed(&[66; 32]);
    let payload = b64::decode(token.split('.').nth(1).unwrap()).unwrap();
    // The genuine header with only the key id changed.
    let genuine: serde_json::Value =
        serde_json::from_slice(&b64::decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    let header_with_kid = |kid: &str| {
        let mut h = genuine.clone();
        h["kid"] = kid.into();
        b64::encode(serde_json::to_vec(&h).unwrap())
    };
    let header = header_with_kid(forger.kid());
    let forged = countersign_core::token::sign_compact(&header, &payload, &forger);
    let (status, out) = verify(&s, &forged, &tx, "payouts-service");
    assert_eq!(
        (status, out["code"].as_str()),
        (1, Some("unknown_key")),
        "{out}"
    );
    // Or claiming the server's own key id.
    let server_kid = serde_json::from_slice::<serde_json::Value>(&jwks).unwrap()["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = header_with_kid(&server_kid);
    let forged = countersign_core::token::sign_compact(&header, &payload, &forger);
    let (status, out) = verify(&s, &forged, &tx, "payouts-service");
    assert_eq!(
        (status, out["code"].as_str()),
        (1, Some("bad_signature")),
        "{out}"
    );
    assert_eq!(ledger(&s.service).len(), 1);
}
