//! The shell's state and commands against the real server binary, without a window: what
//! the desk holds and answers is what the window would show. The key is the demo software
//! key (the real `authenticator` CTAP2 path); the device key is in an opted-in file here,
//! except where the keyring itself is under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_desk::ceremony::{CeremonySink, CeremonyUpdate, Stage};
use countersign_desk::desk::{Choice, Desk, DeskConfig, KeyChoice, Ui};
use countersign_desk::error::ShellError;
use countersign_desk::views::{Connection, Snapshot};
use countersign_testkit::{admin, session_hash, Server};
use serde_json::json;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DANA: &str = "dana@example.com";

/// The window's stand-in: keeps the last snapshot and passes ceremony updates on.
struct Recorder {
    last: Mutex<Option<Snapshot>>,
    ceremony: Mutex<Sender<CeremonyUpdate>>,
}

impl CeremonySink for Recorder {
    fn ceremony(&self, update: &CeremonyUpdate) {
        let _ = self.ceremony.lock().unwrap().send(update.clone());
    }
}

impl Ui for Recorder {
    fn changed(&self, snapshot: &Snapshot) {
        *self.last.lock().unwrap() = Some(snapshot.clone());
    }
}

struct Shell {
    desk: Arc<Desk>,
    rt: tokio::runtime::Runtime,
    ceremony: Receiver<CeremonyUpdate>,
    recorder: Arc<Recorder>,
    dir: tempfile::TempDir,
}

fn shell_with(insecure_file: bool) -> Shell {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (tx, ceremony) = channel();
    let recorder = Arc::new(Recorder {
        last: Mutex::new(None),
        ceremony: Mutex::new(tx),
    });
    let config = DeskConfig {
        profile_path: dir.path().join("profile.json"),
        demo_key_path: dir.path().join("demo-key.json"),
        insecure_device_key_file: insecure_file.then(|| dir.path().join("device.key")),
        usb_timeout: Duration::from_secs(2),
        demo_touch: Duration::ZERO,
        device_name: "test desk".into(),
    };
    let desk = Desk::open(config, recorder.clone(), rt.handle().clone());
    desk.start();
    Shell {
        desk,
        rt,
        ceremony,
        recorder,
        dir,
    }
}

fn code_for(server: &Server) -> String {
    admin(
        &server.data_dir(),
        &[
            "approver",
            "add",
            "--id",
            DANA,
            "--name",
            "Dana",
            "--group",
            "finance-approvers",
            "--group",
            "security-admins",
            "--group",
            "agent-owners",
        ],
    );
    admin(
        &server.data_dir(),
        &["enroll-code", "create", "--approver", DANA],
    )
    .trim()
    .to_owned()
}

