//! The approver's connection to the server: enrollment with the one-time code (the server key
//! pinned from the code), then every call signed with the device key and a fresh nonce, every
//! pushed request verified before it is returned, and every assertion made over a challenge
//! derived here.

use crate::audit_memory::{AuditAlarm, CheckpointMemory};
use crate::enrollment_code::EnrollmentCode;
use crate::signer::{Signer, SignerError};
use crate::verified::{Refusal, RefusedRequest, VerifiedRequest};
use countersign_core::audit::Checkpoint;
use countersign_core::b64;
use countersign_core::device_auth::{self, DeviceAuth};
use countersign_core::enrollment;
use countersign_core::jwk::{KeySet, SigningKey};
use countersign_core::push::SignedRequest;
use countersign_core::webauthn::{CeremonyType, ClientData};
use countersign_core::wire::approver::{ApprovalAnswer, AssertionBody, EnrollBody, ServerInfo};
use countersign_core::wire::{ProblemDocument, Verdict};
use serde::de::DeserializeOwned;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached or answered unreadably.
    #[error("server: {0}")]
    Http(#[from] reqwest::Error),
    /// The server refused with a problem document; `code` is stable.
    #[error("server refused ({status} {code}): {detail}")]
    Problem {
        /// HTTP status.
        status: u16,
        /// Stable code, e.g. `already_decided`, `approval_expired`.
        code: countersign_core::wire::ProblemCode,
        /// For people.
        detail: String,
    },
    /// The enrollment code, or the server it names, was refused.
    #[error(transparent)]
    Enrollment(#[from] crate::enrollment_code::EnrollmentCodeError),
    /// A pushed request failed verification.
    #[error(transparent)]
    Refused(#[from] RefusedRequest),
    /// The security key did not sign.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The server answered something unexpected.
    #[error("unexpected answer from the server: {0}")]
    Unexpected(String),
    /// No randomness for a nonce or key.
    #[error("the operating system's random source failed")]
    Random,
    /// A report was to be sent without saying why; nothing was signed or sent.
    #[error("a report needs a reason the security team can act on")]
    ReasonRequired,
}

/// What enrollment established; the caller stores it (the device key in the OS keyring).
pub struct Enrolled {
    /// The connected, pinned client.
    pub client: ServerClient,
    /// The approver id the code was for.
    pub approver_id: String,
    /// The enrolled credential's id.
    pub credential_id: Vec<u8>,
    /// The enrolled key's model and algorithm.
    pub key_details: crate::profile::KeyDetails,
}

impl Enrolled {
    /// The device key's seed, for the caller to put in the keyring (then drop).
    pub fn device_key_seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.client.device_key.seed())
    }

    /// What to save so later runs can reconnect: everything but the device key, which goes
    /// to `device_key` (`key` names the security key, `usb` or `soft:PATH`).
    pub fn profile(
        &self,
        key: &str,
        device_key: crate::profile::DeviceKeyLocation,
    ) -> crate::profile::Profile {
        let c = &self.client;
        crate::profile::Profile {
            version: 1,
            server: c.base.clone(),
            approver_id: self.approver_id.clone(),
            device_id: c.device_id.clone(),
            credential_id: self.credential_id.clone(),
            rp_id: c.rp_id.clone(),
            origin: c.origin.clone(),
            server_keys: c.anchors.to_jwks(),
            key: key.to_owned(),
            device_key,
            key_details: Some(self.key_details.clone()),
        }
    }

    /// The device id the server assigned.
    pub fn device_id(&self) -> &str {
        &self.client.device_id
    }
}

/// The pending list: what verified, and what was refused (never shown).
#[derive(Debug)]
pub struct PendingList {
    /// Requests that may be shown.
    pub verified: Vec<VerifiedRequest>,
    /// Requests refused, with the reason to warn about.
    pub refused: Vec<Refusal>,
}

/// Who a server is, as checked against an enrollment code.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServerIdentity {
    /// The base URL that was asked.
    pub server: String,
    /// The software's name and version, as the server reports them.
    pub name: String,
    /// Server software version.
    pub version: String,
    /// The WebAuthn RP id the key will sign for.
    pub rp_id: String,
    /// The WebAuthn origin clientDataJSON will name.
    pub origin: String,
    /// The server signing key's id (its JWK thumbprint), equal to the one in the code.
    pub key_id: String,
}

