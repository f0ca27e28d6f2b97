//! The change feed between server instances on one PostgreSQL database. A write transaction
//! that touches requests sends `NOTIFY` on its schema's [`channel`] (PostgreSQL delivers it
//! only if the transaction commits); every instance `LISTEN`s on a connection of its own and forwards what
//! the *other* instances committed to its long polls and event streams. Its own changes it
//! announced already, before the notification could come back. After a lost listening
//! connection nobody can say what was missed, so a new one is opened and subscribers are told
//! to resync.

use crate::changes::{Change, Changes};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// The notification channel of the schema the store works in (a database can hold several
/// deployments, one per schema; notifications are database-wide). At most 63 bytes, as
/// PostgreSQL's identifiers.
pub(super) fn channel(schema: &str) -> String {
    let mut name = format!("countersign_changes_{schema}");
    while name.len() > 63 {
        name.pop();
    }
    name
}

/// First pause before listening again after a failure; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One instance's side of the feed: the channel of its schema, and the random name it signs
/// its notifications with so that it can ignore its own.
pub(super) struct Feed {
    channel: String,
    instance: String,
}

impl Feed {
    /// A new instance's feed on `schema`.
    pub(super) fn new(schema: &str) -> Result<Self, crate::clock::RandomError> {
        let instance = crate::clock::random::<8>()?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Feed {
            channel: channel(schema),
            instance,
        })
    }

    /// The channel notifications go to.
    pub(super) fn channel(&self) -> &str {
        &self.channel
    }

    /// One payload per request the entries touched (each once): this instance's name and the
    /// request id.
    pub(super) fn payloads(&self, entries: &[countersign_core::audit::Entry]) -> Vec<String> {
        let mut touched: Vec<&str> = entries
            .iter()
            .filter_map(|e| e.event.request_id.as_deref())
            .collect();
        touched.sort_unstable();
        touched.dedup();
        touched
            .into_iter()
            .map(|id| payload(&self.instance, id))
            .collect()
    }
}

/// A notification's payload: who committed the change, and which request it touched.
fn payload(instance: &str, request_id: &str) -> String {
    format!("{instance} {request_id}")
}

/// The request id a notification names, unless this instance sent it (or it is not ours).
fn foreign_request<'a>(instance: &str, payload: &'a str) -> Option<&'a str> {
    let (sender, request_id) = payload.split_once(' ')?;
    (sender != instance && !request_id.is_empty()).then_some(request_id)
}

/// Listens for the life of the process.
pub(super) fn spawn(pool: PgPool, feed: Arc<Feed>, changes: Changes) {
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        loop {
            let mut listener = match listen(&pool, &feed.channel).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "cannot listen for other instances' changes");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = MIN_BACKOFF;
            // What other instances committed before this connection listened is unknown.
            let _ = changes.send(Change::Resync);
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if let Some(id) = foreign_request(&feed.instance, notification.payload()) {
                            let _ = changes.send(Change::Request(id.to_owned()));
                        }
                    }
                    Ok(None) => {
                        tracing::warn!(
                            "lost the connection that listens for other instances' changes"
                        );
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "listening for other instances' changes failed");
                        break;
                    }
                }
            }
        }
    });
}

/// A new listening connection, subscribed.
async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_other_instances_changes_are_forwarded() {
        let theirs = payload("b7", "req-1");
        assert_eq!(foreign_request("a1", &theirs), Some("req-1"));
        assert_eq!(foreign_request("b7", &theirs), None);
        assert_eq!(foreign_request("a1", "no-space"), None);
        assert_eq!(foreign_request("a1", "b7 "), None);
    }

    #[test]
    fn each_schema_has_its_own_channel_within_postgresql_s_identifier_limit() {
        assert_eq!(channel("public"), "countersign_changes_public");
        assert_ne!(channel("a"), channel("b"));
        assert_eq!(channel(&"x".repeat(100)).len(), 63);
    }
}
