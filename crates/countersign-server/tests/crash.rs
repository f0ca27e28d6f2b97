//! Crash safety: SIGKILL the server in the middle of a load of approvals and redemptions,
//! restart it on the same database, and check that the audit chain verifies, every decision a
//! client was told about is there, and nothing can be redeemed twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::Decision;
use countersign_testkit::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What the server acknowledged before it died.
#[derive(Default)]
struct Acknowledged {
    approved: BTreeSet<String>,
    redeemed: BTreeMap<String, String>,
}

const CONFIG: &str = "[limits]
requests_per_minute_per_ip = 100000000
requests_per_minute_per_requester = 100000000
requests_per_minute_per_api_key = 100000000
max_pending_per_requester = 1000
max_pending_per_api_key = 100000
";

#[test]
fn kill_9_during_load_loses_no_acknowledged_decision_and_never_allows_a_second_redemption() {
    let mut server = Server::start_with_config(CONFIG);
    let app = server.api_key("payouts", "payouts-service");
    let approvers: Vec<Approver> = (0..4)
        .map(|i| Approver::add_and_enroll(&server, &format!("crash{i}@example.com"), &[], i + 1))
        .collect();
    let acknowledged = Mutex::new(Acknowledged::default());
    let dead = AtomicBool::new(false);
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();

    let base = server.base.clone();
    let url = |path: &str| format!("{base}{path}");
    std::thread::scope(|s| {
        for approver in &approvers {
            let (url, app, acknowledged, dead, client) =
                (&url, &app, &acknowledged, &dead, &client);
            s.spawn(move || {
                for n in 0.. {
                    if dead.load(Ordering::SeqCst) {
                        return;
                    }
                    let body = payout(&format!("{}-{n}", approver.id), "2500", &approver.id);
                    let Ok(resp) = client
                        .post(url("/v1/requests"))
                        .bearer_auth(app)
                        .json(&body)
                        .send()
                    else {
                        return;
                    };
                    let Ok(created) = resp.json::<serde_json::Value>() else {
                        return;
                    };
                    let (Some(id), Some(digest)) =
                        (created["id"].as_str(), created["digest"].as_str())
                    else {
                        return;
                    };
                    let assertion =
                        serde_json::to_vec(&approver.next_assertion(digest, Decision::Approve))
                            .unwrap();
                    let path = format!("/v1/approver/requests/{id}/approve");
                    let sent = client
                        .post(url(&path))
                        .header(
                            "authorization",
                            approver.auth_header("POST", &path, &assertion),
                        )
                        .header("content-type", "application/json")
                        .body(assertion)
                        .send();
                    let Ok(resp) = sent else { return };
                    let Ok(answer) = resp.json::<serde_json::Value>() else {
                        return;
                    };
                    if answer["state"].as_str() != Some("approved") {
                        return;
                    }
                    acknowledged.lock().unwrap().approved.insert(id.to_owned());
                    // Redeem every other decision, so some approved ones are left open.
                    if n % 2 == 0 {
                        let Ok(resp) = client
                            .post(url(&format!("/v1/requests/{id}/redeem")))
                            .bearer_auth(app)
                            .json(&serde_json::json!({}))
                            .send()
                        else {
                            return;
                        };
                        let Ok(answer) = resp.json::<serde_json::Value>() else {
                            return;
                        };
                        if let Some(token) = answer["token"].as_str() {
                            acknowledged
                                .lock()
                                .unwrap()
                                .redeemed
                                .insert(id.to_owned(), token.to_owned());
                        }
                    }
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        server.crash_and_restart();
        dead.store(true, Ordering::SeqCst);
    });

    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(
        acknowledged.approved.len() >= 8,
        "the load ran before the crash: {} approvals",
        acknowledged.approved.len()
    );
    assert!(!acknowledged.redeemed.is_empty());

    // The chain verifies (the export refuses a broken one) and against the published keys offline.
    let export = admin(&server.data_dir(), &["audit", "export"]);
    let export_file = server.dir.path().join("export.jsonl");
    std::fs::write(&export_file, &export).unwrap();
    let jwks_file = server.dir.path().join("jwks.json");
    std::fs::write(&jwks_file, admin(&server.data_dir(), &["keys", "jwks"])).unwrap();
    let verified = admin(
        &server.data_dir(),
        &[
            "audit",
            "verify",
            export_file.to_str().unwrap(),
            "--jwks",
            jwks_file.to_str().unwrap(),
        ],
    );
    assert!(verified.starts_with("audit log verifies"), "{verified}");

    for id in &acknowledged.approved {
        let (status, request) = server.get(&app, &format!("/v1/requests/{id}"));
        assert_eq!(status, 200);
        let state = request["state"].as_str().unwrap();
        assert!(
            state == "approved" || state == "redeemed",
            "{id} acknowledged as approved is {state}"
        );
        let redeemed = server.post(
            &app,
            &format!("/v1/requests/{id}/redeem"),
            &serde_json::json!({}),
        );
        if acknowledged.redeemed.contains_key(id) {
            assert_eq!(
                redeemed.0, 409,
                "{id} was redeemed before the crash and cannot be again"
            );
        } else if redeemed.0 == 200 {
            let again = server.post(
                &app,
                &format!("/v1/requests/{id}/redeem"),
                &serde_json::json!({}),
            );
            assert_eq!(again.0, 409, "{id}: a second redemption after restart");
        } else {
            assert_eq!(
                redeemed.0, 409,
                "{id}: redeemed before the crash without an answer reaching us"
            );
        }
    }
    // Exactly one redemption entry per redeemed request in the chain.
    let mut redemptions = BTreeMap::<String, usize>::new();
    for line in export.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        if entry["kind"].as_str() == Some("decision.redeemed") {
            *redemptions
                .entry(entry["request_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    for id in acknowledged.redeemed.keys() {
        assert_eq!(
            redemptions.get(id),
            Some(&1),
            "{id}: its acknowledged redemption is in the chain once"
        );
    }
    assert!(redemptions.values().all(|n| *n == 1));
}