/// A server whose `/v1/info` key matched the enrollment code.
struct PinnedServer {
    http: reqwest::Client,
    base: String,
    server_key: countersign_core::jwk::VerifyingKey,
    identity: ServerIdentity,
}

impl PinnedServer {
    async fn fetch(base_url: &str, code: &EnrollmentCode) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = base_url.trim_end_matches('/').to_owned();
        let info: ServerInfo = answer(http.get(format!("{base}/v1/info")).send().await?).await?;
        let server_key = code.pin_server_key(&info.server_key.x)?;
        let identity = ServerIdentity {
            server: base.clone(),
            name: info.name,
            version: info.version,
            rp_id: info.rp_id,
            origin: info.origin,
            key_id: server_key.kid().to_owned(),
        };
        Ok(PinnedServer {
            http,
            base,
            server_key,
            identity,
        })
    }
}

/// A signed connection to one server as one enrolled device.
pub struct ServerClient {
    http: reqwest::Client,
    base: String,
    device_id: String,
    device_key: SigningKey,
    /// The keys pinned at enrollment: the only roots of trust.
    anchors: KeySet,
    /// The anchors and every key a chain of rollover endorsements leads to from them.
    pinned: std::sync::RwLock<KeySet>,
    /// The newest signed audit checkpoint the server pushed: a later one must not go back.
    checkpoints: std::sync::Mutex<CheckpointMemory>,
    rp_id: String,
    origin: String,
}

/// A successful answer read as `T`; an error answer as the problem it carries.
async fn answer<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    let status = response.status();
    let body = response.bytes().await?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| ClientError::Unexpected(format!("HTTP {status}: {e}")));
    }
    Err(refusal(status, &body))
}

/// What an error answer says: its problem document, or that it had none.
fn refusal(status: reqwest::StatusCode, body: &[u8]) -> ClientError {
    match ProblemDocument::from_json(body) {
        Some(problem) => ClientError::Problem {
            status: status.as_u16(),
            code: problem.code,
            detail: problem.detail,
        },
        None => ClientError::Unexpected(format!("HTTP {status} without a problem document")),
    }
}

fn random<const N: usize>() -> Result<[u8; N], ClientError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|_| ClientError::Random)?;
    Ok(bytes)
}

impl ServerClient {
    /// Who the server at `base_url` is, its key checked against the one `code` names: what
    /// the person confirms before the key is touched and anything is saved. Nothing is sent
    /// but a read of `/v1/info`; the code is not spent.
    pub async fn identify(
        base_url: &str,
        code: &EnrollmentCode,
    ) -> Result<ServerIdentity, ClientError> {
        Ok(PinnedServer::fetch(base_url, code).await?.identity)
    }

