//! The approver's desk: the shell's state and everything the commands do, independent of the
//! window so that it can be tested against the real server without one. It holds the
//! enrolled profile, the verified pending list (kept here, not in the web view, so a window
//! opened later, a tray or a notification sees the same), the connection state, and runs the
//! key ceremonies. Nothing is signed unless the digest the screen showed equals the digest of
//! the verified request held here at that moment.

use crate::ceremony::{CeremonySink, Control, Reporting};
use crate::error::ShellError;
use crate::history::{History, HistoryEntry};
use crate::views::{
    AuditAlarmView, Connection, EnrolledView, InboxItem, RefusalView, RequestView, Snapshot,
};
use countersign_approver::audit_memory::{AuditAlarm, CheckpointMemory};
use countersign_approver::client::PendingList;
use countersign_approver::enroll::{self, keyring_location};
use countersign_approver::profile::{DeviceKeyLocation, Profile};
use countersign_approver::signer::{SoftKeyState, SOFT_KEY_AAGUID};
use countersign_approver::verified::Refusal;
use countersign_approver::{
    EnrollmentCode, ServerClient, ServerIdentity, Verdict, VerifiedRequest,
};
use countersign_core::wire::ProblemCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How many refused pushes are remembered for the warning banner.
const REFUSALS_KEPT: usize = 20;
/// The longest reason accepted for a denial or a report.
const MAX_REASON_CHARS: usize = 500;

/// Where the window (or a test) learns that the state changed.
pub trait Ui: CeremonySink {
    /// The snapshot changed.
    fn changed(&self, snapshot: &Snapshot);
}

/// How the desk was started.
#[derive(Clone, Debug)]
pub struct DeskConfig {
    /// The approver profile (shared with the CLI by default).
    pub profile_path: PathBuf,
    /// Where the demo software key's file is created and kept.
    pub demo_key_path: PathBuf,
    /// Keep the device key in this file instead of the keyring (tests and demos only).
    pub insecure_device_key_file: Option<PathBuf>,
    /// How long a USB key waits for a touch or PIN.
    pub usb_timeout: Duration,
    /// How long the demo software key takes to "be touched" (so the touch step shows).
    pub demo_touch: Duration,
    /// The device name sent at enrollment.
    pub device_name: String,
}

impl DeskConfig {
    /// The history file beside the profile.
    fn history_path(&self) -> PathBuf {
        self.profile_path.with_file_name("history.jsonl")
    }
}

/// Which key the person chose at enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyChoice {
    /// A FIDO2 security key on USB.
    Usb,
    /// The demo software key, optionally protected with a PIN.
    DemoSoftware {
        /// PIN for a newly created demo key.
        pin: Option<String>,
    },
}

/// What the person decided on the request screen (`{"kind": "deny", "reason": "…"}`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Choice {
    /// Approve, deny, or deny and report as suspicious (freezes the requester).
    #[serde(rename = "kind")]
    pub verdict: Verdict,
    /// Why: optional for a denial, required for a report, ignored for an approval.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Choice {
    /// Approve exactly this.
    pub fn approve() -> Self {
        Choice {
            verdict: Verdict::Approve,
            reason: None,
        }
    }

    /// Deny, optionally saying why.
    pub fn deny(reason: Option<&str>) -> Self {
        Choice {
            verdict: Verdict::Deny,
            reason: reason.map(str::to_owned),
        }
    }

    /// Deny and report as suspicious, saying why.
    pub fn report(reason: &str) -> Self {
        Choice {
            verdict: Verdict::Report,
            reason: Some(reason.to_owned()),
        }
    }

    /// The reason, trimmed and checked.
    fn reason(&self) -> Result<Option<String>, ShellError> {
        if self.verdict == Verdict::Approve {
            return Ok(None);
        }
        let reason = self
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if self.verdict.needs_reason() && reason.is_none() {
            return Err(ShellError::Invalid {
                message: "a report needs a reason: say what you did not ask for".into(),
            });
        }
        if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
            return Err(ShellError::Invalid {
                message: format!("a reason has at most {MAX_REASON_CHARS} characters"),
            });
        }
        Ok(reason.map(str::to_owned))
    }
}

