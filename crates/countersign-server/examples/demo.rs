//! The demo: the real server on embedded SQLite with the sample catalog and policies, two
//! approvers enrolled with the software key through the real enrollment endpoint, and sample
//! requests for each kind of action — one of them approved, verified and redeemed the way a
//! protected application would. The server keeps running so you can explore the API.
//!
//! `cargo run -p countersign-server --example demo` (fresh data in `./countersign-demo` on every
//! run, port 8710 or `COUNTERSIGN_DEMO_LISTEN`; `COUNTERSIGN_DEMO_EXIT=1` stops after the
//! walkthrough).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::jwk::{KeySet, SigningKey};
use countersign_core::token::{self, Expectations};
use countersign_core::transaction::Transaction;
use countersign_core::webauthn::{CeremonyType, ClientData, Flags};
use countersign_core::{b64, device_auth, enrollment, ApprovalStatement, Decision, Digest};
use countersign_forge::{
    assert_with, attestation_object, registration_auth_data_for, Attest, ForgingKey,
};
use countersign_server::config::Config;
use countersign_server::store::sqlite::SqliteStore;
use countersign_server::{admin, keys, serve};
use serde_json::{json, Value};

struct DemoApprover {
    id: String,
    device: SigningKey,
    device_id: String,
    key: ForgingKey,
    credential_id: Vec<u8>,
    count: u32,
    nonce: u64,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn enroll(
    http: &reqwest::Client,
    base: &str,
    config: &Config,
    store: &SqliteStore,
    id: &str,
    seed: u8,
) -> DemoApprover {
    let provider = keys::provider(config).unwrap();
    let keys = keys::load_or_create(store, &provider).await.unwrap();
    let code = admin::create_enrollment_code(store, &keys, id, 600)
        .await
        .unwrap();
    let secret = code.split('.').nth(1).unwrap().to_owned();
    let device = SigningKey::from_seed(&[seed; 32]);
    let device_pub = b64::encode(device.verifying_key().as_bytes());
    let key = ForgingKey::es256(seed);
    let credential_id = format!("demo-{id}").into_bytes();
    let challenge = enrollment::challenge(&secret, &device_pub).unwrap();
    let cd = ClientData {
        ceremony: CeremonyType::Create,
        challenge: challenge.to_vec(),
        origin: config.origin.clone(),
    }
    .to_json();
    let ad = registration_auth_data_for(&key, &config.rp_id, Flags::UP | Flags::UV, &credential_id);
    let att = attestation_object(&key, &ad, &cd, Attest::PackedSelf);
    let resp: Value = http
        .post(format!("{base}/v1/enroll"))
        .json(&json!({"code": secret, "device_name": "demo software key", "device_key": device_pub, "attestation_object": b64::encode(att), "client_data_json": b64::encode(cd)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!("  enrolled {id}: device {}", resp["device_id"]);
    DemoApprover {
        id: id.into(),
        device,
        device_id: resp["device_id"].as_str().unwrap().into(),
        key,
        credential_id,
        count: 0,
        nonce: u64::from(seed) << 32,
    }
}

async fn approve(
    http: &reqwest::Client,
    base: &str,
    config: &Config,
    a: &mut DemoApprover,
    id: &str,
    digest: &str,
) -> Value {
    a.count += 1;
    a.nonce += 1;
    let challenge = ApprovalStatement::new(
        Digest::from_base64url(digest).unwrap(),
        Decision::Approve,
        a.id.clone(),
    )
    .challenge()
    .unwrap();
    let cd = ClientData::get(&challenge, config.origin.clone()).to_json();
    let assertion = assert_with(&a.key, &config.rp_id, Flags::UP | Flags::UV, a.count, &cd);
    let body = serde_json::to_vec(&json!({
        "credential_id": b64::encode(&a.credential_id), "authenticator_data": b64::encode(&assertion.authenticator_data),
        "client_data_json": b64::encode(&assertion.client_data_json), "signature": b64::encode(&assertion.signature),
    }))
    .unwrap();
    let path = format!("/v1/approver/requests/{id}/approve");
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&a.nonce.to_be_bytes());
    let nonce = b64::encode(nonce);
    let ts = now();
    let sig = a.device.sign(&device_auth::signing_input(
        "POST", &path, ts, &nonce, &body,
    ));
    let header = device_auth::DeviceAuth {
        device_id: a.device_id.clone(),
        timestamp: ts,
        nonce,
        signature: sig.to_vec(),
    }
    .to_header();
    http.post(format!("{base}{path}"))
        .header("authorization", header)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::main]
async fn main() {
    let mut config = Config {
        data_dir: "countersign-demo".into(),
        ..Config::default()
    };
    // The demo's approvers enroll with this project's software key.
    config.enrollment.allow_demo_keys = true;
    if let Ok(listen) = std::env::var("COUNTERSIGN_DEMO_LISTEN") {
        config.listen = listen.parse().unwrap();
    }
    // Demo data starts fresh on every run.
    if config.data_dir.exists() {
        std::fs::remove_dir_all(&config.data_dir).unwrap();
    }
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let store = SqliteStore::open(&config.database_path()).await.unwrap();
    let base = format!("http://{}", config.listen);
    println!("Countersign demo — data in {}", config.data_dir.display());

    let audience = "payouts-service";
    let api_key = admin::create_api_key(&store, "demo payouts", audience, &["*".to_owned()])
        .await
        .unwrap();
    for (id, name, groups) in [
        ("alice@example.com", "Alice", vec![]),
        (
            "bob@example.com",
            "Bob",
            vec![
                "finance-approvers".to_owned(),
                "security-admins".to_owned(),
                "agent-owners".to_owned(),
            ],
        ),
    ] {
        let _ = admin::add_approver(&store, id, name, &groups).await;
    }
    let server = tokio::spawn(serve::run(
        config.clone(),
        std::sync::Arc::new(store.clone()),
    ));
    let http = reqwest::Client::new();
    for _ in 0..50 {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut alice = enroll(&http, &base, &config, &store, "alice@example.com", 1).await;
    let mut bob = enroll(&http, &base, &config, &store, "bob@example.com", 2).await;

    let session = b64::encode(countersign_core::canonical::sha256(b"demo-session"));
    let samples = [
        json!({"action": "payout.send", "object": "vendor:4711", "amount": {"value": "25000", "currency": "EUR"}}),
        json!({"action": "payout.bank_details.change", "object": "vendor:4711", "change": [{"field": "iban", "before": "DE89370400440532013000", "after": "DE44500105175407324931"}]}),
        json!({"action": "account.recovery.update", "object": "user:alice@example.com", "change": [{"field": "recovery_email", "before": "alice@example.com", "after": "alice@new.example"}]}),
        json!({"action": "iam.privilege.grant", "object": "user:carol@example.com", "scope": "role:production-admin"}),
        json!({"action": "payout.send", "object": "vendor:12", "amount": {"value": "45.5", "currency": "EUR"}}),
    ];
    let mut first = None;
    for (n, sample) in samples.iter().enumerate() {
        let mut body = sample.clone();
        body["idempotency_key"] = json!(format!("demo-{}-{n}", now()));
        body["requester"] = json!({"id": "alice@example.com", "kind": "human"});
        body["session"] = json!(session);
        let resp: Value = http
            .post(format!("{base}/v1/requests"))
            .bearer_auth(&api_key)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let outcome = resp["outcome"]
            .as_str()
            .or(resp["code"].as_str())
            .unwrap_or("?");
        println!(
            "  request {:<28} {:<24} → {outcome} {}",
            sample["action"].as_str().unwrap(),
            sample["object"].as_str().unwrap(),
            resp["transaction"]["requirements"]["reason"]
                .as_str()
                .unwrap_or("")
        );
        if first.is_none() && resp["id"].is_string() {
            first = Some(resp);
        }
    }

    let created = first.unwrap();
    let id = created["id"].as_str().unwrap();
    let digest = created["digest"].as_str().unwrap();
    let tx = Transaction::from_json(created["transaction"].to_string().as_bytes()).unwrap();
    println!("\nWalkthrough for {id} (digest {digest}):");
    println!(
        "  bob approves:   {}",
        approve(&http, &base, &config, &mut bob, id, digest).await["state"]
    );
    println!(
        "  alice approves: {}",
        approve(&http, &base, &config, &mut alice, id, digest).await["state"]
    );
    let decision: Value = http
        .get(format!("{base}/v1/requests/{id}/decision"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks = KeySet::from_jwks_json(
        &http
            .get(format!("{base}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let expect = Expectations {
        issuer: &config.origin,
        audience,
        now: now(),
        leeway_seconds: 5,
    };
    let claims =
        token::verify_for_transaction(decision["token"].as_str().unwrap(), &jwks, &expect, &tx)
            .unwrap();
    println!(
        "  decision token verified offline: approvers {:?}, exp {}",
        claims.approvers, claims.exp
    );
    let redeem = http
        .post(format!("{base}/v1/requests/{id}/redeem"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap()
        .status();
    let again = http
        .post(format!("{base}/v1/requests/{id}/redeem"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap()
        .status();
    println!("  redeem: {redeem}; redeem again: {again}");

    println!("\nServer running at {base} — API key for {audience}:\n  {api_key}");
    println!("Try: curl -s {base}/.well-known/jwks.json");
    println!("     curl -s -H 'Authorization: Bearer {api_key}' {base}/v1/requests/{id}");
    if std::env::var("COUNTERSIGN_DEMO_EXIT").is_ok() {
        return;
    }
    println!("Press Ctrl-C to stop.");
    let _ = server.await;
}
