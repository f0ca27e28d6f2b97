//! The protected application's API against the real server binary on loopback: every endpoint
//! and every rejection, each rejection asserting that nothing was written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::transaction::Transaction;
use countersign_testkit::*;
use serde_json::json;

#[test]
fn public_endpoints_publish_the_server_key() {
    let server = Server::start();
    let health: serde_json::Value = server
        .http
        .get(server.url("/health"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    let info: serde_json::Value = server
        .http
        .get(server.url("/v1/info"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let keys = server.keys();
    let kid = info["server_key"]["kid"].as_str().unwrap();
    assert!(keys.get(kid).is_some(), "info's key is in the JWKS");
    assert_eq!(info["rp_id"], "localhost");
    let missing = server.http.get(server.url("/nope")).send().unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
}

/// The served document is the committed one, and every operation it lists reaches its handler
/// (an unauthenticated call is refused by the handler's own checks, never by the router's
/// fallback or a method mismatch).
#[test]
fn every_documented_operation_is_served() {
    let server = Server::start();
    let served = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(served, include_str!("../openapi.json"));
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    let mut reached = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = server.url(&path.replace("{id}", "req_unknown"));
        for method in item.as_object().unwrap().keys() {
            let request = match method.as_str() {
                "get" => server.http.get(&url),
                "post" => server.http.post(&url),
                other => panic!("{other} {path}: a method the server does not use"),
            };
            let resp = request.send().unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().unwrap_or_default();
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                !text.contains("no such endpoint"),
                "{method} {path}: {text}"
            );
            reached += 1;
        }
    }
    assert_eq!(reached, 18);
}

#[test]
fn step_up_request_is_created_bound_and_idempotent() {
    let server = Server::start();
    let key = server.api_key("payouts", "payouts-service");
    let body = payout("order-1", "25000", "alice@example.com");
    let (status, created) = server.post(&key, "/v1/requests", &body);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "pending");
    // The transaction is valid protocol data and its digest is what the server says.
    let tx = Transaction::from_json(created["transaction"].to_string().as_bytes()).unwrap();
    assert_eq!(tx.digest().unwrap().to_base64url(), created["digest"]);
    assert_eq!(
        tx.audience, "payouts-service",
        "audience comes from the API key, not the body"
    );
    assert!(tx.requirements.self_step_up);
    assert_eq!(
        tx.requirements.quorum,
        [countersign_core::transaction::GroupQuorum {
            group: "finance-approvers".into(),
            approvers: 1
        }]
    );
    assert_eq!(tx.version, 1, "one group is written as version 1");
    assert_eq!(tx.execute_by.unix() - tx.approve_by.unix(), 300);

    let id = created["id"].as_str().unwrap();
    let (status, fetched) = server.get(&key, &format!("/v1/requests/{id}"));
    assert_eq!((status, &fetched["digest"]), (200, &created["digest"]));

    // A retry with the same key and body returns the same request and writes nothing.
    let before = server.audit_len();
    let (status, again) = server.post(&key, "/v1/requests", &body);
    assert_eq!((status, &again["id"]), (200, &created["id"]));
    // The same key with another body is a conflict.
    let (status, conflict) = server.post(
        &key,
        "/v1/requests",
        &payout("order-1", "26000", "alice@example.com"),
    );
    assert_eq!(
        (status, conflict["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );
    assert_eq!(server.audit_len(), before);

    // Another application cannot see it.
    let other = server.api_key("admin-console", "admin-console");
    let (status, problem) = server.get(&other, &format!("/v1/requests/{id}"));
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
}

#[test]
fn policy_outcomes_are_audited() {
    let server = Server::start();
    let key = server.api_key("payouts", "payouts-service");
    let start = server.audit_len();
    let (status, body) = server.post(
        &key,
        "/v1/requests",
        &payout("small", "25", "alice@example.com"),
    );
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("not_required"))
    );

    let mut compromised = payout("bad-device", "25", "alice@example.com");
    compromised["context"]["device_posture"] = json!("compromised");
    let (status, problem) = server.post(&key, "/v1/requests", &compromised);
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("policy_forbids"))
    );
    assert!(problem["detail"].as_str().unwrap().contains("compromised"));

    let grant = json!({
        "idempotency_key": "grant-1", "action": "iam.privilege.grant", "object": "user:carol", "scope": "role:admin",
        "requester": {"id": "agent:ops-bot", "kind": "agent"}, "session": session_hash("s")
    });
    let (status, problem) = server.post(&key, "/v1/requests", &grant);
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("policy_forbids"))
    );
    // Each outcome left exactly one audit entry.
    let export = admin(&server.data_dir(), &["audit", "export"]);
    let kinds: Vec<String> = export
        .lines()
        .take(start + 3)
        .skip(start)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "request.not_required",
            "request.forbidden",
            "request.forbidden"
        ]
    );
}

