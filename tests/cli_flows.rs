//! End to end: the real server binary and the real `countersign` CLI over loopback, the
//! software key enrolled through the real enrollment path and driven through the
//! `authenticator` crate's CTAP2 code, the device key in a real Secret Service (a private
//! gnome-keyring on a private D-Bus session).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::server::{payout, Server};
use support::{approver_code, enroll_args, Cli, Keyring};

/// Enrolls `id` through the CLI with a software key file in `dir`; returns the CLI.
fn enroll(
    server: &Server,
    keyring: &Keyring,
    dir: &std::path::Path,
    id: &str,
    extra: &[&str],
) -> Cli {
    enroll_in(server, keyring, dir, id, &[], extra)
}

/// Like [`enroll`], adding the approver to `groups` first.
fn enroll_in(
    server: &Server,
    keyring: &Keyring,
    dir: &std::path::Path,
    id: &str,
    groups: &[&str],
    extra: &[&str],
) -> Cli {
    let cli = Cli::new(dir.join(format!("{id}.profile.json")), keyring.env());
    let code = approver_code(server, id, groups);
    let key = format!("soft:{}", dir.join(format!("{id}.key.json")).display());
    let mut args = enroll_args(server, &code, &key);
    args.extend_from_slice(extra);
    let (status, out) = cli.json(&args, "");
    assert_eq!(status, 0, "{out}");
    assert_eq!(out["approver_id"], id);
    cli
}

#[test]
fn self_step_up_through_the_cli_with_the_device_key_in_the_keyring() {
    let server = Server::start();
    let keyring = Keyring::start();
    let dir = tempfile::tempdir().unwrap();
    let app = server.api_key("payouts", "payouts-service");
    let alice = enroll(&server, &keyring, dir.path(), "alice@example.com", &[]);

    // The profile names the keyring entry and holds no key material.
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&alice.profile).unwrap()).unwrap();
    assert!(
        profile["device_key"]["keyring"]["account"].is_string(),
        "{profile}"
    );
    assert!(!profile.to_string().contains("seed"));

    let (_, created) = server.post(
        &app,
        "/v1/requests",
        &payout("cli-1", "2500", "alice@example.com"),
    );
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, pending) = alice.json(&["pending"], "");
    assert_eq!(status, 0, "{pending}");
    let listed = pending.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["amount"], "2,500.00 EUR");

    // What is shown carries the digest fingerprint the requester can compare.
    let digest =
        countersign_core::Digest::from_base64url(created["digest"].as_str().unwrap()).unwrap();
    let (_, shown) = alice.json(&["show", &id], "");
    assert_eq!(shown["fingerprint"], digest.fingerprint());

    // Without --yes the CLI asks, and "no" sends nothing.
    let (status, refused) = alice.json(&["approve", &id], "n\n");
    assert_eq!(
        (status, refused["code"].as_str()),
        (1, Some("not_confirmed"))
    );
    let (_, state) = server.get(&app, &format!("/v1/requests/{id}"));
    assert_eq!(state["state"], "pending");

    let (status, approved) = alice.json(&["approve", &id], "y\n");
    assert_eq!(status, 0, "{approved}");
    assert_eq!(approved["state"], "approved");

    // The application's check of the decision, from the shell.
    let (_, decision) = server.get(&app, &format!("/v1/requests/{id}/decision"));
    let token = decision["token"].as_str().unwrap();
    let tx = serde_json::to_vec(&created["transaction"]).unwrap();
    let (status, verified) = support::verify_decision(&server, &app, token, &tx, "payouts-service");
    assert_eq!(
        (status, &verified["valid"]),
        (0, &serde_json::json!(true)),
        "{verified}"
    );
}

