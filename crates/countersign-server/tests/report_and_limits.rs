//! Reporting a request as suspicious (denial, requester freeze, signed webhook) and the rate
//! limits that keep anyone from flooding approvers, against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::Decision;
use countersign_testkit::*;
use std::io::{BufRead, BufReader, Read, Write};

/// One webhook call: header lines and body.
type Hook = (Vec<String>, Vec<u8>);

/// A webhook receiver on loopback: answers each POST with `status` and hands over its headers
/// and body.
fn webhook_receiver(status: u16) -> (String, std::sync::mpsc::Receiver<Hook>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_owned();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                headers.push(line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .unwrap();
            if tx.send((headers, body)).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

fn header<'a>(headers: &'a [String], name: &str) -> &'a str {
    headers
        .iter()
        .find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

#[test]
fn report_denies_freezes_the_requester_cancels_their_requests_and_calls_the_webhook() {
    let (url, hooks) = webhook_receiver(200);
    let server = Server::start_with_config(&format!("[webhook]\nurl = \"{url}\"\n"));
    let app = server.api_key("payouts", "payouts-service");
    let bob = Approver::add_and_enroll(&server, "bob@example.com", &["finance-approvers"], 2);
    let (_, big) = server.post(
        &app,
        "/v1/requests",
        &payout("r1", "20000", "mallory@example.com"),
    );
    let (_, small) = server.post(
        &app,
        "/v1/requests",
        &payout("r2", "2500", "mallory@example.com"),
    );
    let (big_id, small_id) = (big["id"].as_str().unwrap(), small["id"].as_str().unwrap());
    let digest = big["digest"].as_str().unwrap();
    let path = format!("/v1/approver/requests/{big_id}/report");
    let assertion = |count: u32| bob.assertion(digest, Decision::Deny, ORIGIN, count);

    let entries_before = server.audit_len();
    let (status, problem) = bob.send(&server, "POST", &path, Some(&assertion(1)));
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("reason_required"))
    );
    let mut approving = bob.assertion(digest, Decision::Approve, ORIGIN, 1);
    approving["reason"] = "signed as an approval".into();
    let (status, problem) = bob.send(&server, "POST", &path, Some(&approving));
    assert_eq!(
        status, 403,
        "a report must be signed as a denial: {problem}"
    );
    assert_eq!(problem["code"].as_str(), Some("challenge_mismatch"));
    assert_eq!(server.audit_len(), entries_before, "refusals wrote nothing");

    let mut report = bob.assertion(digest, Decision::Deny, ORIGIN, 1);
    report["reason"] = "vendor never asked for this payout".into();
    let (status, answer) = bob.send(&server, "POST", &path, Some(&report));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["state"].as_str(), Some("denied"));

    let (_, now) = server.get(&app, &format!("/v1/requests/{big_id}"));
    assert_eq!(now["state"].as_str(), Some("denied"));
    let (_, now) = server.get(&app, &format!("/v1/requests/{small_id}"));
    assert_eq!(
        now["state"].as_str(),
        Some("cancelled"),
        "the requester's other pending request is cancelled"
    );

    let (status, problem) = server.post(
        &app,
        "/v1/requests",
        &payout("r3", "2500", "mallory@example.com"),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("requester_frozen"))
    );
    let (status, problem) = server.post(
        &app,
        "/v1/requests",
        &payout("r4", "50", "mallory@example.com"),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("requester_frozen")),
        "even actions without a step-up"
    );
    let (status, _) = server.post(
        &app,
        "/v1/requests",
        &payout("r5", "2500", "carol@example.com"),
    );
    assert_eq!(status, 201, "other requesters are unaffected");

    let (headers, body) = hooks
        .recv_timeout(std::time::Duration::from_secs(15))
        .expect("webhook call");
    let keys = server.keys();
    let key = keys
        .get(header(&headers, "countersign-key-id"))
        .expect("published key");
    let signature =
        countersign_core::b64::decode(header(&headers, "countersign-signature")).unwrap();
    let timestamp: i64 = header(&headers, "countersign-timestamp").parse().unwrap();
    assert!(
        (unix_now() - timestamp).abs() < 60,
        "sent just now: {timestamp}"
    );
    let signed_at = |ts: i64| {
        let mut signed = format!("countersign/webhook/v2\n{ts}\n").into_bytes();
        signed.extend_from_slice(&body);
        signed
    };
    let signed = signed_at(timestamp);
    key.verify(&signed, &signature)
        .expect("webhook signature verifies");
    assert!(
        key.verify(&signed_at(timestamp - 3600), &signature)
            .is_err(),
        "the signature covers the time: an old capture cannot pass as new"
    );
    let mut forged = signed.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert!(key.verify(&forged, &signature).is_err());
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["event"].as_str(), Some("request.reported"));
    assert_eq!(payload["request_id"].as_str(), Some(big_id));
    assert_eq!(payload["reported_by"].as_str(), Some("bob@example.com"));
    assert_eq!(
        payload["requester"]["id"].as_str(),
        Some("mallory@example.com")
    );
    assert_eq!(payload["cancelled_requests"], serde_json::json!([small_id]));

    let frozen = admin(&server.data_dir(), &["requester", "frozen"]);
    assert!(
        frozen.starts_with("mallory@example.com\t")
            && frozen.contains("reported_by=bob@example.com"),
        "{frozen}"
    );
    let export = wait_for_audit(&server, "webhook.delivered");
    for kind in [
        "requester.frozen",
        "request.cancelled",
        "approval.deny",
        "decision.denied",
    ] {
        assert!(
            export.contains(&format!("\"kind\":\"{kind}\"")),
            "{kind} audited"
        );
    }

    admin(
        &server.data_dir(),
        &["requester", "unfreeze", "mallory@example.com"],
    );
    let (status, _) = server.post(
        &app,
        "/v1/requests",
        &payout("r6", "2500", "mallory@example.com"),
    );
    assert_eq!(status, 201, "an operator lifted the freeze");
    let err = admin_fails(
        &server.data_dir(),
        &["requester", "unfreeze", "mallory@example.com"],
    );
    assert!(err.contains("not frozen"), "{err}");
}

