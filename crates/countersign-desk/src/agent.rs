//! The D-Bus contract between the window app and the tray agent, on the session bus.
//!
//! The agent owns the well-known name [`BUS_NAME`] (one agent per session: a second one finds
//! the name taken and leaves) and serves [`INTERFACE`] at [`OBJECT_PATH`]. The window app
//! tells it when the profile changed (enrolled, forgotten), and asks it about notifications,
//! which only the agent shows. Nothing here carries a decision: approving happens in the window,
//! with the key touched.

use serde::{Deserialize, Serialize};

/// The agent's well-known name on the session bus.
pub const BUS_NAME: &str = "dev.countersign.Tray";
/// Where the agent serves its interface.
pub const OBJECT_PATH: &str = "/dev/countersign/Tray";
/// The agent's interface.
pub const INTERFACE: &str = "dev.countersign.Tray1";

/// Whether notifications reach the person, for the window to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NotificationStatus {
    /// They are shown.
    On,
    /// Paused by the person until this time (Unix seconds).
    Paused {
        /// When they resume.
        until: i64,
    },
    /// The notification server is missing or failed (or there is no agent): the window says
    /// so.
    Unavailable {
        /// What went wrong, in words.
        message: String,
    },
}

impl NotificationStatus {
    /// The status as it travels over the bus.
    pub fn to_wire(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"state":"on"}"#.into())
    }

    /// The status from the bus; an unreadable one says so instead of pretending all is well.
    pub fn from_wire(wire: &str) -> NotificationStatus {
        serde_json::from_str(wire).unwrap_or_else(|e| NotificationStatus::Unavailable {
            message: format!("the tray agent answered unreadably: {e}"),
        })
    }
}

/// The agent's interface as the window app calls it.
#[zbus::proxy(
    interface = "dev.countersign.Tray1",
    default_service = "dev.countersign.Tray",
    default_path = "/dev/countersign/Tray"
)]
pub trait Agent {
    /// The profile changed (enrolled or forgotten): load it again and follow its stream.
    fn reload(&self) -> zbus::Result<()>;
    /// The notifications' status, as [`NotificationStatus::to_wire`].
    fn notification_status(&self) -> zbus::Result<String>;
    /// Pauses notifications until `until` (Unix seconds), or resumes them when `until` is 0;
    /// answers the new status.
    fn pause_notifications(&self, until: i64) -> zbus::Result<String>;
    /// Quits the agent (the tray goes away).
    fn quit(&self) -> zbus::Result<()>;
    /// The notifications' status changed.
    #[zbus(signal)]
    fn notification_status_changed(&self, status: String) -> zbus::Result<()>;
    /// The agent quits (Quit in the tray): the window closes too.
    #[zbus(signal)]
    fn quitting(&self) -> zbus::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_travels_as_json_and_an_unreadable_one_is_not_taken_for_on() {
        for status in [
            NotificationStatus::On,
            NotificationStatus::Paused {
                until: 1_700_000_000,
            },
            NotificationStatus::Unavailable {
                message: "no server".into(),
            },
        ] {
            assert_eq!(NotificationStatus::from_wire(&status.to_wire()), status);
        }
        assert!(matches!(
            NotificationStatus::from_wire("{\"state\":\"sideways\"}"),
            NotificationStatus::Unavailable { .. }
        ));
    }
}
