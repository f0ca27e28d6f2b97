//! The whole approval path over the real binary: enrollment with a software FIDO key through
//! the real enrollment endpoint, device-signed approver calls, quorum, the decision token,
//! exactly-once redemption, and each rejection the server must make.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::token::{self, Expectations};
use countersign_core::transaction::Transaction;
use countersign_core::Decision;
use countersign_testkit::*;
use serde_json::json;

/// Creates a payout request; returns (id, digest, transaction).
fn create(
    server: &Server,
    key: &str,
    idem: &str,
    value: &str,
    requester: &str,
) -> (String, String, Transaction) {
    let (status, body) = server.post(key, "/v1/requests", &payout(idem, value, requester));
    assert_eq!(status, 201, "{body}");
    let tx = Transaction::from_json(body["transaction"].to_string().as_bytes()).unwrap();
    (
        body["id"].as_str().unwrap().into(),
        body["digest"].as_str().unwrap().into(),
        tx,
    )
}

/// The decision for `id` as the payouts service reads it, its token verified offline against
/// the transaction it will run.
fn verified_decision(
    server: &Server,
    app: &str,
    id: &str,
    tx: &Transaction,
) -> (serde_json::Value, token::DecisionClaims) {
    let (status, decision) = server.get(app, &format!("/v1/requests/{id}/decision"));
    assert_eq!(status, 200, "{decision}");
    let expect = Expectations {
        issuer: ORIGIN,
        audience: "payouts-service",
        now: unix_now(),
        leeway_seconds: 5,
    };
    let claims = token::verify_for_transaction(
        decision["token"].as_str().unwrap(),
        &server.keys(),
        &expect,
        tx,
    )
    .unwrap();
    (decision, claims)
}

#[test]
fn four_eyes_with_self_step_up_end_to_end() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let bob = Approver::add_and_enroll(&server, "bob@example.com", &["finance-approvers"], 2);
    let carol = Approver::add_and_enroll(&server, "carol@example.com", &["support"], 3);
    let (id, digest, tx) = create(&server, &app, "pay-1", "25000", "alice@example.com");

    // Alice (self step-up) and Bob (finance) see it, server-signed; Carol does not.
    assert_eq!(
        alice
            .pending(&server)
            .iter()
            .map(|r| r.transaction.id.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&id)
    );
    let seen = bob.pending(&server);
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].transaction, tx,
        "the approver sees exactly the transaction that was created"
    );
    assert!(carol.pending(&server).is_empty());
    let (status, problem) = carol.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("not_eligible"))
    );

    let (status, body) = bob.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("pending")),
        "{body}"
    );
    let (status, problem) = server.get(&app, &format!("/v1/requests/{id}/decision"));
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("not_decided"))
    );
    let (status, body) = alice.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("approved")),
        "{body}"
    );

    // The protected application verifies the token offline against the transaction it will run.
    let (decision, claims) = verified_decision(&server, &app, &id, &tx);
    assert_eq!(claims.approvers, ["alice@example.com", "bob@example.com"]);
    // Software keys whose attestation no metadata verified: no claim of a hardware key.
    assert_eq!(claims.amr, ["user", "mfa"]);

    // Exactly once, then the outcome closes the chain.
    let (status, redeemed) = server.post(&app, &format!("/v1/requests/{id}/redeem"), &json!({}));
    assert_eq!((status, &redeemed["token"]), (200, &decision["token"]));
    let (status, problem) = server.post(&app, &format!("/v1/requests/{id}/redeem"), &json!({}));
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("already_redeemed"))
    );
    let (status, body) = server.post(
        &app,
        &format!("/v1/requests/{id}/outcome"),
        &json!({"outcome": "succeeded"}),
    );
    assert_eq!((status, body["state"].as_str()), (200, Some("executed")));

    let export = admin(&server.data_dir(), &["audit", "export"]);
    let kinds: Vec<String> = export
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["request_id"] == json!(id)).then(|| v["kind"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "request.created",
            "approval.approve",
            "approval.approve",
            "decision.approved",
            "decision.redeemed",
            "execution.reported"
        ]
    );
}

