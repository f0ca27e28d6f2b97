//! One-time enrollment codes, `CSE1.<secret>.<server key id>`, and pinning the server key they
//! name: the format lives in `countersign_core::enrollment`, beside the server's writer.

pub use countersign_core::enrollment::{EnrollmentCode, EnrollmentCodeError};
