//! The desktop app end to end: the built app under Xvfb in a private D-Bus session with a
//! real Secret Service, driven over WebDriver (tauri-driver + WebKitWebDriver), against the
//! real server binary on loopback, with the demo software key (the real `authenticator`
//! CTAP2 code path). Each test asserts what the window shows and what the server recorded.
//! Screenshots of every screen go to docs/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/desktop.rs"]
mod desktop;
mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use countersign_core::jwk::KeySet;
use countersign_core::token::{self, Expectations};
use countersign_core::{Digest, Transaction};
use desktop::{serial, Desktop, Launch};
use serde_json::{json, Value};
use support::server::{admin, session_hash, unix_now, Server};

const DANA: &str = "dana@example.com";
const GROUPS: &[&str] = &["finance-approvers", "security-admins", "agent-owners"];

/// Creates a request as the protected application would; returns the server's answer.
fn create(server: &Server, app_key: &str, body: Value) -> Value {
    let (status, created) = server.post(app_key, "/v1/requests", &body);
    assert_eq!(status, 201, "{created}");
    created
}

fn agent_call(key: &str) -> Value {
    json!({
        "idempotency_key": key,
        "action": "agent.tool.invoke",
        "object": "tool:refund.issue",
        "scope": "order:88231",
        "requester": {"id": "copilot-7", "kind": "agent"},
        "session": session_hash("agent-session"),
        "context": {"device_posture": "managed", "privileges": ["refunds"]}
    })
}

fn bank_change(key: &str) -> Value {
    json!({
        "idempotency_key": key,
        "action": "payout.bank_details.change",
        "object": "vendor:4711",
        "change": [{"field": "iban", "before": "DE89370400440532013000", "after": "DE44500105175407324931"}],
        "requester": {"id": "alice@example.com", "kind": "human"},
        "session": session_hash("session-1"),
        "context": {"device_posture": "managed", "privileges": ["payments"]}
    })
}

fn privilege_grant(key: &str, requester: &str) -> Value {
    json!({
        "idempotency_key": key,
        "action": "iam.privilege.grant",
        "object": "user:mallory@example.com",
        "scope": "role:production-admin",
        "requester": {"id": requester, "kind": "human"},
        "session": session_hash("session-2"),
        "context": {"device_posture": "managed", "privileges": ["iam"]}
    })
}

/// Enrolls through the window with the demo software key (optionally with a PIN, typed when
/// the key asks for it).
fn enroll_with_demo_key(desk: &Desktop, server: &Server, code: &str, pin: Option<&str>) {
    let ui = &desk.ui;
    ui.wait("#check-server", 60);
    assert_eq!(
        ui.attribute("#server", "value").as_deref(),
        Some(server.base.as_str())
    );
    ui.click_css("#key-demo_software");
    if let Some(pin) = pin {
        ui.type_into("#demo-pin", pin);
    }
    desk.screenshot("enroll");
    ui.click_css("#check-server");
    // The server's identity, its key checked against the code, before anything is saved.
    let kid = code.rsplit('.').next().unwrap();
    let shown = ui.text_of("#id-key").replace(' ', "");
    assert_eq!(shown, kid);
    assert_eq!(ui.text_of("#id-server"), server.base);
    assert!(
        !desk.profile_dir_path.join("profile.json").exists(),
        "nothing is saved before the person confirms"
    );
    desk.screenshot("enroll-confirm");
    ui.click_css("#enroll-confirm");
    if let Some(pin) = pin {
        ui.wait("#pin", 30);
        ui.type_into("#pin", pin);
        ui.click_css("#pin-submit");
    }
    ui.wait_text("[data-testid=ceremony-result]", "Enrolled", 60);
    ui.click_css("#ceremony-done");
    ui.wait_text("#approver", DANA, 20);
    ui.wait("#connection[data-state=connected]", 30);
    assert!(ui.text_of("#demo-badge").contains("DEMO KEY"));
}

