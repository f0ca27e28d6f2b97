//! The approver client against the real server binary: enrollment pins the server named by
//! the code, pending requests arrive verified, answers carry assertions over challenges the
//! client derived. The key is the CTAP2 software key, driven through the `authenticator`
//! crate's register and sign code (only the USB transport is left out).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_approver::audit_memory::AuditAlarm;
use countersign_approver::client::{ClientError, Enrolled};
use countersign_approver::enrollment_code::EnrollmentCodeError;
use countersign_approver::profile::{DeviceKeyLocation, Profile};
use countersign_approver::signer::{
    DemoKeySigner, KeyEvent, KeyPrompt, SignerError, SoftAlgorithm, SoftKeyState,
};
use countersign_approver::watch::WatchEvent;
use countersign_approver::{DisplayModel, EnrollmentCode, ServerClient, Verdict};
use countersign_core::wire::{ProblemCode, RequestState, Role};
use countersign_testkit::*;

/// Answers no PIN prompt (these keys have no PIN) and ignores progress.
struct NoPrompt;

impl KeyPrompt for NoPrompt {
    fn show(&self, _event: &KeyEvent) {}
    fn pin(&self, _event: &KeyEvent) -> Option<zeroize::Zeroizing<String>> {
        None
    }
}

/// A fresh in-memory software key, driven through the `authenticator` crate's CTAP2 code.
fn soft_key() -> DemoKeySigner {
    DemoKeySigner::in_memory(
        SoftKeyState::new(SoftAlgorithm::ES256, None).unwrap(),
        std::sync::Arc::new(NoPrompt),
    )
    .unwrap()
}

/// Adds Alice as an approver; returns her software key.
fn add_alice(server: &Server) -> DemoKeySigner {
    admin(
        &server.data_dir(),
        &[
            "approver",
            "add",
            "--id",
            "alice@example.com",
            "--name",
            "Alice",
        ],
    );
    soft_key()
}

/// Adds and enrolls Alice through a fresh one-time code; returns what enrolling gave and
/// her key.
fn enroll_alice(server: &Server, rt: &tokio::runtime::Runtime) -> (Enrolled, DemoKeySigner) {
    let signer = add_alice(server);
    let code = admin(
        &server.data_dir(),
        &["enroll-code", "create", "--approver", "alice@example.com"],
    );
    let enrolled = rt
        .block_on(ServerClient::enroll(
            &server.base,
            &EnrollmentCode::parse(&code).unwrap(),
            "laptop",
            &signer,
        ))
        .unwrap();
    (enrolled, signer)
}

