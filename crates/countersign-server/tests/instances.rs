//! Several real server instances on one PostgreSQL database (issue 15): quorum, exactly-once
//! redemption, event pushes, long polls, rate limits, pending caps and freezes hold across
//! instances, and an instance killed with SIGKILL mid-load loses nothing that was
//! acknowledged, and PostgreSQL restarted under load is ridden out. Always on PostgreSQL (`COUNTERSIGN_TEST_POSTGRES`, default the local `test`
//! database); each test makes a database of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::Decision;
use countersign_testkit::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The database restart test runs alone; the others share the server.
static DATABASE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Holds the database for a test that needs it up throughout.
fn database_up() -> std::sync::RwLockReadGuard<'static, ()> {
    DATABASE.read().unwrap_or_else(|e| e.into_inner())
}

/// Limits high enough for the load these tests make, and checkpoints every second.
const ROOMY: &str = "[limits]\nrequests_per_minute_per_requester = 1000\nrequests_per_minute_per_api_key = 1000\nmax_pending_per_requester = 1000\nmax_pending_per_api_key = 1000\n[audit]\ncheckpoint_seconds = 1\n";

/// Creates a four-eyes payout (Alice asks, Alice and Bob approve) on `at`; returns (id, digest).
fn create(at: &dyn Endpoint, app: &str, idem: &str) -> (String, String) {
    let (status, body) = post(
        at,
        app,
        "/v1/requests",
        &payout(idem, "25000", "alice@example.com"),
    );
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_str().unwrap().into(),
        body["digest"].as_str().unwrap().into(),
    )
}

/// POSTs JSON with an API key to any endpoint.
fn post(
    at: &dyn Endpoint,
    key: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    try_post(at, key, path, body).unwrap()
}

/// Like [`post`]; a failed connection is an `Err`.
fn try_post(
    at: &dyn Endpoint,
    key: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), reqwest::Error> {
    let resp = at
        .http()
        .post(at.url(path))
        .bearer_auth(key)
        .json(body)
        .send()?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().unwrap_or(serde_json::Value::Null)))
}

/// GETs with an API key from any endpoint.
fn get(at: &dyn Endpoint, key: &str, path: &str) -> (u16, serde_json::Value) {
    let resp = at.http().get(at.url(path)).bearer_auth(key).send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(serde_json::Value::Null))
}

/// The request ids of verified `request` events on `stream` until `want` are all seen or
/// `secs` pass; returns what was seen and the last event id.
fn collect_ids(
    at: &dyn Endpoint,
    stream: &EventStream,
    want: &BTreeSet<String>,
    secs: u64,
    seen: &mut BTreeSet<String>,
) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last_id = None;
    while !want.is_subset(seen) {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let Some(event) = stream.next_event(left.max(1)) else {
            break;
        };
        if event.id.is_some() {
            last_id = event.id.clone();
        }
        if event.event == "request" {
            seen.insert(verify_pushed(at, &event.data).transaction.id);
        }
        if Instant::now() > deadline {
            break;
        }
    }
    last_id
}

