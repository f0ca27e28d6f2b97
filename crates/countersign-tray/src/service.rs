//! The agent's side of the D-Bus contract ([`countersign_desk::agent`]): what the window app
//! may ask of it. Each call is turned into an [`Event`] for the agent's loop, except the
//! notification status, which is read directly.

use crate::notify::Notifier;
use crate::Event;
use countersign_desk::agent::NotificationStatus;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// The served object.
pub struct AgentService {
    /// The agent's notifier.
    pub notifier: Arc<Notifier>,
    /// The agent's loop.
    pub events: UnboundedSender<Event>,
}

#[zbus::interface(name = "dev.countersign.Tray1")]
impl AgentService {
    /// The profile changed: load it again.
    async fn reload(&self) {
        let _ = self.events.send(Event::Reload);
    }

    /// The notifications' status.
    async fn notification_status(&self) -> String {
        self.notifier
            .status(countersign_desk::desk::now())
            .to_wire()
    }

    /// Pauses until `until` (Unix seconds), or resumes when `until` is 0.
    async fn pause_notifications(&self, until: i64) -> zbus::fdo::Result<String> {
        let now = countersign_desk::desk::now();
        if until != 0 && until <= now {
            return Err(zbus::fdo::Error::InvalidArgs(
                "a pause must end in the future".into(),
            ));
        }
        self.notifier.pause((until != 0).then_some(until), now);
        Ok(self.notifier.status(now).to_wire())
    }

    /// Quits the agent.
    async fn quit(&self) {
        let _ = self.events.send(Event::Quit);
    }
}

/// Emits `signal` of the agent's interface with `body`; a bus that fails to carry it has
/// nobody to tell.
async fn emit(
    bus: &zbus::Connection,
    signal: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) {
    let _ = bus
        .emit_signal(
            None::<&str>,
            countersign_desk::agent::OBJECT_PATH,
            countersign_desk::agent::INTERFACE,
            signal,
            body,
        )
        .await;
}

/// Tells the window app that the notifications' status changed.
pub async fn announce_status(bus: &zbus::Connection, status: &NotificationStatus) {
    emit(bus, "NotificationStatusChanged", &(status.to_wire(),)).await;
}

/// Tells the window app that the agent quits (Quit from the tray ends the whole app).
pub async fn announce_quit(bus: &zbus::Connection) {
    emit(bus, "Quitting", &()).await;
}