/// (group, filled, required) for each group of an approval answer's progress.
fn group_progress(answer: &serde_json::Value) -> Vec<(String, u64, u64)> {
    answer["progress"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group"].as_str().unwrap().to_owned(),
                g["approvers"].as_u64().unwrap(),
                g["required"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Issue 12, item 2: two matching policies ask for approvers from two groups (the sample
/// policies for a payout of 100,000 or more: one finance approver and one security
/// administrator). The request names both (version 2), every group's count holds — two
/// finance approvers are not a security administrator — and one person in both groups fills
/// one place only. (Before, such a request was refused, and before that one group was
/// silently dropped.)
#[test]
fn requirements_from_two_groups_both_hold() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let fay = Approver::add_and_enroll(&server, "fay@example.com", &["finance-approvers"], 2);
    let fred = Approver::add_and_enroll(&server, "fred@example.com", &["finance-approvers"], 3);
    let sam = Approver::add_and_enroll(&server, "sam@example.com", &["security-admins"], 4);
    let dee = Approver::add_and_enroll(
        &server,
        "dee@example.com",
        &["finance-approvers", "security-admins"],
        5,
    );
    let (id, digest, tx) = create(&server, &app, "big-1", "150000", "alice@example.com");
    assert_eq!(tx.version, 2);
    assert_eq!(
        tx.requirements
            .quorum
            .iter()
            .map(|q| (q.group.as_str(), q.approvers))
            .collect::<Vec<_>>(),
        [("finance-approvers", 1), ("security-admins", 1)]
    );
    assert!(tx.requirements.self_step_up);
    for approver in [&fay, &sam, &dee] {
        assert_eq!(approver.pending(&server).len(), 1, "{}", approver.id);
    }

    let (status, body) = alice.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!((status, body["state"].as_str()), (200, Some("pending")));
    let (_, body) = fay.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!(body["state"], "pending", "{body}");
    let (status, body) = fred.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("pending")),
        "a second finance approver is not a security administrator: {body}"
    );
    assert_eq!(
        group_progress(&body),
        [
            ("finance-approvers".into(), 1, 1),
            ("security-admins".into(), 0, 1)
        ]
    );
    assert_eq!(
        (
            &body["progress"]["approvers"],
            &body["progress"]["approvers_required"]
        ),
        (&json!(1), &json!(2))
    );
    let (status, _) = server.get(&app, &format!("/v1/requests/{id}/decision"));
    assert_eq!(status, 409, "not decided");
    // Sam sees the request signed, with each counted approval's groups, and the same count.
    let seen = sam.pending(&server);
    let fills = seen[0].quorum_fill();
    assert_eq!(
        fills
            .iter()
            .map(|f| (f.filled(), f.required))
            .collect::<Vec<_>>(),
        [(1, 1), (0, 1)]
    );
    assert_eq!(
        seen[0]
            .approvals
            .iter()
            .map(|a| (a.approver_id.as_str(), a.groups.clone()))
            .collect::<Vec<_>>(),
        [
            ("alice@example.com", vec![]),
            ("fay@example.com", vec!["finance-approvers".to_owned()]),
            ("fred@example.com", vec!["finance-approvers".to_owned()])
        ]
    );

    let (status, body) = sam.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    let (_, claims) = verified_decision(&server, &app, &id, &tx);
    assert_eq!(
        claims.approvers,
        [
            "alice@example.com",
            "fay@example.com",
            "fred@example.com",
            "sam@example.com"
        ]
    );

    // Dee belongs to both groups: alone she fills one place, and the request waits for
    // someone from either group; Fay's approval then completes it (Dee moves to security).
    let (id, digest, tx) = create(&server, &app, "big-2", "150000", "alice@example.com");
    alice.decide(&server, &id, &digest, Decision::Approve);
    let (_, body) = dee.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!(body["state"], "pending", "one person, two places: {body}");
    assert_eq!(body["progress"]["approvers"], 1);
    let (_, body) = fay.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!(body["state"], "approved", "{body}");
    assert_eq!(
        group_progress(&body),
        [
            ("finance-approvers".into(), 1, 1),
            ("security-admins".into(), 1, 1)
        ]
    );
    let (_, claims) = verified_decision(&server, &app, &id, &tx);
    assert_eq!(
        claims.approvers,
        ["alice@example.com", "dee@example.com", "fay@example.com"]
    );
}

#[test]
fn deny_and_cancel() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let (id, digest, tx) = create(&server, &app, "pay-1", "2500", "alice@example.com");
    let (status, body) = alice.decide(&server, &id, &digest, Decision::Deny);
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("denied")),
        "{body}"
    );
    let (_, decision) = server.get(&app, &format!("/v1/requests/{id}/decision"));
    let expect = Expectations {
        issuer: ORIGIN,
        audience: "payouts-service",
        now: unix_now(),
        leeway_seconds: 5,
    };
    assert_eq!(
        token::verify_for_transaction(
            decision["token"].as_str().unwrap(),
            &server.keys(),
            &expect,
            &tx
        ),
        Err(token::TokenError::Denied)
    );
    let (status, problem) = server.post(&app, &format!("/v1/requests/{id}/redeem"), &json!({}));
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("not_approved"))
    );

    let (id2, digest2, _) = create(&server, &app, "pay-2", "2500", "alice@example.com");
    let (status, body) = server.post(&app, &format!("/v1/requests/{id2}/cancel"), &json!({}));
    assert_eq!((status, body["state"].as_str()), (200, Some("cancelled")));
    let (status, problem) = alice.decide(&server, &id2, &digest2, Decision::Approve);
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("not_pending"))
    );
}