#[test]
fn quorum_redemption_pushes_and_long_polls_hold_across_three_instances() {
    let _up = database_up();
    let cluster = Cluster::start(3, ROOMY);
    let [one, two, three] = [
        &cluster.instances[0],
        &cluster.instances[1],
        &cluster.instances[2],
    ];
    let app = one.api_key("payouts", "payouts-service");
    let app = app.as_str();
    let alice = Approver::add_and_enroll(one, "alice@example.com", &[], 1);
    let bob = Approver::add_and_enroll(two, "bob@example.com", &["finance-approvers"], 2);
    let instances: [&Server; 3] = [one, two, three];

    // Bob listens on the third instance; requests are created on all three.
    let (status, stream) = EventStream::open(three, &bob, None);
    assert_eq!(status, 200);
    let stream = stream.unwrap();
    let created: Vec<(String, String)> = (0..9)
        .map(|i| create(instances[i % 3], app, &format!("pay-{i}")))
        .collect();
    let want: BTreeSet<String> = created.iter().map(|(id, _)| id.clone()).collect();
    let mut seen = BTreeSet::new();
    collect_ids(three, &stream, &want, 15, &mut seen);
    assert_eq!(
        seen, want,
        "requests created on other instances are pushed to this one"
    );

    // A long poll on the second instance wakes when the first request is decided elsewhere.
    let (first_id, first_digest) = created[0].clone();
    std::thread::scope(|scope| {
        let poll = scope.spawn(|| get(two, app, &format!("/v1/requests/{first_id}?wait=20")));
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        assert_eq!(
            alice
                .decide(one, &first_id, &first_digest, Decision::Approve)
                .0,
            200
        );
        assert_eq!(
            bob.decide(three, &first_id, &first_digest, Decision::Approve)
                .0,
            200
        );
        let (status, answer) = poll.join().unwrap();
        assert_eq!(
            (status, answer["state"].as_str()),
            (200, Some("approved")),
            "{answer}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the poll was answered by the change, not by its timeout"
        );
    });

    // The others: Alice and Bob at once, each on another instance for every request. (One
    // key signs one assertion after another, so each approver's approvals go in order: a
    // counter that arrives out of order is what a cloned key looks like.)
    std::thread::scope(|scope| {
        for (approver, shift) in [(&alice, 0), (&bob, 1)] {
            let created = &created;
            scope.spawn(move || {
                for (i, (id, digest)) in created.iter().enumerate().skip(1) {
                    let at = instances[(i + shift) % 3];
                    let (status, body) = approver.decide(at, id, digest, Decision::Approve);
                    assert_eq!(status, 200, "{body}");
                }
            });
        }
    });
    // Each is approved once, by both, and redeemed exactly once though all three instances
    // try at the same moment.
    for (id, _) in &created {
        let (status, decision) = get(one, app, &format!("/v1/requests/{id}/decision"));
        assert_eq!(status, 200, "{decision}");
        let results: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
            let tries: Vec<_> = instances
                .iter()
                .map(|at| {
                    scope.spawn(move || {
                        post(*at, app, &format!("/v1/requests/{id}/redeem"), &json!({}))
                    })
                })
                .collect();
            tries.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let redeemed: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(redeemed.len(), 1, "exactly one redemption: {results:?}");
        assert_eq!(redeemed[0].1["token"], decision["token"]);
        assert!(
            results
                .iter()
                .filter(|(s, _)| *s != 200)
                .all(|(s, b)| *s == 409 && b["code"] == "already_redeemed"),
            "{results:?}"
        );
    }

    // Fifty copies of one approval, sent to all three instances at once: one is counted.
    let (id, digest) = create(one, app, "pay-copies");
    let body = bob.next_assertion(&digest, Decision::Approve);
    let path = format!("/v1/approver/requests/{id}/approve");
    let statuses = bob.send_copies(&[one, two, three], &path, &body, 50);
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let (_, answer) = alice.decide(two, &id, &digest, Decision::Approve);
    assert_eq!(answer["state"], "approved", "{answer}");
    let (_, decision) = get(three, app, &format!("/v1/requests/{id}/decision"));
    let token = decision["token"].as_str().unwrap();
    let claims = countersign_core::token::verify_for_transaction(
        token,
        &one.keys(),
        &countersign_core::token::Expectations {
            issuer: ORIGIN,
            audience: "payouts-service",
            now: unix_now(),
            leeway_seconds: 5,
        },
        &countersign_core::transaction::Transaction::from_json(
            get(one, app, &format!("/v1/requests/{id}")).1["transaction"]
                .to_string()
                .as_bytes(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims.approvers, ["alice@example.com", "bob@example.com"]);

    // Every instance publishes the same keys, and the one chain verifies against each
    // instance's checkpoints.
    assert_eq!(one.jwks_bytes(), two.jwks_bytes());
    assert_eq!(one.jwks_bytes(), three.jwks_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(cluster.verify_audit() > 40);
}

#[test]
fn rate_limits_pending_caps_and_freezes_hold_across_instances() {
    let _up = database_up();
    let cluster = Cluster::start(
        2,
        "[limits]\nrequests_per_minute_per_requester = 4\nmax_pending_per_requester = 2\n",
    );
    let [one, two] = [&cluster.instances[0], &cluster.instances[1]];
    let app = one.api_key("payouts", "payouts-service");
    let bob = Approver::add_and_enroll(one, "bob@example.com", &["finance-approvers"], 2);

    // Small payouts need no step-up but count toward the requester's rate: four in all,
    // whichever instance takes them.
    for i in 0..4 {
        let at = if i % 2 == 0 { one } else { two };
        let (status, body) = at.post(
            &app,
            "/v1/requests",
            &payout(&format!("d-{i}"), "50", "dave@example.com"),
        );
        assert_eq!(status, 200, "{body}");
    }
    for at in [one, two] {
        let (status, body) = at.post(
            &app,
            "/v1/requests",
            &payout("d-over", "50", "dave@example.com"),
        );
        assert_eq!(
            (status, body["code"].as_str()),
            (429, Some("requester_rate_limited")),
            "{body}"
        );
    }

    // Two pending requests at most, counted over both instances.
    let (status, first) = one.post(
        &app,
        "/v1/requests",
        &payout("e-1", "20000", "erin@example.com"),
    );
    assert_eq!(status, 201, "{first}");
    let (status, second) = two.post(
        &app,
        "/v1/requests",
        &payout("e-2", "20000", "erin@example.com"),
    );
    assert_eq!(status, 201, "{second}");
    let (status, body) = one.post(
        &app,
        "/v1/requests",
        &payout("e-3", "20000", "erin@example.com"),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("too_many_pending")),
        "{body}"
    );

    // A report on one instance freezes Erin on the other.
    let mut report = bob.assertion(first["digest"].as_str().unwrap(), Decision::Deny, ORIGIN, 1);
    report["reason"] = "I did not ask for this".into();
    let path = format!(
        "/v1/approver/requests/{}/report",
        first["id"].as_str().unwrap()
    );
    assert_eq!(bob.send(two, "POST", &path, Some(&report)).0, 200);
    let (status, body) = two.post(
        &app,
        "/v1/requests",
        &payout("e-4", "20000", "erin@example.com"),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("requester_frozen")),
        "{body}"
    );
    let (_, cancelled) = one.get(
        &app,
        &format!("/v1/requests/{}", second["id"].as_str().unwrap()),
    );
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    cluster.verify_audit();
}

/// One step of the load: a request created and approved by both, through the balancer, each
/// call retried (with the same idempotency key, and a fresh assertion) while an instance is
/// down. Returns the request id once both approvals were acknowledged.
fn create_and_approve(
    balancer: &Balancer,
    app: &str,
    alice: &Approver,
    bob: &Approver,
    idem: &str,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let retry = |what: &str| {
        assert!(
            Instant::now() < deadline,
            "{what} kept failing for a minute"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (id, digest) = loop {
        match try_post(
            balancer,
            app,
            "/v1/requests",
            &payout(idem, "25000", "alice@example.com"),
        ) {
            Ok((201 | 200, body)) => {
                break (
                    body["id"].as_str().unwrap().to_owned(),
                    body["digest"].as_str().unwrap().to_owned(),
                )
            }
            Ok((status, body)) if status < 500 => panic!("create refused: {status} {body}"),
            _ => retry("create"),
        }
    };
    for approver in [alice, bob] {
        let path = format!("/v1/approver/requests/{id}/approve");
        loop {
            let body = approver.next_assertion(&digest, Decision::Approve);
            match approver.try_send(balancer, "POST", &path, Some(&body)) {
                Ok((200, _)) => break,
                // Counted before the instance died, its answer lost: already approved.
                Ok((409, problem)) if problem["code"] == "already_decided" => break,
                Ok((status, problem)) if status < 500 => {
                    panic!("approval refused: {status} {problem}")
                }
                _ => retry("approve"),
            }
        }
    }
    id
}

/// `n` requests made and approved one after another through the balancer; `done` counts.
fn load(
    balancer: &Balancer,
    app: &str,
    alice: &Approver,
    bob: &Approver,
    n: usize,
    done: &AtomicUsize,
) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = create_and_approve(balancer, app, alice, bob, &format!("load-{i}"));
            done.fetch_add(1, Ordering::SeqCst);
            id
        })
        .collect()
}