/// What the server answered to a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecisionOutcome {
    /// The request.
    pub id: String,
    /// `approve`, `deny` or `report`.
    pub decision: &'static str,
    /// The request's state now (`pending` while others must still approve).
    pub state: String,
    /// The transaction fingerprint that was signed.
    pub fingerprint: String,
}

/// The enrolled key, for Settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// `usb` or `demo_software`.
    pub kind: &'static str,
    /// The software key's file, for the demo key.
    pub file: Option<String>,
    /// Credential algorithm, when known here.
    pub algorithm: Option<String>,
    /// AAGUID, when known here.
    pub aaguid: Option<String>,
    /// Whether the key has a PIN, when known here.
    pub pin_set: Option<bool>,
}

/// Settings: the server, its pinned keys, the device and the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettingsView {
    /// Server base URL.
    pub server: String,
    /// RP id the key signs for.
    pub rp_id: String,
    /// Origin named in clientDataJSON.
    pub origin: String,
    /// The pinned server key ids (JWK thumbprints).
    pub server_key_ids: Vec<String>,
    /// The approver this device acts for.
    pub approver_id: String,
    /// The enrolled device.
    pub device_id: String,
    /// Where the device key is: `keyring` or `insecure_file`.
    pub device_key: &'static str,
    /// The security key.
    pub key: KeyInfo,
    /// The profile file.
    pub profile_path: String,
    /// Whether the app starts at login (`None` when it cannot be told; filled by the shell).
    pub start_at_login: Option<bool>,
}

/// An enrolled device's live connection.
struct Session {
    profile: Profile,
    client: Arc<ServerClient>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Inner {
    /// Ends the session (its stream stops, whatever it delivered is forgotten) and returns it.
    fn end_session(&mut self) -> Option<Session> {
        let session = self.session.take();
        for task in session.iter().flat_map(|s| &s.tasks) {
            task.abort();
        }
        self.generation += 1;
        self.pending.clear();
        self.refused.clear();
        self.audit_alarm = None;
        self.connection = None;
        session
    }

    /// The enrolled approver's id (empty when not enrolled; asked only while enrolled).
    fn approver_id(&self) -> String {
        self.session
            .as_ref()
            .map(|s| s.profile.approver_id.clone())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    session: Option<Session>,
    profile_problem: Option<ShellError>,
    pending: BTreeMap<String, VerifiedRequest>,
    refused: Vec<RefusalView>,
    audit_alarm: Option<AuditAlarmView>,
    connection: Option<Connection>,
    /// Bumped whenever the session is replaced, so a stale stream task changes nothing.
    generation: u64,
}

/// The shell's state and logic.
pub struct Desk {
    config: DeskConfig,
    ui: Arc<dyn Ui>,
    runtime: tokio::runtime::Handle,
    history: History,
    ceremonies: Arc<Control>,
    inner: Mutex<Inner>,
}

/// The shell's clock, Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn duration_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Whether `request` belongs in this approver's inbox at `now`.
fn actionable(request: &VerifiedRequest, approver_id: &str, now: i64) -> bool {
    let pushed = request.request();
    pushed.state == "pending"
        && pushed.transaction.approve_by.unix() > now
        && !pushed.approved_by(approver_id)
}

impl Desk {
    /// A desk over the saved profile, if any (a profile that cannot be used is reported in
    /// the snapshot, not fatal). Call [`Desk::start`] to connect.
    pub fn open(config: DeskConfig, ui: Arc<dyn Ui>, runtime: tokio::runtime::Handle) -> Arc<Self> {
        let mut inner = Inner::default();
        Self::load_profile(&config, &mut inner);
        Arc::new(Desk {
            history: History::at(config.history_path()),
            config,
            ui,
            runtime,
            ceremonies: Arc::new(Control::default()),
            inner: Mutex::new(inner),
        })
    }

    /// Loads the saved profile into `inner` (a missing one leaves it unenrolled; one that
    /// cannot be used is reported).
    fn load_profile(config: &DeskConfig, inner: &mut Inner) {
        inner.profile_problem = None;
        match Profile::load(&config.profile_path)
            .and_then(|p| Ok((p.connect(&config.profile_path)?, p)))
        {
            Ok((client, profile)) => {
                inner.session = Some(Session {
                    profile,
                    client: Arc::new(client),
                    tasks: Vec::new(),
                });
            }
            Err(countersign_approver::profile::ProfileError::NotEnrolled(_)) => {}
            Err(e) => inner.profile_problem = Some(e.into()),
        }
    }

    /// Loads the profile again (another process enrolled or forgot this device): the old
    /// stream stops, the pending list is rebuilt from the new session's stream.
    pub fn reload(self: &Arc<Self>) {
        let Ok(mut inner) = self.lock() else { return };
        inner.end_session();
        Self::load_profile(&self.config, &mut inner);
        drop(inner);
        self.start_stream();
        self.emit();
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, ShellError> {
        self.inner.lock().map_err(ShellError::internal)
    }

    /// Starts following the server (when enrolled) and the expiry clock.
    pub fn start(self: &Arc<Self>) {
        self.start_stream();
        let desk = Arc::downgrade(self);
        self.runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(desk) = desk.upgrade() else { return };
                desk.prune_expired();
            }
        });
    }

