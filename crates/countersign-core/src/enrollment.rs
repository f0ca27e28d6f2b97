//! The WebAuthn challenge of an approver's enrollment: it binds the new FIDO credential to the
//! one-time enrollment code and to the device key being registered, so neither can be swapped.
//!
//! ```text
//! challenge = SHA-256("countersign/enroll/v1\n" || JCS({"version":1,"code":<code secret, base64url>,"device_key":<Ed25519 public key, base64url>}))
//! ```

use crate::canonical::{self, CanonicalError};
use serde::Serialize;

#[derive(Serialize)]
struct EnrollmentStatement<'a> {
    version: u32,
    code: &'a str,
    device_key: &'a str,
}

/// The enrollment challenge for a code secret and a device public key (both base64url).
pub fn challenge(code: &str, device_key: &str) -> Result<[u8; 32], CanonicalError> {
    let statement = EnrollmentStatement {
        version: 1,
        code,
        device_key,
    };
    Ok(canonical::digest_of(b"countersign/enroll/v1\n", &statement)?.0)
}
