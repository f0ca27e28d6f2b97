//! An enrolled approver acting over the real HTTP API: its device key signs the calls, a
//! software FIDO key answers the WebAuthn ceremonies.

use crate::server::{admin, Endpoint, Server};
use crate::time::unix_now;

/// An approver with an enrolled device and software FIDO key, acting over the real HTTP API.
pub struct Approver {
    pub id: String,
    pub device_key: countersign_core::jwk::SigningKey,
    pub device_id: String,
    pub credential: countersign_forge::ForgingKey,
    pub credential_id: Vec<u8>,
    pub sign_count: std::sync::atomic::AtomicU32,
    nonce: std::sync::atomic::AtomicU64,
}

pub const RP_ID: &str = "localhost";
pub const ORIGIN: &str = "http://localhost:8710";

impl Approver {
    /// Adds the approver through the admin CLI and enrolls a device through `/v1/enroll`.
    pub fn add_and_enroll(server: &Server, id: &str, groups: &[&str], seed: u8) -> Approver {
        let mut args = vec!["approver", "add", "--id", id, "--name", id];
        for g in groups {
            args.push("--group");
            args.push(g);
        }
        admin(&server.data_dir(), &args);
        Self::enroll(server, id, seed).unwrap()
    }

    /// Enrolls a new device for an existing approver; returns the server's problem on refusal.
    pub fn enroll(
        server: &Server,
        id: &str,
        seed: u8,
    ) -> Result<Approver, (u16, serde_json::Value)> {
        let code = admin(
            &server.data_dir(),
            &["enroll-code", "create", "--approver", id],
        );
        let secret = code.trim().split('.').nth(1).unwrap().to_owned();
        Self::enroll_with_code(server, id, seed, &secret, countersign_forge::Attest::None)
    }

    pub fn enroll_with_code(
        server: &Server,
        id: &str,
        seed: u8,
        secret: &str,
        attest: countersign_forge::Attest<'_>,
    ) -> Result<Approver, (u16, serde_json::Value)> {
        Self::enroll_as(server, id, seed, secret, countersign_forge::AAGUID, attest)
    }

    /// Enrolls with a key that claims to be model `aaguid` and attests as `attest`.
    pub fn enroll_as(
        server: &Server,
        id: &str,
        seed: u8,
        secret: &str,
        aaguid: [u8; 16],
        attest: countersign_forge::Attest<'_>,
    ) -> Result<Approver, (u16, serde_json::Value)> {
        use countersign_core::b64;
        let device_key = countersign_core::jwk::SigningKey::from_seed(&[seed; 32]);
        let device_pub = b64::encode(device_key.verifying_key().as_bytes());
        let credential = countersign_forge::ForgingKey::es256(seed);
        let credential_id = format!("cred-{id}-{seed}").into_bytes();
        let challenge = countersign_core::enrollment::challenge(secret, &device_pub).unwrap();
        let client_data = countersign_core::webauthn::ClientData {
            ceremony: countersign_core::webauthn::CeremonyType::Create,
            challenge: challenge.to_vec(),
            origin: ORIGIN.into(),
        }
        .to_json();
        let auth_data = countersign_forge::registration_auth_data_as(
            &credential,
            RP_ID,
            countersign_core::webauthn::Flags::UP | countersign_core::webauthn::Flags::UV,
            &credential_id,
            aaguid,
        );
        let attestation =
            countersign_forge::attestation_object(&credential, &auth_data, &client_data, attest);
        let body = serde_json::json!({
            "code": secret, "device_name": format!("{id}'s laptop"), "device_key": device_pub,
            "attestation_object": b64::encode(&attestation), "client_data_json": b64::encode(client_data.as_bytes()),
        });
        let resp = server
            .http
            .post(server.url("/v1/enroll"))
            .json(&body)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let json: serde_json::Value = resp.json().unwrap_or_default();
        if status != 200 {
            return Err((status, json));
        }
        Ok(Approver {
            id: id.into(),
            device_key,
            device_id: json["device_id"].as_str().unwrap().into(),
            credential,
            credential_id,
            sign_count: std::sync::atomic::AtomicU32::new(0),
            nonce: std::sync::atomic::AtomicU64::new(u64::from(seed) << 40),
        })
    }

    /// The Countersign-Device header for one request.
    pub fn auth_header(&self, method: &str, path: &str, body: &[u8]) -> String {
        let n = self.nonce.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut nonce_bytes = [0u8; 16];
        nonce_bytes[..8].copy_from_slice(&n.to_be_bytes());
        let nonce = countersign_core::b64::encode(nonce_bytes);
        self.auth_header_with_nonce(method, path, body, &nonce)
    }