    /// Starts the event stream for the current session.
    fn start_stream(self: &Arc<Self>) {
        let Ok(mut inner) = self.lock() else { return };
        let generation = inner.generation;
        let Some(session) = inner.session.as_mut() else {
            return;
        };
        let client = session.client.clone();
        let (events, received) = tokio::sync::mpsc::unbounded_channel();
        let watcher = self.runtime.spawn({
            let client = client.clone();
            async move {
                client
                    .watch(None, move |event| {
                        if events.send(event).is_err() {
                            std::ops::ControlFlow::Break(())
                        } else {
                            std::ops::ControlFlow::Continue(())
                        }
                    })
                    .await
            }
        });
        let watcher_abort = watcher.abort_handle();
        let follower = self.runtime.spawn(crate::stream::follow(
            Arc::downgrade(self),
            client,
            generation,
            received,
            watcher,
        ));
        session.tasks = vec![watcher_abort, follower.abort_handle()];
        inner.connection = Some(Connection::Connecting);
        drop(inner);
        self.emit();
    }

    /// The whole state for the window.
    pub fn snapshot(&self) -> Snapshot {
        match self.lock() {
            Ok(inner) => Self::snapshot_of(&inner),
            Err(e) => Snapshot {
                enrolled: None,
                profile_problem: Some(e),
                connection: Connection::NotEnrolled,
                inbox: Vec::new(),
                refused: Vec::new(),
                audit_alarm: None,
                now: now(),
            },
        }
    }

    fn snapshot_of(inner: &Inner) -> Snapshot {
        let now = now();
        let (enrolled, inbox) = match &inner.session {
            None => (None, Vec::new()),
            Some(s) => {
                let me = &s.profile.approver_id;
                let mut inbox: Vec<InboxItem> = inner
                    .pending
                    .values()
                    .filter(|r| actionable(r, me, now))
                    .map(|r| InboxItem::of(r, me, now))
                    .collect();
                inbox.sort_by(|a, b| a.approve_by.cmp(&b.approve_by).then(a.id.cmp(&b.id)));
                (
                    Some(EnrolledView {
                        approver_id: me.clone(),
                        server: s.profile.server.clone(),
                        soft_key: s.profile.is_soft_key(),
                    }),
                    inbox,
                )
            }
        };
        let connection = match (&inner.session, &inner.connection) {
            (None, _) => Connection::NotEnrolled,
            (Some(_), Some(c)) => c.clone(),
            (Some(_), None) => Connection::Connecting,
        };
        Snapshot {
            enrolled,
            profile_problem: inner.profile_problem.clone(),
            connection,
            inbox,
            refused: inner.refused.clone(),
            audit_alarm: inner.audit_alarm.clone(),
            now,
        }
    }

    fn emit(&self) {
        let snapshot = self.snapshot();
        self.ui.changed(&snapshot);
    }

    /// Applies `change` if `generation` is still current, then tells the window.
    fn update(&self, generation: u64, change: impl FnOnce(&mut Inner)) {
        let Ok(mut inner) = self.lock() else { return };
        if inner.generation != generation || inner.session.is_none() {
            return;
        }
        change(&mut inner);
        drop(inner);
        self.emit();
    }

