//! The Countersign desktop approver: a thin Tauri 2 shell over `countersign-approver`.
//!
//! - [`desk`]: the state and logic behind every command (testable without a window);
//! - [`stream`]: the task that follows the server's event stream into the desk;
//! - [`ceremony`]: one security-key operation at a time, its progress, PIN and cancel;
//! - [`commands`]: the IPC commands, thin wrappers over the desk;
//! - [`views`]: what the UI receives; [`history`]: this device's decisions;
//! - [`error`]: the one typed error that crosses the IPC boundary.
#![forbid(unsafe_code)]

pub mod ceremony;
pub mod commands;
pub mod desk;
pub mod error;
pub mod history;
pub mod stream;
pub mod views;

use ceremony::{CeremonySink, CeremonyUpdate};
use desk::{Desk, DeskConfig, Ui};
use std::sync::Arc;
use tauri::{Emitter, Manager};
use views::Snapshot;

/// The window's side of [`Ui`]: events the UI listens to.
struct WindowUi {
    app: tauri::AppHandle,
}

impl CeremonySink for WindowUi {
    fn ceremony(&self, update: &CeremonyUpdate) {
        let _ = self.app.emit("ceremony", update);
    }
}

impl Ui for WindowUi {
    fn changed(&self, snapshot: &Snapshot) {
        let _ = self.app.emit("snapshot", snapshot);
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
            let ui = Arc::new(WindowUi {
                app: app.handle().clone(),
            });
            let desk = Desk::open(config, ui, handle);
            desk.start();
            app.manage(desk);
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
        ])
        .run(tauri::generate_context!("../tauri.conf.json"))?;
    drop(runtime);
    Ok(())
}
