//! One approval, end to end, in one process: a transaction, the challenge an approver derives,
//! a software authenticator's assertion, the server's verification, the decision token, the
//! protected application's check, and the audit chain. Run it with
//! `cargo run -p countersign-core --example walkthrough`.
//!
//! The authenticator here is the protocol crate's test key (no USB key is involved); the
//! server, the desktop app and the real CTAP2 path arrive with their own crates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::audit::{self, Checkpoint, Event, Head};
use countersign_core::jwk::{KeySet, SigningKey};
use countersign_core::token::{self, DecisionClaims, Expectations};
use countersign_core::transaction::Transaction;
use countersign_core::webauthn::auth_data::Flags;
use countersign_core::webauthn::{verify_assertion, AssertionPolicy, ClientData};
use countersign_core::{ApprovalStatement, Decision};
use countersign_forge::*;

fn main() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/vectors/transaction.json")).unwrap();
    let tx = Transaction::from_json(doc["cases"][0]["transaction"].to_string().as_bytes()).unwrap();
    let digest = tx.digest().unwrap();
    println!("1. transaction {} — {} on {}", tx.id, tx.action, tx.object);
    if let Some(amount) = &tx.amount {
        println!(
            "   amount {} {}, requested by {} ({:?})",
            amount.value, amount.currency, tx.requester.id, tx.requester.kind
        );
    }
    println!("   digest {digest}");

    let approver = "bob@example.com";
    let statement = ApprovalStatement::new(digest, Decision::Approve, approver);
    let challenge = statement.challenge().unwrap();
    let client_data = ClientData::get(&challenge, ORIGIN).to_json();
    println!(
        "2. {approver} derives the challenge {}",
        countersign_core::b64::encode(challenge)
    );

    let key = ForgingKey::es256(0x21);
    let assertion = assert_with(&key, RP_ID, Flags::UP | Flags::UV, 12, &client_data);
    println!("3. the (software) key signs: clientDataJSON {client_data}");

    let policy = AssertionPolicy {
        rp_id: RP_ID,
        origin: ORIGIN,
        challenge: &challenge,
        require_user_verification: true,
    };
    let verified = verify_assertion(&key.public(), 11, &policy, &assertion.input()).unwrap();
    println!(
        "4. server verified the assertion: UV={}, counter {}",
        verified.flags.user_verified(),
        verified.sign_count
    );

    let server_key = SigningKey::from_seed(&[0x61; 32]);
    let claims = DecisionClaims::for_transaction(
        &tx,
        ORIGIN,
        Decision::Approve,
        tx.created_at.unix() + 60,
        vec![approver.into()],
        vec!["hwk".into(), "user".into()],
    )
    .unwrap();
    let decision = token::issue(&claims, &server_key).unwrap();
    println!(
        "5. decision token ({} bytes) signed by kid {}",
        decision.len(),
        server_key.kid()
    );

    let jwks = KeySet::new([server_key.verifying_key().clone()]);
    let expect = Expectations {
        issuer: ORIGIN,
        audience: &tx.audience,
        now: tx.created_at.unix() + 90,
        leeway_seconds: 0,
    };
    token::verify_for_transaction(&decision, &jwks, &expect, &tx).unwrap();
    println!(
        "6. {} verified the token against the transaction it is about to execute",
        tx.audience
    );
    let mut tampered = tx.clone();
    tampered.amount.as_mut().unwrap().value = "125000".into();
    let refused = token::verify_for_transaction(&decision, &jwks, &expect, &tampered).unwrap_err();
    println!("   the same token for a changed amount is refused: {refused}");

    let mut head = Head::GENESIS;
    let mut entries = Vec::new();
    for (kind, actor) in [
        ("request.created", "api-key:payouts"),
        ("approval.accepted", approver),
        ("decision.issued", "server"),
        ("decision.redeemed", "api-key:payouts"),
    ] {
        let entry = head
            .append(Event {
                at: tx.created_at,
                kind: kind.into(),
                request_id: Some(tx.id.clone()),
                actor: actor.into(),
                data: serde_json::json!({}),
            })
            .unwrap();
        head = entry.head();
        entries.push(entry);
    }
    let checkpoint = Checkpoint::sign(head, tx.created_at, &server_key).unwrap();
    audit::verify_log(&entries, &checkpoint, &jwks).unwrap();
    println!(
        "7. audit chain of {} entries verifies against its signed checkpoint (head {})",
        entries.len(),
        head.hash
    );
}
