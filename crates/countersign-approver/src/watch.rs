//! Following the server's event stream: every `request` event verified before it is handed
//! on, reconnection with exponential backoff, resume from the last event id, and a `resync`
//! signal whenever events may have been missed (the caller then re-reads the pending list).
//! Signed audit checkpoints are checked on the way: one that goes back, or rewrites an entry
//! already checkpointed, is reported as [`WatchEvent::Audit`].

use crate::audit_memory::AuditAlarm;
use crate::client::{ClientError, ServerClient};
use crate::verified::{Refusal, RefusedRequest, VerifiedRequest};
use countersign_core::push::SignedRequest;
use futures_util::StreamExt;
use std::ops::ControlFlow;
use std::time::Duration;

/// What the stream delivers.
#[derive(Debug)]
pub enum WatchEvent {
    /// A new or changed request, verified.
    Request(Box<VerifiedRequest>),
    /// A pushed request that failed verification: warn, never show.
    Refused(Refusal),
    /// The server's audit history went back or changed (or this device cannot keep track of
    /// it): warn that nothing should be approved until the security team has looked.
    Audit(AuditAlarm),
    /// Events may have been missed (a reconnect, or the server said so): re-read the list.
    Resync,
    /// The stream is open: what follows is live.
    Connected,
    /// The stream could not be opened or broke off; the next attempt is in `retry_in`.
    Disconnected {
        /// Time until the next connection attempt.
        retry_in: Duration,
    },
}

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One parsed server-sent event.
#[derive(Default)]
struct RawEvent {
    event: String,
    id: Option<u64>,
    data: String,
}

/// Splits complete events off the front of `buffer`.
fn take_events(buffer: &mut String) -> Vec<RawEvent> {
    let mut events = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let block: String = buffer.drain(..end + 2).collect();
        let mut event = RawEvent::default();
        for line in block.lines() {
            if line.starts_with(':') {
                continue; // keep-alive comment
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event.event = value.to_owned(),
                "id" => event.id = value.parse().ok(),
                "data" => event.data.push_str(value),
                _ => {}
            }
        }
        if !event.event.is_empty() || !event.data.is_empty() {
            events.push(event);
        }
    }
    events
}

impl ServerClient {
    /// Follows the approver stream until `on_event` breaks or the server refuses the device
    /// (401/403: returned as the error). Connection failures are retried with backoff (1 s,
    /// doubling, at most 30 s), resuming after the last event seen; each reconnect first
    /// delivers [`WatchEvent::Resync`]. The connection's state is reported too: `Connected`
    /// once a stream is open, `Disconnected` with the wait before each new attempt.
    pub async fn watch(
        &self,
        mut last_event_id: Option<u64>,
        mut on_event: impl FnMut(WatchEvent) -> ControlFlow<()>,
    ) -> Result<(), ClientError> {
        let mut backoff = Duration::from_secs(1);
        let mut first = true;
        loop {
            if !first && on_event(WatchEvent::Resync).is_break() {
                return Ok(());
            }
            first = false;
            let opened = self.open_stream(last_event_id).await;
            let response = match opened {
                Ok(r) => r,
                Err(ClientError::Problem {
                    status,
                    code,
                    detail,
                }) if status == 401 || status == 403 => {
                    return Err(ClientError::Problem {
                        status,
                        code,
                        detail,
                    });
                }
                Err(_) => {
                    if on_event(WatchEvent::Disconnected { retry_in: backoff }).is_break() {
                        return Ok(());
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_secs(1);
            if on_event(WatchEvent::Connected).is_break() {
                return Ok(());
            }
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(chunk) = body.next().await {
                let Ok(chunk) = chunk else { break };
                buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
                for event in take_events(&mut buffer) {
                    if let Some(id) = event.id {
                        last_event_id = Some(id);
                    }
                    let delivered = match event.event.as_str() {
                        "request" => match serde_json::from_str::<SignedRequest>(&event.data) {
                            Ok(signed) => match self.verify_pushed(&signed).await {
                                Ok(v) => WatchEvent::Request(Box::new(v)),
                                Err(e) => WatchEvent::Refused(Refusal::of(&signed, e)),
                            },
                            Err(_) => WatchEvent::Refused(Refusal {
                                claimed_id: None,
                                reason: RefusedRequest::Malformed,
                            }),
                        },
                        "resync" => WatchEvent::Resync,
                        "checkpoint" => {
                            match serde_json::from_str::<countersign_core::audit::Checkpoint>(
                                &event.data,
                            ) {
                                Ok(checkpoint) => match self.check_checkpoint(&checkpoint).await {
                                    Ok(()) => continue,
                                    Err(alarm) => WatchEvent::Audit(alarm),
                                },
                                Err(_) => WatchEvent::Audit(AuditAlarm::Malformed),
                            }
                        }
                        _ => continue,
                    };
                    if on_event(delivered).is_break() {
                        return Ok(());
                    }
                }
            }
            // The stream broke off: say so before the reconnect's resync.
            if on_event(WatchEvent::Disconnected {
                retry_in: Duration::ZERO,
            })
            .is_break()
            {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_and_comments_skipped() {
        let mut buffer =
            ":keep-alive\n\nevent: request\nid: 7\ndata: {\"a\":1}\n\nevent: res".to_owned();
        let events = take_events(&mut buffer);
        assert_eq!(events.len(), 1);
        assert_eq!(
            (
                events[0].event.as_str(),
                events[0].id,
                events[0].data.as_str()
            ),
            ("request", Some(7), "{\"a\":1}")
        );
        assert_eq!(
            buffer, "event: res",
            "an incomplete event waits for the rest"
        );
        buffer.push_str("ync\ndata: {}\n\n");
        assert_eq!(take_events(&mut buffer)[0].event, "resync");
    }
}
