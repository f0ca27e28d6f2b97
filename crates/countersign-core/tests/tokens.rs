//! Decision tokens: interoperability with an independent JOSE library, and every rejection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::b64;
use countersign_core::canonical::Digest;
use countersign_core::jwk::{KeySet, SigningKey};
use countersign_core::token::{self, DecisionClaims, Expectations, TokenError};
use countersign_core::transaction::Transaction;
use countersign_core::Decision;

const ISSUER: &str = "https://approvals.example.com";
const NOW: i64 = 1_795_838_700;

fn transaction() -> Transaction {
    let json = include_str!("../../../tests/vectors/transaction.json");
    let doc: serde_json::Value = serde_json::from_str(json).unwrap();
    let input = doc["cases"][0]["transaction"].to_string();
    Transaction::from_json(input.as_bytes()).unwrap()
}

fn claims_for(tx: &Transaction) -> DecisionClaims {
    DecisionClaims::for_transaction(
        tx,
        ISSUER,
        Decision::Approve,
        NOW - 60,
        vec!["alice@example.com".into(), "bob@example.com".into()],
        vec!["hwk".into(), "user".into(), "pin".into()],
    )
    .unwrap()
}

fn expect(audience: &str) -> Expectations<'_> {
    Expectations {
        issuer: ISSUER,
        audience,
        now: NOW,
        leeway_seconds: 0,
    }
}

fn setup() -> (SigningKey, KeySet, Transaction) {
    let key = SigningKey::from_seed(&[42; 32]);
    let keys = KeySet::new([key.verifying_key().clone()]);
    (key, keys, transaction())
}

#[test]
fn an_independent_jose_library_verifies_the_token() {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    let (key, _, tx) = setup();
    let token = token::issue(&claims_for(&tx), &key).unwrap();

    let header = decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(key.kid()));
    let decoding =
        DecodingKey::from_ed_components(&b64::encode(key.verifying_key().as_bytes())).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[tx.audience.as_str()]);
    validation.set_issuer(&[ISSUER]);
    validation.validate_exp = false; // the fixed test clock is in the future of the library's clock
    let data = decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
    assert_eq!(
        data.claims["transaction"],
        tx.digest().unwrap().to_base64url()
    );
    assert_eq!(data.claims["jti"], tx.id);

    // And the library refuses it under another key.
    let other = DecodingKey::from_ed_components(&b64::encode(
        SigningKey::from_seed(&[1; 32]).verifying_key().as_bytes(),
    ))
    .unwrap();
    assert!(decode::<serde_json::Value>(&token, &other, &validation).is_err());
}

#[test]
fn verifies_and_binds_to_the_transaction() {
    let (key, keys, tx) = setup();
    let token = token::issue(&claims_for(&tx), &key).unwrap();
    let claims = token::verify_for_transaction(&token, &keys, &expect(&tx.audience), &tx).unwrap();
    assert_eq!(claims, claims_for(&tx));
}

fn forge(header: &str, claims: &serde_json::Value, key: &SigningKey) -> String {
    token::sign_compact(&b64::encode(header), claims.to_string().as_bytes(), key)
}

