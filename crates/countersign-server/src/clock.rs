//! The current time as the protocol's [`Timestamp`].

use countersign_core::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in whole seconds. A clock outside 2000–9999 is a broken host: the server refuses to
/// run rather than stamp wrong deadlines.
pub fn now() -> Result<Timestamp, ClockError> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| ClockError)?
        .as_secs();
    i64::try_from(seconds)
        .ok()
        .and_then(Timestamp::from_unix)
        .ok_or(ClockError)
}

/// The system clock is outside the protocol's range.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("system clock is outside 2000-9999")]
pub struct ClockError;

/// `n` random bytes from the operating system.
pub fn random<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|_| RandomError)?;
    Ok(bytes)
}

/// The operating system's random source failed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;