/// Waits until the desk's snapshot satisfies `ok`.
fn wait_for(shell: &Shell, what: &str, ok: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let snapshot = shell.desk.snapshot();
        if ok(&snapshot) {
            return snapshot;
        }
        assert!(Instant::now() < deadline, "never {what}: {snapshot:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn enrolled(server: &Server) -> Shell {
    let shell = shell_with(true);
    let code = code_for(server);
    let view = shell
        .rt
        .block_on(
            shell
                .desk
                .enroll(&server.base, &code, KeyChoice::DemoSoftware { pin: None }),
        )
        .unwrap();
    assert_eq!(view.approver_id, DANA);
    assert!(view.soft_key);
    wait_for(&shell, "connected", |s| {
        matches!(s.connection, Connection::Connected { .. })
    });
    shell
}

fn agent_call(key: &str) -> serde_json::Value {
    json!({
        "idempotency_key": key, "action": "agent.tool.invoke", "object": "tool:refund.issue",
        "scope": "order:1", "requester": {"id": "copilot-7", "kind": "agent"},
        "session": session_hash("s"), "context": {"privileges": []}
    })
}

fn grant(key: &str) -> serde_json::Value {
    json!({
        "idempotency_key": key, "action": "iam.privilege.grant", "object": "user:mallory",
        "scope": "role:admin", "requester": {"id": "alice@example.com", "kind": "human"},
        "session": session_hash("s"), "context": {"privileges": []}
    })
}

fn create(server: &Server, key: &str, body: &serde_json::Value) -> serde_json::Value {
    let (status, created) = server.post(key, "/v1/requests", body);
    assert_eq!(status, 201, "{created}");
    created
}

#[test]
fn identify_shows_the_server_the_code_names_and_saves_nothing() {
    let server = Server::start();
    let shell = shell_with(true);
    let code = code_for(&server);
    let identity = shell
        .rt
        .block_on(shell.desk.identify(&server.base, &code))
        .unwrap();
    assert_eq!(identity.server, server.base);
    assert_eq!(identity.key_id, code.rsplit('.').next().unwrap());
    assert_eq!(identity.rp_id, "localhost");
    assert!(!shell.dir.path().join("profile.json").exists());
    // A code naming another server key is refused before anything is sent.
    let forged = format!("{}.{}", code.rsplit_once('.').unwrap().0, "A".repeat(43));
    let refused = shell
        .rt
        .block_on(shell.desk.identify(&server.base, &forged));
    assert!(
        matches!(refused, Err(ShellError::ServerNotTrusted { .. })),
        "{refused:?}"
    );
    let bad = shell
        .rt
        .block_on(shell.desk.identify(&server.base, "CSE1.nope"));
    assert!(
        matches!(bad, Err(ShellError::InvalidCode { .. })),
        "{bad:?}"
    );
    let bad = shell.rt.block_on(shell.desk.identify("ftp://x", &code));
    assert!(matches!(bad, Err(ShellError::Invalid { .. })), "{bad:?}");
    // The code is still unspent: enrolling with it works.
    shell
        .rt
        .block_on(
            shell
                .desk
                .enroll(&server.base, &code, KeyChoice::DemoSoftware { pin: None }),
        )
        .unwrap();
}

#[test]
fn a_usb_key_that_is_not_there_ends_the_ceremony_and_saves_nothing() {
    let server = Server::start();
    let shell = shell_with(true);
    let code = code_for(&server);
    // The real USB path through `authenticator`; no key is plugged in here.
    let outcome = shell
        .rt
        .block_on(shell.desk.enroll(&server.base, &code, KeyChoice::Usb));
    assert!(
        matches!(
            outcome,
            Err(ShellError::TimedOut | ShellError::NoKeyFound { .. })
        ),
        "{outcome:?}"
    );
    next_stage(&shell, Stage::WaitingForKey);
    assert!(!shell.dir.path().join("profile.json").exists());
    assert!(
        !shell.dir.path().join("device.key").exists(),
        "placeholder removed"
    );
    // The code is unspent.
    shell
        .rt
        .block_on(
            shell
                .desk
                .enroll(&server.base, &code, KeyChoice::DemoSoftware { pin: None }),
        )
        .unwrap();
}

#[test]
fn without_a_keyring_enrollment_stops_before_the_code_is_spent() {
    let server = Server::start();
    // No Secret Service on this bus address: the keyring cannot work.
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/countersign-bus",
    );
    let shell = shell_with(false);
    let code = code_for(&server);
    let refused = shell.rt.block_on(shell.desk.identify(&server.base, &code));
    assert!(
        matches!(refused, Err(ShellError::NoKeyring { .. })),
        "{refused:?}"
    );
    let refused = shell.rt.block_on(shell.desk.enroll(
        &server.base,
        &code,
        KeyChoice::DemoSoftware { pin: None },
    ));
    assert!(
        matches!(refused, Err(ShellError::NoKeyring { .. })),
        "{refused:?}"
    );
    assert!(
        !shell.dir.path().join("demo-key.json").exists(),
        "no key made"
    );
    // The one-time code was not spent: a device with a working store enrolls with it.
    let other = shell_with(true);
    other
        .rt
        .block_on(
            other
                .desk
                .enroll(&server.base, &code, KeyChoice::DemoSoftware { pin: None }),
        )
        .unwrap();
}