#[test]
fn refuses_every_defect_with_its_own_error() {
    let (key, keys, tx) = setup();
    let aud = tx.audience.clone();
    let good_claims = serde_json::to_value(claims_for(&tx)).unwrap();
    let good = token::issue(&claims_for(&tx), &key).unwrap();
    let verify = |t: &str| token::verify(t, &keys, &expect(&aud));
    let kid = key.kid().to_owned();
    let header = |alg: &str, typ: &str| format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"{typ}"}}"#);

    // alg none, with an empty signature.
    let none = format!(
        "{}.{}.",
        b64::encode(r#"{"alg":"none"}"#),
        b64::encode(good_claims.to_string())
    );
    assert_eq!(
        verify(&none),
        Err(TokenError::UnsupportedAlgorithm("none".into()))
    );
    // Other algorithms, even when the bytes are signed by the right key.
    for alg in ["HS256", "ES256", "RS256", "eddsa", "Ed25519"] {
        assert_eq!(
            verify(&forge(&header(alg, token::TOKEN_TYPE), &good_claims, &key)),
            Err(TokenError::UnsupportedAlgorithm(alg.into()))
        );
    }
    // Wrong typ, critical extensions, missing kid, unknown kid.
    assert_eq!(
        verify(&forge(&header("EdDSA", "JWT"), &good_claims, &key)),
        Err(TokenError::WrongType("JWT".into()))
    );
    let crit = format!(
        r#"{{"alg":"EdDSA","kid":"{kid}","typ":"{}","crit":["exp"]}}"#,
        token::TOKEN_TYPE
    );
    assert!(matches!(
        verify(&forge(&crit, &good_claims, &key)),
        Err(TokenError::Header(_))
    ));
    let no_kid = format!(r#"{{"alg":"EdDSA","typ":"{}"}}"#, token::TOKEN_TYPE);
    assert!(matches!(
        verify(&forge(&no_kid, &good_claims, &key)),
        Err(TokenError::Header(_))
    ));
    let stranger = SigningKey::from_seed(&[7; 32]);
    assert_eq!(
        verify(&token::issue(&claims_for(&tx), &stranger).unwrap()),
        Err(TokenError::UnknownKey(stranger.kid().into()))
    );
    // A known kid whose key did not sign.
    let mut wrong_signer_claims = claims_for(&tx);
    wrong_signer_claims.approvers.push("mallory".into());
    let impostor = forge(
        &header("EdDSA", token::TOKEN_TYPE),
        &serde_json::to_value(&wrong_signer_claims).unwrap(),
        &stranger,
    );
    assert_eq!(verify(&impostor), Err(TokenError::BadSignature));
    // Every claim altered after signing, in the signed bytes themselves.
    let (h, p, sig) = split3(&good);
    let payload = String::from_utf8(b64::decode(p).unwrap()).unwrap();
    let digest = tx.digest().unwrap().to_base64url();
    for (from, to) in [
        ("\"bob@example.com\"", "\"mallory@example.com\""),
        (&format!("\"aud\":\"{aud}\""), "\"aud\":\"other-service\""),
        (&format!("\"exp\":{}", NOW + 240), "\"exp\":9999999999"),
        ("\"decision\":\"approve\"", "\"decision\":\"deny\""),
        (&digest, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        assert!(payload.contains(from), "{from} not in {payload}");
        let t = format!("{h}.{}.{sig}", b64::encode(payload.replace(from, to)));
        assert_eq!(verify(&t), Err(TokenError::BadSignature), "{from}");
    }
    // Claims checks, on correctly signed tokens.
    let signed = |f: &dyn Fn(&mut DecisionClaims)| {
        let mut c = claims_for(&tx);
        f(&mut c);
        token::issue(&c, &key).unwrap()
    };
    assert_eq!(
        verify(&signed(&|c| c.exp = NOW)),
        Err(TokenError::Expired { exp: NOW, now: NOW })
    );
    assert_eq!(
        verify(&signed(&|c| c.iat = NOW + 5)),
        Err(TokenError::NotYetValid {
            iat: NOW + 5,
            now: NOW
        })
    );
    assert!(matches!(
        verify(&signed(&|c| c.aud = "other-service".into())),
        Err(TokenError::WrongAudience { .. })
    ));
    assert!(matches!(
        verify(&signed(&|c| c.iss = "https://evil.example".into())),
        Err(TokenError::WrongIssuer { .. })
    ));
    assert_eq!(
        verify(&signed(&|c| c.ver = 2)),
        Err(TokenError::UnsupportedVersion(2))
    );
    let with_extra = {
        let mut c = good_claims.clone();
        c["admin"] = serde_json::json!(true);
        forge(&header("EdDSA", token::TOKEN_TYPE), &c, &key)
    };
    assert!(matches!(verify(&with_extra), Err(TokenError::Claims(_))));
    // Leeway is honoured and bounded.
    let leeway = Expectations {
        leeway_seconds: 30,
        ..expect(&aud)
    };
    assert!(token::verify(&signed(&|c| c.exp = NOW - 10), &keys, &leeway).is_ok());
    assert!(token::verify(&signed(&|c| c.exp = NOW - 30), &keys, &leeway).is_err());
    // Encoding.
    assert_eq!(verify("a.b"), Err(TokenError::NotCompact));
    assert_eq!(verify(&format!("{good}.x")), Err(TokenError::NotCompact));
    assert_eq!(
        verify(&format!("{h}=.{p}.{sig}")),
        Err(TokenError::Base64("header"))
    );
    assert_eq!(
        verify(&"a".repeat(token::MAX_TOKEN_LEN + 1)),
        Err(TokenError::TooLong)
    );

    // Binding to the transaction about to run.
    let bound = |f: &dyn Fn(&mut DecisionClaims)| {
        token::verify_for_transaction(&signed(f), &keys, &expect(&aud), &tx)
    };
    assert_eq!(
        bound(&|c| c.transaction = Digest([1; 32])),
        Err(TokenError::TransactionMismatch("transaction digest"))
    );
    assert_eq!(
        bound(&|c| c.jti = "req_other".into()),
        Err(TokenError::TransactionMismatch("request id"))
    );
    assert_eq!(
        bound(&|c| c.sub = "mallory@example.com".into()),
        Err(TokenError::TransactionMismatch("requester"))
    );
    assert_eq!(
        bound(&|c| c.session = Digest([2; 32])),
        Err(TokenError::TransactionMismatch("session"))
    );
    assert_eq!(
        bound(&|c| c.exp = tx.execute_by.unix() + 1),
        Err(TokenError::TransactionMismatch("execution deadline"))
    );
    assert_eq!(
        bound(&|c| c.decision = Decision::Deny),
        Err(TokenError::Denied)
    );
    let mut changed = tx.clone();
    changed.amount.as_mut().unwrap().value = "12501".into();
    assert_eq!(
        token::verify_for_transaction(&good, &keys, &expect(&aud), &changed),
        Err(TokenError::TransactionMismatch("transaction digest"))
    );
}

fn split3(t: &str) -> (&str, &str, &str) {
    let mut parts = t.split('.');
    (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    )
}

#[test]
fn key_rotation_by_kid() {
    let (old, _, tx) = setup();
    let new = SigningKey::from_seed(&[43; 32]);
    let aud = tx.audience.clone();
    let from_old = token::issue(&claims_for(&tx), &old).unwrap();
    let from_new = token::issue(&claims_for(&tx), &new).unwrap();
    // During rotation both keys are published; each token verifies under its own kid.
    let both = KeySet::new([old.verifying_key().clone(), new.verifying_key().clone()]);
    let jwks = KeySet::from_jwks_json(&serde_json::to_vec(&both.to_jwks()).unwrap()).unwrap();
    assert!(token::verify(&from_old, &jwks, &expect(&aud)).is_ok());
    assert!(token::verify(&from_new, &jwks, &expect(&aud)).is_ok());
    // Once the old key is withdrawn, its tokens are refused by name.
    let only_new = KeySet::new([new.verifying_key().clone()]);
    assert_eq!(
        token::verify(&from_old, &only_new, &expect(&aud)),
        Err(TokenError::UnknownKey(old.kid().into()))
    );
    assert!(token::verify(&from_new, &only_new, &expect(&aud)).is_ok());
}
