//! Tells a configured webhook that an approver reported a request as suspicious. The body is
//! signed with the server key so the receiver can tell a real report from a forged one, and
//! the signature covers the time of sending so a captured call cannot be replayed later:
//! `Countersign-Signature` is base64url Ed25519 over
//! `"countersign/webhook/v2\n" || timestamp || "\n" || body`, where `timestamp` is the
//! `Countersign-Timestamp` header (Unix seconds, made fresh for every attempt), by the key named
//! in `Countersign-Key-Id` (published in the JWKS). Receivers refuse a timestamp more than five
//! minutes from their clock. The URL is never logged nor audited: it may carry a secret.

use crate::api::AppState;
use crate::clock;
use countersign_core::audit::{Event, EventKind};
use countersign_core::b64;
use std::sync::Arc;
use std::time::Duration;

/// Domain separation for webhook signatures.
pub const DOMAIN: &[u8] = b"countersign/webhook/v2\n";

/// What the signature covers for a body sent at `timestamp`.
pub fn signing_input(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut signed = DOMAIN.to_vec();
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'\n');
    signed.extend_from_slice(body);
    signed
}

/// Delivers `payload` in the background, retrying with exponential backoff (1 s, 2 s, 4 s...);
/// the outcome is audited either way. Delivery is best effort after the freeze committed: the
/// freeze itself never depends on the webhook.
pub fn notify(state: Arc<AppState>, request_id: String, payload: serde_json::Value) {
    let Some(config) = state.config.webhook.clone() else {
        return;
    };
    tokio::spawn(async move {
        let body = match serde_json::to_vec(&payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "webhook payload");
                return;
            }
        };
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook client");
                return;
            }
        };
        let mut last_error = String::new();
        let mut delivered = false;
        let mut attempt = 0;
        while attempt < config.attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1 << (attempt - 1).min(6))).await;
            }
            attempt += 1;
            let Ok(now) = clock::now() else { return };
            let timestamp = now.unix();
            let signature = b64::encode(state.keys.active.sign(&signing_input(timestamp, &body)));
            let sent = client
                .post(&config.url)
                .header("content-type", "application/json")
                .header("countersign-key-id", state.keys.active.kid())
                .header("countersign-timestamp", timestamp.to_string())
                .header("countersign-signature", &signature)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    delivered = true;
                    break;
                }
                Ok(r) => last_error = format!("HTTP {}", r.status().as_u16()),
                // reqwest's message names the URL: drop it.
                Err(e) => last_error = e.without_url().to_string(),
            }
            tracing::warn!(attempt, error = %last_error, "webhook delivery failed");
        }
        let Ok(at) = clock::now() else { return };
        let event = Event {
            at,
            kind: if delivered {
                EventKind::WebhookDelivered
            } else {
                EventKind::WebhookFailed
            }
            .into(),
            request_id: Some(request_id),
            actor: "server".into(),
            data: if delivered {
                serde_json::json!({"attempts": attempt})
            } else {
                serde_json::json!({"attempts": attempt, "error": last_error})
            },
        };
        if let Err(e) = state.store.audit(event).await {
            tracing::error!(error = %e, "auditing webhook delivery");
        }
    });
}
