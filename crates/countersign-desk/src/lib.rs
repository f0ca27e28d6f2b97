//! The desktop approver's state and logic, without a window and without a tray, shared by the
//! two desktop processes: the window app (`countersign-desktop`, Tauri) and the tray agent
//! (`countersign-tray`, which holds the tray and the notifications and costs little while
//! nothing is on screen).
//!
//! - [`desk`]: the state and logic behind every screen (testable without a window);
//! - [`stream`]: the task that follows the server's event stream into the desk;
//! - [`ceremony`]: one security-key operation at a time, its progress, PIN and cancel;
//! - [`agent`]: the D-Bus contract between the window app and the tray agent;
//! - [`links`]: `countersign://` links, validated strictly;
//! - [`views`]: what the screens receive; [`history`]: this device's decisions;
//! - [`error`]: the one typed error that crosses the IPC boundary.
#![forbid(unsafe_code)]

pub mod agent;
pub mod ceremony;
pub mod desk;
pub mod error;
pub mod history;
pub mod links;
pub mod stream;
pub mod views;