    /// A verified request arrived (new or changed).
    pub(crate) fn on_request(&self, generation: u64, request: VerifiedRequest) {
        self.update(generation, |inner| {
            let id = request.request().transaction.id.clone();
            let me = inner.approver_id();
            if actionable(&request, &me, now()) {
                inner.pending.insert(id, request);
            } else {
                inner.pending.remove(&id);
            }
        });
    }

    /// A pushed request failed verification: remembered for the warning, never shown. The
    /// same request refused again (pushed again, or listed again at a resync) is still one
    /// refused request: its entry moves to the end with the newest reason.
    pub(crate) fn on_refused(&self, generation: u64, refused: &Refusal) {
        self.update(generation, |inner| {
            if let Some(id) = &refused.claimed_id {
                inner.refused.retain(|r| r.request.as_ref() != Some(id));
            }
            inner.refused.push(RefusalView {
                at: now(),
                request: refused.claimed_id.clone(),
                reason: refused.reason.to_string(),
            });
            let excess = inner.refused.len().saturating_sub(REFUSALS_KEPT);
            inner.refused.drain(..excess);
        });
    }

    /// The server's audit history went back or changed: a warning of its own, kept for the
    /// session (the newest words, since the first time).
    pub(crate) fn on_audit_alarm(&self, generation: u64, alarm: &AuditAlarm) {
        self.update(generation, |inner| {
            let since = inner.audit_alarm.as_ref().map_or_else(now, |a| a.since);
            inner.audit_alarm = Some(AuditAlarmView {
                since,
                message: alarm.to_string(),
            });
        });
    }

    /// The full pending list, re-read after a reconnect: it replaces what was held.
    pub(crate) fn on_resync(&self, generation: u64, list: PendingList) {
        for refused in &list.refused {
            self.on_refused(generation, refused);
        }
        self.update(generation, |inner| {
            let me = inner.approver_id();
            let now = now();
            inner.pending = list
                .verified
                .into_iter()
                .filter(|r| actionable(r, &me, now))
                .map(|r| (r.request().transaction.id.clone(), r))
                .collect();
        });
    }

    /// The connection changed.
    pub(crate) fn on_connection(&self, generation: u64, connection: Connection) {
        self.update(generation, |inner| {
            let offline_since = match &inner.connection {
                Some(Connection::Reconnecting { offline_since, .. }) => Some(*offline_since),
                _ => None,
            };
            inner.connection = Some(match connection {
                Connection::Reconnecting { retry_at, .. } => Connection::Reconnecting {
                    retry_at,
                    offline_since: offline_since.unwrap_or_else(now),
                },
                other => other,
            });
        });
    }

    /// The stream was lost for `retry_in`.
    pub(crate) fn on_disconnected(&self, generation: u64, retry_in: Duration) {
        let now = now();
        self.on_connection(
            generation,
            Connection::Reconnecting {
                retry_at: now.saturating_add(duration_secs(retry_in)),
                offline_since: now,
            },
        );
    }

    fn prune_expired(&self) {
        let Ok(mut inner) = self.lock() else { return };
        let now = now();
        let before = inner.pending.len();
        inner
            .pending
            .retain(|_, r| r.request().transaction.approve_by.unix() > now);
        let changed = inner.pending.len() != before;
        drop(inner);
        if changed {
            self.emit();
        }
    }

    /// The exact request, rendered from the verified transaction held here.
    pub fn request(&self, id: &str) -> Result<RequestView, ShellError> {
        let inner = self.lock()?;
        let session = inner.session.as_ref().ok_or(ShellError::NotEnrolled)?;
        let request = inner.pending.get(id).ok_or(ShellError::NotPending)?;
        RequestView::of(
            request,
            &session.profile.approver_id,
            now(),
            session.profile.is_soft_key(),
        )
    }

    /// Who the server in an enrollment code is, checked against the code, and that the
    /// device key can be stored; the code is not spent.
    pub async fn identify(&self, server: &str, code: &str) -> Result<ServerIdentity, ShellError> {
        if self.lock()?.session.is_some() {
            return Err(ShellError::AlreadyEnrolled);
        }
        let code = parse_code(code)?;
        let server = parse_server(server)?;
        let prepared = enroll::prepare(
            &self.config.profile_path,
            self.device_key_location()?,
            false,
        )?;
        prepared.abandon();
        ServerClient::identify(&server, &code)
            .await
            .map_err(|e| ShellError::from_client(e, false))
    }