#[test]
fn approval_attacks_are_refused_precisely() {
    let server = Server::start();
    let app = server.api_key("iam", "admin-console");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &["security-admins"], 1);
    let bob = Approver::add_and_enroll(&server, "bob@example.com", &["security-admins"], 2);
    let grant = json!({
        "idempotency_key": "g1", "action": "iam.privilege.grant", "object": "user:mallory", "scope": "role:admin",
        "requester": {"id": "alice@example.com", "kind": "human"}, "session": session_hash("s")
    });
    let (status, created) = server.post(&app, "/v1/requests", &grant);
    assert_eq!(status, 201, "{created}");
    let (id, digest) = (
        created["id"].as_str().unwrap().to_owned(),
        created["digest"].as_str().unwrap().to_owned(),
    );

    // The requester cannot approve their own four-eyes request, even from the right group.
    let (status, problem) = alice.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("own_request"))
    );
    // An assertion made for another transaction (digest) does not count.
    let other = countersign_core::Digest([9; 32]).to_base64url();
    let body = bob.assertion(&other, Decision::Approve, ORIGIN, 1);
    let (status, problem) = bob.send(
        &server,
        "POST",
        &format!("/v1/approver/requests/{id}/approve"),
        Some(&body),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("challenge_mismatch"))
    );
    // An assertion made for another origin (a phishing page) does not count.
    let body = bob.assertion(&digest, Decision::Approve, "https://evil.example", 2);
    let (status, problem) = bob.send(
        &server,
        "POST",
        &format!("/v1/approver/requests/{id}/approve"),
        Some(&body),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("origin_mismatch"))
    );
    // A credential that is not Bob's.
    let mut body = bob.assertion(&digest, Decision::Approve, ORIGIN, 3);
    body["credential_id"] = json!(countersign_core::b64::encode(b"cred-alice@example.com-1"));
    let (status, problem) = bob.send(
        &server,
        "POST",
        &format!("/v1/approver/requests/{id}/approve"),
        Some(&body),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("unknown_credential"))
    );
    let approve_path = format!("/v1/approver/requests/{id}/approve");
    // A refused call's nonce is spent too: replaying it is refused as a replay.
    let wrong_origin = bob.assertion(&digest, Decision::Approve, "https://evil.example", 5);
    let refused = serde_json::to_vec(&wrong_origin).unwrap();
    let refused_header = bob.auth_header("POST", &approve_path, &refused);
    let (status, _) = bob.send_with_header(
        &server,
        "POST",
        &approve_path,
        refused.clone(),
        &refused_header,
    );
    assert_eq!(status, 403);
    let (status, problem) =
        bob.send_with_header(&server, "POST", &approve_path, refused, &refused_header);
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("unauthorized")),
        "{problem}"
    );
    // A replayed device request (same signature, same nonce) is refused.
    let body = bob.assertion(&digest, Decision::Approve, ORIGIN, 4);
    let bytes = serde_json::to_vec(&body).unwrap();
    let path = format!("/v1/approver/requests/{id}/approve");
    let header = bob.auth_header("POST", &path, &bytes);
    let (status, first) = bob.send_with_header(&server, "POST", &path, bytes.clone(), &header);
    assert_eq!(
        (status, first["state"].as_str()),
        (200, Some("pending")),
        "{first}"
    );
    let (status, problem) = bob.send_with_header(&server, "POST", &path, bytes.clone(), &header);
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // The same approver twice does not count twice.
    let (status, problem) = bob.decide(&server, &id, &digest, Decision::Approve);
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("already_decided"))
    );
    // A body changed after the device signed the request.
    let tampered = serde_json::to_vec(&bob.assertion(&digest, Decision::Deny, ORIGIN, 5)).unwrap();
    let (status, _) = bob.send_with_header(
        &server,
        "POST",
        &path,
        tampered,
        &bob.auth_header("POST", &path, &bytes),
    );
    assert_eq!(status, 401);

    // A cloned key: its counter goes backwards on a fresh request.
    let (status, created) = server.post(&app, "/v1/requests", &json!({
        "idempotency_key": "g2", "action": "iam.privilege.grant", "object": "user:dave", "scope": "role:admin",
        "requester": {"id": "carol@example.com", "kind": "human"}, "session": session_hash("s")
    }));
    assert_eq!(status, 201);
    let (id2, digest2) = (
        created["id"].as_str().unwrap().to_owned(),
        created["digest"].as_str().unwrap().to_owned(),
    );
    let body = bob.assertion(&digest2, Decision::Approve, ORIGIN, 2);
    let (status, problem) = bob.send(
        &server,
        "POST",
        &format!("/v1/approver/requests/{id2}/approve"),
        Some(&body),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("counter_regression"))
    );
    // It says what may have happened, and that nothing was approved.
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("went from 4 to 2"), "{detail}");
    assert!(detail.contains("arrived out of order"), "{detail}");
    assert!(detail.contains("Nothing was approved"), "{detail}");
    let body = bob.assertion(&digest2, Decision::Approve, ORIGIN, 100);
    let (status, problem) = bob.send(
        &server,
        "POST",
        &format!("/v1/approver/requests/{id2}/approve"),
        Some(&body),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("credential_revoked")),
        "a flagged credential stays refused"
    );

    // A disabled approver can do nothing.
    admin(
        &server.data_dir(),
        &["approver", "disable", "alice@example.com"],
    );
    let (status, _) = alice.send(&server, "GET", "/v1/approver/requests", None);
    assert_eq!(status, 401);
}

