//! Long-polling by the protected application. (The approver event stream's test is not in yet:
//! see the issue notes.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use countersign_core::Decision;

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