/// Alice enrolled: her client and key.
fn enrolled_alice(server: &Server, rt: &tokio::runtime::Runtime) -> (ServerClient, DemoKeySigner) {
    let (enrolled, signer) = enroll_alice(server, rt);
    (enrolled.client, signer)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn enrolls_pinned_lists_verified_requests_and_answers_with_derived_challenges() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let signer = add_alice(&server);
    let rt = runtime();

    // A code naming another server key is refused before anything is sent.
    let code = admin(
        &server.data_dir(),
        &["enroll-code", "create", "--approver", "alice@example.com"],
    );
    let code = EnrollmentCode::parse(&code).unwrap();
    let mut impostor = code.clone();
    impostor.server_kid = countersign_core::jwk::SigningKey::from_seed(&[1; 32])
        .kid()
        .to_owned();
    let refused = rt.block_on(ServerClient::enroll(
        &server.base,
        &impostor,
        "laptop",
        &signer,
    ));
    assert!(matches!(
        refused,
        Err(ClientError::Enrollment(
            EnrollmentCodeError::WrongServerKey { .. }
        ))
    ));

    let enrolled = rt
        .block_on(ServerClient::enroll(&server.base, &code, "laptop", &signer))
        .unwrap();
    assert_eq!(enrolled.approver_id, "alice@example.com");
    let client = enrolled.client;
    let reused = rt.block_on(ServerClient::enroll(&server.base, &code, "laptop", &signer));
    assert!(
        matches!(reused, Err(ClientError::Problem { ref code, .. }) if *code == ProblemCode::InvalidEnrollmentCode),
        "a code works once"
    );

    let (_, first) = server.post(
        &app,
        "/v1/requests",
        &payout("c1", "2500", "alice@example.com"),
    );
    let (_, second) = server.post(
        &app,
        "/v1/requests",
        &payout("c2", "3000", "alice@example.com"),
    );
    let pending = rt.block_on(client.pending()).unwrap();
    assert!(pending.refused.is_empty());
    assert_eq!(pending.verified.len(), 2);
    let one = pending
        .verified
        .iter()
        .find(|v| v.request().transaction.id == first["id"].as_str().unwrap())
        .unwrap();
    let screen = DisplayModel::render(one, "alice@example.com", 0);
    assert_eq!(screen.headline, "Pay 2,500.00 EUR to vendor:4711");

    let answer = rt
        .block_on(client.answer(
            one,
            "alice@example.com",
            Verdict::Approve,
            None,
            &enrolled.credential_id,
            &signer,
        ))
        .unwrap();
    assert_eq!(answer.state, RequestState::Approved, "{answer:?}");
    assert_eq!(
        answer.role,
        Role::Requester,
        "alice steps up her own request"
    );
    let (_, decision) = server.get(
        &app,
        &format!("/v1/requests/{}/decision", first["id"].as_str().unwrap()),
    );
    assert!(decision["token"].is_string());

    let other = rt.block_on(client.pending()).unwrap().verified;
    assert_eq!(other.len(), 1, "the approved request left the list");
    assert_eq!(
        other[0].request().transaction.id,
        second["id"].as_str().unwrap()
    );
    let audit = server.audit_len();
    let unexplained = rt.block_on(client.answer(
        &other[0],
        "alice@example.com",
        Verdict::Report,
        Some("  "),
        &enrolled.credential_id,
        &signer,
    ));
    assert!(matches!(unexplained, Err(ClientError::ReasonRequired)));
    assert_eq!(
        server.audit_len(),
        audit,
        "a report without a reason is not sent"
    );
    let answer = rt
        .block_on(client.answer(
            &other[0],
            "alice@example.com",
            Verdict::Deny,
            Some("not me"),
            &enrolled.credential_id,
            &signer,
        ))
        .unwrap();
    assert_eq!(answer.state, RequestState::Denied);
    assert_eq!(answer.requester_frozen, None);
    let wrong_key = rt.block_on(client.answer(
        &other[0],
        "alice@example.com",
        Verdict::Approve,
        None,
        b"other",
        &signer,
    ));
    assert!(matches!(
        wrong_key,
        Err(ClientError::Signer(SignerError::UnknownCredential))
    ));
}

