//! Writes the golden vectors under `tests/vectors/` from fixed keys and inputs.
//!
//! Run `cargo run -p countersign-core --example generate_vectors` after a deliberate format
//! change; `tests/vectors.rs` checks the committed files against the verifier, so a vector
//! that this program wrote wrongly fails there. Every signature here is deterministic
//! (Ed25519, and RFC 6979 ECDSA), so a rerun reproduces the files byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::audit::{Checkpoint, Event, Head};
use countersign_core::jwk::{KeySet, SigningKey};
use countersign_core::token::{self, DecisionClaims};
use countersign_core::transaction::Transaction;
use countersign_core::webauthn::auth_data::Flags;
use countersign_core::webauthn::ClientData;
use countersign_core::{b64, ApprovalStatement, Decision, Timestamp};
use countersign_forge::*;
use serde_json::{json, Value};

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    let txs = transactions();
    write(&dir, "transaction.json", transaction_vectors(&txs));
    write(&dir, "approval_statement.json", statement_vectors(&txs[0]));
    write(&dir, "client_data.json", client_data_vectors());
    write(&dir, "assertion.json", assertion_vectors(&txs[0]));
    write(&dir, "decision_token.json", token_vectors(&txs[0]));
    write(&dir, "audit_chain.json", audit_vectors());
}

fn write(dir: &std::path::Path, name: &str, value: Value) {
    let mut text = serde_json::to_string_pretty(&value).unwrap();
    text.push('\n');
    std::fs::write(dir.join(name), text).unwrap();
    println!("wrote tests/vectors/{name}");
}

fn base_tx() -> Value {
    json!({
        "version": 1,
        "id": "req_01JDZ8W7Q4",
        "action": "payout.bank_details.change",
        "object": "vendor:4711",
        "amount": {"value": "12500", "currency": "EUR"},
        "scope": null,
        "change": [{"field": "iban", "before": "DE89370400440532013000", "after": "DE44500105175407324931"}],
        "requester": {"id": "alice@example.com", "kind": "human"},
        "session": b64::encode(countersign_core::canonical::sha256(b"session-7f3a")),
        "audience": "payouts-service",
        "created_at": "2026-11-28T04:00:00Z",
        "approve_by": "2026-11-28T04:10:00Z",
        "execute_by": "2026-11-28T04:15:00Z",
        "nonce": "AAECAwQFBgcICQoLDA0ODw",
        "requirements": {
            "self_step_up": true, "approvers": 1, "group": "finance-approvers",
            "user_verification": true, "execution_ttl_seconds": 300,
            "reason": "bank details change above 10000 EUR"
        }
    })
}

fn transactions() -> Vec<Value> {
    let payout = base_tx();
    let mut grant = base_tx();
    grant["id"] = json!("req_01JDZ9A1B2");
    grant["action"] = json!("iam.privilege.grant");
    grant["object"] = json!("user:carol@example.com");
    grant["amount"] = Value::Null;
    grant["scope"] = json!("role:production-admin");
    grant["change"] = Value::Null;
    grant["requirements"]["self_step_up"] = json!(false);
    grant["requirements"]["approvers"] = json!(2);
    grant["requirements"]["group"] = json!("security-admins");
    grant["requirements"]["reason"] = json!("privilege grant to a production role");
    let mut agent = base_tx();
    agent["id"] = json!("req_01JDZ9C3D4");
    agent["action"] = json!("agent.tool.invoke");
    agent["object"] = json!("tool:refund");
    agent["amount"] = json!({"value": "0.5", "currency": "USD"});
    agent["change"] = Value::Null;
    agent["requester"] = json!({"id": "agent:support-bot-7", "kind": "agent"});
    agent["requirements"]["self_step_up"] = json!(false);
    agent["requirements"]["group"] = json!("agent-owners");
    agent["requirements"]["user_verification"] = json!(false);
    agent["requirements"]["reason"] = json!("an AI agent's refund call");
    // Version 2: two policies matched, each asking for approvers from its own group.
    let mut two_groups = base_tx();
    two_groups["version"] = json!(2);
    two_groups["id"] = json!("req_01JDZ9E5F6");
    two_groups["action"] = json!("payout.send");
    two_groups["object"] = json!("vendor:4711");
    two_groups["amount"] = json!({"value": "250000", "currency": "EUR"});
    two_groups["change"] = Value::Null;
    two_groups["requirements"] = json!({
        "self_step_up": true,
        "quorum": [
            {"group": "finance-approvers", "approvers": 1},
            {"group": "security-admins", "approvers": 1}
        ],
        "user_verification": true, "execution_ttl_seconds": 300,
        "reason": "payout above 100000 EUR; payout to a vendor changed this week"
    });
    vec![payout, grant, agent, two_groups]
}