/// The model a hardware-only deployment allows in the tests.
const MODEL: [u8; 16] = *b"hardware-model-1";

/// A vendor's attestation root, the FIDO root that signs the metadata BLOB, and a server that
/// allows only `MODEL`, with that BLOB and root as its metadata files.
fn hardware_only_server() -> (Server, countersign_forge::metadata::TestCa) {
    use countersign_forge::metadata::{blob, Model, TestCa};
    let fido = TestCa::new("Test FIDO root", 1).unwrap();
    let vendor = TestCa::new("Test vendor attestation root", 2).unwrap();
    let model = Model {
        aaguid: MODEL,
        description: "Test Hardware Key".into(),
        roots: vec![vendor.der().to_vec()],
        statuses: vec!["FIDO_CERTIFIED_L1".into()],
    };
    let dir = tempfile::tempdir().unwrap();
    let (blob_path, root_path) = (dir.path().join("mds.jwt"), dir.path().join("mds-root.pem"));
    std::fs::write(&blob_path, blob(&fido, &[model], 1, "2099-12-31").unwrap()).unwrap();
    std::fs::write(&root_path, fido.pem()).unwrap();
    let hex: String = MODEL.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[enrollment]\nallowed_aaguids = [{hex:?}]\nmetadata_blob = {blob_path:?}\nmetadata_root = {root_path:?}\n"
        ),
    )
    .unwrap();
    (Server::start_in(dir), vendor)
}