#[test]
fn every_bad_input_gets_a_precise_error_and_changes_nothing() {
    let server = Server::start();
    let key = server.api_key("payouts", "payouts-service");
    let before = server.audit_len();
    let post_raw = |auth: Option<&str>, content_type: &str, body: Vec<u8>| {
        let mut req = server
            .http
            .post(server.url("/v1/requests"))
            .header("content-type", content_type)
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().unwrap_or_default();
        (status, body["code"].as_str().unwrap_or("").to_owned())
    };
    let good = payout("k", "25000", "alice@example.com");
    let bearer = format!("Bearer {key}");
    let with = |path: &[&str], value: serde_json::Value| {
        let mut doc = good.clone();
        let mut slot = &mut doc;
        for p in path {
            slot = &mut slot[*p];
        }
        *slot = value;
        serde_json::to_vec(&doc).unwrap()
    };
    let json = "application/json";
    /// Authorization header, content type, body, expected status and code.
    type Case<'a> = (Option<&'a str>, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            None,
            json,
            serde_json::to_vec(&good).unwrap(),
            401,
            "unauthorized",
        ),
        (
            Some("Basic abc"),
            json,
            serde_json::to_vec(&good).unwrap(),
            401,
            "unauthorized",
        ),
        (
            Some("Bearer cs_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            json,
            serde_json::to_vec(&good).unwrap(),
            401,
            "unauthorized",
        ),
        (
            Some(&bearer),
            "text/plain",
            serde_json::to_vec(&good).unwrap(),
            415,
            "unsupported_media_type",
        ),
        (
            Some(&bearer),
            json,
            b"{\"idempotency_key\":".to_vec(),
            400,
            "malformed_json",
        ),
        (
            Some(&bearer),
            json,
            with(&["priority"], json!("high")),
            400,
            "unknown_field",
        ),
        (
            Some(&bearer),
            json,
            with(&["requester", "kind"], json!("robot")),
            400,
            "invalid_value",
        ),
        (
            Some(&bearer),
            json,
            with(&["amount", "value"], json!(25000)),
            400,
            "invalid_value",
        ),
        (
            Some(&bearer),
            json,
            with(&["session"], json!("not base64!")),
            400,
            "invalid_value",
        ),
        (
            Some(&bearer),
            json,
            with(&["context", "geo"], json!("Germany")),
            400,
            "invalid_context",
        ),
        (
            Some(&bearer),
            json,
            with(&["idempotency_key"], json!("")),
            400,
            "invalid_idempotency_key",
        ),
        (
            Some(&bearer),
            json,
            vec![b' '; 70 * 1024],
            413,
            "body_too_large",
        ),
        (
            Some(&bearer),
            json,
            with(&["action"], json!("db.drop")),
            422,
            "unknown_action",
        ),
        (
            Some(&bearer),
            json,
            with(&["amount"], serde_json::Value::Null),
            422,
            "missing_member",
        ),
        (
            Some(&bearer),
            json,
            with(&["amount", "value"], json!("25000.00")),
            422,
            "non_canonical_decimal",
        ),
        (
            Some(&bearer),
            json,
            with(&["amount", "currency"], json!("EURO")),
            422,
            "unknown_currency",
        ),
        (
            Some(&bearer),
            json,
            with(&["object"], json!("")),
            422,
            "empty",
        ),
        (
            Some(&bearer),
            json,
            with(&["object"], json!("vendor:\u{202e}1")),
            422,
            "invalid_characters",
        ),
    ];
    for (auth, content_type, body, status, code) in cases {
        assert_eq!(
            post_raw(auth, content_type, body),
            (status, code.to_owned()),
            "expected {status} {code}"
        );
    }
    let (status, problem) = server.get(&key, "/v1/requests/req_unknown");
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    assert_eq!(
        server.audit_len(),
        before,
        "no rejected request wrote anything"
    );

    // A revoked key stops working at once.
    let id = key.split('_').nth(1).unwrap();
    admin(&server.data_dir(), &["api-key", "revoke", id]);
    assert_eq!(
        post_raw(Some(&bearer), json, serde_json::to_vec(&good).unwrap()),
        (401, "unauthorized".to_owned())
    );
    assert!(
        admin_fails(&server.data_dir(), &["api-key", "revoke", id]).contains("no active API key")
    );
}

