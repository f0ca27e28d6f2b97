//! Criterion benchmarks of the protocol's hot paths, each next to its floor (the raw signature
//! check it cannot avoid). Results and how to read them: docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::audit::{self, Event, Head};
use countersign_core::canonical::sha256;
use countersign_core::jwk::{KeySet, SigningKey};
use countersign_core::token::{self, DecisionClaims, Expectations};
use countersign_core::transaction::Transaction;
use countersign_core::webauthn::auth_data::Flags;
use countersign_core::webauthn::{
    verify_assertion, AssertionPolicy, ClientData, CredentialPublicKey,
};
use countersign_core::{ApprovalStatement, Decision, Timestamp};
use countersign_forge::*;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn sample_transaction() -> Transaction {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/vectors/transaction.json")).unwrap();
    Transaction::from_json(doc["cases"][0]["transaction"].to_string().as_bytes()).unwrap()
}

fn transaction(c: &mut Criterion) {
    let tx = sample_transaction();
    let json = serde_json::to_vec(&tx).unwrap();
    c.bench_function("transaction/digest (validate + JCS + SHA-256)", |b| {
        b.iter(|| black_box(&tx).digest().unwrap())
    });
    c.bench_function("transaction/parse + digest (from JSON bytes)", |b| {
        b.iter(|| {
            Transaction::from_json(black_box(&json))
                .unwrap()
                .digest()
                .unwrap()
        })
    });
}

fn assertions(c: &mut Criterion) {
    let tx = sample_transaction();
    let challenge =
        ApprovalStatement::new(tx.digest().unwrap(), Decision::Approve, "bob@example.com")
            .challenge()
            .unwrap();
    let cd = ClientData::get(&challenge, ORIGIN).to_json();
    let policy = AssertionPolicy {
        rp_id: RP_ID,
        origin: ORIGIN,
        challenge: &challenge,
        require_user_verification: true,
    };

    for (name, key) in [
        ("es256", ForgingKey::es256(7)),
        ("eddsa", ForgingKey::ed25519(7)),
    ] {
        let a = assert_with(&key, RP_ID, Flags::UP | Flags::UV, 10, &cd);
        let public = key.public();
        c.bench_function(&format!("assertion/{name} full verification"), |b| {
            b.iter(|| verify_assertion(&public, 9, &policy, black_box(&a.input())).unwrap())
        });
        let mut signed = a.authenticator_data.clone();
        signed.extend_from_slice(&sha256(&a.client_data_json));
        match &public {
            CredentialPublicKey::Es256(sec1) => {
                c.bench_function("raw/es256 verify (ring)", |b| {
                    b.iter(|| {
                        ring::signature::UnparsedPublicKey::new(
                            &ring::signature::ECDSA_P256_SHA256_ASN1,
                            sec1,
                        )
                        .verify(black_box(&signed), &a.signature)
                        .unwrap()
                    })
                });
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1).unwrap();
                let sig = p256::ecdsa::Signature::from_der(&a.signature).unwrap();
                c.bench_function("raw/es256 verify (RustCrypto p256)", |b| {
                    use p256::ecdsa::signature::Verifier;
                    b.iter(|| vk.verify(black_box(&signed), &sig).unwrap())
                });
            }
            CredentialPublicKey::Ed25519(vk) => {
                let sig = ed25519_dalek::Signature::from_slice(&a.signature).unwrap();
                c.bench_function("raw/ed25519 verify_strict (ed25519-dalek)", |b| {
                    b.iter(|| vk.verify_strict(black_box(&signed), &sig).unwrap())
                });
                c.bench_function("raw/ed25519 verify (ring)", |b| {
                    b.iter(|| {
                        ring::signature::UnparsedPublicKey::new(
                            &ring::signature::ED25519,
                            vk.as_bytes(),
                        )
                        .verify(black_box(&signed), &a.signature)
                        .unwrap()
                    })
                });
            }
        }
    }
}

fn tokens(c: &mut Criterion) {
    let tx = sample_transaction();
    let key = SigningKey::from_seed(&[9; 32]);
    let keys = KeySet::new([key.verifying_key().clone()]);
    let claims = DecisionClaims::for_transaction(
        &tx,
        ORIGIN,
        Decision::Approve,
        tx.created_at.unix(),
        vec!["alice@example.com".into(), "bob@example.com".into()],
        vec!["hwk".into(), "pin".into()],
    )
    .unwrap();
    let expect = Expectations {
        issuer: ORIGIN,
        audience: &tx.audience,
        now: tx.created_at.unix() + 60,
        leeway_seconds: 0,
    };
    let t = token::issue(&claims, &key).unwrap();
    c.bench_function("token/issue", |b| {
        b.iter(|| token::issue(black_box(&claims), &key).unwrap())
    });
    c.bench_function("token/verify", |b| {
        b.iter(|| token::verify(black_box(&t), &keys, &expect).unwrap())
    });
    c.bench_function("token/verify_for_transaction", |b| {
        b.iter(|| token::verify_for_transaction(black_box(&t), &keys, &expect, &tx).unwrap())
    });
}

fn audit_chain(c: &mut Criterion) {
    let event = |n: i64| Event {
        at: Timestamp::from_unix(1_800_000_000 + n).unwrap(),
        kind: "approval.accepted".into(),
        request_id: Some("req_01JDZ8W7Q4".into()),
        actor: "bob@example.com".into(),
        data: serde_json::json!({"decision": "approve", "sign_count": n, "uv": true}),
    };
    let head = Head::GENESIS.append(event(0)).unwrap().head();
    c.bench_function("audit/append one entry", |b| {
        b.iter(|| black_box(head).append(event(1)).unwrap())
    });
    let mut h = Head::GENESIS;
    let entries: Vec<_> = (0..1000)
        .map(|n| {
            let e = h.append(event(n)).unwrap();
            h = e.head();
            e
        })
        .collect();
    c.bench_function("audit/verify chain of 1000 entries", |b| {
        b.iter(|| audit::verify_chain(Head::GENESIS, black_box(&entries)).unwrap())
    });
}

criterion_group!(benches, transaction, assertions, tokens, audit_chain);
criterion_main!(benches);