#[test]
fn without_a_keyring_enrollment_stops_before_the_code_is_spent() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let code = approver_code(&server, "bob@example.com", &[]);
    let key = format!("soft:{}", dir.path().join("bob.key.json").display());
    // A session bus address that leads nowhere: no Secret Service.
    let cli = Cli::new(
        dir.path().join("bob.profile.json"),
        vec![(
            "DBUS_SESSION_BUS_ADDRESS".into(),
            "unix:path=/nonexistent/bus".into(),
        )],
    );
    let enroll = enroll_args(&server, &code, &key);
    let (status, out) = cli.json(&enroll, "");
    assert_eq!(
        (status, out["code"].as_str()),
        (1, Some("no_keyring")),
        "{out}"
    );
    let message = out["error"].as_str().unwrap();
    assert!(message.contains("gnome-keyring") && message.contains("--insecure-device-key-file"));
    assert!(!cli.profile.exists());

    // The same code still works, with the key file the person opted into.
    let file = dir.path().join("bob.device-key");
    let mut opted = enroll.to_vec();
    opted.extend_from_slice(&["--insecure-device-key-file", file.to_str().unwrap()]);
    let (status, out) = cli.json(&opted, "");
    assert_eq!(status, 0, "{out}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the key file is readable by its owner only"
        );
    }
    let (status, pending) = cli.json(&["pending"], "");
    assert_eq!(
        (status, pending.as_array().map(Vec::len)),
        (0, Some(0)),
        "{pending}"
    );
}