#[test]
fn pending_requests_per_requester_are_capped() {
    let server = Server::start();
    let key = server.api_key("payouts", "payouts-service");
    for n in 0..5 {
        let (status, _) = server.post(
            &key,
            "/v1/requests",
            &payout(&format!("p{n}"), "25000", "mallory@example.com"),
        );
        assert_eq!(status, 201);
    }
    let (status, problem) = server.post(
        &key,
        "/v1/requests",
        &payout("p5", "25000", "mallory@example.com"),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (429, Some("too_many_pending"))
    );
    // Other requesters are not affected.
    let (status, _) = server.post(
        &key,
        "/v1/requests",
        &payout("q0", "25000", "alice@example.com"),
    );
    assert_eq!(status, 201);
}

#[test]
fn audit_export_verifies_offline_and_tampering_is_caught() {
    let server = Server::start();
    let key = server.api_key("payouts", "payouts-service");
    for n in 0..3 {
        server.post(
            &key,
            "/v1/requests",
            &payout(&format!("a{n}"), "25000", "alice@example.com"),
        );
    }
    let dir = server.dir.path();
    let export = dir.join("audit.jsonl");
    let jwks = dir.join("jwks.json");
    admin(
        &server.data_dir(),
        &["audit", "export", "--output", export.to_str().unwrap()],
    );
    std::fs::write(&jwks, admin(&server.data_dir(), &["keys", "jwks"])).unwrap();
    let ok = admin(
        &server.data_dir(),
        &[
            "audit",
            "verify",
            export.to_str().unwrap(),
            "--jwks",
            jwks.to_str().unwrap(),
        ],
    );
    assert!(ok.starts_with("audit log verifies: 5 entries"), "{ok}");

    let text = std::fs::read_to_string(&export).unwrap();
    let tampered = text.replacen("alice@example.com", "mallory@example.com", 1);
    assert_ne!(tampered, text);
    std::fs::write(&export, tampered).unwrap();
    let err = admin_fails(
        &server.data_dir(),
        &[
            "audit",
            "verify",
            export.to_str().unwrap(),
            "--jwks",
            jwks.to_str().unwrap(),
        ],
    );
    assert!(err.contains("was modified"), "{err}");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(2);
    std::fs::write(&export, lines.join("\n")).unwrap();
    let err = admin_fails(
        &server.data_dir(),
        &[
            "audit",
            "verify",
            export.to_str().unwrap(),
            "--jwks",
            jwks.to_str().unwrap(),
        ],
    );
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn metrics_count_traffic_refusals_and_the_lifecycle_without_identities() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let (_, created) = server.post(
        &app,
        "/v1/requests",
        &payout("m1", "2500", "alice@example.com"),
    );
    let (id, digest) = (
        created["id"].as_str().unwrap(),
        created["digest"].as_str().unwrap(),
    );
    let (status, _) = alice.decide(&server, id, digest, countersign_core::Decision::Approve);
    assert_eq!(status, 200);
    let (status, _) = server.post(
        &app,
        &format!("/v1/requests/{id}/redeem"),
        &serde_json::json!({}),
    );
    assert_eq!(status, 200);
    let (status, _) = server.post(
        &app,
        &format!("/v1/requests/{id}/redeem"),
        &serde_json::json!({}),
    );
    assert_eq!(status, 409);
    let (status, _) = server.get("cs_0000000000000000_wrong", "/v1/requests/x");
    assert_eq!(status, 401);

    let resp = server.http.get(server.url("/metrics")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = resp.text().unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
    };
    assert_eq!(
        value(r#"countersign_http_requests_total{route="/v1/requests",status="201"}"#),
        1.0
    );
    assert_eq!(
        value(r#"countersign_http_requests_total{route="/v1/requests/{id}/redeem",status="200"}"#),
        1.0
    );
    assert_eq!(
        value(r#"countersign_http_requests_total{route="/v1/requests/{id}/redeem",status="409"}"#),
        1.0
    );
    assert_eq!(
        value(r#"countersign_problems_total{code="unauthorized"}"#),
        1.0
    );
    for event in ["created", "approval", "approved", "redeemed"] {
        assert_eq!(
            value(&format!(
                r#"countersign_lifecycle_events_total{{outcome="{event}"}}"#
            )),
            1.0,
            "{event}"
        );
    }
    assert_eq!(
        value(r#"countersign_http_request_duration_seconds_count{route="/v1/requests"}"#),
        1.0
    );
    assert!(value("countersign_audit_head_seq") >= 4.0);
    // The backend's own series: SQLite's writer counts its batches (every write above was a
    // job of one); PostgreSQL has no single writer and registers none.
    if countersign_testkit::postgres::enabled() {
        assert!(!text.contains("countersign_db_write_"), "{text}");
    } else {
        let (batches, jobs) = (
            value("countersign_db_write_batches_total"),
            value("countersign_db_write_jobs_total"),
        );
        assert!(
            batches >= 1.0 && jobs >= batches,
            "{batches} batches, {jobs} jobs"
        );
        assert!(value("countersign_db_write_commit_microseconds_total") > 0.0);
    }
    // Request data must not reach a series' name or labels. Sample values are left out of
    // the search: a timing such as 0.0025001 s contains "2500" without leaking the amount.
    let names_and_labels: Vec<&str> = text
        .lines()
        .map(|line| {
            if line.starts_with('#') {
                line
            } else {
                line.rsplit_once(' ')
                    .map_or(line, |(series, _value)| series)
            }
        })
        .collect();
    for secret in [id, "alice@example.com", "2500", &app] {
        let leaks: Vec<&&str> = names_and_labels
            .iter()
            .filter(|line| line.contains(secret))
            .collect();
        assert!(leaks.is_empty(), "metrics leak {secret}: {leaks:?}");
    }
}

#[test]
fn oversized_bodies_on_approver_endpoints_get_a_problem_too() {
    let server = Server::start();
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let big = vec![b' '; 70 * 1024];
    let resp = server
        .http
        .post(server.url("/v1/enroll"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = resp.json().unwrap();
    assert_eq!(problem["code"].as_str(), Some("body_too_large"));

    let path = "/v1/approver/requests/req_x/approve";
    let header = alice.auth_header("POST", path, &big);
    let (status, problem) = alice.send_with_header(&server, "POST", path, big, &header);
    assert_eq!(
        (status, problem["code"].as_str()),
        (413, Some("body_too_large"))
    );
}

/// A request not bound to a session (the all-zero digest an application sends when it forgot)
/// is refused before policy or storage sees it (issue 12).
#[test]
fn a_request_without_a_session_binding_is_refused() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let mut body = payout("unbound", "2500", "alice@example.com");
    body["session"] = countersign_core::Digest::ZERO.to_base64url().into();
    let entries = server.audit_len();
    let (status, problem) = server.post(&app, "/v1/requests", &body);
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("unbound_session")),
        "{problem}"
    );
    assert_eq!(server.audit_len(), entries, "nothing was recorded");
}

/// What one application is told never carries what another application caused, nor Cedar's
/// own error text: the pending cap says no count, a policy that cannot be evaluated says only
/// that (issue 12, smaller items).
#[test]
fn refusals_tell_an_application_nothing_about_other_apps_or_policy_internals() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.cedar");
    // Reading `context.ip` without an IP in the context is an evaluation error.
    std::fs::write(
        &policies,
        "@id(\"office-only\")\n@self_step_up(\"true\")\npermit(principal, action, resource) when { context.ip.isInRange(ip(\"10.0.0.0/8\")) };\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[policy]\npolicies = {policies:?}\n[limits]\nmax_pending_per_requester = 2\n"),
    )
    .unwrap();
    let server = Server::start_in(dir);
    let big = server.api_key("payouts", "payouts-service");
    let minor = server.api_key("minor", "minor-app");
    let mut in_office = payout("a", "2500", "alice@example.com");
    in_office["context"]["ip"] = "10.1.2.3".into();
    for n in 0..2 {
        in_office["idempotency_key"] = format!("minor-{n}").into();
        let (status, body) = server.post(&minor, "/v1/requests", &in_office);
        assert_eq!(status, 201, "{body}");
    }
    in_office["idempotency_key"] = "big-1".into();
    let (status, problem) = server.post(&big, "/v1/requests", &in_office);
    assert_eq!(
        (status, problem["code"].as_str()),
        (429, Some("too_many_pending"))
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(!detail.chars().any(|c| c.is_ascii_digit()), "{detail}");

    let mut no_ip = payout("b", "2500", "bob@example.com");
    no_ip["context"].as_object_mut().unwrap().remove("ip");
    let (status, problem) = server.post(&big, "/v1/requests", &no_ip);
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("policy_forbids")),
        "{problem}"
    );
    assert_eq!(problem["detail"], "policy evaluation failed, refusing");
}

/// The pending caps hold inside the creating transaction, under concurrent creates, per
/// requester and per API key; each key has its own rate (issue 12, item 4).
#[test]
fn pending_caps_hold_under_concurrency_and_each_api_key_has_its_own_quota() {
    let server = Server::start_with_config(
        "[limits]\nmax_pending_per_requester = 5\nmax_pending_per_api_key = 8\n\
         requests_per_minute_per_requester = 1000\nrequests_per_minute_per_api_key = 40\n",
    );
    let busy = server.api_key("busy", "payouts-service");
    let statuses: Vec<(u16, serde_json::Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|n| {
                let (server, busy) = (&server, &busy);
                s.spawn(move || {
                    server.post(
                        busy,
                        "/v1/requests",
                        &payout(&format!("race-{n}"), "25000", "mallory@example.com"),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = statuses.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 5, "{statuses:?}");
    for (status, body) in statuses.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(
            (*status, body["code"].as_str()),
            (429, Some("too_many_pending")),
            "{body}"
        );
    }

    // The key's own cap: 5 for mallory so far, 3 more for others, then no more for anyone.
    for n in 0..3 {
        let (status, body) = server.post(
            &busy,
            "/v1/requests",
            &payout(&format!("k-{n}"), "25000", &format!("user{n}@example.com")),
        );
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = server.post(
        &busy,
        "/v1/requests",
        &payout("k-9", "25000", "user9@example.com"),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("api_key_pending_cap")),
        "{body}"
    );
    let other = server.api_key("other", "payouts-service");
    let (status, body) = server.post(
        &other,
        "/v1/requests",
        &payout("o-1", "25000", "user9@example.com"),
    );
    assert_eq!(status, 201, "another key is not affected: {body}");

    // The key's rate: 40 a minute in all (20 + 3 + 1 used above).
    let mut limited = None;
    for n in 0..20 {
        let (status, body) = server.post(
            &busy,
            "/v1/requests",
            &payout(&format!("rate-{n}"), "50", &format!("small{n}@example.com")),
        );
        if status == 429 {
            limited = Some((n, body));
            break;
        }
    }
    let (n, body) = limited.expect("the key's rate limit answered");
    assert_eq!(body["code"], "api_key_rate_limited", "{body}");
    assert_eq!(n, 16, "after 40 requests in all");
    let (status, _) = server.post(
        &other,
        "/v1/requests",
        &payout("o-2", "50", "small1@example.com"),
    );
    assert_eq!(
        status, 200,
        "the other key still has its own rate (small payouts need no step-up)"
    );
}

/// An instance whose key directory is empty on a database that records keys (its files were
/// lost, or nobody gave a new instance the shared ones) does not start: a key of its own
/// would publish a second JWKS. It says what to do.
#[test]
fn an_instance_without_the_databases_key_files_does_not_start() {
    let mut server = Server::start();
    let data = server.data_dir();
    server.kill();
    for entry in std::fs::read_dir(data.join("keys")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let out = std::process::Command::new(server_bin())
        .args(countersign_testkit::postgres::config_args(
            server.dir.path(),
        ))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("key directory is empty") && stderr.contains("copy the key files"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(data.join("keys"))
            .unwrap()
            .next()
            .is_none(),
        "no key of its own was made"
    );
}

/// The signing key is not in the database: it is a 0600 file in a 0700 directory, the data
/// directory and database are private too, the server refuses to start when a key file is
/// readable by others, and with a key-encryption key the file holds only a sealed seed
/// (issue 12, item 1).
#[test]
fn signing_keys_live_in_private_files_outside_the_database() {
    use std::os::unix::fs::PermissionsExt;
    let mut server = Server::start();
    let data = server.data_dir();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    let postgres = countersign_testkit::postgres::enabled();
    if !postgres {
        assert_eq!(mode(&data.join("countersign.sqlite3")), 0o600);
    }
    let keys_dir = data.join("keys");
    assert_eq!(mode(&keys_dir), 0o700);
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&keys_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600);
    let jwks: serde_json::Value = serde_json::from_slice(&server.jwks_bytes()).unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    assert!(files[0]
        .to_string_lossy()
        .ends_with(&format!("000001-{kid}.key")));
    assert!(server.keys().get(&kid).is_some());
    // The seed is in the key file and nowhere in the database files.
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let seed = countersign_core::b64::decode(stored["seed"].as_str().unwrap()).unwrap();
    if postgres {
        let dir = server.dir.path();
        let sql = countersign_testkit::postgres::execute;
        let kept = sql(
            dir,
            "SELECT count(*) FROM signing_keys WHERE length(seed) > 0",
        );
        assert_eq!(kept.trim(), "0", "no seed in the database");
        let listed = sql(dir, "SELECT count(*) FROM signing_keys");
        assert_eq!(listed.trim(), "1", "the key's id is recorded");
    }
    for name in ["countersign.sqlite3", "countersign.sqlite3-wal"] {
        let path = data.join(name);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(32).any(|w| w == seed.as_slice()),
                "the seed is in {name}"
            );
        }
    }
    server.kill();

    // A key file others can read: the server does not start, and says how to fix it.
    std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(server_bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["keys", "jwks"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("has mode 644") && stderr.contains("chmod"),
        "{stderr}"
    );

    // Sealed at rest with a key-encryption key; without it, a clear refusal.
    let sealed = tempfile::tempdir().unwrap();
    let kek = countersign_core::b64::encode([9u8; 32]);
    let run = |kek: Option<&str>| {
        let mut command = std::process::Command::new(server_bin());
        command
            .arg("--data-dir")
            .arg(sealed.path().join("data"))
            .args(["keys", "jwks"]);
        command
            .env_remove("COUNTERSIGN_KEY_ENCRYPTION_KEY")
            .env_remove("CREDENTIALS_DIRECTORY");
        if let Some(kek) = kek {
            command.env("COUNTERSIGN_KEY_ENCRYPTION_KEY", kek);
        }
        command.output().unwrap()
    };
    let first = run(Some(&kek));
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let again = run(Some(&kek));
    assert_eq!(first.stdout, again.stdout, "the same key, unsealed again");
    let file = std::fs::read_dir(sealed.path().join("data/keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert!(
        stored.get("seed").is_none() && stored["sealed"].is_string(),
        "{stored}"
    );
    let without = run(None);
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("COUNTERSIGN_KEY_ENCRYPTION_KEY"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
}

/// Deleting the newest audit entries is caught by the signed checkpoints the server keeps
/// outside the database: the server refuses to start on such a database, `audit export`
/// refuses to sign over it, and an export cut short (even one re-signed with the server's own
/// key) fails `audit verify --checkpoints`, naming the sequence numbers (issue 12, item 10).
#[test]
fn a_truncated_audit_log_is_caught_by_the_checkpoints_kept_outside_the_database() {
    let mut server = Server::start_with_config("[audit]\ncheckpoint_seconds = 1\n");
    let key = server.api_key("payouts", "payouts-service");
    for n in 0..3 {
        let (status, _) = server.post(
            &key,
            "/v1/requests",
            &payout(&format!("t{n}"), "25000", "alice@example.com"),
        );
        assert_eq!(status, 201);
    }
    // While it runs, the server signs checkpoints as the chain grows (every second here).
    let data = server.data_dir();
    let checkpoints = data.join("audit-checkpoints.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::fs::read_to_string(&checkpoints).map_or(true, |t| t.lines().count() == 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "no periodic checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&checkpoints)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // Stopped, the server signs a last checkpoint over everything.
    assert!(server.terminate(20).is_some_and(|s| s.success()));
    let last: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&checkpoints)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    let covered = last["seq"].as_u64().unwrap();
    let dir = server.dir.path().to_owned();
    let export = dir.join("audit.jsonl");
    admin(
        &data,
        &["audit", "export", "--output", export.to_str().unwrap()],
    );
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, admin(&data, &["keys", "jwks"])).unwrap();
    let entries = std::fs::read_to_string(&export).unwrap().lines().count() as u64 - 1;
    assert_eq!(entries, covered, "the last checkpoint covers every entry");
    let verify = |file: &std::path::Path| {
        std::process::Command::new(server_bin())
            .args(["audit", "verify"])
            .arg(file)
            .arg("--jwks")
            .arg(&jwks)
            .arg("--checkpoints")
            .arg(&checkpoints)
            .output()
            .unwrap()
    };
    assert!(verify(&export).status.success());

    // Whoever can write the database deletes the last two entries.
    let db = data.join("countersign.sqlite3");
    if countersign_testkit::postgres::enabled() {
        countersign_testkit::postgres::execute(
            &dir,
            &format!("DELETE FROM audit_log WHERE seq > {}", covered - 2),
        );
    } else {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use sqlx::ConnectOptions;
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&db)
                .connect()
                .await
                .unwrap();
            sqlx::query("DELETE FROM audit_log WHERE seq > ?")
                .bind(i64::try_from(covered - 2).unwrap())
                .execute(&mut conn)
                .await
                .unwrap();
        });
    }
    let out = std::process::Command::new(server_bin())
        .args(countersign_testkit::postgres::config_args(&dir))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let said = format!(
        "the audit log was truncated: the database ends at seq {}, but a signed checkpoint covers seq {covered}",
        covered - 2
    );
    assert!(stderr.contains(&said), "{stderr}");
    let err = admin_fails(&data, &["audit", "export"]);
    assert!(err.contains(&said), "{err}");

    // An export cut short and re-signed with the server's own key verifies alone, not against
    // the checkpoints.
    let key_file = std::fs::read_dir(data.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(key_file).unwrap()).unwrap();
    let seed: [u8; 32] = countersign_core::b64::decode(stored["seed"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signing = countersign_core::jwk::SigningKey::from_seed(&seed);
    let text = std::fs::read_to_string(&export).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .take(usize::try_from(covered - 2).unwrap())
        .collect();
    let last_entry: countersign_core::audit::Entry =
        serde_json::from_str(kept.last().unwrap()).unwrap();
    let resigned = countersign_core::audit::Checkpoint::sign(
        last_entry.head(),
        countersign_core::Timestamp::from_unix(unix_now()).unwrap(),
        &signing,
    )
    .unwrap();
    let cut = dir.join("cut.jsonl");
    let mut lines: Vec<String> = kept.iter().map(|l| (*l).to_owned()).collect();
    lines.push(serde_json::json!({ "checkpoint": resigned }).to_string());
    std::fs::write(&cut, lines.join("\n") + "\n").unwrap();
    let alone = std::process::Command::new(server_bin())
        .args(["audit", "verify"])
        .arg(&cut)
        .arg("--jwks")
        .arg(&jwks)
        .output()
        .unwrap();
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let against = verify(&cut);
    let stderr = String::from_utf8_lossy(&against.stderr);
    assert!(!against.status.success());
    assert!(
        stderr.contains(&format!(
            "log ends at seq {} but the checkpoint covers seq {covered}",
            covered - 2
        )),
        "{stderr}"
    );
}