/// A one-time code's secret for `id`.
fn code_secret(server: &Server, id: &str) -> String {
    let code = admin(
        &server.data_dir(),
        &["enroll-code", "create", "--approver", id],
    );
    code.trim().split('.').nth(1).unwrap().to_owned()
}

/// With an allow-list, a key's claimed model counts only when its attestation chain verifies
/// against the metadata (issue 12, item 5): software keys claiming the model are refused,
/// whatever attestation they send, and the code stays unspent; a key whose certificate the
/// model's vendor issued enrolls, and its approvals alone put `hwk` into decisions.
#[test]
fn hardware_only_enrollment_needs_a_verified_attestation_and_only_that_earns_hwk() {
    use countersign_forge::{Attest, ForgingKey};
    let (server, vendor) = hardware_only_server();
    let app = server.api_key("payouts", "payouts-service");
    for (id, groups) in [
        ("alice@example.com", vec![]),
        ("bob@example.com", vec!["--group", "finance-approvers"]),
    ] {
        let mut args = vec!["approver", "add", "--id", id, "--name", id];
        args.extend(groups);
        admin(&server.data_dir(), &args);
    }
    let alice_code = code_secret(&server, "alice@example.com");
    let attestation_key = ForgingKey::es256(0x61);
    let genuine = vendor.issue_attestation(&attestation_key, MODEL).unwrap();
    let impostor_ca = countersign_forge::metadata::TestCa::new("Not the vendor", 3).unwrap();
    let forged = impostor_ca
        .issue_attestation(&attestation_key, MODEL)
        .unwrap();
    let attempts: [(Attest<'_>, &str); 3] = [
        (Attest::None, "gave no attestation certificate"),
        (Attest::PackedSelf, "gave no attestation certificate"),
        (
            Attest::PackedX5c {
                certificate: &forged,
                key: &attestation_key,
            },
            "does not lead to a root of model",
        ),
    ];
    for (attest, says) in attempts {
        let Err((status, problem)) =
            Approver::enroll_as(&server, "alice@example.com", 1, &alice_code, MODEL, attest)
        else {
            panic!("a software key claiming the model enrolled")
        };
        assert_eq!(
            (status, problem["code"].as_str()),
            (403, Some("attestation_not_verified")),
            "{problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{problem}"
        );
    }
    // This project's own software key is not on the list.
    let Err((status, problem)) =
        Approver::enroll_with_code(&server, "alice@example.com", 1, &alice_code, Attest::None)
    else {
        panic!()
    };
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("authenticator_not_allowed"))
    );

    // The genuine model enrolls with the same, still unspent code.
    let attest = || Attest::PackedX5c {
        certificate: &genuine,
        key: &attestation_key,
    };
    let alice = Approver::enroll_as(
        &server,
        "alice@example.com",
        1,
        &alice_code,
        MODEL,
        attest(),
    )
    .unwrap();
    // Bob's key chains through the vendor's batch CA, carried in x5c.
    let batch = vendor.intermediate("Test vendor batch CA", 5).unwrap();
    let bob_attestation_key = ForgingKey::es256(0x62);
    let mut bob_chain = vec![batch
        .issue_attestation(&bob_attestation_key, MODEL)
        .unwrap()];
    bob_chain.extend(batch.chain().iter().cloned());
    let bob_code = code_secret(&server, "bob@example.com");
    let bob = Approver::enroll_as(
        &server,
        "bob@example.com",
        2,
        &bob_code,
        MODEL,
        Attest::PackedX5cChain {
            chain: &bob_chain,
            key: &bob_attestation_key,
        },
    )
    .unwrap();
    let (id, digest, tx) = create(&server, &app, "hw-1", "25000", "alice@example.com");
    for approver in [&alice, &bob] {
        let (status, answer) = approver.decide(&server, &id, &digest, Decision::Approve);
        assert_eq!(status, 200, "{answer}");
    }
    let (_, claims) = verified_decision(&server, &app, &id, &tx);
    assert_eq!(claims.amr, ["hwk", "user", "mfa"]);
    // What was proved is in the audit chain.
    let exported = admin(&server.data_dir(), &["audit", "export"]);
    assert!(
        exported.contains(r#""attestation":"verified""#),
        "{exported}"
    );
}