#[test]
fn watch_delivers_the_snapshot_and_live_requests_verified() {
    let server = std::sync::Arc::new(Server::start());
    let app = server.api_key("payouts", "payouts-service");
    let rt = runtime();
    let (client, _signer) = enrolled_alice(&server, &rt);
    let (_, first) = server.post(
        &app,
        "/v1/requests",
        &payout("w1", "2500", "alice@example.com"),
    );
    let first_id = first["id"].as_str().unwrap().to_owned();

    // The snapshot on connect, then a live request created while watching.
    let (s, key) = (server.clone(), app.clone());
    let seen = rt.block_on(async {
        let mut seen = Vec::new();
        let creator = tokio::task::spawn_blocking(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            s.post(
                &key,
                "/v1/requests",
                &payout("w2", "3000", "alice@example.com"),
            )
            .1["id"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        let watched = tokio::time::timeout(
            std::time::Duration::from_secs(15),
            client.watch(None, |event| {
                if let WatchEvent::Request(v) = event {
                    seen.push(v.request().transaction.id.clone());
                }
                if seen.len() == 2 {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            }),
        )
        .await;
        assert!(matches!(watched, Ok(Ok(()))), "{watched:?}");
        (seen, creator.await.unwrap())
    });
    assert_eq!(seen.0, vec![first_id, seen.1.clone()]);
}

#[test]
fn watch_reconnects_after_a_server_crash_and_resynchronises() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let rt = runtime();
    let (client, _signer) = enrolled_alice(&server, &rt);
    let (_, first) = server.post(
        &app,
        "/v1/requests",
        &payout("r1", "2500", "alice@example.com"),
    );
    let first_id = first["id"].as_str().unwrap().to_owned();
    let server = std::sync::Arc::new(std::sync::Mutex::new(server));

    let (s, key) = (server.clone(), app.clone());
    let (events, connection, after_restart) = rt.block_on(async {
        let mut events: Vec<String> = Vec::new();
        let mut connection: Vec<&str> = Vec::new();
        let restarter = tokio::task::spawn_blocking(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            s.lock().unwrap().crash_and_restart_same_port();
            std::thread::sleep(std::time::Duration::from_millis(2500));
            let server = s.lock().unwrap();
            server
                .post(
                    &key,
                    "/v1/requests",
                    &payout("r2", "3000", "alice@example.com"),
                )
                .1["id"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        // Two requests are pending after the restart: stop once both arrived after a resync.
        let watched = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            client.watch(None, |event| {
                match event {
                    WatchEvent::Request(v) => events.push(v.request().transaction.id.clone()),
                    WatchEvent::Resync => events.push("resync".into()),
                    WatchEvent::Refused(e) => panic!("{e}"),
                    WatchEvent::Audit(alarm) => panic!("{alarm}"),
                    WatchEvent::Connected => connection.push("connected"),
                    WatchEvent::Disconnected { .. } => connection.push("disconnected"),
                }
                let since = events
                    .iter()
                    .rposition(|e| e == "resync")
                    .map_or(&events[..0], |r| &events[r + 1..]);
                let distinct: std::collections::BTreeSet<&String> = since.iter().collect();
                if distinct.len() == 2 {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            }),
        )
        .await;
        assert!(
            matches!(watched, Ok(Ok(()))),
            "{watched:?} after {events:?}"
        );
        (events, connection, restarter.await.unwrap())
    });
    let resync = events
        .iter()
        .position(|e| e == "resync")
        .expect("a resync after the reconnect");
    assert_eq!(events[0], first_id, "snapshot before the crash");
    assert!(
        events[resync..].contains(&first_id),
        "the pending list is delivered again after reconnecting: {events:?}"
    );
    assert!(
        events[resync..].contains(&after_restart),
        "requests made after the restart arrive: {events:?}"
    );
    // The connection's state is reported: up, down while the server is gone, up again.
    assert_eq!(connection.first(), Some(&"connected"), "{connection:?}");
    let down = connection
        .iter()
        .position(|c| *c == "disconnected")
        .expect("the crash is reported as a disconnection");
    assert!(
        connection[down..].contains(&"connected"),
        "and the reconnection as connected again: {connection:?}"
    );
}

/// After the server rotates its signing key, an approver who pinned the old one at enrollment
/// still verifies what the new key signs, through the old key's endorsement of the new one;
/// a key nobody endorsed is still refused (issue 12, smaller items).
#[test]
fn a_rotated_server_key_is_trusted_through_the_old_key_s_endorsement() {
    let mut server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let rt = runtime();
    let (client, _signer) = enrolled_alice(&server, &rt);
    let old_kid = server.keys().keys().next().unwrap().kid().to_owned();

    let out = admin(&server.data_dir(), &["keys", "rotate"]);
    assert!(out.contains("new signing key"), "{out}");
    server.crash_and_restart_same_port();
    let (status, created) = server.post(
        &app,
        "/v1/requests",
        &payout("r1", "2500", "alice@example.com"),
    );
    assert_eq!(status, 201, "{created}");
    let pending = rt.block_on(client.pending()).unwrap();
    let (_, rollovers) = server.get(&app, "/v1/keys/rollovers");
    assert!(
        pending.refused.is_empty(),
        "{:?} {rollovers} old {old_kid}",
        pending.refused
    );
    assert_eq!(pending.verified.len(), 1);
    assert_eq!(
        pending.verified[0].request().transaction.id,
        created["id"].as_str().unwrap()
    );
    assert_eq!(rollovers[0]["endorsed_by"], old_kid.as_str(), "{rollovers}");

    // A key put in the key directory without an endorsement (as a database or host intruder
    // might) signs requests nobody trusts.
    let data = server.data_dir();
    server.kill();
    server.plant_unendorsed_key();
    // (Checkpoints the old keys signed would stop the server from starting.)
    let _ = std::fs::remove_file(data.join("audit-checkpoints.jsonl"));
    server.crash_and_restart_same_port();
    let (status, _) = server.post(
        &app,
        "/v1/requests",
        &payout("r2", "2600", "alice@example.com"),
    );
    assert_eq!(status, 201);
    let pending = rt.block_on(client.pending()).unwrap();
    assert!(pending.verified.is_empty(), "{:?}", pending.verified);
    assert_eq!(pending.refused.len(), 2, "{:?}", pending.refused);
}

/// Copies a data directory as a backup would, keeping its modes.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().mode(0o700).create(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// A server put back on an older copy of itself (database, checkpoints and keys restored from
/// a backup, as only someone in control of its host can) pushes an older signed checkpoint.
/// The approver saw a newer one before it quit; started again from its profile, it still
/// knows that one (kept beside the profile) and says the audit log went back (issue 12,
/// item 10).
#[test]
fn an_approver_notices_the_server_s_audit_log_going_back_even_after_a_restart() {
    let mut server = Server::start_with_config("[audit]\ncheckpoint_seconds = 1\n");
    let app = server.api_key("payouts", "payouts-service");
    let rt = runtime();
    let (enrolled, _signer) = enroll_alice(&server, &rt);
    let home = tempfile::tempdir().unwrap();
    let profile_path = home.path().join("profile.json");
    let location = DeviceKeyLocation::InsecureFile {
        path: home.path().join("device.key"),
    };
    location.store().save(&enrolled.device_key_seed()).unwrap();
    enrolled
        .profile("soft:test", location)
        .save(&profile_path)
        .unwrap();
    let kept_file = Profile::checkpoint_file(&profile_path);
    let kept_seq = || -> u64 {
        std::fs::read(&kept_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["seq"].as_u64())
            .unwrap_or(0)
    };

    let (status, _) = server.post(
        &app,
        "/v1/requests",
        &payout("b1", "2500", "alice@example.com"),
    );
    assert_eq!(status, 201);
    assert!(server.terminate(20).is_some_and(|s| s.success()));
    let data = server.data_dir();
    let backup = server.dir.path().join("backup");
    copy_dir(&data, &backup);
    server.crash_and_restart_same_port();
    for n in 0..3 {
        let (status, _) = server.post(
            &app,
            "/v1/requests",
            &payout(&format!("a{n}"), "2500", "alice@example.com"),
        );
        assert_eq!(status, 201);
    }
    let backed_up = std::fs::read_to_string(backup.join("audit-checkpoints.jsonl")).unwrap();
    let newest_then: u64 = backed_up
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["seq"].as_u64())
        .max()
        .unwrap();

    // The approver runs until it has seen (and kept) a checkpoint newer than the backup's,
    // then quits.
    let first = Profile::load(&profile_path)
        .unwrap()
        .connect(&profile_path)
        .unwrap();
    let watching = rt.spawn(async move {
        first
            .watch(None, |event| match event {
                WatchEvent::Audit(alarm) => panic!("{alarm}"),
                _ => std::ops::ControlFlow::Continue(()),
            })
            .await
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while kept_seq() <= newest_then {
        assert!(
            std::time::Instant::now() < deadline,
            "no newer checkpoint kept"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    watching.abort();
    let had = kept_seq();

    // The server is put back on the backup; the approver starts again from its profile.
    server.kill();
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&backup, &data);
    server.crash_and_restart_same_port();
    let again = Profile::load(&profile_path)
        .unwrap()
        .connect(&profile_path)
        .unwrap();
    let mut alarms = Vec::new();
    let watched = rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(60),
            again.watch(None, |event| match event {
                WatchEvent::Audit(alarm) => {
                    alarms.push(alarm);
                    std::ops::ControlFlow::Break(())
                }
                _ => std::ops::ControlFlow::Continue(()),
            }),
        )
        .await
    });
    assert!(matches!(watched, Ok(Ok(()))), "{watched:?}");
    assert_eq!(
        alarms,
        [AuditAlarm::WentBack {
            had,
            now: newest_then
        }]
    );
    assert!(
        alarms[0]
            .to_string()
            .starts_with("the server's audit log went back from entry "),
        "{}",
        alarms[0]
    );
    // The older checkpoint did not replace the newer one kept.
    assert_eq!(kept_seq(), had);
}