#[test]
fn a_pin_protected_soft_key_asks_for_the_pin_and_reports_tries_left() {
    let server = Server::start();
    let keyring = Keyring::start();
    let dir = tempfile::tempdir().unwrap();
    let app = server.api_key("payouts", "payouts-service");
    // Enrollment with a PIN set needs the PIN (typed on stdin here).
    let cli = Cli::new(dir.path().join("carol.profile.json"), keyring.env());
    let code = approver_code(&server, "carol@example.com", &[]);
    let key = format!("soft:{}", dir.path().join("carol.key.json").display());
    let mut args = enroll_args(&server, &code, &key);
    args.extend_from_slice(&["--soft-key-pin", "482913"]);
    let out = cli.run(&args, "482913\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (_, created) = server.post(
        &app,
        "/v1/requests",
        &payout("pin-1", "2500", "carol@example.com"),
    );
    let id = created["id"].as_str().unwrap();
    // A wrong PIN first: the key says how many tries are left, the right one goes through.
    let out = cli.run(&["approve", id, "--yes"], "0000\n482913\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("security key: enter your security key's PIN"),
        "{stderr}"
    );
    assert!(
        stderr.contains("wrong PIN: enter it again, 7 tries left"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("is approved"));
}

#[test]
fn deny_and_report_through_the_cli() {
    let server = Server::start();
    let keyring = Keyring::start();
    let dir = tempfile::tempdir().unwrap();
    let app = server.api_key("payouts", "payouts-service");
    let dave = enroll(
        &server,
        &keyring,
        dir.path(),
        "dave@example.com",
        &["--soft-key-algorithm", "eddsa"],
    );

    let (_, first) = server.post(
        &app,
        "/v1/requests",
        &payout("deny-1", "2500", "dave@example.com"),
    );
    let first = first["id"].as_str().unwrap();
    let (status, denied) = dave.json(&["deny", first, "--yes", "--reason", "not mine"], "");
    assert_eq!(
        (status, &denied["state"]),
        (0, &serde_json::json!("denied")),
        "{denied}"
    );

    let (_, second) = server.post(
        &app,
        "/v1/requests",
        &payout("report-1", "2500", "dave@example.com"),
    );
    let second = second["id"].as_str().unwrap();
    let (status, reported) = dave.json(
        &[
            "report",
            second,
            "--yes",
            "--reason",
            "I did not ask for this",
        ],
        "",
    );
    assert_eq!(status, 0, "{reported}");
    // The requester is frozen: a new request is refused.
    let (code, refused) = server.post(
        &app,
        "/v1/requests",
        &payout("report-2", "2500", "dave@example.com"),
    );
    assert_eq!(
        (code, refused["code"].as_str()),
        (403, Some("requester_frozen")),
        "{refused}"
    );
    // Decided requests are no longer offered.
    let (status, shown) = dave.json(&["show", first], "");
    assert_eq!((status, shown["code"].as_str()), (1, Some("not_pending")));
}

#[test]
fn watch_shows_new_requests_and_approves_on_the_spot() {
    use std::io::{BufRead, Write};
    let server = Server::start();
    let keyring = Keyring::start();
    let dir = tempfile::tempdir().unwrap();
    let app = server.api_key("payouts", "payouts-service");
    let erin = enroll(&server, &keyring, dir.path(), "erin@example.com", &[]);

    let mut watch = erin.spawn(&["watch"]);
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match received.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {needle:?} within 20 s"),
            }
        }
    };

    // A request made while watching is shown with its headline, then approved with "a".
    let (_, created) = server.post(
        &app,
        "/v1/requests",
        &payout("watch-1", "2500", "erin@example.com"),
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let headline = wait_for(&id);
    assert!(headline.contains("2,500.00 EUR"), "{headline}");
    let mut stdin = watch.stdin.take().unwrap();
    stdin.write_all(b"a\n").unwrap();
    wait_for(&format!("request {id} is approved"));
    let (_, state) = server.get(&app, &format!("/v1/requests/{id}"));
    assert_eq!(state["state"], "approved");

    // The next request is shown too; end of input at its prompt ends the watch cleanly.
    let (_, next) = server.post(
        &app,
        "/v1/requests",
        &payout("watch-2", "2500", "erin@example.com"),
    );
    wait_for(next["id"].as_str().unwrap());
    drop(stdin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "watch did not stop at end of input"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
}

#[test]
fn four_eyes_quorum_of_two_through_two_cli_approvers() {
    let server = Server::start();
    let keyring = Keyring::start();
    let dir = tempfile::tempdir().unwrap();
    let app = server.api_key("iam", "admin-console");
    let admins: Vec<Cli> = ["frank@example.com", "grace@example.com"]
        .iter()
        .map(|id| enroll_in(&server, &keyring, dir.path(), id, &["security-admins"], &[]))
        .collect();
    let grant = serde_json::json!({
        "idempotency_key": "g1", "action": "iam.privilege.grant", "object": "user:heidi",
        "scope": "role:admin", "requester": {"id": "heidi@example.com", "kind": "human"},
        "session": support::server::session_hash("s")
    });
    let (status, created) = server.post(&app, "/v1/requests", &grant);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();

    let (_, shown) = admins[0].json(&["show", id], "");
    assert_eq!(
        shown["progress"],
        serde_json::json!(["0 of 2 approvers from security-admins"])
    );
    let (status, first) = admins[0].json(&["approve", id, "--yes"], "");
    assert_eq!(
        (status, &first["state"]),
        (0, &serde_json::json!("pending")),
        "{first}"
    );
    // Frank is done; it is no longer offered to him, but still to Grace.
    let (_, left) = admins[0].json(&["pending"], "");
    assert_eq!(left.as_array().map(Vec::len), Some(0), "{left}");
    let (_, shown) = admins[1].json(&["show", id], "");
    assert_eq!(
        shown["progress"],
        serde_json::json!(["1 of 2 approvers from security-admins"])
    );
    // Who approved, and when (the server's signed approval time).
    let approvals = shown["approvals"].as_array().cloned().unwrap_or_default();
    assert_eq!(approvals.len(), 1, "{shown}");
    assert_eq!(approvals[0]["approver_id"], "frank@example.com");
    assert!(
        approvals[0]["text"]
            .as_str()
            .is_some_and(|t| t.ends_with(" approved just now")),
        "{shown}"
    );
    let at = approvals[0]["at"].as_i64().unwrap();
    assert!((support::server::unix_now() - at).abs() < 60, "{shown}");
    let (status, second) = admins[1].json(&["approve", id, "--yes"], "");
    assert_eq!(
        (status, &second["state"]),
        (0, &serde_json::json!("approved")),
        "{second}"
    );
}

#[test]
fn an_expired_request_cannot_be_approved_and_an_expired_decision_cannot_be_redeemed() {
    // The shortest windows policy allows: 30 s to approve, 10 s to execute. Real waits.
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.cedar");
    std::fs::write(
        &policies,
        r#"@id("short-windows")
@reason("short windows")
@self_step_up("true")
@user_verification("true")
@approval_ttl("30")
@execution_ttl("10")
permit(principal, action == Action::"payout.send", resource);
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[policy]\npolicies = {policies:?}\n"),
    )
    .unwrap();
    let server = Server::start_in(dir);
    let keyring = Keyring::start();
    let files = tempfile::tempdir().unwrap();
    let app = server.api_key("payouts", "payouts-service");
    let ivan = enroll(&server, &keyring, files.path(), "ivan@example.com", &[]);

    let (_, late) = server.post(
        &app,
        "/v1/requests",
        &payout("late", "2500", "ivan@example.com"),
    );
    let late = late["id"].as_str().unwrap().to_owned();
    let (_, quick) = server.post(
        &app,
        "/v1/requests",
        &payout("quick", "2500", "ivan@example.com"),
    );
    let quick = quick["id"].as_str().unwrap().to_owned();
    let (status, approved) = ivan.json(&["approve", &quick, "--yes"], "");
    assert_eq!(
        (status, &approved["state"]),
        (0, &serde_json::json!("approved")),
        "{approved}"
    );
    let (_, decision) = server.get(&app, &format!("/v1/requests/{quick}/decision"));
    let exp = decision["exp"].as_i64().unwrap();

    support::server::sleep_until_after(exp);
    let (status, refused) = server.post(
        &app,
        &format!("/v1/requests/{quick}/redeem"),
        &serde_json::json!({}),
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (410, Some("decision_expired")),
        "{refused}"
    );
    let (_, state) = server.get(&app, &format!("/v1/requests/{quick}"));
    assert_eq!(
        state["state"], "approved",
        "the late redemption consumed nothing"
    );

    // The approval window (30 s) closes: the request leaves the pending list.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let (_, listed) = ivan.json(&["pending"], "");
        if listed
            .as_array()
            .is_some_and(|l| l.iter().all(|r| r["id"] != late.as_str()))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still offered after its approval deadline"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // Expired: not offered, and approving it by id is refused without touching the key.
    let (status, refused) = ivan.json(&["approve", &late, "--yes"], "");
    assert_eq!(
        (status, refused["code"].as_str()),
        (1, Some("not_pending")),
        "{refused}"
    );
    let (_, state) = server.get(&app, &format!("/v1/requests/{late}"));
    assert_eq!(state["state"], "expired");
}

/// A server as configured by default (`allow_demo_keys` off) refuses the software key with
/// a reason a person understands, and nothing is saved.
#[test]
fn a_server_that_allows_only_security_keys_refuses_the_software_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[enrollment]\nallow_demo_keys = false\n",
    )
    .unwrap();
    let server = Server::start_in(dir);
    let keyring = Keyring::start();
    let files = tempfile::tempdir().unwrap();
    let cli = Cli::new(files.path().join("judy.profile.json"), keyring.env());
    let code = approver_code(&server, "judy@example.com", &[]);
    let key = format!("soft:{}", files.path().join("judy.key.json").display());
    let (status, out) = cli.json(&enroll_args(&server, &code, &key), "");
    assert_eq!(
        (status, out["code"].as_str()),
        (1, Some("demo_key_not_allowed")),
        "{out}"
    );
    assert!(
        out["error"]
            .as_str()
            .unwrap()
            .contains("this server accepts security keys only"),
        "{out}"
    );
    assert!(!cli.profile.exists(), "no profile for a refused enrollment");
}

