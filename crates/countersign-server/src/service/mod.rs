//! The server's request logic below the HTTP handlers: each service takes what a handler
//! extracted and authenticated, checks it, records it through the store and answers with a
//! typed outcome or refusal. Handlers map refusals to problem documents; nothing here knows
//! about HTTP.

pub mod approval;
pub mod enrollment;
pub mod request;

/// A failure of the server itself (not of the caller's input): logged, answered with a 500,
/// never detailed to the caller.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// The store failed or refused for a reason the caller did not cause.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The system clock is before 1970 or past what timestamps hold.
    #[error(transparent)]
    Clock(#[from] crate::clock::ClockError),
    /// A credential's public key as stored does not parse.
    #[error("stored credential key: {0}")]
    StoredKey(#[from] countersign_core::webauthn::CoseKeyError),
    /// The operating system's random number generator failed.
    #[error(transparent)]
    Random(#[from] crate::clock::RandomError),
    /// A deadline computed from policy's lifetimes is past what timestamps hold.
    #[error("deadline out of range")]
    DeadlineOutOfRange,
    /// A statement or request could not be encoded canonically.
    #[error("canonical encoding: {0}")]
    Canonical(#[from] countersign_core::canonical::CanonicalError),
}

/// A binary body field that is not unpadded base64url, by name.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not unpadded base64url")]
pub struct InvalidBase64(pub &'static str);

/// The bytes of the body field `name`.
fn base64_field(name: &'static str, text: &str) -> Result<Vec<u8>, InvalidBase64> {
    countersign_core::b64::decode(text).map_err(|_| InvalidBase64(name))
}