    fn device_key_location(&self) -> Result<DeviceKeyLocation, ShellError> {
        match &self.config.insecure_device_key_file {
            Some(path) => Ok(DeviceKeyLocation::InsecureFile { path: path.clone() }),
            None => keyring_location().map_err(|e| ShellError::from_client(e, false)),
        }
    }

    /// Enrolls with the code and the chosen key (the key is touched here), saves the profile
    /// and starts following the server.
    pub async fn enroll(
        self: &Arc<Self>,
        server: &str,
        code: &str,
        key: KeyChoice,
    ) -> Result<EnrolledView, ShellError> {
        if self.lock()?.session.is_some() {
            return Err(ShellError::AlreadyEnrolled);
        }
        let code = parse_code(code)?;
        let server = parse_server(server)?;
        let pin = match &key {
            KeyChoice::DemoSoftware { pin: Some(pin) } if !pin.is_empty() => {
                if !(4..=63).contains(&pin.len()) {
                    return Err(ShellError::Invalid {
                        message: "a PIN has 4 to 63 characters".into(),
                    });
                }
                Some(zeroize::Zeroizing::new(pin.clone()))
            }
            _ => None,
        };
        let prepared = enroll::prepare(
            &self.config.profile_path,
            self.device_key_location()?,
            false,
        )?;
        let ceremony = match self.ceremonies.begin(self.ui.clone()) {
            Ok(c) => c,
            Err(e) => {
                prepared.abandon();
                return Err(e);
            }
        };
        let (spec, signer) = match &key {
            KeyChoice::Usb => (
                "usb".to_owned(),
                ceremony.signer("usb", self.config.usb_timeout, Duration::ZERO),
            ),
            KeyChoice::DemoSoftware { .. } => (
                format!("soft:{}", self.config.demo_key_path.display()),
                ceremony.demo_signer(
                    &self.config.demo_key_path,
                    pin.as_deref().map(String::as_str),
                    self.config.demo_touch,
                ),
            ),
        };
        let signer = match signer {
            Ok(s) => s,
            Err(e) => {
                prepared.abandon();
                return Err(e);
            }
        };
        let device_name = self.config.device_name.clone();
        let runtime = self.runtime.clone();
        let (result, cancelled) = tokio::task::spawn_blocking(move || {
            let reporting = Reporting {
                signer: &signer,
                ceremony: &ceremony,
            };
            let result =
                runtime.block_on(prepared.enroll(&server, &code, &device_name, &spec, &reporting));
            (result, ceremony.was_cancelled())
        })
        .await
        .map_err(ShellError::internal)?;
        let profile = result.map_err(|e| match e {
            enroll::EnrollError::Client(c) => ShellError::from_client(c, cancelled),
            other => other.into(),
        })?;
        let client = profile.connect(&self.config.profile_path)?;
        let view = EnrolledView {
            approver_id: profile.approver_id.clone(),
            server: profile.server.clone(),
            soft_key: profile.is_soft_key(),
        };
        {
            let mut inner = self.lock()?;
            inner.end_session();
            inner.profile_problem = None;
            inner.session = Some(Session {
                profile,
                client: Arc::new(client),
                tasks: Vec::new(),
            });
        }
        self.start_stream();
        Ok(view)
    }

