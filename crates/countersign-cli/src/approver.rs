//! The approver subcommands: enroll this device, list and show pending requests, approve,
//! deny or report one, and watch the stream. Everything shown comes from requests the
//! approver crate verified (server signature and recomputed digest); the key signs a
//! challenge derived here from what was shown.

use crate::terminal::{self, TerminalPrompt};
use countersign_approver::client::ClientError;
use countersign_approver::device_key::DeviceKeyError;
use countersign_approver::enroll::{self, EnrollError};
use countersign_approver::profile::{DeviceKeyLocation, Profile, ProfileError};
use countersign_approver::signer::{
    DemoKeySigner, Signer, SignerError, SoftAlgorithm, SoftKeyFileError, UsbSigner,
};
use countersign_approver::watch::WatchEvent;
use countersign_approver::{DisplayModel, EnrollmentCode, ServerClient, Verdict, VerifiedRequest};
use countersign_core::wire::approver::ApprovalAnswer;
use countersign_core::wire::ProblemCode;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long the USB key waits for a touch or a PIN.
const USB_TIMEOUT: Duration = Duration::from_secs(60);

/// Why an approver command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The saved profile or the device key.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The device key store.
    #[error(transparent)]
    DeviceKey(#[from] DeviceKeyError),
    /// The server or a verification.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The security key.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The software key file.
    #[error(transparent)]
    SoftKey(#[from] SoftKeyFileError),
    /// `--key` is neither `usb` nor `soft:PATH`.
    #[error("--key must be `usb` or `soft:PATH`, not {0:?}")]
    KeySpec(String),
    /// The enrollment code does not parse.
    #[error("enrollment code: {0}")]
    Code(String),
    /// No pending request with this id for this approver.
    #[error("no pending request {0} for you (it may be decided, expired or not yours)")]
    NotPending(String),
    /// A profile exists and `--force` was not given.
    #[error("this device is already enrolled ({0}); pass --force to enroll again")]
    AlreadyEnrolled(PathBuf),
    /// The person said no at the confirmation.
    #[error("not confirmed: nothing was sent")]
    NotConfirmed,
    /// The async runtime could not start.
    #[error("runtime: {0}")]
    Runtime(String),
}

impl From<EnrollError> for CliError {
    fn from(error: EnrollError) -> Self {
        match error {
            EnrollError::AlreadyEnrolled(path) => CliError::AlreadyEnrolled(path),
            EnrollError::DeviceKey(e) => CliError::DeviceKey(e),
            EnrollError::Client(e) => CliError::Client(e),
            EnrollError::Profile(e) => CliError::Profile(e),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

impl CliError {
    /// A stable code for scripts.
    pub fn code(&self) -> String {
        match self {
            CliError::Client(ClientError::Problem { code, .. }) => code.to_string(),
            CliError::Client(ClientError::Refused(_)) => "request_refused".into(),
            CliError::Client(_) => "server_error".into(),
            CliError::Profile(ProfileError::NotEnrolled(_)) => "not_enrolled".into(),
            CliError::Profile(ProfileError::DeviceKey(DeviceKeyError::NoKeyring { .. }))
            | CliError::DeviceKey(DeviceKeyError::NoKeyring { .. }) => "no_keyring".into(),
            CliError::Profile(_) | CliError::DeviceKey(_) => "profile_error".into(),
            CliError::Signer(SignerError::Cancelled) => "key_cancelled".into(),
            CliError::Signer(SignerError::PinBlocked) => "pin_blocked".into(),
            CliError::Signer(SignerError::PinAuthBlocked) => "pin_auth_blocked".into(),
            CliError::Signer(SignerError::KeyRemoved) => "key_removed".into(),
            CliError::Signer(_) => "key_error".into(),
            CliError::SoftKey(_) => "soft_key_error".into(),
            CliError::KeySpec(_) | CliError::Code(_) => "usage".into(),
            CliError::NotPending(_) => ProblemCode::NotPending.to_string(),
            CliError::AlreadyEnrolled(_) => "already_enrolled".into(),
            CliError::NotConfirmed => "not_confirmed".into(),
            CliError::Runtime(_) => "internal".into(),
        }
    }
}

/// What `enroll` needs.
pub struct EnrollArgs {
    pub server: String,
    pub code: String,
    pub device_name: String,
    pub key: String,
    pub soft_key_algorithm: SoftAlgorithm,
    pub soft_key_pin: Option<String>,
    pub insecure_device_key_file: Option<PathBuf>,
    pub force: bool,
}

/// The signer named by `spec`; `create_soft` makes a missing software key file.
fn signer(
    spec: &str,
    create_soft: Option<(SoftAlgorithm, Option<&str>)>,
) -> Result<Box<dyn Signer>, CliError> {
    let prompt = Arc::new(TerminalPrompt);
    if spec == "usb" {
        return Ok(Box::new(UsbSigner::new(USB_TIMEOUT, prompt)));
    }
    let path = spec
        .strip_prefix("soft:")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| CliError::KeySpec(spec.to_owned()))?;
    let path = Path::new(path);
    Ok(match create_soft {
        Some((algorithm, pin)) if !path.exists() => {
            Box::new(DemoKeySigner::create(path, algorithm, pin, prompt)?)
        }
        _ => Box::new(DemoKeySigner::open(path, prompt)?),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Enrolls this device and saves its profile; the device key goes to the keyring (checked
/// before the one-time code is spent) or, by opt-in, a file.
pub fn enroll(profile_path: &Path, args: EnrollArgs) -> Result<EnrolledProfile, CliError> {
    let code = EnrollmentCode::parse(&args.code).map_err(|e| CliError::Code(e.to_string()))?;
    let location = match &args.insecure_device_key_file {
        Some(path) => DeviceKeyLocation::InsecureFile { path: path.clone() },
        None => enroll::keyring_location()?,
    };
    let prepared = enroll::prepare(profile_path, location, args.force)?;
    let signer = match signer(
        &args.key,
        Some((args.soft_key_algorithm, args.soft_key_pin.as_deref())),
    ) {
        Ok(signer) => signer,
        Err(e) => {
            prepared.abandon();
            return Err(e);
        }
    };
    let profile = runtime()?.block_on(prepared.enroll(
        &args.server,
        &code,
        &args.device_name,
        &args.key,
        signer.as_ref(),
    ))?;
    Ok(EnrolledProfile {
        approver_id: profile.approver_id,
        device_id: profile.device_id,
        server: profile.server,
        key: profile.key,
        device_key: profile.device_key,
        profile: profile_path.to_owned(),
    })
}

/// What `enroll` reports (`--json` writes it as it is): the saved profile's identity.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EnrolledProfile {
    /// The person the code was issued to.
    pub approver_id: String,
    /// This device, as the server names it.
    pub device_id: String,
    /// The server's URL.
    pub server: String,
    /// The key enrolled (`usb` or `soft:PATH`).
    pub key: String,
    /// Where the device key is kept.
    pub device_key: countersign_approver::profile::DeviceKeyLocation,
    /// The profile file.
    pub profile: std::path::PathBuf,
}

/// A loaded profile with its client and key.
struct Session {
    profile: Profile,
    client: ServerClient,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    fn open(profile_path: &Path) -> Result<Self, CliError> {
        let profile = Profile::load(profile_path)?;
        let client = profile.connect(profile_path)?;
        Ok(Session {
            profile,
            client,
            runtime: runtime()?,
        })
    }

    fn pending(&self) -> Result<Vec<VerifiedRequest>, CliError> {
        let list = self.runtime.block_on(self.client.pending())?;
        for refused in &list.refused {
            eprintln!("warning: a pushed request failed verification and is not shown: {refused}");
        }
        Ok(list.verified)
    }

    fn find(&self, id: &str) -> Result<VerifiedRequest, CliError> {
        self.pending()?
            .into_iter()
            .find(|r| r.request().transaction.id == id)
            .ok_or_else(|| CliError::NotPending(id.to_owned()))
    }

    fn render(&self, request: &VerifiedRequest) -> DisplayModel {
        DisplayModel::render(request, &self.profile.approver_id, now())
    }

    fn answer(
        &self,
        request: &VerifiedRequest,
        choice: &Choice,
        key: Option<&str>,
    ) -> Result<Answered, CliError> {
        let signer = signer(key.unwrap_or(&self.profile.key), None)?;
        let answer = self.runtime.block_on(self.client.answer(
            request,
            &self.profile.approver_id,
            choice.verdict,
            choice.reason.as_deref(),
            &self.profile.credential_id,
            signer.as_ref(),
        ))?;
        Ok(Answered {
            id: request.request().transaction.id.clone(),
            answer,
        })
    }
}

/// `pending`: the verified requests this approver may act on.
pub fn pending(profile_path: &Path) -> Result<Vec<DisplayModel>, CliError> {
    let session = Session::open(profile_path)?;
    Ok(session
        .pending()?
        .iter()
        .map(|r| session.render(r))
        .collect())
}

/// `show ID`: one verified request as the person must see it.
pub fn show(profile_path: &Path, id: &str) -> Result<DisplayModel, CliError> {
    let session = Session::open(profile_path)?;
    let request = session.find(id)?;
    Ok(session.render(&request))
}

/// What the person decided on the command line, and why.
pub struct Choice {
    /// Approve, deny or report.
    pub verdict: Verdict,
    /// Why (required for a report; the approver crate checks before the key is asked).
    pub reason: Option<String>,
}

impl Choice {
    fn question(&self) -> &'static str {
        match self.verdict {
            Verdict::Approve => "Approve exactly this?",
            Verdict::Deny => "Deny this request?",
            Verdict::Report => "Report this request as suspicious (freezes the requester)?",
        }
    }
}

/// The server's answer to a decision, with the request it is about (for scripts and people).
#[derive(Debug, serde::Serialize)]
pub struct Answered {
    /// The request answered.
    pub id: String,
    /// What the server said.
    #[serde(flatten)]
    pub answer: ApprovalAnswer,
}

/// `approve`/`deny`/`report ID`: shows the request, asks unless `yes`, then signs with the
/// key and sends.
pub fn decide(
    profile_path: &Path,
    id: &str,
    choice: &Choice,
    yes: bool,
    key: Option<&str>,
) -> Result<Answered, CliError> {
    let session = Session::open(profile_path)?;
    let request = session.find(id)?;
    let model = session.render(&request);
    eprintln!("{}", crate::text::display(&model));
    if !yes && !terminal::confirm(choice.question()) {
        return Err(CliError::NotConfirmed);
    }
    session.answer(&request, choice, key)
}

/// `watch`: follows the stream; for each new request this approver may act on, prints it
/// and (unless `json`) asks approve / deny / report / skip. Returns when stdin ends.
pub fn watch(profile_path: &Path, json: bool, key: Option<&str>) -> Result<(), CliError> {
    let session = Session::open(profile_path)?;
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel::<WatchEvent>();
    let stream_client = Profile::load(profile_path)?.connect(profile_path)?;
    let stream = session.runtime.spawn(async move {
        stream_client
            .watch(None, |event| {
                if events.send(event).is_err() {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            })
            .await
    });
    let mut handled = std::collections::HashSet::new();
    loop {
        let Some(event) = session.runtime.block_on(received.recv()) else {
            // The stream ended: the server refused this device (401/403) or it stopped.
            return match session.runtime.block_on(stream) {
                Ok(Err(e)) => Err(e.into()),
                _ => Ok(()),
            };
        };
        let requests = match event {
            WatchEvent::Request(request) => vec![*request],
            WatchEvent::Refused(refused) => {
                eprintln!(
                    "warning: a pushed request failed verification and is not shown: {refused}"
                );
                continue;
            }
            WatchEvent::Audit(alarm) => {
                eprintln!("warning: {alarm}");
                continue;
            }
            WatchEvent::Resync => session.pending()?,
            WatchEvent::Connected | WatchEvent::Disconnected { .. } => continue,
        };
        for request in requests {
            let model = session.render(&request);
            if model.state != "pending" || !handled.insert(model.id.clone()) {
                continue;
            }
            if json {
                println!("{}", serde_json::to_string(&model).unwrap_or_default());
                continue;
            }
            println!("{}", crate::text::display(&model));
            let Some(choice) = ask_choice() else {
                return Ok(());
            };
            let Some(choice) = choice else { continue };
            match session.answer(&request, &choice, key) {
                Ok(answer) => println!("{}", crate::text::answer(&answer)),
                Err(e) => eprintln!("error ({}): {e}", e.code()),
            }
        }
    }
}

/// Reads `a`, `d [reason]`, `r reason` or `s`; `None` at end of input, `Some(None)` to skip.
fn ask_choice() -> Option<Option<Choice>> {
    loop {
        eprint!("[a]pprove, [d]eny [reason], [r]eport reason, [s]kip: ");
        let line = terminal::read_line()?;
        let (word, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        let rest = rest.trim();
        match word {
            "a" | "approve" => {
                return Some(Some(Choice {
                    verdict: Verdict::Approve,
                    reason: None,
                }))
            }
            "d" | "deny" => {
                return Some(Some(Choice {
                    verdict: Verdict::Deny,
                    reason: (!rest.is_empty()).then(|| rest.to_owned()),
                }))
            }
            "r" | "report" if !rest.is_empty() => {
                return Some(Some(Choice {
                    verdict: Verdict::Report,
                    reason: Some(rest.to_owned()),
                }))
            }
            "r" | "report" => eprintln!("a report needs a reason"),
            "s" | "skip" => return Some(None),
            _ => eprintln!("answer a, d, r or s"),
        }
    }
}

/// The default profile path (shared with the desktop app).
pub fn default_profile_path() -> PathBuf {
    Profile::default_path()
}