#[test]
fn the_inbox_follows_the_server_and_decisions_sign_only_what_was_shown() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let shell = enrolled(&server);
    let long = create(&server, &app, &grant("g1"));
    let short = create(&server, &app, &agent_call("a1"));
    let snapshot = wait_for(&shell, "two in the inbox", |s| s.inbox.len() == 2);
    // Soonest deadline first: the agent's call (600 s) before the grant (1800 s).
    assert_eq!(snapshot.inbox[0].id, short["id"].as_str().unwrap());
    assert_eq!(snapshot.inbox[1].id, long["id"].as_str().unwrap());
    assert_eq!(
        shell
            .recorder
            .last
            .lock()
            .unwrap()
            .as_ref()
            .map(|s| s.inbox.len()),
        Some(2)
    );

    let id = short["id"].as_str().unwrap();
    let view = shell.desk.request(id).unwrap();
    assert_eq!(view.digest, short["digest"].as_str().unwrap());
    assert_eq!(view.model.object, "tool:refund.issue");
    assert_eq!(view.requester_kind, "AI agent");

    // A digest other than the held request's is refused before the key is asked.
    let audit = server.audit_len();
    let other = long["digest"].as_str().unwrap();
    let changed = shell
        .rt
        .block_on(shell.desk.decide(id, other, Choice::approve()));
    assert_eq!(changed.unwrap_err(), ShellError::Changed);
    assert_eq!(server.audit_len(), audit, "nothing was sent");
    let missing = shell
        .rt
        .block_on(shell.desk.decide("req_nope", other, Choice::approve()));
    assert_eq!(missing.unwrap_err(), ShellError::NotPending);
    let no_reason = shell
        .rt
        .block_on(shell.desk.decide(id, &view.digest, Choice::report("  ")));
    assert!(matches!(no_reason, Err(ShellError::Invalid { .. })));

    let outcome = shell
        .rt
        .block_on(shell.desk.decide(id, &view.digest, Choice::approve()))
        .unwrap();
    assert_eq!(outcome.state, "approved");
    assert_eq!(outcome.fingerprint, view.model.fingerprint);
    let (status, _) = server.get(&app, &format!("/v1/requests/{id}/decision"));
    assert_eq!(status, 200);
    wait_for(&shell, "the approved one leaves", |s| s.inbox.len() == 1);

    let grant_view = shell.desk.request(long["id"].as_str().unwrap()).unwrap();
    let reported = shell
        .rt
        .block_on(shell.desk.decide(
            long["id"].as_str().unwrap(),
            &grant_view.digest,
            Choice::report("not asked for"),
        ))
        .unwrap();
    assert_eq!(reported.state, "denied");
    assert!(admin(&server.data_dir(), &["requester", "frozen"]).contains("alice@example.com"));
    wait_for(&shell, "an empty inbox", |s| s.inbox.is_empty());

    let history = shell.desk.history().unwrap();
    let decisions: Vec<&str> = history.iter().map(|e| e.decision.as_str()).collect();
    assert_eq!(decisions, ["report", "approve"]);
    assert_eq!(history[0].reason.as_deref(), Some("not asked for"));
    let settings = shell.desk.settings().unwrap();
    assert_eq!(settings.key.kind, "demo_software");
    assert_eq!(settings.key.algorithm.as_deref(), Some("ES256"));
    assert!(settings
        .key
        .aaguid
        .as_deref()
        .unwrap()
        .contains("countersign-soft"));
    assert_eq!(settings.device_key, "insecure_file");
    assert_eq!(settings.server_key_ids.len(), 1);
}

/// Starts approving `id` (shown with `digest`) on the shell's runtime, so the test can answer
/// the key's prompts meanwhile.
fn spawn_approve(
    shell: &Shell,
    id: &str,
    digest: &str,
) -> tokio::task::JoinHandle<Result<countersign_desk::desk::DecisionOutcome, ShellError>> {
    let (desk, id, digest) = (shell.desk.clone(), id.to_owned(), digest.to_owned());
    shell
        .rt
        .spawn(async move { desk.decide(&id, &digest, Choice::approve()).await })
}

#[test]
fn the_pin_comes_from_the_window_once_and_cancel_and_busy_hold() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let shell = shell_with(true);
    let code = code_for(&server);
    // Enrolling a PIN-protected demo key: the key asks for the PIN through the window.
    let enrolling = {
        let (desk, base) = (shell.desk.clone(), server.base.clone());
        shell.rt.spawn(async move {
            desk.enroll(
                &base,
                &code,
                KeyChoice::DemoSoftware {
                    pin: Some("4821".into()),
                },
            )
            .await
        })
    };
    next_stage(&shell, Stage::Pin);
    shell
        .desk
        .submit_pin(zeroize::Zeroizing::new("4821".into()))
        .unwrap();
    shell.rt.block_on(enrolling).unwrap().unwrap();
    wait_for(&shell, "connected", |s| {
        matches!(s.connection, Connection::Connected { .. })
    });

    let created = create(&server, &app, &grant("g-pin"));
    let id = created["id"].as_str().unwrap().to_owned();
    wait_for(&shell, "in the inbox", |s| s.inbox.len() == 1);
    let digest = shell.desk.request(&id).unwrap().digest;
    let deciding = spawn_approve(&shell, &id, &digest);
    next_stage(&shell, Stage::Pin);
    // One ceremony at a time.
    let busy = shell
        .rt
        .block_on(shell.desk.decide(&id, &digest, Choice::approve()));
    assert_eq!(busy.unwrap_err(), ShellError::Busy);
    shell
        .desk
        .submit_pin(zeroize::Zeroizing::new("0000".into()))
        .unwrap();
    let wrong = next_stage(&shell, Stage::WrongPin);
    assert_eq!(wrong.retries_left, Some(7));
    shell
        .desk
        .submit_pin(zeroize::Zeroizing::new("4821".into()))
        .unwrap();
    next_stage(&shell, Stage::Sending);
    let outcome = shell.rt.block_on(deciding).unwrap().unwrap();
    assert_eq!(outcome.decision, "approve");

    // Cancel at the PIN: nothing is sent, the request stays.
    let other = create(&server, &app, &grant("g-cancel"));
    let other_id = other["id"].as_str().unwrap().to_owned();
    wait_for(&shell, "in the inbox", |s| {
        s.inbox.iter().any(|i| i.id == other_id)
    });
    let digest = shell.desk.request(&other_id).unwrap().digest;
    let audit = server.audit_len();
    let deciding = spawn_approve(&shell, &other_id, &digest);
    next_stage(&shell, Stage::Pin);
    assert!(shell.desk.cancel());
    let cancelled = shell.rt.block_on(deciding).unwrap();
    assert_eq!(cancelled.unwrap_err(), ShellError::Cancelled);
    assert_eq!(server.audit_len(), audit);
    assert!(!shell.desk.cancel(), "nothing left to cancel");
    assert!(shell.desk.snapshot().inbox.iter().any(|i| i.id == other_id));
}