    /// The Countersign-Device header with a nonce of the caller's choosing, freshly signed
    /// (what a device key holder who replays nonces can send).
    pub fn auth_header_with_nonce(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        nonce: &str,
    ) -> String {
        let nonce = nonce.to_owned();
        let ts = unix_now();
        let signed = countersign_core::device_auth::signing_input(method, path, ts, &nonce, body);
        countersign_core::device_auth::DeviceAuth {
            device_id: self.device_id.clone(),
            timestamp: ts,
            nonce,
            signature: self.device_key.sign(&signed).to_vec(),
        }
        .to_header()
    }

    /// Sends a signed request; returns status and body.
    pub fn send(
        &self,
        server: &dyn Endpoint,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let header = self.auth_header(method, path, &bytes);
        self.send_with_header(server, method, path, bytes, &header)
    }

    /// Sends `n` copies of one signed POST at once, spread over `at`; returns the statuses.
    pub fn send_copies(
        &self,
        at: &[&dyn Endpoint],
        path: &str,
        body: &serde_json::Value,
        n: usize,
    ) -> Vec<u16> {
        std::thread::scope(|scope| {
            let sends: Vec<_> = (0..n)
                .map(|i| {
                    scope.spawn(move || self.send(at[i % at.len()], "POST", path, Some(body)).0)
                })
                .collect();
            sends.into_iter().map(|s| s.join().unwrap()).collect()
        })
    }

    /// Like [`Approver::send`], but a connection that fails is an `Err`, not a panic (an
    /// instance killed mid-call).
    pub fn try_send(
        &self,
        server: &dyn Endpoint,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), reqwest::Error> {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let header = self.auth_header(method, path, &bytes);
        let resp = server
            .http()
            .request(method.parse().unwrap(), server.url(path))
            .header("authorization", header)
            .header("content-type", "application/json")
            .body(bytes)
            .send()?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().unwrap_or_default()))
    }

    pub fn send_with_header(
        &self,
        server: &dyn Endpoint,
        method: &str,
        path: &str,
        bytes: Vec<u8>,
        header: &str,
    ) -> (u16, serde_json::Value) {
        let req = server
            .http()
            .request(method.parse().unwrap(), server.url(path))
            .header("authorization", header)
            .header("content-type", "application/json")
            .body(bytes);
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or_default())
    }

    /// The assertion body for `decision` on a request with this digest, made by the software key.
    pub fn assertion(
        &self,
        digest: &str,
        decision: countersign_core::Decision,
        origin: &str,
        count: u32,
    ) -> serde_json::Value {
        self.assertion_for_rp(digest, decision, RP_ID, origin, count)
    }

    /// Like [`Approver::assertion`], for any RP id (attack tests sign for the wrong one).
    pub fn assertion_for_rp(
        &self,
        digest: &str,
        decision: countersign_core::Decision,
        rp_id: &str,
        origin: &str,
        count: u32,
    ) -> serde_json::Value {
        use countersign_core::b64;
        let digest = countersign_core::Digest::from_base64url(digest).unwrap();
        let challenge = countersign_core::ApprovalStatement::new(digest, decision, self.id.clone())
            .challenge()
            .unwrap();
        let client_data = countersign_core::webauthn::ClientData::get(&challenge, origin).to_json();
        let flags = countersign_core::webauthn::Flags::UP | countersign_core::webauthn::Flags::UV;
        let a = countersign_forge::assert_with(&self.credential, rp_id, flags, count, &client_data);
        serde_json::json!({
            "credential_id": b64::encode(&self.credential_id),
            "authenticator_data": b64::encode(&a.authenticator_data),
            "client_data_json": b64::encode(&a.client_data_json),
            "signature": b64::encode(&a.signature),
        })
    }

    /// The next assertion over `digest` (the counter advanced), as the approve/deny body.
    pub fn next_assertion(
        &self,
        digest: &str,
        decision: countersign_core::Decision,
    ) -> serde_json::Value {
        let count = self
            .sign_count
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        self.assertion(digest, decision, ORIGIN, count)
    }

    /// Approves (or denies) with the next counter value.
    pub fn decide(
        &self,
        server: &dyn Endpoint,
        id: &str,
        digest: &str,
        decision: countersign_core::Decision,
    ) -> (u16, serde_json::Value) {
        let body = self.next_assertion(digest, decision);
        self.send(
            server,
            "POST",
            &format!("/v1/approver/requests/{id}/{decision}"),
            Some(&body),
        )
    }

    /// The pending list, each entry verified against the server key.
    pub fn pending(&self, server: &dyn Endpoint) -> Vec<countersign_core::push::PushedRequest> {
        let (status, body) = self.send(server, "GET", "/v1/approver/requests", None);
        assert_eq!(status, 200, "{body}");
        let keys = server.keys();
        let signed: Vec<countersign_core::push::SignedRequest> =
            serde_json::from_value(body).unwrap();
        signed
            .iter()
            .map(|s| s.verify(&keys).unwrap().clone())
            .collect()
    }
}