    /// Approves, denies or reports request `id`, whose digest the screen showed as `shown`.
    /// Signs only if that equals the digest of the verified request held now and it has not
    /// expired; the challenge comes from that request.
    pub async fn decide(
        self: &Arc<Self>,
        id: &str,
        shown: &str,
        choice: Choice,
    ) -> Result<DecisionOutcome, ShellError> {
        let reason = choice.reason()?;
        let (client, profile, request, generation) = {
            let inner = self.lock()?;
            let session = inner.session.as_ref().ok_or(ShellError::NotEnrolled)?;
            let request = inner.pending.get(id).ok_or(ShellError::NotPending)?;
            if request.request().digest.to_base64url() != shown {
                return Err(ShellError::Changed);
            }
            if request.request().transaction.approve_by.unix() <= now() {
                return Err(ShellError::Expired);
            }
            (
                session.client.clone(),
                session.profile.clone(),
                request.clone(),
                inner.generation,
            )
        };
        let ceremony = self.ceremonies.begin(self.ui.clone())?;
        let signer = ceremony.signer(
            &profile.key,
            self.config.usb_timeout,
            self.config.demo_touch,
        )?;
        let runtime = self.runtime.clone();
        let verdict = choice.verdict;
        let decision = verdict.as_str();
        let approver_id = profile.approver_id.clone();
        let (request, result, cancelled) = tokio::task::spawn_blocking(move || {
            let reporting = Reporting {
                signer: &signer,
                ceremony: &ceremony,
            };
            let result = runtime.block_on(client.answer(
                &request,
                &profile.approver_id,
                verdict,
                reason.as_deref(),
                &profile.credential_id,
                &reporting,
            ));
            (
                request,
                result.map(|a| (a, reason)),
                ceremony.was_cancelled(),
            )
        })
        .await
        .map_err(ShellError::internal)?;
        let (answer, reason) = match result {
            Ok(ok) => ok,
            Err(e) => {
                let error = ShellError::from_client(e, cancelled);
                if let ShellError::ServerRefused { code, .. } = &error {
                    // Decided or expired on the server meanwhile: it leaves the inbox.
                    if matches!(
                        code,
                        ProblemCode::NotPending
                            | ProblemCode::AlreadyDecided
                            | ProblemCode::ApprovalExpired
                    ) {
                        self.update(generation, |inner| {
                            inner.pending.remove(id);
                        });
                    }
                }
                return Err(error);
            }
        };
        let model = countersign_approver::DisplayModel::render(&request, &approver_id, now());
        let state = answer.state.as_str().to_owned();
        self.history.record(&HistoryEntry {
            at: now(),
            id: id.to_owned(),
            title: model.title,
            headline: model.headline,
            decision: decision.to_owned(),
            reason,
            fingerprint: model.fingerprint.clone(),
            state: state.clone(),
        })?;
        self.update(generation, |inner| {
            inner.pending.remove(id);
        });
        Ok(DecisionOutcome {
            id: id.to_owned(),
            decision,
            state,
            fingerprint: model.fingerprint,
        })
    }

    /// Hands a PIN to the running ceremony.
    pub fn submit_pin(&self, pin: zeroize::Zeroizing<String>) -> Result<(), ShellError> {
        if self.ceremonies.submit_pin(pin) {
            Ok(())
        } else {
            Err(ShellError::Invalid {
                message: "no security key operation is waiting for a PIN".into(),
            })
        }
    }

    /// Cancels the running ceremony.
    pub fn cancel(&self) -> bool {
        self.ceremonies.cancel()
    }