fn request_state(server: &Server, app_key: &str, id: &str) -> String {
    let (_, r) = server.get(app_key, &format!("/v1/requests/{id}"));
    r["state"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn enroll_approve_deny_report_history_and_settings_through_the_window() {
    let _one_at_a_time = serial();
    let server = Server::start();
    let app_key = server.api_key("payouts", "payouts-service");
    let code = support::approver_code(&server, DANA, GROUPS);
    let desk = Desktop::launch(Launch {
        server: Some(&server.base),
        code: Some(&code),
        ..Launch::default()
    });
    let ui = &desk.ui;
    enroll_with_demo_key(&desk, &server, &code, None);
    ui.wait("[data-testid=empty]", 20);
    desk.screenshot("inbox-empty");

    // A protected application asks; the request appears without a refresh.
    let agent = create(&server, &app_key, agent_call("agent-1"));
    let agent_id = agent["id"].as_str().unwrap();
    let bank = create(&server, &app_key, bank_change("bank-1"));
    let bank_id = bank["id"].as_str().unwrap();
    let grant = create(
        &server,
        &app_key,
        privilege_grant("grant-1", "alice@example.com"),
    );
    let grant_id = grant["id"].as_str().unwrap();
    for id in [agent_id, bank_id, grant_id] {
        ui.wait(&format!(".inbox-item[data-id='{id}']"), 20);
    }
    assert_eq!(ui.text_of("#inbox-count"), "3");
    desk.screenshot("inbox");

    // The exact request: what the server's transaction says, and its fingerprint.
    ui.click_css(&format!(".inbox-item[data-id='{bank_id}']"));
    let digest = Digest::from_base64url(bank["digest"].as_str().unwrap()).unwrap();
    assert_eq!(ui.text_of("#fingerprint"), digest.fingerprint());
    assert_eq!(ui.text_of("#f-object"), "vendor:4711");
    assert_eq!(ui.text_of("#f-action"), "payout.bank_details.change");
    let changes = ui.text_of("#changes");
    assert!(changes.contains("iban"), "{changes}");
    assert!(changes.contains("DE89370400440532013000"), "{changes}");
    assert!(changes.contains("DE44500105175407324931"), "{changes}");
    assert!(ui.text_of("#f-requester").contains("alice@example.com"));
    assert!(ui.text_of("#f-uv").contains("PIN"));
    desk.screenshot("request");
    ui.click_css("#raw-toggle");
    let tx = Transaction::from_json(bank["transaction"].to_string().as_bytes()).unwrap();
    assert_eq!(
        ui.text_of("#canonical"),
        String::from_utf8(tx.canonical_json().unwrap()).unwrap()
    );
    assert_eq!(ui.text_of("#digest"), digest.to_base64url());
    desk.screenshot("request-raw");

    // Deny with a reason: confirmed, signed by the key, answered by the server.
    ui.click_css("#deny");
    ui.type_into("#reason", "the vendor did not ask for this");
    desk.screenshot("deny-confirm");
    ui.click_css("#confirm-submit");
    ui.wait_text("[data-testid=ceremony-result]", "Denied", 30);
    desk.screenshot("deny-done");
    assert_eq!(request_state(&server, &app_key, bank_id), "denied");
    ui.click_css("#ceremony-done");
    ui.wait_gone(&format!(".inbox-item[data-id='{bank_id}']"), 20);

    // Approve the agent's call: the server issues a decision that verifies.
    ui.click_css(&format!(".inbox-item[data-id='{agent_id}']"));
    assert_eq!(ui.text_of("#f-object"), "tool:refund.issue");
    assert!(ui.text_of("#f-requester").contains("AI agent"));
    ui.click_css("#approve");
    ui.wait_text("[data-testid=ceremony-result]", "Approved", 30);
    desk.screenshot("approve-done");
    let (status, decision) = server.get(&app_key, &format!("/v1/requests/{agent_id}/decision"));
    assert_eq!(status, 200, "{decision}");
    let agent_tx = Transaction::from_json(agent["transaction"].to_string().as_bytes()).unwrap();
    let (_, info) = server.get(&app_key, "/v1/info");
    let claims = token::verify_for_transaction(
        decision["token"].as_str().unwrap(),
        &KeySet::from_jwks_json(&server.jwks_bytes()).unwrap(),
        &Expectations {
            issuer: info["origin"].as_str().unwrap(),
            audience: "payouts-service",
            now: unix_now(),
            leeway_seconds: 5,
        },
        &agent_tx,
    )
    .unwrap();
    assert_eq!(claims.approvers, vec![DANA.to_owned()]);
    ui.click_css("#ceremony-done");

    // Report as suspicious: the requester is frozen on the server.
    ui.click_css(&format!(".inbox-item[data-id='{grant_id}']"));
    ui.click_css("#report");
    ui.click_css("#confirm-submit");
    assert!(
        ui.text_of(".confirm .field-error").contains("Say what"),
        "a report needs a reason"
    );
    ui.type_into("#reason", "alice is on holiday; I did not ask for this");
    desk.screenshot("report-confirm");
    ui.click_css("#confirm-submit");
    ui.wait_text("[data-testid=ceremony-result]", "Reported", 30);
    desk.screenshot("report-done");
    assert_eq!(request_state(&server, &app_key, grant_id), "denied");
    let frozen = admin(&server.data_dir(), &["requester", "frozen"]);
    assert!(frozen.contains("alice@example.com"), "{frozen}");
    ui.click_css("#ceremony-done");
    ui.wait("[data-testid=empty]", 20);

    // History: this device's three decisions, newest first, with their fingerprints.
    ui.click_css("#nav-history");
    let history = ui.text_of("#history");
    for (word, fp) in [
        (
            "Reported",
            Digest::from_base64url(grant["digest"].as_str().unwrap()).unwrap(),
        ),
        (
            "Approved",
            Digest::from_base64url(agent["digest"].as_str().unwrap()).unwrap(),
        ),
        ("Denied", digest),
    ] {
        assert!(
            history.contains(word) && history.contains(&fp.fingerprint()),
            "{history}"
        );
    }
    let rows = ui.find_all("#history tbody tr");
    assert_eq!(rows.len(), 3);
    assert!(ui.text(&rows[0]).contains("Reported"));
    desk.screenshot("history");

    // Settings: the server, its pinned key and the demo key, labelled as such.
    ui.click_css("#nav-settings");
    assert_eq!(ui.text_of("#s-server"), server.base);
    assert!(ui
        .text_of("#s-key-ids")
        .contains(code.rsplit('.').next().unwrap()));
    assert!(ui.text_of("#s-key-kind").contains("Demo software key"));
    desk.screenshot("settings");
}