/// What-you-see-is-what-you-sign by character, end to end: a payee with a zero-width space and
/// a Cyrillic letter is shown with warnings naming both, the invisible character is written out
/// instead of printed, and `--json` carries the same warnings (issue 12, item 11).
#[test]
fn show_warns_about_invisible_and_look_alike_characters() {
    let server = Server::start();
    let keyring = Keyring::start();
    let dir = tempfile::tempdir().unwrap();
    let app = server.api_key("payouts", "payouts-service");
    let erin = enroll(&server, &keyring, dir.path(), "erin@example.com", &[]);
    let mut body = payout("tricky-1", "2500", "erin@example.com");
    body["object"] = "vendor:\u{0410}cme\u{200B}-4711".into();
    let (status, created) = server.post(&app, "/v1/requests", &body);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();

    let out = erin.run(&["show", id], "");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = shown.lines().next().unwrap();
    assert!(
        first.starts_with("WARNING: object contains invisible characters")
            && first.contains("U+200B"),
        "{shown}"
    );
    assert!(
        shown.contains("WARNING: object mixes scripts") && shown.contains("U+0410"),
        "{shown}"
    );
    assert!(
        shown.contains("object      vendor:\u{0410}cme\\u{200B}-4711"),
        "{shown}"
    );
    assert!(
        !shown.contains('\u{200B}'),
        "the invisible character itself is never printed"
    );

    let (status, json) = erin.json(&["show", id], "");
    assert_eq!(status, 0, "{json}");
    let kinds: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["invisible", "mixed_scripts"], "{json}");
}
