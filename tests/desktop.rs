//! The desktop app end to end: the built app under Xvfb in a private D-Bus session with a
//! real Secret Service, driven over WebDriver (tauri-driver + WebKitWebDriver), against the
//! real server binary on loopback, with the demo software key (the real `authenticator`
//! CTAP2 code path). Each test asserts what the window shows and what the server recorded.
//! Screenshots of every screen go to docs/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/desktop.rs"]
mod desktop;
#[path = "support/notifications.rs"]
mod notifications;
mod support;
#[path = "support/tray.rs"]
mod tray;
#[path = "support/webdriver.rs"]
mod webdriver;

use countersign_core::jwk::KeySet;
use countersign_core::token::{self, Expectations};
use countersign_core::{Digest, Transaction};
use desktop::{serial, Desktop, Launch, WebIsolation};
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

/// The app with its enrollment screen filled in for Dana on `server`; returns it with the
/// payouts application's API key and Dana's one-time code.
fn open_app(server: &Server, env: Vec<(&'static str, String)>) -> (Desktop, String, String) {
    let app_key = server.api_key("payouts", "payouts-service");
    let code = support::approver_code(server, DANA, GROUPS);
    let desk = Desktop::launch(Launch {
        server: Some(&server.base),
        code: Some(&code),
        env,
        ..Launch::default()
    });
    (desk, app_key, code)
}

fn request_state(server: &Server, app_key: &str, id: &str) -> String {
    let (_, r) = server.get(app_key, &format!("/v1/requests/{id}"));
    r["state"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn enroll_approve_deny_report_history_and_settings_through_the_window() {
    let _one_at_a_time = serial();
    let server = Server::start();
    let (desk, app_key, code) = open_app(&server, Vec::new());
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
    // No notification server on this bus: the window says so instead of failing silently.
    ui.wait_text("#notifications", "Notifications unavailable", 20);
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
    assert_eq!(
        colour_scheme(ui),
        (false, "rgb(244, 246, 251)".to_owned()),
        "the light system theme gives the light page"
    );
    // The web content runs in WebKit's sandbox, and so the window app names WebKit's render
    // device instead of loading a GL driver to look it up (src-tauri/src/webkit_env.rs).
    assert_isolation(&desk);
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
    ui.wait("#history tbody tr", 20);
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
    let rows = ui.wait_count("#history tbody tr", 3, 20);
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

    // The same device after a restart of the app, with the system in dark mode: it comes back
    // enrolled (device key from the keyring), connected, with its history.
    let mut desk = desk;
    desk.relaunch(Launch {
        env: vec![("GTK_THEME", "Adwaita:dark".into())],
        ..Launch::default()
    });
    let ui = &desk.ui;
    ui.wait("#connection[data-state=connected]", 30);
    create(
        &server,
        &app_key,
        privilege_grant("grant-2", "bob@example.com"),
    );
    let payout = create(
        &server,
        &app_key,
        support::server::payout("pay-1", "25000", "erin@example.com"),
    );
    ui.wait(
        &format!(".inbox-item[data-id='{}']", payout["id"].as_str().unwrap()),
        20,
    );
    desk.screenshot("dark-inbox");
    ui.click_css(&format!(
        ".inbox-item[data-id='{}']",
        payout["id"].as_str().unwrap()
    ));
    assert_eq!(ui.text_of("#f-amount"), "25,000.00 EUR");
    assert_eq!(
        colour_scheme(ui),
        (true, "rgb(15, 18, 24)".to_owned()),
        "GTK_THEME=Adwaita:dark gives the dark page"
    );
    // Dark as well as sandboxed and without the GL driver: the three hold together.
    assert_isolation(&desk);
    desk.screenshot("dark-request");
    ui.click_css("#nav-history");
    // History kept across restarts.
    ui.wait_count("#history tbody tr", 3, 20);
    desk.screenshot("dark-history");
    ui.click_css("#nav-settings");
    ui.wait("#s-server", 20);
    desk.screenshot("dark-settings");
}

/// Where bubblewrap works (as on CI), the web process runs in WebKit's sandbox and the window
/// app maps no libLLVM; where it does not, the app runs unsandboxed, as it says at start.
fn assert_isolation(desk: &Desktop) {
    let isolation = desk.web_isolation();
    if desktop::bubblewrap_works() {
        assert_eq!(
            isolation,
            WebIsolation {
                web_process_in_bubblewrap: true,
                app_maps_libllvm: false
            }
        );
    } else {
        eprintln!("bubblewrap cannot run here: checking the unsandboxed start");
        assert!(!isolation.web_process_in_bubblewrap, "{isolation:?}");
    }
}

/// Whether the page follows a dark system theme, and the page's background colour as the
/// browser computed it (what the person sees, not what the stylesheet asks for).
fn colour_scheme(ui: &webdriver::WebDriver) -> (bool, String) {
    let answer = ui.execute(
        "return [matchMedia('(prefers-color-scheme: dark)').matches, \
         getComputedStyle(document.body).backgroundColor]",
    );
    (
        answer[0].as_bool().unwrap_or_else(|| panic!("{answer}")),
        answer[1].as_str().unwrap_or_default().to_owned(),
    )
}

/// Evaluates the shell's `decide` command directly (as a tampered UI could) and returns the
/// error kind it answers with, or "ok".
fn decide_directly(ui: &webdriver::WebDriver, id: &str, digest: &str) -> String {
    let script = format!(
        "const done = arguments[arguments.length - 1];\
         window.__TAURI_INTERNALS__.invoke('decide', {{id: {id:?}, digest: {digest:?}, choice: {{kind: 'approve'}}}})\
           .then(() => done('ok'), (e) => done(e.kind));"
    );
    ui.execute_async(&script)
        .as_str()
        .unwrap_or("no answer")
        .to_owned()
}

#[test]
fn a_pin_protected_demo_key_shows_tries_left_and_cancel_works_at_every_step() {
    let _one_at_a_time = serial();
    let server = Server::start();
    // A slow simulated touch, so the touch step can be seen and cancelled.
    let (desk, app_key, code) = open_app(
        &server,
        vec![("COUNTERSIGN_DEMO_KEY_TOUCH_MS", "4000".into())],
    );
    let ui = &desk.ui;
    enroll_with_demo_key(&desk, &server, &code, Some("4821"));

    // The bank-detail change needs user verification: the key asks for its PIN.
    let bank = create(&server, &app_key, bank_change("bank-pin"));
    let bank_id = bank["id"].as_str().unwrap();
    ui.click_css(&format!(".inbox-item[data-id='{bank_id}']"));
    ui.click_css("#approve");
    ui.wait("#pin", 30);
    desk.screenshot("ceremony-pin");
    ui.type_into("#pin", "0000");
    ui.click_css("#pin-submit");
    let retries = ui.wait_text("[data-testid=retries]", "tries left", 30);
    assert_eq!(retries, "7 tries left before the PIN is blocked");
    assert_eq!(
        ui.text_of("h2[data-stage=wrong_pin]"),
        "Wrong PIN: enter it again"
    );
    desk.screenshot("ceremony-wrong-pin");
    ui.type_into("#pin", "4821");
    ui.click_css("#pin-submit");
    ui.wait("h2[data-stage=touch]", 30);
    desk.screenshot("ceremony-touch");
    ui.wait_text(
        "[data-testid=ceremony-result]",
        "Your approval is recorded",
        30,
    );
    desk.screenshot("ceremony-recorded");
    let (_, request) = server.get(&app_key, &format!("/v1/requests/{bank_id}"));
    assert_eq!(
        request["state"], "pending",
        "alice's own confirmation still missing"
    );
    ui.click_css("#ceremony-done");

    // Cancel at the PIN prompt, then at the touch: nothing is signed or sent.
    let grant = create(
        &server,
        &app_key,
        privilege_grant("grant-pin", "alice@example.com"),
    );
    let grant_id = grant["id"].as_str().unwrap();
    let audit_before = server.audit_len();
    ui.click_css(&format!(".inbox-item[data-id='{grant_id}']"));
    ui.click_css("#approve");
    ui.wait("#pin", 30);
    ui.click_css("#ceremony-cancel");
    ui.wait_text("[data-testid=ceremony-result]", "Cancelled", 30);
    desk.screenshot("ceremony-cancelled");
    let renders = ui.attribute("#main", "data-renders").unwrap();
    ui.click_css("#ceremony-done");
    // "Back to the request" reloads it: wait for the fresh screen before pressing approve.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ui.attribute("#main", "data-renders").as_deref() == Some(renders.as_str()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the request screen was not reloaded"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ui.click_css("#approve");
    ui.wait("#pin", 30);
    ui.type_into("#pin", "4821");
    ui.click_css("#pin-submit");
    ui.wait("h2[data-stage=touch]", 30);
    ui.click_css("#ceremony-cancel");
    ui.wait_text("[data-testid=ceremony-result]", "Cancelled", 30);
    let (_, request) = server.get(&app_key, &format!("/v1/requests/{grant_id}"));
    assert_eq!(request["state"], "pending");
    assert_eq!(
        server.audit_len(),
        audit_before,
        "a cancelled ceremony sends and records nothing"
    );
}

const SHORT_WINDOW: &str = r#"
@id("short-window")
@reason("own payout, short window")
@self_step_up("true")
@approval_ttl("30")
@execution_ttl("10")
permit(principal, action == Action::"payout.send", resource);

@id("agent-call")
@reason("an AI agent's privileged call")
@approvers("1")
@group("agent-owners")
@approval_ttl("600")
@execution_ttl("60")
permit(principal, action == Action::"agent.tool.invoke", resource);
"#;

#[test]
fn expiry_a_server_restart_and_an_unverifiable_push() {
    let _one_at_a_time = serial();
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.cedar");
    std::fs::write(&policies, SHORT_WINDOW).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        // Checkpoints every second, so the audit alarm below comes soon.
        format!("[policy]\npolicies = {policies:?}\n[audit]\ncheckpoint_seconds = 1\n"),
    )
    .unwrap();
    let mut server = Server::start_in(dir);
    let (desk, app_key, code) = open_app(&server, Vec::new());
    let ui = &desk.ui;
    enroll_with_demo_key(&desk, &server, &code, None);

    // Dana's own payout, 30 s to confirm: left open until it expires.
    let own = create(
        &server,
        &app_key,
        support::server::payout("own-1", "2500", DANA),
    );
    let own_id = own["id"].as_str().unwrap();
    let own_digest = own["digest"].as_str().unwrap();
    ui.click_css(&format!(".inbox-item[data-id='{own_id}']"));
    assert!(ui.text_of("#f-progress").contains("your own confirmation"));
    let own_tx = Transaction::from_json(own["transaction"].to_string().as_bytes()).unwrap();
    support::server::sleep_until_after(own_tx.approve_by.unix());
    ui.wait("[data-testid=expired]", 20);
    assert_eq!(ui.text_of("#countdown"), "Expired");
    assert_eq!(
        ui.attribute("#approve", "disabled").as_deref(),
        Some("true")
    );
    desk.screenshot("request-expired");
    // Even asked directly, the shell refuses to sign it.
    let audit_before = server.audit_len();
    let refused = decide_directly(ui, own_id, own_digest);
    assert!(
        matches!(refused.as_str(), "expired" | "not_pending"),
        "{refused}"
    );
    assert_eq!(server.audit_len(), audit_before, "nothing was sent");
    let (_, request) = server.get(&app_key, &format!("/v1/requests/{own_id}"));
    assert_eq!(request["state"], "expired", "{request}");
    ui.click_css("#nav-inbox");
    ui.wait("[data-testid=empty]", 20);

    // The server goes away: the window says so, then reconnects by itself and shows what
    // arrived while it was gone.
    server.kill();
    ui.wait("#connection[data-state=reconnecting]", 30);
    assert!(ui.text_of("#connection").contains("Offline since"));
    desk.screenshot("reconnecting");
    server.crash_and_restart_same_port();
    let meanwhile = create(&server, &app_key, agent_call("agent-meanwhile"));
    let meanwhile_id = meanwhile["id"].as_str().unwrap();
    ui.wait(&format!(".inbox-item[data-id='{meanwhile_id}']"), 60);
    ui.wait("#connection[data-state=connected]", 30);

    // The server now signs with a key this device never pinned and no pinned key endorsed
    // (put in place of its key files, as only an intruder on its host could; a rotation would
    // be endorsed by the old key and trusted): what it pushes is refused, never shown, and the
    // window warns. (The checkpoints the old key signed go too, or the server would refuse to
    // start on them.)
    server.kill();
    server.plant_unendorsed_key();
    let _ = std::fs::remove_file(server.data_dir().join("audit-checkpoints.jsonl"));
    server.crash_and_restart_same_port();
    let forged = create(&server, &app_key, agent_call("agent-other-key"));
    let forged_id = forged["id"].as_str().unwrap();
    ui.wait("[data-testid=refused]", 60);
    assert!(ui
        .try_find(&format!(".inbox-item[data-id='{forged_id}']"))
        .is_none());
    assert!(ui.text_of("[data-testid=refused]").contains("not shown"));
    // Its audit checkpoints, signed by the same unknown key, raise the audit alarm: a warning
    // of its own above the refused requests.
    ui.wait("[data-testid=audit-alarm]", 60);
    let alarm = ui.text_of("[data-testid=audit-alarm]");
    assert!(
        alarm.starts_with("The server's audit history does not add up."),
        "{alarm}"
    );
    assert!(alarm.contains("does not verify with its key"), "{alarm}");
    desk.screenshot("unverifiable");
    let shown = decide_directly(ui, forged_id, forged["digest"].as_str().unwrap());
    assert_eq!(
        shown, "not_pending",
        "an unverified request cannot be answered"
    );

    // The page can reach nothing but the shell: the CSP refuses a request to the server.
    let health = format!("{}/health", server.base);
    let fetched = ui.execute_async(&format!(
        "const done = arguments[arguments.length - 1];\
         fetch({health:?}).then(() => done('reached'), () => done('refused'));"
    ));
    assert_eq!(fetched, "refused");
}

#[test]
fn a_new_request_notifies_once_review_opens_it_and_decided_or_paused_ones_do_not() {
    let _one_at_a_time = serial();
    let mut server = Server::start();
    let (desk, app_key, code) = open_app(&server, Vec::new());
    let ui = &desk.ui;
    let bus = notifications::Notifications::start(&desk.bus_address());
    enroll_with_demo_key(&desk, &server, &code, None);

    let created = create(&server, &app_key, agent_call("notify-1"));
    let id = created["id"].as_str().unwrap();
    let n = bus.wait_for("copilot-7", 20);
    assert_eq!(n.app_name, "Countersign");
    assert_eq!(n.summary, "AI agent tool call: tool:refund.issue");
    assert!(
        n.body.starts_with(
            "Let copilot-7 call tool:refund.issue once\nAsked by copilot-7 (AI agent) · "
        ),
        "{}",
        n.body
    );
    assert!(n.body.ends_with("min left"), "{}", n.body);
    assert_eq!(n.actions, ["default", "Review", "review", "Review"]);
    assert_eq!(n.urgency, Some(1), "normal urgency with ten minutes left");

    // "Review" opens that request's screen; it approves nothing by itself.
    ui.click_css("#nav-history");
    bus.invoke(n.id, "review");
    ui.wait_text("#f-object", "tool:refund.issue", 20);
    assert_eq!(
        ui.text_of("#fingerprint"),
        Digest::from_base64url(created["digest"].as_str().unwrap())
            .unwrap()
            .fingerprint()
    );
    assert_eq!(request_state(&server, &app_key, id), "pending");

    // A reconnect resynchronises the list: nothing is notified twice.
    server.kill();
    ui.wait("#connection[data-state=reconnecting]", 30);
    server.crash_and_restart_same_port();
    ui.wait("#connection[data-state=connected]", 60);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(bus.received().len(), 1, "{:?}", bus.received());

    // Decided: its notification is withdrawn.
    ui.click_css("#approve");
    ui.wait_text("[data-testid=ceremony-result]", "Approved", 30);
    bus.wait_closed(n.id, 20);
    ui.click_css("#ceremony-done");

    // Paused: a new request is in the inbox but not notified, not even after resuming.
    ui.click_css("#nav-settings");
    ui.click_css("#pause-hour");
    ui.wait_text("#notifications", "Notifications paused until", 20);
    desk.screenshot("settings-paused");
    let quiet = create(&server, &app_key, agent_call("notify-paused"));
    ui.click_css("#nav-inbox");
    ui.wait(
        &format!(".inbox-item[data-id='{}']", quiet["id"].as_str().unwrap()),
        20,
    );
    ui.click_css("#nav-settings");
    ui.click_css("#pause-resume");
    ui.wait_gone("#notifications", 20);
    create(
        &server,
        &app_key,
        privilege_grant("notify-resumed", "alice@example.com"),
    );
    bus.wait_for("mallory", 20);
    let summaries: Vec<String> = bus.received().into_iter().map(|n| n.summary).collect();
    assert_eq!(summaries.len(), 2, "{summaries:?}");
    assert!(
        summaries[1].starts_with("Grant a privilege"),
        "{summaries:?}"
    );
}

/// The pixels of one of the app's tray icons, as committed in icons/.
fn tray_icon(name: &str) -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../icons/{name}.png"));
    tray::png_pixels(&std::fs::read(path).unwrap())
}

#[test]
fn the_tray_agent_shows_what_waits_outlives_the_window_and_opens_it_on_requests() {
    let _one_at_a_time = serial();
    let mut server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let home_env = ("HOME", home.path().display().to_string());
    let (desk, app_key, code) = open_app(&server, vec![home_env.clone()]);
    let ui = &desk.ui;
    let host = tray::TrayHost::start(&desk.bus_address());
    enroll_with_demo_key(&desk, &server, &code, None);
    let (idle, waiting, offline) = (
        tray_icon("tray-idle"),
        tray_icon("tray-waiting"),
        tray_icon("tray-offline"),
    );

    let seen = host.wait("nothing waiting", 30, |s| {
        s.entry("Nothing waiting").is_some() && s.entry("Connected").is_some()
    });
    assert!(seen.icon == idle, "the idle icon while nothing waits");
    assert_eq!(seen.label, "Countersign: nothing waiting");
    // The tray belongs to the agent, a process of its own that maps no web view.
    let agents = desk.agent_processes();
    assert_eq!(agents.len(), 1, "{agents:?}");
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", agents[0].0)).unwrap();
    assert!(!maps.contains("libwebkit2gtk"), "the agent maps WebKit");
    assert!(!maps.contains("libgtk-3"), "the agent maps GTK");
    assert_eq!(
        seen.labels(),
        [
            "Open Countersign",
            "Nothing waiting",
            "Connected",
            "Notifications on",
            "Pause notifications for 1 hour",
            "Pause until tomorrow 08:00",
            "Resume notifications",
            "Quit Countersign"
        ]
    );
    assert!(!seen.entry("Nothing waiting").unwrap().enabled);
    assert!(!seen.entry("Resume").unwrap().enabled);

    // Two requests: counted, listed soonest first with amount or object and time left, badged.
    let agent = create(&server, &app_key, agent_call("tray-1"));
    let bank = create(&server, &app_key, bank_change("tray-2"));
    // (A tray update changes entries one by one: wait for all of them.)
    let seen = host.wait("two requests", 30, |s| {
        s.entry("2 requests waiting").is_some()
            && s.label == "Countersign: 2 requests waiting"
            && s.labels()
                .iter()
                .filter(|l| l.ends_with("min left"))
                .count()
                == 2
    });
    assert!(seen.icon == waiting, "the badged icon while requests wait");
    let labels = seen.labels();
    let listed: Vec<&String> = labels.iter().filter(|l| l.ends_with("min left")).collect();
    assert_eq!(listed.len(), 2, "{labels:?}");
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with("AI agent tool call · tool:refund.issue · ")),
        "{labels:?}"
    );
    let bank_entry = seen
        .menu
        .iter()
        .find(|e| e.label.ends_with("min left") && !e.label.starts_with("AI agent"))
        .unwrap()
        .clone();
    assert!(bank_entry.enabled);
    // This bus has no notification server: the first notification failed, and the tray says
    // so (pausing what cannot be shown makes no sense).
    let unavailable = host.wait("notifications unavailable", 20, |s| {
        s.entry("Notifications unavailable").is_some()
    });
    assert!(!unavailable.entry("Pause notifications").unwrap().enabled);

    // An entry opens that request's screen (it approves nothing).
    host.click(bank_entry.id);
    ui.wait_text("#f-object", "vendor:4711", 20);
    assert_eq!(
        request_state(&server, &app_key, bank["id"].as_str().unwrap()),
        "pending"
    );

    // A second launch hands its link to the first and ends; the first shows the request.
    let agent_id = agent["id"].as_str().unwrap();
    let link = format!("countersign://request/{agent_id}");
    let second = desk.launch_again(&[&link], std::slice::from_ref(&home_env));
    assert!(second.status.success(), "{second:?}");
    ui.wait_text("#f-object", "tool:refund.issue", 20);
    // A crafted link is refused, and the window says why.
    let second = desk.launch_again(
        &["countersign://approve/everything"],
        std::slice::from_ref(&home_env),
    );
    assert!(second.status.success(), "{second:?}");
    ui.wait_text("#notice", "A link was refused: unknown link", 20);
    desk.screenshot("link-refused");

    // Start at login: off by default, on from the settings (an XDG autostart entry that
    // starts the app in the tray).
    ui.click_css("#nav-settings");
    let autostart = home.path().join(".config/autostart/Countersign.desktop");
    ui.wait("#start-at-login", 20);
    assert_eq!(ui.attribute("#start-at-login", "checked"), None);
    assert!(!autostart.exists());
    ui.execute("document.getElementById('quit').scrollIntoView({block: 'end'})");
    desk.screenshot("settings-background");
    ui.click_css("#start-at-login");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !autostart.exists() {
        assert!(std::time::Instant::now() < deadline, "no autostart entry");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let entry = std::fs::read_to_string(&autostart).unwrap();
    assert!(entry.contains("--hidden"), "{entry}");
    ui.click_css("#start-at-login");
    while autostart.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the autostart entry stayed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // Closing the window ends its process (and its web view); the agent stays in the tray,
    // still following the server.
    desk.close_window();
    assert_eq!(
        desk.agent_processes().len(),
        1,
        "the agent left with the window"
    );
    create(
        &server,
        &app_key,
        privilege_grant("tray-3", "alice@example.com"),
    );
    let seen = host.wait("three requests", 30, |s| {
        s.entry("3 requests waiting").is_some() && s.label == "Countersign: 3 requests waiting"
    });
    // "Open" starts the window app again, on the inbox (no link).
    host.click(seen.entry("Open Countersign").unwrap().id);
    let args = desk.wait_window_process(60, |_| true);
    assert!(
        !args.iter().any(|a| a.starts_with("countersign:")),
        "{args:?}"
    );
    desk.close_window();

    // A request's entry starts it on that request: the link the second launch above followed.
    let seen = host.seen().unwrap();
    let agent_entry = seen
        .menu
        .iter()
        .find(|e| e.label.starts_with("AI agent tool call"))
        .unwrap();
    host.click(agent_entry.id);
    let args = desk.wait_window_process(60, |_| true);
    assert_eq!(args.last(), Some(&link), "{args:?}");
    desk.close_window();

    // Offline: the warning icon and the connection in words.
    server.kill();
    let seen = host.wait("offline", 60, |s| {
        s.entry("Offline since").is_some() && s.icon == offline
    });
    assert!(seen.icon == offline, "the warning icon while offline");
    server.crash_and_restart_same_port();
    host.wait("connected again", 60, |s| s.entry("Connected").is_some());

    // Quit ends the app: its tray item leaves the bus, and an open window closes with it.
    let seen = host.seen().unwrap();
    host.click(seen.entry("Open Countersign").unwrap().id);
    desk.wait_window_process(60, |_| true);
    let quit = host.seen().unwrap().entry("Quit Countersign").unwrap().id;
    host.click(quit);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while host.seen().is_some()
        || !desk.agent_processes().is_empty()
        || !desk.window_processes().is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the app did not quit: agent {:?}, window {:?}",
            desk.agent_processes(),
            desk.window_processes()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn without_a_session_bus_the_app_says_so_and_does_not_start() {
    let out = std::process::Command::new(desktop::desktop_app())
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/countersign-test-bus",
        )
        .env_remove("XDG_RUNTIME_DIR")
        .env("DISPLAY", ":12345")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no D-Bus session bus"), "{stderr}");
    assert!(stderr.contains("dbus-run-session"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_enrollment_link_fills_the_enrollment_screen_and_enrolling_still_needs_the_person() {
    let _one_at_a_time = serial();
    let server = Server::start();
    let code = support::approver_code(&server, DANA, GROUPS);
    let desk = Desktop::launch(Launch::default());
    let ui = &desk.ui;
    ui.wait("#check-server", 60);
    assert_eq!(ui.attribute("#code", "value").as_deref(), Some(""));

    let server_param: String =
        url::form_urlencoded::byte_serialize(server.base.as_bytes()).collect();
    let link = format!("countersign://enroll?code={code}&server={server_param}");
    let second = desk.launch_again(&[&link], &[]);
    assert!(second.status.success(), "{second:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ui.attribute("#code", "value").as_deref() != Some(code.as_str()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the link did not fill in the code"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Filled in, nothing more: no profile until the server is confirmed and the key touched.
    assert!(!desk.profile_dir_path.join("profile.json").exists());
    enroll_with_demo_key(&desk, &server, &code, None);

    // Enrolled: another enrollment link is refused, and the window says why.
    let second = desk.launch_again(&[&link], &[]);
    assert!(second.status.success(), "{second:?}");
    ui.wait_text("#notice", "this device is already enrolled", 20);

    // A payee written with a Cyrillic letter and a zero-width space: the request screen says
    // so above the fields, naming both (what is shown stays exactly what is signed).
    let app_key = server.api_key("payouts", "payouts-service");
    let mut tricky = bank_change("tricky-1");
    tricky["object"] = "vendor:47\u{200B}11".into();
    tricky["change"][0]["field"] = "payee".into();
    tricky["change"][0]["after"] = "\u{0410}cme Bank".into();
    let created = create(&server, &app_key, tricky);
    let id = created["id"].as_str().unwrap();
    ui.wait(&format!(".inbox-item[data-id='{id}']"), 20);
    ui.click_css(&format!(".inbox-item[data-id='{id}']"));
    ui.wait("#text-warnings", 20);
    let warnings = ui.text_of("#text-warnings");
    assert!(
        warnings.contains("object contains invisible characters"),
        "{warnings}"
    );
    assert!(warnings.contains("U+200B"), "{warnings}");
    assert!(
        warnings.contains("change payee (after) mixes scripts"),
        "{warnings}"
    );
    assert!(warnings.contains("U+0410"), "{warnings}");
    assert_eq!(
        ui.text_of("#f-object"),
        "vendor:47U+200B11",
        "drawn where it is"
    );
    desk.screenshot("request-warnings");
}