/// Waits until the load has done `n` steps, so what follows happens mid-load.
fn wait_until_done(done: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "the load made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_instance_killed_mid_load_loses_nothing_and_its_approvers_reconnect() {
    let _up = database_up();
    let mut cluster = Cluster::start(2, ROOMY);
    let app = cluster.instances[0].api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&cluster.instances[0], "alice@example.com", &[], 1);
    let bob = Approver::add_and_enroll(
        &cluster.instances[1],
        "bob@example.com",
        &["finance-approvers"],
        2,
    );
    let balancer = cluster.balancer();
    let survivor_base = cluster.instances[1].base.clone();

    // Bob follows the stream through the balancer, as an approver app behind it would.
    let (status, stream) = EventStream::open(&balancer, &bob, None);
    assert_eq!(status, 200);
    let mut stream = stream.unwrap();
    let done = AtomicUsize::new(0);
    let decided: Vec<String> = std::thread::scope(|scope| {
        let load = scope.spawn(|| load(&balancer, &app, &alice, &bob, 30, &done));
        // Mid-load, the first instance dies without a chance to finish anything.
        wait_until_done(&done, 8);
        cluster.instances[0].kill();
        load.join().unwrap()
    });
    assert_eq!(decided.len(), 30);

    // Bob's stream ended if it was on the dead instance; he resumes from the last event he
    // had, through the balancer (now always the survivor), and misses nothing.
    let want: BTreeSet<String> = decided.iter().cloned().collect();
    let mut seen = BTreeSet::new();
    let mut last_id = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !want.is_subset(&seen) && Instant::now() < deadline {
        if let Some(id) = collect_ids(&balancer, &stream, &want, 3, &mut seen) {
            last_id = Some(id);
        }
        if !want.is_subset(&seen) {
            let (status, again) = EventStream::open(&balancer, &bob, last_id.as_deref());
            assert_eq!(status, 200);
            stream = again.unwrap();
        }
    }
    assert_eq!(seen, want, "every request reached the approver's stream");

    // Every acknowledged approval stands: each request has its decision, redeemed once.
    let at = &cluster.instances[1];
    assert_eq!(at.base, survivor_base);
    for id in &decided {
        let (status, body) = at.post(&app, &format!("/v1/requests/{id}/redeem"), &json!({}));
        assert_eq!(status, 200, "{id}: {body}");
        let (status, body) = at.post(&app, &format!("/v1/requests/{id}/redeem"), &json!({}));
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("already_redeemed"))
        );
    }
    cluster.verify_audit();
}