    /// This device's decisions, newest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, ShellError> {
        self.history.entries()
    }

    /// Settings: the server, its pinned key, the device and the key.
    pub fn settings(&self) -> Result<SettingsView, ShellError> {
        let inner = self.lock()?;
        let profile = &inner
            .session
            .as_ref()
            .ok_or(ShellError::NotEnrolled)?
            .profile;
        let details = profile.key_details.as_ref();
        let key = match profile.key.strip_prefix("soft:") {
            None => KeyInfo {
                kind: "usb",
                file: None,
                algorithm: details.map(|d| d.algorithm.clone()),
                aaguid: details.map(|d| d.aaguid.clone()),
                pin_set: None,
            },
            Some(path) => {
                let state = SoftKeyState::load(std::path::Path::new(path)).ok();
                let credential = state
                    .as_ref()
                    .and_then(|s| s.credentials.iter().find(|c| c.id == profile.credential_id));
                KeyInfo {
                    kind: "demo_software",
                    file: Some(path.to_owned()),
                    algorithm: details
                        .map(|d| d.algorithm.clone())
                        .or_else(|| credential.map(|c| format!("{:?}", c.algorithm))),
                    aaguid: Some(format!(
                        "{} (\"{}\", the demo software key)",
                        SOFT_KEY_AAGUID
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<String>(),
                        String::from_utf8_lossy(&SOFT_KEY_AAGUID)
                    )),
                    pin_set: state.as_ref().map(|s| s.pin_hash.is_some()),
                }
            }
        };
        Ok(SettingsView {
            server: profile.server.clone(),
            rp_id: profile.rp_id.clone(),
            origin: profile.origin.clone(),
            server_key_ids: profile
                .server_keys
                .keys
                .iter()
                .filter_map(|k| k.kid.clone())
                .collect(),
            approver_id: profile.approver_id.clone(),
            device_id: profile.device_id.clone(),
            device_key: match profile.device_key {
                DeviceKeyLocation::Keyring { .. } => "keyring",
                DeviceKeyLocation::InsecureFile { .. } => "insecure_file",
            },
            key,
            profile_path: self.config.profile_path.display().to_string(),
            start_at_login: None,
        })
    }

    /// Forgets this device: stops the stream, removes the device key, the profile and the
    /// local history. The server still lists the device until an administrator disables it.
    pub fn unenroll(&self) -> Result<(), ShellError> {
        if self.ceremonies.running() {
            return Err(ShellError::Busy);
        }
        let mut inner = self.lock()?;
        let Some(session) = inner.end_session() else {
            return Err(ShellError::NotEnrolled);
        };
        let removed = session
            .profile
            .device_key
            .store()
            .delete()
            .map_err(ShellError::from)
            .and_then(|()| {
                std::fs::remove_file(&self.config.profile_path).map_err(|e| ShellError::Storage {
                    message: format!("{}: {e}", self.config.profile_path.display()),
                })
            })
            .and_then(|()| {
                let kept = Profile::checkpoint_file(&self.config.profile_path);
                CheckpointMemory::forget(&kept).map_err(|e| ShellError::Storage {
                    message: format!("{}: {e}", kept.display()),
                })
            })
            .and_then(|()| self.history.clear());
        drop(inner);
        self.emit();
        removed
    }
}

fn parse_code(code: &str) -> Result<EnrollmentCode, ShellError> {
    EnrollmentCode::parse(code.trim()).map_err(|e| ShellError::InvalidCode {
        message: e.to_string(),
    })
}

/// The server address: http(s) only, no credentials, query or fragment.
fn parse_server(server: &str) -> Result<String, ShellError> {
    let server = server.trim().trim_end_matches('/');
    let invalid = |why: &str| ShellError::Invalid {
        message: format!("server address {server:?}: {why}"),
    };
    let rest = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .ok_or_else(|| invalid("must start with https:// (or http:// on this machine)"))?;
    if rest.is_empty() || rest.contains(['@', '?', '#', ' ']) {
        return Err(invalid(
            "must be a plain address such as https://approvals.example.com",
        ));
    }
    Ok(server.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_are_checked() {
        assert_eq!(
            parse_server(" http://127.0.0.1:8710/ ").unwrap(),
            "http://127.0.0.1:8710"
        );
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https://user@host",
            "https://h?x=1",
            "javascript:alert(1)",
        ] {
            assert!(
                matches!(parse_server(bad), Err(ShellError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn reasons_are_trimmed_and_a_report_needs_one() {
        assert_eq!(Choice::approve().reason().unwrap(), None);
        assert_eq!(
            Choice::deny(Some("  not mine ")).reason().unwrap(),
            Some("not mine".into())
        );
        assert_eq!(Choice::deny(Some("   ")).reason().unwrap(), None);
        assert!(matches!(
            Choice::report(" ").reason(),
            Err(ShellError::Invalid { .. })
        ));
        let no_reason: Choice = serde_json::from_str(r#"{"kind":"report"}"#).unwrap();
        assert!(matches!(
            no_reason.reason(),
            Err(ShellError::Invalid { .. })
        ));
        assert!(matches!(
            Choice::deny(Some(&"x".repeat(501))).reason(),
            Err(ShellError::Invalid { .. })
        ));
        let from_ui: Choice = serde_json::from_str(r#"{"kind":"deny","reason":"no"}"#).unwrap();
        assert_eq!(from_ui, Choice::deny(Some("no")));
        assert!(serde_json::from_str::<Choice>(r#"{"kind":"maybe"}"#).is_err());
    }
}