#[test]
fn unenroll_forgets_the_device_and_a_disabled_device_is_told_so() {
    let server = Server::start();
    let shell = enrolled(&server);
    admin(&server.data_dir(), &["approver", "disable", DANA]);
    // The stream is refused from the next connection on; force one with a restart.
    let mut server = server;
    server.crash_and_restart_same_port();
    wait_for(&shell, "refused", |s| {
        matches!(s.connection, Connection::Refused { .. })
    });
    shell.desk.unenroll().unwrap();
    assert!(!shell.dir.path().join("profile.json").exists());
    assert!(!shell.dir.path().join("device.key").exists());
    let snapshot = shell.desk.snapshot();
    assert!(snapshot.enrolled.is_none());
    assert_eq!(snapshot.connection, Connection::NotEnrolled);
    assert_eq!(shell.desk.unenroll().unwrap_err(), ShellError::NotEnrolled);
}

/// A server whose signing key was replaced by one no pinned key endorsed (as only an intruder
/// on its host could): its pushes are refused and counted once per request, however often the
/// stream and resyncs deliver them again, and its checkpoints raise the audit alarm, a warning
/// of its own. The newest checkpoint seen is kept beside the profile until unenrolling.
#[test]
fn a_refused_request_counts_once_and_an_unverifiable_checkpoint_is_an_audit_alarm() {
    let mut server = Server::start_with_config("[audit]\ncheckpoint_seconds = 1\n");
    let app = server.api_key("payouts", "payouts-service");
    let shell = enrolled(&server);
    let kept = shell.dir.path().join("profile.checkpoint.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !kept.exists() {
        assert!(
            Instant::now() < deadline,
            "no checkpoint kept beside the profile"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    server.kill();
    server.plant_unendorsed_key();
    let _ = std::fs::remove_file(server.data_dir().join("audit-checkpoints.jsonl"));
    server.crash_and_restart_same_port();
    let forged = create(&server, &app, &agent_call("forged"));
    let forged_id = forged["id"].as_str().unwrap();
    let snapshot = wait_for(&shell, "refused and alarmed", |s| {
        !s.refused.is_empty() && s.audit_alarm.is_some()
    });
    assert!(snapshot.inbox.is_empty(), "{snapshot:?}");
    let alarm = snapshot.audit_alarm.unwrap();
    assert!(
        alarm
            .message
            .starts_with("the server sent an audit checkpoint that does not verify"),
        "{alarm:?}"
    );
    // Pushed again: at the next connection's snapshot and its resync.
    let Connection::Connected { since: first } = snapshot.connection else {
        panic!("{:?}", snapshot.connection)
    };
    std::thread::sleep(Duration::from_millis(1100));
    server.crash_and_restart_same_port();
    wait_for(
        &shell,
        "connected again",
        |s| matches!(s.connection, Connection::Connected { since } if since > first),
    );
    std::thread::sleep(Duration::from_secs(2));
    let snapshot = shell.desk.snapshot();
    assert_eq!(
        snapshot
            .refused
            .iter()
            .map(|r| r.request.as_deref())
            .collect::<Vec<_>>(),
        [Some(forged_id)],
        "{:?}",
        snapshot.refused
    );
    assert!(snapshot.refused[0].reason.contains("not shown"));
    assert_eq!(snapshot.audit_alarm.unwrap().since, alarm.since);

    shell.desk.unenroll().unwrap();
    assert!(!kept.exists(), "the kept checkpoint goes with the profile");
}

/// The next ceremony update of `stage` (earlier ones are skipped).
fn next_stage(shell: &Shell, stage: Stage) -> CeremonyUpdate {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let update = shell
            .ceremony
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {stage:?} update"));
        if update.stage == stage {
            return update;
        }
    }
}