#[test]
fn postgres_restarted_mid_load_loses_no_decision_and_the_feed_comes_back() {
    let _alone = DATABASE.write().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start(2, ROOMY);
    let [one, two] = [&cluster.instances[0], &cluster.instances[1]];
    let app = one.api_key("payouts", "payouts-service");
    let app = app.as_str();
    let alice = Approver::add_and_enroll(one, "alice@example.com", &[], 1);
    let bob = Approver::add_and_enroll(two, "bob@example.com", &["finance-approvers"], 2);
    let balancer = cluster.balancer();
    // Bob listens on the second instance: what the first commits reaches him through the
    // database's change feed, which the restart cuts.
    let (status, stream) = EventStream::open(two, &bob, None);
    assert_eq!(status, 200);
    let stream = stream.unwrap();

    let done = AtomicUsize::new(0);
    let decided: Vec<String> = std::thread::scope(|scope| {
        let load = scope.spawn(|| load(&balancer, app, &alice, &bob, 30, &done));
        wait_until_done(&done, 8);
        countersign_testkit::postgres::restart_local_server();
        load.join().unwrap()
    });
    assert_eq!(decided.len(), 30);

    // The instances recovered by themselves: every acknowledged decision is there, and each
    // is redeemed exactly once with both instances trying at once.
    for id in &decided {
        let results: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
            let tries: Vec<_> = [one, two]
                .into_iter()
                .map(|at| {
                    scope.spawn(move || {
                        post(at, app, &format!("/v1/requests/{id}/redeem"), &json!({}))
                    })
                })
                .collect();
            tries.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let statuses: BTreeSet<u16> = results.iter().map(|(s, _)| *s).collect();
        assert_eq!(statuses, BTreeSet::from([200, 409]), "{id}: {results:?}");
    }

    // Bob's stream heard that the feed broke: a resync, or (when the server could not check
    // that Bob is still enabled during the outage) the end of the stream, after which his
    // app reconnects and reads everything again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let told = loop {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        match stream.next_event(left.max(1)) {
            Some(event) if event.event == "resync" => break true,
            Some(_) => continue,
            None => break stream.events_until_closed(1).is_some(),
        }
    };
    assert!(
        told,
        "the stream neither resynced nor ended after the feed broke"
    );

    // The feed between the instances came back: a request created on the first instance
    // reaches a stream opened afterwards on the second as it happens.
    let (status, fresh) = EventStream::open(two, &bob, None);
    assert_eq!(status, 200);
    let fresh = fresh.unwrap();
    while fresh.next_event(1).is_some() {} // what it sends on connect
    let (id, _) = create(one, app, "after-restart");
    let mut seen = BTreeSet::new();
    collect_ids(two, &fresh, &BTreeSet::from([id.clone()]), 15, &mut seen);
    assert!(
        seen.contains(&id),
        "a request made on the other instance after the restart was pushed"
    );
    std::thread::sleep(Duration::from_millis(1500));
    cluster.verify_audit();
}