/// Polls the verified audit export until an entry of `kind` appears (the webhook is delivered
/// after the report's response).
fn wait_for_audit(server: &Server, kind: &str) -> String {
    for _ in 0..100 {
        let export = admin(&server.data_dir(), &["audit", "export"]);
        if export.contains(&format!("\"kind\":\"{kind}\"")) {
            return export;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no {kind} entry in the audit log");
}

#[test]
fn a_failing_webhook_is_retried_and_the_failure_audited() {
    let (url, hooks) = webhook_receiver(500);
    let server = Server::start_with_config(&format!("[webhook]\nurl = \"{url}\"\nattempts = 2\n"));
    let app = server.api_key("payouts", "payouts-service");
    let bob = Approver::add_and_enroll(&server, "bob@example.com", &["finance-approvers"], 2);
    let (_, big) = server.post(
        &app,
        "/v1/requests",
        &payout("r1", "20000", "mallory@example.com"),
    );
    let mut report = bob.assertion(big["digest"].as_str().unwrap(), Decision::Deny, ORIGIN, 1);
    report["reason"] = "phishing".into();
    let path = format!(
        "/v1/approver/requests/{}/report",
        big["id"].as_str().unwrap()
    );
    let (status, _) = bob.send(&server, "POST", &path, Some(&report));
    assert_eq!(status, 200, "the report stands whatever the webhook does");
    for _ in 0..2 {
        hooks
            .recv_timeout(std::time::Duration::from_secs(15))
            .expect("an attempt");
    }
    let export = wait_for_audit(&server, "webhook.failed");
    assert!(export.contains("HTTP 500"));
}

#[test]
fn requesters_and_addresses_are_rate_limited() {
    let server = Server::start_with_config(
        "[limits]\nrequests_per_minute_per_requester = 3\nmax_pending_per_requester = 100\n",
    );
    let app = server.api_key("payouts", "payouts-service");
    for n in 0..3 {
        let (status, _) = server.post(
            &app,
            "/v1/requests",
            &payout(&format!("a{n}"), "2500", "alice@example.com"),
        );
        assert_eq!(status, 201);
    }
    let entries = server.audit_len();
    let resp = server
        .http
        .post(server.url("/v1/requests"))
        .bearer_auth(&app)
        .json(&payout("a3", "2500", "alice@example.com"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let problem: serde_json::Value = resp.json().unwrap();
    assert_eq!(problem["code"].as_str(), Some("requester_rate_limited"));
    assert_eq!(
        server.audit_len(),
        entries,
        "the refused request left no trace"
    );
    let (status, _) = server.post(
        &app,
        "/v1/requests",
        &payout("b0", "2500", "bob@example.com"),
    );
    assert_eq!(status, 201, "another requester has their own quota");

    let server = Server::start_with_config("[limits]\nrequests_per_minute_per_ip = 5\n");
    let statuses: Vec<u16> = (0..8)
        .map(|_| {
            server
                .http
                .get(server.url("/health"))
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(&statuses[..5], &[200; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let resp = server.http.get(server.url("/v1/info")).send().unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let problem: serde_json::Value = resp.json().unwrap();
    assert_eq!(problem["code"].as_str(), Some("rate_limited"));
}

/// A report racing the approval that completes the request: whichever lands first, the report
/// stands, the requester is frozen and nothing of theirs can be redeemed (issue 12, item 7).
#[test]
fn a_report_racing_the_last_approval_still_freezes_and_nothing_of_the_requester_runs() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &["finance-approvers"], 1);
    let bob = Approver::add_and_enroll(&server, "bob@example.com", &["finance-approvers"], 2);
    for round in 0..6u8 {
        let requester = format!("mallory{round}@example.com");
        let mallory = Approver::add_and_enroll(&server, &requester, &[], 10 + round);
        let (status, created) = server.post(
            &app,
            "/v1/requests",
            &payout(&format!("race-{round}"), "20000", &requester),
        );
        assert_eq!(status, 201, "{created}");
        let (id, digest) = (
            created["id"].as_str().unwrap().to_owned(),
            created["digest"].as_str().unwrap().to_owned(),
        );
        let (status, body) = mallory.decide(&server, &id, &digest, Decision::Approve);
        assert_eq!(status, 200, "the requester's own step-up: {body}");
        let mut report = bob.next_assertion(&digest, Decision::Deny);
        report["reason"] = "the vendor never asked for this".into();
        let report_path = format!("/v1/approver/requests/{id}/report");
        let send_report = || bob.send(&server, "POST", &report_path, Some(&report));
        let (approval, reported) = if round == 0 {
            // The approval lands first, the report right after it.
            let approval = alice.decide(&server, &id, &digest, Decision::Approve);
            assert_eq!(approval.1["state"], "approved", "{approval:?}");
            (approval, send_report())
        } else {
            std::thread::scope(|s| {
                let approval = s.spawn(|| alice.decide(&server, &id, &digest, Decision::Approve));
                let reported = s.spawn(send_report);
                (approval.join().unwrap(), reported.join().unwrap())
            })
        };
        assert_eq!(
            reported.0, 200,
            "the report stands: {reported:?} (approval {approval:?})"
        );
        assert_eq!(reported.1["requester_frozen"], true);

        let (status, problem) = server.post(
            &app,
            &format!("/v1/requests/{id}/redeem"),
            &serde_json::json!({}),
        );
        assert_eq!(status, 409, "nothing to redeem: {problem}");
        let (_, now) = server.get(&app, &format!("/v1/requests/{id}"));
        let state = now["state"].as_str().unwrap();
        if approval.0 == 200 && approval.1["state"] == "approved" {
            assert_eq!(
                state, "cancelled",
                "the approved decision was cancelled: {now}"
            );
            assert_eq!(reported.1["state"], "cancelled");
        } else {
            assert_eq!(state, "denied", "{now} / {approval:?}");
        }
        let (status, problem) = server.post(
            &app,
            "/v1/requests",
            &payout(&format!("race-{round}-again"), "2500", &requester),
        );
        assert_eq!(
            (status, problem["code"].as_str()),
            (403, Some("requester_frozen"))
        );
    }
}

/// A webhook that cannot be reached: the failure is audited without the URL, which may hold a
/// secret (issue 12, smaller items).
#[test]
fn an_unreachable_webhook_s_failure_is_audited_without_its_url() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let server = Server::start_with_config(&format!(
        "[webhook]\nurl = \"http://127.0.0.1:{port}/hooks/secret-token-4711\"\nattempts = 1\n"
    ));
    let app = server.api_key("payouts", "payouts-service");
    let bob = Approver::add_and_enroll(&server, "bob@example.com", &["finance-approvers"], 2);
    let (_, big) = server.post(
        &app,
        "/v1/requests",
        &payout("r1", "20000", "mallory@example.com"),
    );
    let mut report = bob.assertion(big["digest"].as_str().unwrap(), Decision::Deny, ORIGIN, 1);
    report["reason"] = "phishing".into();
    let path = format!(
        "/v1/approver/requests/{}/report",
        big["id"].as_str().unwrap()
    );
    let (status, _) = bob.send(&server, "POST", &path, Some(&report));
    assert_eq!(status, 200);
    let export = wait_for_audit(&server, "webhook.failed");
    let failed = export
        .lines()
        .find(|l| l.contains("\"webhook.failed\""))
        .unwrap();
    assert!(failed.contains("\"error\""), "{failed}");
    assert!(!export.contains("secret-token-4711"), "{failed}");
    assert!(!export.contains(&format!(":{port}")), "{failed}");
}
