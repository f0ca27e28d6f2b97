//! The approver event stream (SSE) as a test reads it: with deadlines, never blocking forever.

use crate::approver::Approver;
use crate::server::Endpoint;
use std::io::{BufRead, BufReader};

/// One server-sent event.
#[derive(Clone, Debug, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// What arrives on an open event stream: events and keep-alive comments, read on a thread so
/// the test can wait with a deadline instead of blocking forever.
pub enum SseItem {
    Event(SseEvent),
    Comment,
}

pub struct EventStream {
    items: std::sync::mpsc::Receiver<SseItem>,
}

impl EventStream {
    /// Opens `/v1/approver/stream` as `approver`, optionally resuming after `last_event_id`.
    /// Returns the HTTP status and, on 200, the stream.
    pub fn open(
        server: &dyn Endpoint,
        approver: &Approver,
        last_event_id: Option<&str>,
    ) -> (u16, Option<EventStream>) {
        let path = "/v1/approver/stream";
        // No overall timeout: the body never ends by design.
        let client = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .unwrap();
        let mut req = client
            .get(server.url(path))
            .header("authorization", approver.auth_header("GET", path, b""));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        if status != 200 {
            return (status, None);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut current = SseEvent::default();
            for line in BufReader::new(resp).lines() {
                let Ok(line) = line else { return };
                let item = if line.is_empty() {
                    if current.event.is_empty() && current.data.is_empty() {
                        continue;
                    }
                    SseItem::Event(std::mem::take(&mut current))
                } else if line.starts_with(':') {
                    SseItem::Comment
                } else {
                    let (field, value) = line.split_once(':').unwrap_or((&line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                    match field {
                        "event" => current.event = value,
                        "id" => current.id = Some(value),
                        "data" => current.data.push_str(&value),
                        _ => {}
                    }
                    continue;
                };
                if tx.send(item).is_err() {
                    return;
                }
            }
        });
        (status, Some(EventStream { items: rx }))
    }

    /// The next event (skipping keep-alives) within `secs` seconds.
    pub fn next_event(&self, secs: u64) -> Option<SseEvent> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.items.recv_timeout(left).ok()? {
                SseItem::Event(e) => return Some(e),
                SseItem::Comment => continue,
            }
        }
    }

    /// The events that arrive before the server ends the stream, if it ends within `secs`
    /// seconds; `None` if it is still open then.
    pub fn events_until_closed(&self, secs: u64) -> Option<Vec<SseEvent>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        let mut events = Vec::new();
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.items.recv_timeout(left) {
                Ok(SseItem::Event(e)) => events.push(e),
                Ok(SseItem::Comment) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Some(events),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return None,
            }
        }
    }

    /// Whether a keep-alive comment arrives within `secs` seconds (events are skipped).
    pub fn keepalive_within(&self, secs: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return false;
            };
            match self.items.recv_timeout(left) {
                Ok(SseItem::Comment) => return true,
                Ok(SseItem::Event(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Verifies a pushed request's server signature against the live JWKS.
pub fn verify_pushed(server: &dyn Endpoint, data: &str) -> countersign_core::push::PushedRequest {
    let signed: countersign_core::push::SignedRequest = serde_json::from_str(data).unwrap();
    signed.verify(&server.keys()).unwrap().clone()
}