    /// Enrolls this device: pins the server key named by `code`, makes a new device key and a
    /// FIDO credential bound to the code and that key, and registers both.
    pub async fn enroll(
        base_url: &str,
        code: &EnrollmentCode,
        device_name: &str,
        signer: &dyn Signer,
    ) -> Result<Enrolled, ClientError> {
        let PinnedServer {
            http,
            base,
            server_key,
            identity,
        } = PinnedServer::fetch(base_url, code).await?;
        let (rp_id, origin) = (identity.rp_id, identity.origin);

        let device_key = SigningKey::from_seed(&random::<32>()?);
        let device_pub = b64::encode(device_key.verifying_key().as_bytes());
        let challenge = enrollment::challenge(&code.secret, &device_pub)
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        let client_data = ClientData {
            ceremony: CeremonyType::Create,
            challenge: challenge.to_vec(),
            origin: origin.clone(),
        }
        .to_json();
        let registration = signer.make_credential(&rp_id, client_data.as_bytes(), true)?;
        // Check the key's answer here too (as the server will), and learn its model and
        // algorithm for the profile.
        let made = countersign_core::webauthn::attestation::verify_registration(
            &countersign_core::webauthn::attestation::RegistrationPolicy {
                rp_id: &rp_id,
                origin: &origin,
                challenge: &challenge,
                require_user_verification: false,
            },
            &registration.attestation_object,
            client_data.as_bytes(),
        )
        .map_err(|e| ClientError::Unexpected(format!("the security key's registration: {e}")))?;
        let body = EnrollBody {
            code: code.secret.clone(),
            device_name: device_name.to_owned(),
            device_key: device_pub,
            attestation_object: b64::encode(&registration.attestation_object),
            client_data_json: b64::encode(client_data.as_bytes()),
        };
        let enrolled: countersign_core::wire::approver::Enrolled = answer(
            http.post(format!("{base}/v1/enroll"))
                .json(&body)
                .send()
                .await?,
        )
        .await?;
        if enrolled.server_key.kid != server_key.kid() {
            return Err(ClientError::Unexpected(
                "enrollment answered with another server key".into(),
            ));
        }
        Ok(Enrolled {
            approver_id: enrolled.approver_id,
            key_details: crate::profile::KeyDetails {
                aaguid: made.aaguid.iter().map(|b| format!("{b:02x}")).collect(),
                algorithm: match made.public_key.algorithm() {
                    countersign_core::webauthn::CoseAlgorithm::Es256 => "ES256".into(),
                    countersign_core::webauthn::CoseAlgorithm::EdDsa => "EdDSA".into(),
                },
            },
            credential_id: registration.credential_id,
            client: ServerClient {
                http,
                base,
                device_id: enrolled.device_id,
                device_key,
                anchors: KeySet::new([server_key.clone()]),
                pinned: std::sync::RwLock::new(KeySet::new([server_key])),
                checkpoints: std::sync::Mutex::new(CheckpointMemory::in_memory()),
                rp_id,
                origin,
            },
        })
    }

    /// A client for a device enrolled earlier (see [`crate::profile::Profile::connect`]).
    pub fn restore(
        base_url: &str,
        device_id: &str,
        device_key: SigningKey,
        pinned: KeySet,
        rp_id: &str,
        origin: &str,
    ) -> Result<Self, ClientError> {
        Ok(ServerClient {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: base_url.trim_end_matches('/').to_owned(),
            device_id: device_id.to_owned(),
            device_key,
            anchors: pinned.clone(),
            pinned: std::sync::RwLock::new(pinned),
            checkpoints: std::sync::Mutex::new(CheckpointMemory::in_memory()),
            rp_id: rp_id.to_owned(),
            origin: origin.to_owned(),
        })
    }

    /// The server keys trusted now: those pinned at enrollment and their endorsed successors.
    pub(crate) fn pinned(&self) -> KeySet {
        self.pinned
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Verifies a pushed request; if it is signed by a key not trusted yet (the server rotated
    /// its key), follows the server's rollover endorsements from the keys pinned at enrollment
    /// once and tries again. Nothing but a chain starting at a pinned key adds a key.
    pub(crate) async fn verify_pushed(
        &self,
        signed: &SignedRequest,
    ) -> Result<VerifiedRequest, RefusedRequest> {
        match VerifiedRequest::verify(signed, &self.pinned()) {
            Err(RefusedRequest::Unverified(countersign_core::push::PushError::UnknownKey(_))) => {
                // Unreachable or malformed: the request stays refused, said so by the retry.
                let _ = self.follow_rollovers().await;
                VerifiedRequest::verify(signed, &self.pinned())
            }
            other => other,
        }
    }

    /// Remembers the newest audit checkpoint in `memory` from now on (a file beside the
    /// profile, see [`crate::profile::Profile::connect`]), starting from what it holds.
    pub fn with_checkpoint_memory(self, memory: CheckpointMemory) -> Self {
        *self
            .checkpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = memory;
        self
    }

    /// Checks a pushed audit checkpoint: signed by a trusted key (a key not trusted yet is
    /// looked for among the server's rollover endorsements once, as for requests), then never
    /// behind the newest one seen and never another hash for the same entry. The newest is
    /// kept.
    pub(crate) async fn check_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), AuditAlarm> {
        let pinned = self.pinned();
        if checkpoint.verify_signature(&pinned).is_err() {
            if pinned.get(&checkpoint.body.kid).is_none() {
                // Unreachable or malformed: the checkpoint stays unverified, said by the retry.
                let _ = self.follow_rollovers().await;
            }
            checkpoint
                .verify_signature(&self.pinned())
                .map_err(|_| AuditAlarm::Unverified)?;
        }
        self.checkpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .accept(checkpoint)
    }

    /// Fetches `/v1/keys/rollovers` and trusts the keys they lead to from the anchors.
    async fn follow_rollovers(&self) -> Result<(), ClientError> {
        let response = self
            .http
            .get(format!("{}/v1/keys/rollovers", self.base))
            .send()
            .await?;
        let list: Vec<countersign_core::rollover::KeyRollover> = answer(response).await?;
        let trusted = countersign_core::rollover::extend(&self.anchors, &list);
        *self
            .pinned
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = trusted;
        Ok(())
    }

    /// The `Countersign-Device` header for one call.
    fn auth_header(&self, method: &str, path: &str, body: &[u8]) -> Result<String, ClientError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let nonce = b64::encode(random::<16>()?);
        let input = device_auth::signing_input(method, path, timestamp, &nonce, body);
        Ok(DeviceAuth {
            device_id: self.device_id.clone(),
            timestamp,
            nonce,
            signature: self.device_key.sign(&input).to_vec(),
        }
        .to_header())
    }

