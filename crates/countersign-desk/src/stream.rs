//! The stream task: follows the approver event stream for one session and applies what it
//! delivers to the desk (verified requests, refusals, resynchronisation with the full pending
//! list after a reconnect, and the connection's state).

use crate::desk::Desk;
use crate::views::Connection;
use countersign_approver::client::ClientError;
use countersign_approver::watch::WatchEvent;
use countersign_approver::ServerClient;
use std::sync::{Arc, Weak};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// Applies the watcher's events until it ends; a refusal of the device (401/403) ends the
/// session's connection with the server's words.
pub async fn follow(
    desk: Weak<Desk>,
    client: Arc<ServerClient>,
    generation: u64,
    mut events: UnboundedReceiver<WatchEvent>,
    watcher: JoinHandle<Result<(), ClientError>>,
) {
    while let Some(event) = events.recv().await {
        let Some(desk) = desk.upgrade() else { return };
        match event {
            WatchEvent::Request(request) => desk.on_request(generation, *request),
            WatchEvent::Refused(refused) => desk.on_refused(generation, &refused),
            WatchEvent::Audit(alarm) => desk.on_audit_alarm(generation, &alarm),
            WatchEvent::Resync => {
                // A failed read is retried by the next reconnect's resync.
                if let Ok(list) = client.pending().await {
                    desk.on_resync(generation, list);
                }
            }
            WatchEvent::Connected => desk.on_connection(
                generation,
                Connection::Connected {
                    since: crate::desk::now(),
                },
            ),
            WatchEvent::Disconnected { retry_in } => desk.on_disconnected(generation, retry_in),
        }
    }
    if let (Ok(Err(error)), Some(desk)) = (watcher.await, desk.upgrade()) {
        desk.on_connection(
            generation,
            Connection::Refused {
                message: error.to_string(),
            },
        );
    }
}
