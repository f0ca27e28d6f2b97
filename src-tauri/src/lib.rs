//! The Countersign desktop approver: a thin Tauri 2 shell over `countersign-approver`.
//!
//! - [`desk`]: the state and logic behind every command (testable without a window);
//! - [`stream`]: the task that follows the server's event stream into the desk;
//! - [`ceremony`]: one security-key operation at a time, its progress, PIN and cancel;
//! - [`commands`]: the IPC commands, thin wrappers over the desk;
//! - [`notify`]: desktop notifications for new requests (notify-rust on the session bus);
//! - [`views`]: what the UI receives; [`history`]: this device's decisions;
//! - [`error`]: the one typed error that crosses the IPC boundary.
#![forbid(unsafe_code)]

pub mod ceremony;
pub mod commands;
pub mod desk;
pub mod error;
pub mod history;
pub mod notify;
pub mod stream;
pub mod views;

use ceremony::{CeremonySink, CeremonyUpdate};
use desk::{Desk, DeskConfig, Ui};
use notify::{NotificationStatus, Notifier, NotifierHost};
use std::sync::Arc;
use tauri::{Emitter, Manager};
use views::Snapshot;

/// The app's side of the desk and the notifier: events the window listens to, notifications,
/// and opening a request's screen from a notification.
pub struct Shell {
    app: tauri::AppHandle,
    notifier: std::sync::OnceLock<Arc<Notifier>>,
}

impl Shell {
    /// The notifier (set once at start-up).
    pub fn notifier(&self) -> Option<&Arc<Notifier>> {
        self.notifier.get()
    }
}

impl CeremonySink for Shell {
    fn ceremony(&self, update: &CeremonyUpdate) {
        let _ = self.app.emit("ceremony", update);
    }
}

impl Ui for Shell {
    fn changed(&self, snapshot: &Snapshot) {
        let _ = self.app.emit("snapshot", snapshot);
        if let Some(notifier) = self.notifier.get() {
            notifier.sync(&snapshot.inbox, snapshot.now);
        }
    }
}

impl NotifierHost for Shell {
    fn open_request(&self, id: &str) {
        if let Some(window) = self.app.get_webview_window("main") {
            let _ = window.unminimize();
            let _ = window.show();
            let _ = window.set_focus();
        }
        let _ = self.app.emit("open-request", id);
    }

    fn status_changed(&self, status: &NotificationStatus) {
        let _ = self.app.emit("notifications", status);
    }
}

/// Why the app could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Tauri could not start (no display, no web view).
    #[error("cannot start the window: {0}")]
    Tauri(#[from] tauri::Error),
}

/// Runs the app until it quits.
pub fn run(
    config: DeskConfig,
    prefill: commands::Prefill,
    started: std::time::Instant,
) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let handle = runtime.handle().clone();
    tauri::async_runtime::set(handle.clone());
    tauri::Builder::default()
        .manage(prefill)
        .manage(commands::Startup {
            started,
            reported: Default::default(),
        })
        .setup(move |app| {
            let shell = Arc::new(Shell {
                app: app.handle().clone(),
                notifier: std::sync::OnceLock::new(),
            });
            let host: std::sync::Weak<dyn NotifierHost> = Arc::downgrade(&shell) as _;
            let _ = shell.notifier.set(Notifier::new(handle.clone(), host));
            let desk = Desk::open(config, shell.clone(), handle);
            desk.start();
            app.manage(desk);
            app.manage(shell);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::snapshot,
            commands::prefill,
            commands::identify,
            commands::enroll,
            commands::request,
            commands::decide,
            commands::submit_pin,
            commands::cancel_ceremony,
            commands::history,
            commands::settings,
            commands::unenroll,
            commands::painted,
            commands::notification_status,
            commands::pause_notifications,
        ])
        .run(tauri::generate_context!("../tauri.conf.json"))?;
    drop(runtime);
    Ok(())
}