    /// Opens the approver event stream, resuming after `last_event_id`.
    pub(crate) async fn open_stream(
        &self,
        last_event_id: Option<u64>,
    ) -> Result<reqwest::Response, ClientError> {
        let path = "/v1/approver/stream";
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", self.auth_header("GET", path, b"")?);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(refusal(status, &response.bytes().await?))
    }

    /// Sends a call signed with the device key: method, path, time, a fresh nonce and the body.
    async fn signed<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let header = self.auth_header(method.as_str(), path, &body)?;
        let request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", header)
            .header("content-type", "application/json")
            .body(body);
        answer(request.send().await?).await
    }

    /// The requests this approver may act on, each verified; anything that does not verify is
    /// listed in `refused` and never shown.
    pub async fn pending(&self) -> Result<PendingList, ClientError> {
        let signed: Vec<SignedRequest> = self
            .signed(reqwest::Method::GET, "/v1/approver/requests", Vec::new())
            .await?;
        let mut out = PendingList {
            verified: Vec::new(),
            refused: Vec::new(),
        };
        for s in &signed {
            match self.verify_pushed(s).await {
                Ok(v) => out.verified.push(v),
                Err(e) => out.refused.push(Refusal::of(s, e)),
            }
        }
        Ok(out)
    }

    /// Answers a verified request: the challenge derived from it, clientDataJSON built here
    /// with the pinned origin, the key's assertion, then `approve`, `deny` or `report`
    /// (`report` = a denial that also freezes the requester; it needs a reason, checked
    /// before the key is asked). `reason` says why, for a denial or report.
    pub async fn answer(
        &self,
        request: &VerifiedRequest,
        approver_id: &str,
        verdict: Verdict,
        reason: Option<&str>,
        credential_id: &[u8],
        signer: &dyn Signer,
    ) -> Result<ApprovalAnswer, ClientError> {
        if verdict.needs_reason() && reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(ClientError::ReasonRequired);
        }
        let challenge = request.challenge(verdict.decision(), approver_id)?;
        let client_data = ClientData::get(&challenge, self.origin.clone()).to_json();
        let uv = request.request().transaction.requirements.user_verification;
        let assertion =
            signer.get_assertion(&self.rp_id, client_data.as_bytes(), credential_id, uv)?;
        let body = AssertionBody {
            credential_id: b64::encode(credential_id),
            authenticator_data: b64::encode(&assertion.authenticator_data),
            client_data_json: b64::encode(client_data.as_bytes()),
            signature: b64::encode(&assertion.signature),
            reason: reason.map(str::to_owned),
        };
        let bytes =
            serde_json::to_vec(&body).map_err(|e| ClientError::Unexpected(e.to_string()))?;
        let path = format!(
            "/v1/approver/requests/{}/{}",
            request.request().transaction.id,
            verdict.as_str()
        );
        self.signed(reqwest::Method::POST, &path, bytes).await
    }
}