fn transaction_vectors(txs: &[Value]) -> Value {
    let mut cases: Vec<Value> = [
        "ok_payout_change",
        "ok_privilege_grant",
        "ok_agent_action",
        "ok_two_groups_version_2",
    ]
    .iter()
    .zip(txs)
    .map(|(name, tx)| {
        let parsed = Transaction::from_json(tx.to_string().as_bytes()).unwrap();
        json!({
            "name": name,
            "transaction": tx,
            "canonical": String::from_utf8(parsed.canonical_json().unwrap()).unwrap(),
            "digest": parsed.digest().unwrap().to_base64url(),
        })
    })
    .collect();
    let text = base_tx().to_string();
    let with = |path: &[&str], v: Value| {
        let mut doc = base_tx();
        let mut slot = &mut doc;
        for k in path {
            slot = &mut slot[*k];
        }
        *slot = v;
        doc.to_string()
    };
    let fails = [
        ("fail_float_amount", text.replace("\"12500\"", "12500.0")),
        (
            "fail_integer_above_2_53",
            with(
                &["requirements", "approvers"],
                json!(9_007_199_254_740_993u64),
            ),
        ),
        (
            "fail_non_canonical_decimal",
            with(&["amount", "value"], json!("12500.00")),
        ),
        (
            "fail_leading_zero",
            with(&["amount", "value"], json!("012500")),
        ),
        (
            "fail_unknown_currency",
            with(&["amount", "currency"], json!("EURO")),
        ),
        (
            "fail_too_precise_for_currency",
            with(&["amount"], json!({"value": "1.5", "currency": "JPY"})),
        ),
        (
            "fail_deadlines_out_of_order",
            with(&["approve_by"], json!("2026-11-28T04:20:00Z")),
        ),
        (
            "fail_non_canonical_time",
            with(&["created_at"], json!("2026-11-28T04:00:00.000Z")),
        ),
        ("fail_empty_object", with(&["object"], json!(""))),
        (
            "fail_oversized_object",
            with(&["object"], json!("v".repeat(513))),
        ),
        (
            "fail_bidi_override_in_object",
            with(&["object"], json!("vendor:\u{202E}1174")),
        ),
        ("fail_unknown_field", with(&["priority"], json!("high"))),
        (
            "fail_duplicate_member",
            text.replacen(
                "\"object\":\"vendor:4711\"",
                "\"object\":\"vendor:4711\",\"object\":\"vendor:1\"",
                1,
            ),
        ),
        ("fail_bad_nonce", with(&["nonce"], json!("c2hvcnQ"))),
        ("fail_unsupported_version", with(&["version"], json!(3))),
        (
            "fail_version_2_with_one_group",
            with(&["version"], json!(2)),
        ),
        (
            "fail_quorum_of_one_group",
            with(
                &["requirements"],
                json!({"self_step_up": false, "quorum": [{"group": "finance-approvers", "approvers": 1}], "user_verification": true, "execution_ttl_seconds": 300, "reason": "r"}),
            )
            .replace("\"version\":1", "\"version\":2"),
        ),
        (
            "fail_quorum_out_of_order",
            with(
                &["requirements"],
                json!({"self_step_up": false, "quorum": [{"group": "security-admins", "approvers": 1}, {"group": "finance-approvers", "approvers": 1}], "user_verification": true, "execution_ttl_seconds": 300, "reason": "r"}),
            )
            .replace("\"version\":1", "\"version\":2"),
        ),
        (
            "fail_no_approval_path",
            with(
                &["requirements"],
                json!({"self_step_up": false, "approvers": 0, "group": null, "user_verification": true, "execution_ttl_seconds": 300, "reason": "r"}),
            ),
        ),
    ];
    for (name, json_text) in fails {
        let err = Transaction::from_json(json_text.as_bytes()).unwrap_err();
        cases.push(json!({"name": name, "json": json_text, "error": err.code()}));
    }
    json!({
        "format": "transaction digest = SHA-256(\"countersign/tx/v1\\n\" || JCS(transaction)), digest as unpadded base64url",
        "cases": cases,
    })
}

