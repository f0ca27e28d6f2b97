//! The committed golden vectors under `tests/vectors/`, checked against the verifier: every
//! `ok_` case must reproduce its outputs, every `fail_` case must be refused with its code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::audit::{self, Checkpoint, Entry};
use countersign_core::canonical::{self, Digest};
use countersign_core::jwk::{Jwks, KeySet};
use countersign_core::token::{self, DecisionClaims, Expectations};
use countersign_core::transaction::Transaction;
use countersign_core::webauthn::{
    verify_assertion, AssertionInput, AssertionPolicy, ClientData, CredentialPublicKey,
};
use countersign_core::{ApprovalStatement, Decision};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cases(doc: &Value) -> impl Iterator<Item = (&str, &Value)> {
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c))
}

fn s<'a>(case: &'a Value, field: &str) -> &'a str {
    case[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing"))
}

/// Checks that each file has both kinds of case, so an emptied file cannot pass.
fn count(doc: &Value) -> (usize, usize) {
    let ok = cases(doc).filter(|(n, _)| n.starts_with("ok_")).count();
    let fail = cases(doc).filter(|(n, _)| n.starts_with("fail_")).count();
    assert!(ok >= 1 && ok + fail == doc["cases"].as_array().unwrap().len());
    (ok, fail)
}

#[test]
fn transaction_vectors() {
    let doc = load("transaction.json");
    assert!(count(&doc).1 >= 10);
    for (name, case) in cases(&doc) {
        if name.starts_with("ok_") {
            let tx = Transaction::from_json(case["transaction"].to_string().as_bytes()).unwrap();
            assert_eq!(
                String::from_utf8(tx.canonical_json().unwrap()).unwrap(),
                s(case, "canonical"),
                "{name}"
            );
            assert_eq!(
                tx.digest().unwrap().to_base64url(),
                s(case, "digest"),
                "{name}"
            );
            // The digest is SHA-256 over the domain prefix and the canonical bytes, nothing else.
            let by_hand =
                canonical::domain_digest(b"countersign/tx/v1\n", s(case, "canonical").as_bytes());
            assert_eq!(by_hand.to_base64url(), s(case, "digest"));
        } else {
            let err = Transaction::from_json(s(case, "json").as_bytes()).unwrap_err();
            assert_eq!(err.code(), s(case, "error"), "{name}: {err}");
        }
    }
}

#[test]
fn approval_statement_vectors() {
    let doc = load("approval_statement.json");
    assert_eq!(count(&doc), (2, 0));
    for (name, case) in cases(&doc) {
        let statement: ApprovalStatement =
            serde_json::from_value(case["statement"].clone()).unwrap();
        assert_eq!(
            String::from_utf8(canonical::to_canonical_json(&statement).unwrap()).unwrap(),
            s(case, "canonical"),
            "{name}"
        );
        assert_eq!(
            countersign_core::b64::encode(statement.challenge().unwrap()),
            s(case, "challenge"),
            "{name}"
        );
    }
}

#[test]
fn client_data_vectors() {
    let doc = load("client_data.json");
    assert!(count(&doc).1 >= 5);
    for (name, case) in cases(&doc) {
        if name.starts_with("ok_") {
            let challenge = countersign_core::b64::decode(s(case, "challenge")).unwrap();
            assert_eq!(
                ClientData::get(&challenge, s(case, "origin")).to_json(),
                s(case, "client_data_json")
            );
            assert!(ClientData::parse(s(case, "client_data_json").as_bytes()).is_ok());
        } else {
            let err = ClientData::parse(s(case, "client_data_json").as_bytes()).unwrap_err();
            assert_eq!(err.code(), s(case, "error"), "{name}");
        }
    }
}

#[test]
fn assertion_vectors() {
    let doc = load("assertion.json");
    assert!(count(&doc).1 >= 8);
    for (name, case) in cases(&doc) {
        let h = |field: &str| hex::decode(s(case, field)).unwrap();
        let key = CredentialPublicKey::from_cose_bytes(&h("credential_public_key")).unwrap();
        let digest = Digest::from_base64url(s(case, "transaction_digest")).unwrap();
        let statement = ApprovalStatement::new(digest, Decision::Approve, s(case, "approver"));
        let challenge = statement.challenge().unwrap();
        let policy = AssertionPolicy {
            rp_id: s(case, "rp_id"),
            origin: s(case, "origin"),
            challenge: &challenge,
            require_user_verification: case["require_user_verification"].as_bool().unwrap(),
        };
        let (ad, sig) = (h("authenticator_data"), h("signature"));
        let input = AssertionInput {
            authenticator_data: &ad,
            client_data_json: s(case, "client_data_json").as_bytes(),
            signature: &sig,
        };
        let stored = case["stored_sign_count"].as_u64().unwrap() as u32;
        match verify_assertion(&key, stored, &policy, &input) {
            Ok(v) => {
                assert!(name.starts_with("ok_"), "{name} verified");
                assert_eq!(
                    u64::from(v.sign_count),
                    case["new_sign_count"].as_u64().unwrap()
                );
            }
            Err(e) => assert_eq!(e.code(), s(case, "error"), "{name}: {e}"),
        }
    }
}

#[test]
fn decision_token_vectors() {
    let doc = load("decision_token.json");
    assert!(count(&doc).1 >= 6);
    let jwks: Jwks = serde_json::from_value(doc["jwks"].clone()).unwrap();
    let keys = KeySet::from_jwks(&jwks).unwrap();
    let expect = Expectations {
        issuer: s(&doc, "issuer"),
        audience: s(&doc, "audience"),
        now: doc["now"].as_i64().unwrap(),
        leeway_seconds: 0,
    };
    let tx = Transaction::from_json(doc["transaction"].to_string().as_bytes()).unwrap();
    for (name, case) in cases(&doc) {
        match token::verify_for_transaction(s(case, "token"), &keys, &expect, &tx) {
            Ok(claims) => {
                assert!(name.starts_with("ok_"), "{name} verified");
                let expected: DecisionClaims =
                    serde_json::from_value(case["claims"].clone()).unwrap();
                assert_eq!(claims, expected);
            }
            Err(e) => assert_eq!(e.code(), s(case, "error"), "{name}: {e}"),
        }
    }
}

#[test]
fn audit_chain_vectors() {
    let doc = load("audit_chain.json");
    assert_eq!(count(&doc), (1, 5));
    let keys = KeySet::from_jwks(&serde_json::from_value(doc["jwks"].clone()).unwrap()).unwrap();
    let checkpoint: Checkpoint = serde_json::from_value(doc["checkpoint"].clone()).unwrap();
    for (name, case) in cases(&doc) {
        let entries: Vec<Entry> = serde_json::from_value(case["entries"].clone()).unwrap();
        match audit::verify_log(&entries, &checkpoint, &keys) {
            Ok(head) => {
                assert!(name.starts_with("ok_"), "{name} verified");
                assert_eq!(head.seq, case["head_seq"].as_u64().unwrap());
                assert_eq!(head.hash.to_base64url(), s(case, "head_hash"));
            }
            Err(e) => assert_eq!(e.code(), s(case, "error"), "{name}: {e}"),
        }
    }
}