/// By default a server refuses this project's software keys: their private keys live in
/// files. The code stays unspent.
#[test]
fn the_default_config_refuses_the_project_s_software_keys() {
    let server = Server::start_with_config("[enrollment]\nallow_demo_keys = false\n");
    admin(
        &server.data_dir(),
        &[
            "approver",
            "add",
            "--id",
            "bob@example.com",
            "--name",
            "Bob",
        ],
    );
    let secret = code_secret(&server, "bob@example.com");
    for attest in [
        countersign_forge::Attest::None,
        countersign_forge::Attest::PackedSelf,
    ] {
        let Err((status, problem)) =
            Approver::enroll_with_code(&server, "bob@example.com", 2, &secret, attest)
        else {
            panic!("a demo key enrolled")
        };
        assert_eq!(
            (status, problem["code"].as_str()),
            (403, Some("demo_key_not_allowed")),
            "{problem}"
        );
    }
    let demo_key = countersign_core::webauthn::DEMO_KEY_AAGUID;
    let Err((status, problem)) = Approver::enroll_as(
        &server,
        "bob@example.com",
        2,
        &secret,
        demo_key,
        countersign_forge::Attest::None,
    ) else {
        panic!("the desktop's demo key enrolled")
    };
    assert_eq!(problem["code"], "demo_key_not_allowed", "{status}");
    // A key of another model (no allow-list here) enrolls with the same code.
    assert!(Approver::enroll_as(
        &server,
        "bob@example.com",
        2,
        &secret,
        MODEL,
        countersign_forge::Attest::None
    )
    .is_ok());
}

#[test]
fn enrollment_codes_are_single_use() {
    let open = Server::start();
    admin(
        &open.data_dir(),
        &[
            "approver",
            "add",
            "--id",
            "bob@example.com",
            "--name",
            "Bob",
        ],
    );
    let code = admin(
        &open.data_dir(),
        &["enroll-code", "create", "--approver", "bob@example.com"],
    );
    let secret = code.trim().split('.').nth(1).unwrap().to_owned();
    assert!(Approver::enroll_with_code(
        &open,
        "bob@example.com",
        2,
        &secret,
        countersign_forge::Attest::PackedSelf
    )
    .is_ok());
    let Err((status, problem)) = Approver::enroll_with_code(
        &open,
        "bob@example.com",
        3,
        &secret,
        countersign_forge::Attest::None,
    ) else {
        panic!()
    };
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("invalid_enrollment_code"))
    );
    let Err((status, problem)) = Approver::enroll_with_code(
        &open,
        "bob@example.com",
        3,
        "AAAAAAAAAAAAAAAAAAAAAA",
        countersign_forge::Attest::None,
    ) else {
        panic!()
    };
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("invalid_enrollment_code"))
    );
}

#[test]
fn concurrent_redemptions_and_submissions_count_once() {
    let server = Server::start();
    let app = server.api_key("payouts", "payouts-service");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let (id, digest, _) = create(&server, &app, "pay-1", "2500", "alice@example.com");

    // 50 parallel submissions of the same approval: one counts.
    let body = alice.assertion(&digest, Decision::Approve, ORIGIN, 1);
    let path = format!("/v1/approver/requests/{id}/approve");
    let statuses = alice.send_copies(&[&server], &path, &body, 50);
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let approvals = admin(&server.data_dir(), &["audit", "export"])
        .lines()
        .filter(|l| l.contains("\"approval.approve\""))
        .count();
    assert_eq!(approvals, 1);

    // 100 parallel redemptions of the decision: exactly one succeeds.
    let redeem = format!("/v1/requests/{id}/redeem");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(|| server.post(&app, &redeem, &json!({})).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 99);
}

