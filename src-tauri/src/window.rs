//! The main window's life. It is created at start (unless the app starts hidden in the tray),
//! destroyed when closed — the web view's memory goes with it, while the Rust side keeps the
//! event stream, the pending list and notifications — and created again when the tray, a
//! notification, a link or a second launch asks for it, on the screen they asked for.

use serde::Serialize;
use std::sync::Mutex;
use tauri::{AppHandle, Emitter, Manager, WebviewWindowBuilder};

/// The main window's label (as in `tauri.conf.json`, where it has `"create": false`).
pub const MAIN: &str = "main";

/// What the window should do when it next asks: open a request, fill the enrollment screen
/// again, or tell the person about something (a refused link).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// Open this request's screen.
    pub request: Option<String>,
    /// The enrollment values changed: read them again.
    pub prefill_changed: bool,
    /// Something to tell the person.
    pub notice: Option<String>,
}

/// What waits for the window, taken once by it.
#[derive(Default)]
pub struct PendingSlot(Mutex<Pending>);

impl PendingSlot {
    /// Adds to what waits (a later request replaces an earlier one).
    pub fn add(&self, change: impl FnOnce(&mut Pending)) {
        let mut pending = self.0.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut pending);
    }

    /// Takes what waits.
    pub fn take(&self) -> Pending {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Shows the main window, creating it if it was closed, and lets it pick up what waits.
pub fn show(app: &AppHandle) -> tauri::Result<()> {
    if let Some(window) = app.get_webview_window(MAIN) {
        window.unminimize()?;
        window.show()?;
        window.set_focus()?;
        // A live window takes what waits now; a new one takes it when it loads.
        return app.emit_to(MAIN, "pending", ());
    }
    create(app)
}

/// Creates the main window from its configuration.
pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN)
        .cloned()
        .ok_or_else(|| tauri::Error::WindowNotFound)?;
    WebviewWindowBuilder::from_config(app, &config)?.build()?;
    Ok(())
}

/// Shows the window after `change` to what waits; failures are logged (there is no window to
/// show them in).
pub fn show_with(app: &AppHandle, change: impl FnOnce(&mut Pending)) {
    if let Some(slot) = app.try_state::<PendingSlot>() {
        slot.add(change);
    }
    if let Err(error) = show(app) {
        eprintln!("countersign-desktop: cannot show the window: {error}");
    }
}
