//! What a protected application sends: session hashes and request bodies.

/// base64url SHA-256 of a session id.
pub fn session_hash(session: &str) -> String {
    countersign_core::canonical::domain_digest(b"", session.as_bytes()).to_base64url()
}

/// A create-request body for a payout of `value` EUR.
pub fn payout(idempotency_key: &str, value: &str, requester: &str) -> serde_json::Value {
    serde_json::json!({
        "idempotency_key": idempotency_key,
        "action": "payout.send",
        "object": "vendor:4711",
        "amount": {"value": value, "currency": "EUR"},
        "requester": {"id": requester, "kind": "human"},
        "session": session_hash("session-1"),
        "context": {"ip": "198.51.100.7", "geo": "DE", "device_posture": "managed", "privileges": ["payments"]}
    })
}
