//! The IPC commands: each one extracts its arguments, calls the desk, and returns its typed
//! result or [`ShellError`]. All are async so none runs on the main thread.

use crate::agent_link::AgentLink;
use crate::desk::{Choice, DecisionOutcome, Desk, KeyChoice, SettingsView};
use crate::error::ShellError;
use crate::history::HistoryEntry;
use crate::views::{EnrolledView, RequestView, Snapshot};
use countersign_approver::ServerIdentity;
use countersign_desk::agent::NotificationStatus;
use serde::Serialize;
use std::sync::Arc;
use tauri::State;

/// What was passed on the command line to fill the enrollment screen.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Prefill {
    /// Server address.
    pub server: Option<String>,
    /// Enrollment code.
    pub code: Option<String>,
}

/// The enrollment values, changed by an enrollment link.
pub struct PrefillSlot(std::sync::Mutex<Prefill>);

impl PrefillSlot {
    /// Holds `prefill`.
    pub fn new(prefill: Prefill) -> Self {
        PrefillSlot(std::sync::Mutex::new(prefill))
    }

    /// The values now.
    pub fn get(&self) -> Prefill {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the values.
    pub fn set(&self, prefill: Prefill) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = prefill;
    }
}

type Shell<'a> = State<'a, Arc<Desk>>;

/// The current state.
#[tauri::command]
pub async fn snapshot(desk: Shell<'_>) -> Result<Snapshot, ShellError> {
    Ok(desk.snapshot())
}

/// The command line's enrollment values.
#[tauri::command]
pub async fn prefill(prefill: State<'_, PrefillSlot>) -> Result<Prefill, ShellError> {
    Ok(prefill.get())
}

/// The server named by a code, before anything is spent or saved.
#[tauri::command]
pub async fn identify(
    desk: Shell<'_>,
    server: String,
    code: String,
) -> Result<ServerIdentity, ShellError> {
    desk.identify(&server, &code).await
}

/// Enrolls with the chosen key.
#[tauri::command]
pub async fn enroll(
    desk: Shell<'_>,
    agent: State<'_, Arc<AgentLink>>,
    server: String,
    code: String,
    key: KeyChoice,
) -> Result<EnrolledView, ShellError> {
    let enrolled = desk.inner().enroll(&server, &code, key).await?;
    agent.reload().await;
    Ok(enrolled)
}

/// One request's full view.
#[tauri::command]
pub async fn request(desk: Shell<'_>, id: String) -> Result<RequestView, ShellError> {
    desk.request(&id)
}

/// Approve, deny or report the request whose digest the screen showed.
#[tauri::command]
pub async fn decide(
    desk: Shell<'_>,
    id: String,
    digest: String,
    choice: Choice,
) -> Result<DecisionOutcome, ShellError> {
    desk.inner().decide(&id, &digest, choice).await
}

/// The PIN for the running ceremony (used once, then dropped).
#[tauri::command]
pub async fn submit_pin(desk: Shell<'_>, pin: String) -> Result<(), ShellError> {
    desk.submit_pin(zeroize::Zeroizing::new(pin))
}

/// Cancels the running ceremony.
#[tauri::command]
pub async fn cancel_ceremony(desk: Shell<'_>) -> Result<bool, ShellError> {
    Ok(desk.cancel())
}

/// This device's decisions.
#[tauri::command]
pub async fn history(desk: Shell<'_>) -> Result<Vec<HistoryEntry>, ShellError> {
    desk.history()
}

/// Settings, with whether the app starts at login.
#[tauri::command]
pub async fn settings(app: tauri::AppHandle, desk: Shell<'_>) -> Result<SettingsView, ShellError> {
    use tauri_plugin_autostart::ManagerExt;
    let mut view = desk.settings()?;
    view.start_at_login = app.autolaunch().is_enabled().ok();
    Ok(view)
}

/// Turns start-at-login on or off (off unless the person turns it on).
#[tauri::command]
pub async fn set_start_at_login(app: tauri::AppHandle, on: bool) -> Result<bool, ShellError> {
    crate::set_start_at_login(&app, on)?;
    use tauri_plugin_autostart::ManagerExt;
    app.autolaunch()
        .is_enabled()
        .map_err(|e| ShellError::Internal {
            message: format!("cannot read start at login: {e}"),
        })
}

/// What waits for the window: a request to open (from the tray, a notification, a link or a
/// second launch), new enrollment values, a notice. Taken once.
#[tauri::command]
pub async fn take_pending(
    pending: State<'_, crate::window::PendingSlot>,
) -> Result<crate::window::Pending, ShellError> {
    Ok(pending.take())
}

/// Forgets this device.
#[tauri::command]
pub async fn unenroll(desk: Shell<'_>, agent: State<'_, Arc<AgentLink>>) -> Result<(), ShellError> {
    desk.unenroll()?;
    agent.reload().await;
    Ok(())
}

/// When the process started, and whether the first paint was reported.
pub struct Startup {
    /// Process start (as early in `main` as possible).
    pub started: std::time::Instant,
    /// Set once the first paint is logged.
    pub reported: std::sync::atomic::AtomicBool,
}

/// The UI painted its first screen: logs the time since start once (docs/benchmarks.md).
#[tauri::command]
pub async fn painted(startup: State<'_, Startup>) -> Result<(), ShellError> {
    if !startup
        .reported
        .swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        let epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        eprintln!(
            "countersign-desktop: first paint {} ms after main, at {epoch_ms} ms",
            startup.started.elapsed().as_millis()
        );
    }
    Ok(())
}

/// Whether notifications are shown, paused or unavailable (the tray agent shows them).
#[tauri::command]
pub async fn notification_status(
    agent: State<'_, Arc<AgentLink>>,
) -> Result<NotificationStatus, ShellError> {
    Ok(agent.notification_status().await)
}

/// Pauses notifications until `until` (Unix seconds, at most two days ahead; the window
/// computes "in an hour" and "tomorrow morning" in local time), or resumes them with `null`.
#[tauri::command]
pub async fn pause_notifications(
    agent: State<'_, Arc<AgentLink>>,
    until: Option<i64>,
) -> Result<NotificationStatus, ShellError> {
    let now = crate::desk::now();
    if until.is_some_and(|u| u <= now || u > now + 2 * 86_400) {
        return Err(ShellError::Invalid {
            message: "a pause ends in the future and within two days".into(),
        });
    }
    agent.pause(until).await
}

/// Quits the app: the window and the tray agent.
#[tauri::command]
pub async fn quit(
    app: tauri::AppHandle,
    agent: State<'_, Arc<AgentLink>>,
) -> Result<(), ShellError> {
    agent.quit().await;
    app.exit(0);
    Ok(())
}

include!("command_names.rs");
