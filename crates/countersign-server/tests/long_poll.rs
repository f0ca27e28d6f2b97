//! Waiting for changes: the protected application's long-poll and the approver's signed
//! server-sent event stream (snapshot on connect, live changes, keep-alive, resume).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::Decision;
use countersign_testkit::*;

#[test]
fn long_poll_answers_when_the_request_changes() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let (_, created) = server.post(
        &app,
        "/v1/requests",
        &payout("p1", "2500", "alice@example.com"),
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let digest = created["digest"].as_str().unwrap().to_owned();

    let (status, now) = server.get(&app, &format!("/v1/requests/{id}?wait=0"));
    assert_eq!((status, now["state"].as_str()), (200, Some("pending")));
    let waited = std::thread::scope(|s| {
        let waiter = s.spawn(|| server.get(&app, &format!("/v1/requests/{id}?wait=30")));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (status, _) = alice.decide(&server, &id, &digest, Decision::Approve);
        assert_eq!(status, 200);
        waiter.join().unwrap()
    });
    assert_eq!(
        (waited.0, waited.1["state"].as_str()),
        (200, Some("approved")),
        "the waiting call saw the change"
    );

    let (status, problem) = server.get(&app, &format!("/v1/requests/{id}?wait=61"));
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, problem) = server.get(&app, &format!("/v1/requests/{id}?wait=x"));
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_query"))
    );
}

#[test]
fn approver_stream_sends_signed_snapshot_live_changes_keepalives_and_resumes() {
    let server = Server::start_with_config("[limits]\nstream_keepalive_seconds = 1\n");
    let app = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let bob = Approver::add_and_enroll(&server, "bob@example.com", &[], 2);
    let (_, first) = server.post(
        &app,
        "/v1/requests",
        &payout("s1", "2500", "alice@example.com"),
    );
    let first_id = first["id"].as_str().unwrap().to_owned();

    let (status, stream) = EventStream::open(&server, &alice, None);
    assert_eq!(status, 200);
    let stream = stream.unwrap();
    let snapshot = stream.next_event(10).expect("snapshot event");
    assert_eq!(snapshot.event, "request");
    let pushed = verify_pushed(&server, &snapshot.data);
    assert_eq!(pushed.transaction.id, first_id);
    assert_eq!(pushed.state, "pending");
    // What the approver's screen shows, rendered by the approver crate from the verified push.
    let pinned = server.keys();
    let signed: countersign_core::push::SignedRequest =
        serde_json::from_str(&snapshot.data).unwrap();
    let verified = countersign_approver::VerifiedRequest::verify(&signed, &pinned).unwrap();
    let screen = countersign_approver::DisplayModel::render(&verified, "alice@example.com", 0);
    assert_eq!(screen.title, "Send a payout");
    assert_eq!(screen.headline, "Pay 2,500.00 EUR to vendor:4711");
    assert_eq!(screen.progress, ["your own confirmation: waiting"]);
    let snapshot_id = snapshot.id.clone().expect("events carry ids");

    // Bob may not act on Alice's self step-up: his stream stays silent about it.
    let (_, bob_stream) = EventStream::open(&server, &bob, None);
    let bob_stream = bob_stream.unwrap();

    let (_, second) = server.post(
        &app,
        "/v1/requests",
        &payout("s2", "3000", "alice@example.com"),
    );
    let second_id = second["id"].as_str().unwrap().to_owned();
    let live = stream
        .next_event(10)
        .expect("live event for the new request");
    let pushed = verify_pushed(&server, &live.data);
    assert_eq!(pushed.transaction.id, second_id);
    assert!(
        live.id.unwrap().parse::<u64>().unwrap() > snapshot_id.parse::<u64>().unwrap(),
        "event ids grow"
    );

    let digest = first["digest"].as_str().unwrap();
    let (status, _) = alice.decide(&server, &first_id, digest, Decision::Approve);
    assert_eq!(status, 200);
    let changed = stream.next_event(10).expect("event for the approval");
    let pushed = verify_pushed(&server, &changed.data);
    assert_eq!(
        (pushed.transaction.id.as_str(), pushed.state.as_str()),
        (first_id.as_str(), "approved")
    );
    assert!(
        stream.keepalive_within(5),
        "keep-alive comments arrive on an idle stream"
    );
    assert!(
        bob_stream.next_event(2).is_none(),
        "nothing for an approver who may not act"
    );

    // Resuming after the snapshot replays what changed since, the approved request included.
    let (status, resumed) = EventStream::open(&server, &alice, Some(&snapshot_id));
    assert_eq!(status, 200);
    let resumed = resumed.unwrap();
    let mut seen = std::collections::BTreeMap::new();
    while let Some(e) = resumed.next_event(3) {
        let p = verify_pushed(&server, &e.data);
        seen.insert(p.transaction.id.clone(), p.state.clone());
    }
    assert_eq!(seen.get(&first_id).map(String::as_str), Some("approved"));
    assert_eq!(seen.get(&second_id).map(String::as_str), Some("pending"));

    let (status, none) = EventStream::open(&server, &alice, Some("not-a-number"));
    assert_eq!((status, none.is_none()), (400, true));
    let unsigned = reqwest::blocking::get(server.url("/v1/approver/stream")).unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
}

/// Disabling an approver ends their open event streams at once: an idle one within seconds,
/// and a busy one before it sends anything more; reconnecting is refused (issue 12, item 8).
#[test]
fn a_disabled_approver_s_streams_end_at_once_and_carry_nothing_more() {
    let server = Server::start_with_config("[limits]\nstream_keepalive_seconds = 1\n");
    let app = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let bob = Approver::add_and_enroll(&server, "bob@example.com", &[], 2);
    let (status, _) = server.post(
        &app,
        "/v1/requests",
        &payout("p1", "2500", "alice@example.com"),
    );
    assert_eq!(status, 201);
    let (_, busy) = EventStream::open(&server, &alice, None);
    let busy = busy.unwrap();
    let snapshot = busy.next_event(10).expect("the snapshot");
    assert_eq!(
        verify_pushed(&server, &snapshot.data)
            .transaction
            .requester
            .id,
        "alice@example.com"
    );
    let (_, idle) = EventStream::open(&server, &bob, None);
    let idle = idle.unwrap();
    assert!(idle.keepalive_within(5), "bob's stream is open");

    // Nothing happens after bob is disabled; his stream ends all the same.
    admin(
        &server.data_dir(),
        &["approver", "disable", "bob@example.com"],
    );
    let after = idle.events_until_closed(10).expect("the idle stream ends");
    assert!(after.is_empty(), "{after:?}");

    // A request created after alice's disable committed never reaches her stream.
    admin(
        &server.data_dir(),
        &["approver", "disable", "alice@example.com"],
    );
    let (status, created) = server.post(
        &app,
        "/v1/requests",
        &payout("p2", "2600", "alice@example.com"),
    );
    assert_eq!(status, 201);
    let after = busy.events_until_closed(10).expect("the busy stream ends");
    let id = created["id"].as_str().unwrap();
    assert!(after.iter().all(|e| !e.data.contains(id)), "{after:?}");

    for who in [&alice, &bob] {
        let (status, _) = EventStream::open(&server, who, None);
        // (Disabling an approver disables their devices: the device signature is refused.)
        assert_eq!(status, 401, "reconnecting is refused");
    }
}