fn tx_digest(tx: &Value) -> countersign_core::Digest {
    Transaction::from_json(tx.to_string().as_bytes())
        .unwrap()
        .digest()
        .unwrap()
}

fn statement_vectors(tx: &Value) -> Value {
    let digest = tx_digest(tx);
    let mut cases = Vec::new();
    for (name, decision) in [
        ("ok_approve", Decision::Approve),
        ("ok_deny", Decision::Deny),
    ] {
        let s = ApprovalStatement::new(digest, decision, "bob@example.com");
        cases.push(json!({
            "name": name,
            "statement": s,
            "canonical": String::from_utf8(countersign_core::canonical::to_canonical_json(&s).unwrap()).unwrap(),
            "challenge": b64::encode(s.challenge().unwrap()),
        }));
    }
    json!({
        "format": "challenge = SHA-256(\"countersign/approval/v1\\n\" || JCS(statement)); the statement names the transaction digest (base64url), the decision and the approver id",
        "cases": cases,
    })
}

fn client_data_vectors() -> Value {
    let challenge = [0x5a; 32];
    let good = ClientData::get(&challenge, ORIGIN).to_json();
    let mut cases = vec![
        json!({"name": "ok_assertion", "type": "webauthn.get", "challenge": b64::encode(challenge), "origin": ORIGIN, "client_data_json": good}),
    ];
    let c = b64::encode(challenge);
    let fails = [
        (
            "fail_member_order",
            format!(
                r#"{{"challenge":"{c}","type":"webauthn.get","origin":"{ORIGIN}","crossOrigin":false}}"#
            ),
        ),
        (
            "fail_cross_origin_missing",
            format!(r#"{{"type":"webauthn.get","challenge":"{c}","origin":"{ORIGIN}"}}"#),
        ),
        (
            "fail_whitespace",
            format!(
                r#"{{"type":"webauthn.get", "challenge":"{c}","origin":"{ORIGIN}","crossOrigin":false}}"#
            ),
        ),
        (
            "fail_cross_origin_true",
            format!(
                r#"{{"type":"webauthn.get","challenge":"{c}","origin":"{ORIGIN}","crossOrigin":true}}"#
            ),
        ),
        (
            "fail_top_origin",
            format!(
                r#"{{"type":"webauthn.get","challenge":"{c}","origin":"{ORIGIN}","crossOrigin":false,"topOrigin":"https://evil.example"}}"#
            ),
        ),
        (
            "fail_padded_challenge",
            format!(
                r#"{{"type":"webauthn.get","challenge":"{c}=","origin":"{ORIGIN}","crossOrigin":false}}"#
            ),
        ),
        (
            "fail_duplicate_challenge",
            format!(
                r#"{{"type":"webauthn.get","challenge":"{c}","origin":"{ORIGIN}","crossOrigin":false,"challenge":"AA"}}"#
            ),
        ),
        (
            "fail_unknown_type",
            format!(
                r#"{{"type":"payment.get","challenge":"{c}","origin":"{ORIGIN}","crossOrigin":false}}"#
            ),
        ),
    ];
    for (name, text) in fails {
        let err = ClientData::parse(text.as_bytes()).unwrap_err();
        cases.push(json!({"name": name, "client_data_json": text, "error": err.code()}));
    }
    json!({
        "format": "clientDataJSON = {\"type\":\"webauthn.get\",\"challenge\":<base64url>,\"origin\":<origin>,\"crossOrigin\":false}, members first and in this order",
        "cases": cases,
    })
}

#[allow(clippy::too_many_arguments)]
fn assertion_record(
    name: &str,
    key: &ForgingKey,
    expected_digest: countersign_core::Digest,
    digest: countersign_core::Digest,
    approver: &str,
    rp_id: &str,
    flags: u8,
    count: u32,
    stored: u32,
    origin: &str,
    error: Option<&str>,
) -> Value {
    let challenge = ApprovalStatement::new(digest, Decision::Approve, approver)
        .challenge()
        .unwrap();
    let cd = ClientData::get(&challenge, origin).to_json();
    let a = assert_with(key, rp_id, flags, count, &cd);
    let mut v = json!({
        "name": name,
        "rp_id": RP_ID,
        "origin": ORIGIN,
        "transaction_digest": expected_digest.to_base64url(),
        "approver": "bob@example.com",
        "decision": "approve",
        "credential_public_key": hex::encode(key.public().to_cose_bytes()),
        "stored_sign_count": stored,
        "require_user_verification": true,
        "authenticator_data": hex::encode(&a.authenticator_data),
        "client_data_json": cd,
        "signature": hex::encode(&a.signature),
    });
    match error {
        None => v["new_sign_count"] = json!(count),
        Some(e) => v["error"] = json!(e),
    }
    v
}

fn assertion_vectors(tx: &Value) -> Value {
    let digest = tx_digest(tx);
    let uvup = Flags::UP | Flags::UV;
    let es = ForgingKey::es256(0x31);
    let ed = ForgingKey::ed25519(0x32);
    let bob = "bob@example.com";
    let mut cases = vec![
        assertion_record(
            "ok_es256", &es, digest, digest, bob, RP_ID, uvup, 42, 41, ORIGIN, None,
        ),
        assertion_record(
            "ok_eddsa", &ed, digest, digest, bob, RP_ID, uvup, 7, 0, ORIGIN, None,
        ),
        assertion_record(
            "fail_other_transaction",
            &es,
            digest,
            countersign_core::Digest([0; 32]),
            bob,
            RP_ID,
            uvup,
            42,
            41,
            ORIGIN,
            Some("challenge_mismatch"),
        ),
        assertion_record(
            "fail_other_approver",
            &es,
            digest,
            digest,
            "carol@example.com",
            RP_ID,
            uvup,
            42,
            41,
            ORIGIN,
            Some("challenge_mismatch"),
        ),
        assertion_record(
            "fail_other_rp_id",
            &es,
            digest,
            digest,
            bob,
            "example.com",
            uvup,
            42,
            41,
            ORIGIN,
            Some("rp_id_mismatch"),
        ),
        assertion_record(
            "fail_other_origin",
            &es,
            digest,
            digest,
            bob,
            RP_ID,
            uvup,
            42,
            41,
            "https://approvals.example.org",
            Some("origin_mismatch"),
        ),
        assertion_record(
            "fail_user_not_present",
            &es,
            digest,
            digest,
            bob,
            RP_ID,
            Flags::UV,
            42,
            41,
            ORIGIN,
            Some("user_not_present"),
        ),
        assertion_record(
            "fail_user_not_verified",
            &es,
            digest,
            digest,
            bob,
            RP_ID,
            Flags::UP,
            42,
            41,
            ORIGIN,
            Some("user_not_verified"),
        ),
        assertion_record(
            "fail_counter_regression",
            &es,
            digest,
            digest,
            bob,
            RP_ID,
            uvup,
            41,
            41,
            ORIGIN,
            Some("counter_regression"),
        ),
        assertion_record(
            "fail_signed_by_another_key",
            &ForgingKey::es256(0x33),
            digest,
            digest,
            bob,
            RP_ID,
            uvup,
            42,
            41,
            ORIGIN,
            Some("bad_signature"),
        ),
    ];
    // A signature by the right key over different bytes: the key of ok_es256 stays enrolled.
    let mut wrong_key = cases[9].clone();
    wrong_key["credential_public_key"] = cases[0]["credential_public_key"].clone();
    cases[9] = wrong_key;
    let mut flipped = cases[0].clone();
    flipped["name"] = json!("fail_flags_altered_after_signing");
    let mut ad = hex::decode(flipped["authenticator_data"].as_str().unwrap()).unwrap();
    ad[32] |= Flags::BE;
    flipped["authenticator_data"] = json!(hex::encode(ad));
    flipped.as_object_mut().unwrap().remove("new_sign_count");
    flipped["error"] = json!("bad_signature");
    cases.push(flipped);
    json!({
        "format": "a Countersign approval assertion: challenge from the approval statement, clientDataJSON as in client_data.json, signature over authenticatorData || SHA-256(clientDataJSON); binary fields hex",
        "cases": cases,
    })
}

fn token_vectors(tx: &Value) -> Value {
    let parsed = Transaction::from_json(tx.to_string().as_bytes()).unwrap();
    let key = SigningKey::from_seed(&[0x41; 32]);
    let keys = KeySet::new([key.verifying_key().clone()]);
    let now = parsed.created_at.unix() + 300;
    let claims = DecisionClaims::for_transaction(
        &parsed,
        ORIGIN,
        Decision::Approve,
        now - 30,
        vec!["alice@example.com".into(), "bob@example.com".into()],
        vec!["hwk".into(), "user".into(), "pin".into()],
    )
    .unwrap();
    let good = token::issue(&claims, &key).unwrap();
    let kid = key.kid().to_owned();
    let forge = |header: String, payload: &str| {
        token::sign_compact(&b64::encode(header), payload.as_bytes(), &key)
    };
    let payload = serde_json::to_string(&claims).unwrap();
    let typ = token::TOKEN_TYPE;
    let parts: Vec<&str> = good.split('.').collect();
    let altered_payload = payload.replace("\"bob@example.com\"", "\"mallory@example.com\"");
    let stranger = SigningKey::from_seed(&[0x42; 32]);
    let expired = {
        let mut c = claims.clone();
        c.exp = now;
        token::issue(&c, &key).unwrap()
    };
    let wrong_aud = {
        let mut c = claims.clone();
        c.aud = "admin-console".into();
        token::issue(&c, &key).unwrap()
    };
    let fails = [
        (
            "fail_alg_none",
            format!("{}.{}.", b64::encode(r#"{"alg":"none"}"#), parts[1]),
        ),
        (
            "fail_alg_hs256",
            forge(
                format!(r#"{{"alg":"HS256","kid":"{kid}","typ":"{typ}"}}"#),
                &payload,
            ),
        ),
        (
            "fail_wrong_typ",
            forge(
                format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"JWT"}}"#),
                &payload,
            ),
        ),
        (
            "fail_unknown_kid",
            token::issue(&claims, &stranger).unwrap(),
        ),
        (
            "fail_altered_claim",
            format!(
                "{}.{}.{}",
                parts[0],
                b64::encode(&altered_payload),
                parts[2]
            ),
        ),
        ("fail_expired", expired),
        ("fail_wrong_audience", wrong_aud),
        ("fail_padded_signature", format!("{good}==")),
    ];
    let mut cases = vec![json!({"name": "ok_decision", "token": good, "claims": claims})];
    for (name, t) in fails {
        let err = token::verify(
            &t,
            &keys,
            &token::Expectations {
                issuer: ORIGIN,
                audience: &parsed.audience,
                now,
                leeway_seconds: 0,
            },
        )
        .unwrap_err();
        cases.push(json!({"name": name, "token": t, "error": err.code()}));
    }
    json!({
        "format": "JWS compact, header {\"alg\":\"EdDSA\",\"kid\":<RFC 7638 thumbprint>,\"typ\":\"countersign-decision+jwt\"}, Ed25519 (RFC 8037)",
        "jwks": keys.to_jwks(),
        "issuer": ORIGIN,
        "audience": parsed.audience,
        "now": now,
        "transaction": tx,
        "cases": cases,
    })
}

fn audit_vectors() -> Value {
    let key = SigningKey::from_seed(&[0x51; 32]);
    let keys = KeySet::new([key.verifying_key().clone()]);
    let t0 = Timestamp::parse("2026-11-28T04:00:00Z").unwrap().unix();
    let events = [
        (
            "request.created",
            "api-key:payouts",
            json!({"action": "payout.bank_details.change", "amount": "12500", "currency": "EUR"}),
        ),
        (
            "approval.accepted",
            "alice@example.com",
            json!({"decision": "approve", "sign_count": 42, "uv": true}),
        ),
        (
            "approval.accepted",
            "bob@example.com",
            json!({"decision": "approve", "sign_count": 7, "uv": true}),
        ),
        (
            "decision.issued",
            "server",
            json!({"decision": "approve", "exp": t0 + 900}),
        ),
        ("decision.redeemed", "api-key:payouts", json!({})),
        (
            "execution.reported",
            "api-key:payouts",
            json!({"outcome": "succeeded"}),
        ),
    ];
    let mut head = Head::GENESIS;
    let mut entries = Vec::new();
    for (i, (kind, actor, data)) in events.into_iter().enumerate() {
        let event = Event {
            at: Timestamp::from_unix(t0 + i as i64 * 30).unwrap(),
            kind: kind.into(),
            request_id: Some("req_01JDZ8W7Q4".into()),
            actor: actor.into(),
            data,
        };
        let entry = head.append(event).unwrap();
        head = entry.head();
        entries.push(entry);
    }
    let checkpoint = Checkpoint::sign(head, Timestamp::from_unix(t0 + 600).unwrap(), &key).unwrap();
    let as_values = |es: &[countersign_core::audit::Entry]| serde_json::to_value(es).unwrap();
    let mut modified = entries.clone();
    modified[1].event.actor = "mallory@example.com".into();
    let mut deleted = entries.clone();
    deleted.remove(2);
    let mut reordered = entries.clone();
    reordered.swap(2, 3);
    let mut inserted = entries.clone();
    inserted.insert(
        3,
        entries[1]
            .head()
            .append(Event {
                at: entries[2].event.at,
                kind: "approval.accepted".into(),
                request_id: Some("req_01JDZ8W7Q4".into()),
                actor: "mallory@example.com".into(),
                data: json!({}),
            })
            .unwrap(),
    );
    let truncated = entries[..4].to_vec();
    let mut cases = vec![
        json!({"name": "ok_chain", "entries": as_values(&entries), "head_seq": head.seq, "head_hash": head.hash}),
    ];
    for (name, es) in [
        ("fail_modified", modified),
        ("fail_deleted", deleted),
        ("fail_reordered", reordered),
        ("fail_inserted", inserted),
        ("fail_truncated", truncated),
    ] {
        let err = countersign_core::audit::verify_log(&es, &checkpoint, &keys).unwrap_err();
        cases.push(json!({"name": name, "entries": as_values(&es), "error": err.code()}));
    }
    json!({
        "format": "entry hash = SHA-256(\"countersign/audit/v1\\n\" || JCS(entry without \"hash\")); checkpoint signature = Ed25519 over \"countersign/checkpoint/v1\\n\" || JCS(checkpoint without \"signature\")",
        "jwks": keys.to_jwks(),
        "checkpoint": checkpoint,
        "cases": cases,
    })
}