#[test]
fn parallel_approvals_from_distinct_approvers_reach_quorum_once() {
    let server = Server::start();
    let app = server.api_key("iam", "admin-console");
    let approvers: Vec<Approver> = (0..6)
        .map(|n| {
            Approver::add_and_enroll(
                &server,
                &format!("admin{n}@example.com"),
                &["security-admins"],
                10 + n,
            )
        })
        .collect();
    let (status, created) = server.post(&app, "/v1/requests", &json!({
        "idempotency_key": "g1", "action": "iam.privilege.grant", "object": "user:erin", "scope": "role:admin",
        "requester": {"id": "erin@example.com", "kind": "human"}, "session": session_hash("s")
    }));
    assert_eq!(status, 201);
    let (id, digest) = (
        created["id"].as_str().unwrap().to_owned(),
        created["digest"].as_str().unwrap().to_owned(),
    );
    let results: Vec<(u16, serde_json::Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = approvers
            .iter()
            .map(|a| s.spawn(|| a.decide(&server, &id, &digest, Decision::Approve)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let approved = results
        .iter()
        .filter(|(s, b)| *s == 200 && b["state"] == "approved")
        .count();
    assert_eq!(approved, 1, "{results:?}");
    let decisions = admin(&server.data_dir(), &["audit", "export"])
        .lines()
        .filter(|l| l.contains("\"decision.approved\""))
        .count();
    assert_eq!(decisions, 1);
    let (_, decision) = server.get(&app, &format!("/v1/requests/{id}/decision"));
    let claims = token::verify(
        decision["token"].as_str().unwrap(),
        &server.keys(),
        &Expectations {
            issuer: ORIGIN,
            audience: "admin-console",
            now: unix_now(),
            leeway_seconds: 5,
        },
    )
    .unwrap();
    assert_eq!(
        claims.approvers.len(),
        2,
        "the token names the two approvals that made the quorum"
    );
}

/// One enrolled approver who reuses a device-call nonce on another request is refused alone:
/// the refusal never rolls back what other apps write beside it, and it can be repeated
/// without effect (issue 12, item 6).
#[test]
fn a_reused_nonce_is_refused_alone_and_never_undoes_other_apps_writes() {
    let server = Server::start();
    let victim = server.api_key("payouts", "payouts-service");
    let minor = server.api_key("minor", "minor-app");
    let alice = Approver::add_and_enroll(&server, "alice@example.com", &[], 1);
    let mallory = Approver::add_and_enroll(&server, "mallory@example.com", &[], 7);

    // The victim app's decisions, approved before the attack, redeemed during it.
    let approved: Vec<String> = (0..8)
        .map(|n| {
            let (id, digest, _) = create(
                &server,
                &victim,
                &format!("ok-{n}"),
                "2500",
                "alice@example.com",
            );
            let (status, body) = alice.decide(&server, &id, &digest, Decision::Approve);
            assert_eq!(status, 200, "{body}");
            id
        })
        .collect();

    // Mallory approves her own request with nonce N, then replays N on a second request.
    let (first, first_digest, _) = create(&server, &minor, "m-1", "2500", "mallory@example.com");
    let (second, second_digest, _) = create(&server, &minor, "m-2", "2500", "mallory@example.com");
    let nonce = countersign_core::b64::encode([0x5a; 16]);
    let send_with_nonce = |id: &str, body: &serde_json::Value| {
        let path = format!("/v1/approver/requests/{id}/approve");
        let bytes = serde_json::to_vec(body).unwrap();
        let header = mallory.auth_header_with_nonce("POST", &path, &bytes, &nonce);
        mallory.send_with_header(&server, "POST", &path, bytes, &header)
    };
    let (status, body) = send_with_nonce(
        &first,
        &mallory.next_assertion(&first_digest, Decision::Approve),
    );
    assert_eq!(status, 200, "{body}");
    // A valid assertion with a new counter: only the nonce is wrong.
    let replay = mallory.next_assertion(&second_digest, Decision::Approve);

    let stop = std::sync::atomic::AtomicBool::new(false);
    let (attacks, creates, redeems) = std::thread::scope(|s| {
        let attackers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let mut answers = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        answers.push(send_with_nonce(&second, &replay));
                    }
                    answers
                })
            })
            .collect();
        let creators: Vec<_> = (0..3)
            .map(|t| {
                let victim = &victim;
                let server = &server;
                s.spawn(move || {
                    (0..20)
                        .map(|n| {
                            server.post(
                                victim,
                                "/v1/requests",
                                &payout(
                                    &format!("v-{t}-{n}"),
                                    "2500",
                                    &format!("user{t}-{n}@example.com"),
                                ),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let redeemer = s.spawn(|| {
            approved
                .iter()
                .map(|id| server.post(&victim, &format!("/v1/requests/{id}/redeem"), &json!({})))
                .collect::<Vec<_>>()
        });
        let creates: Vec<(u16, serde_json::Value)> = creators
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let redeems = redeemer.join().unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let attacks: Vec<(u16, serde_json::Value)> = attackers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        (attacks, creates, redeems)
    });

    for (status, body) in &creates {
        assert_eq!(
            *status, 201,
            "a victim's create failed beside the attack: {body}"
        );
    }
    for (status, body) in &redeems {
        assert_eq!(
            *status, 200,
            "a victim's redemption failed beside the attack: {body}"
        );
    }
    assert!(!attacks.is_empty());
    for (status, body) in &attacks {
        assert_eq!(*status, 401, "{body}");
        assert_eq!(
            body["detail"], "replayed request: nonce already used",
            "{body}"
        );
    }
    // Nothing of the replayed approval was kept, and the chain holds.
    let (_, state) = server.get(&minor, &format!("/v1/requests/{second}"));
    assert_eq!(state["state"], "pending", "{state}");
    // (The export verifies the chain and refuses a broken one.)
    let export = admin(&server.data_dir(), &["audit", "export"]);
    assert_eq!(
        export
            .lines()
            .filter(|l| l.contains("\"request.created\""))
            .count(),
        8 + 2 + 60
    );
    assert_eq!(
        export.lines().filter(|l| l.contains(&second)).count(),
        1,
        "only the second request's creation is recorded"
    );
}

/// One person, one identity: a requester id that differs only by case is refused where it
/// enters, so `Alice@example.com` cannot ask for what `alice@example.com` then approves as the
/// second pair of eyes; an API key asks only for the requesters it was made for (issue 12,
/// item 3).
#[test]
fn identities_have_one_form_and_api_keys_speak_only_for_their_requesters() {
    let server = Server::start();
    let app = server.api_key_for("payouts", "payouts-service", &["*@example.com"]);
    let entries = server.audit_len();
    let (status, problem) = server.post(
        &app,
        "/v1/requests",
        &payout("c1", "20000", "Alice@example.com"),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("requester_not_canonical")),
        "{problem}"
    );
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("\"alice@example.com\""));
    for outside in [
        "copilot-7",
        "alice@example.com.evil.org",
        "mallory@evil.org",
    ] {
        let (status, problem) = server.post(&app, "/v1/requests", &payout("c2", "2500", outside));
        assert_eq!(
            (status, problem["code"].as_str()),
            (403, Some("requester_not_allowed")),
            "{outside}: {problem}"
        );
    }
    assert_eq!(server.audit_len(), entries, "refusals record nothing");
    let (status, body) = server.post(
        &app,
        "/v1/requests",
        &payout("c3", "2500", "alice@example.com"),
    );
    assert_eq!(status, 201, "{body}");

    let err = admin_fails(
        &server.data_dir(),
        &[
            "approver",
            "add",
            "--id",
            "Bob@example.com",
            "--name",
            "Bob",
        ],
    );
    assert!(err.contains("\"bob@example.com\""), "{err}");
    let err = admin_fails(
        &server.data_dir(),
        &["api-key", "create", "--name", "x", "--audience", "y"],
    );
    assert!(err.contains("--requesters"), "{err}");
    let err = admin_fails(
        &server.data_dir(),
        &[
            "api-key",
            "create",
            "--name",
            "x",
            "--audience",
            "y",
            "--requesters",
            "a*b",
        ],
    );
    assert!(err.contains("only at its start or end"), "{err}");
    let listed = admin(&server.data_dir(), &["api-key", "list"]);
    assert!(listed.contains("requesters=*@example.com"), "{listed}");
}
