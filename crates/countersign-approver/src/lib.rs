//! The approver engine that the desktop app and the headless CLI share. It holds the rules
//! that must hold before a security key is ever touched (DESIGN.md, "What the
//! approver must enforce"):
//!
//! - [`enrollment_code`]: the one-time code carries the server key's fingerprint, so even the
//!   first contact is authenticated;
//! - [`verified`]: only a request whose server signature and recomputed digest check out can
//!   be shown, and the challenge is derived here from that transaction, never taken from the
//!   server;
//! - [`display`]: a verified request rendered into exactly what a person must see;
//! - [`client`]: enrollment and device-signed calls, returning only verified requests and
//!   answering with assertions over challenges derived here ([`signer::Signer`] is the key);
//! - [`watch`]: the event stream, verified, with reconnect, backoff, resume and resync;
//! - [`audit_memory`]: the newest signed audit checkpoint, kept beside the profile, so a
//!   server whose audit log goes back is noticed, across restarts too;
//! - [`signer`]: the security key (USB through `authenticator`, or the CTAP2 software key);
//! - [`profile`] and [`device_key`]: what an enrolled device keeps between runs, the device
//!   key in the OS keyring; [`enroll`]: enrolling and saving both, the keyring checked before
//!   the one-time code is spent.
#![forbid(unsafe_code)]

pub mod audit_memory;
pub mod client;
pub mod device_key;
pub mod display;
pub mod enroll;
pub mod enrollment_code;
mod private_file;
pub mod profile;
mod serde_b64;
pub mod signer;
pub mod text_safety;
pub mod verified;
pub mod watch;

pub use client::{ServerClient, ServerIdentity};
pub use countersign_core::wire::Verdict;
pub use display::DisplayModel;
pub use enrollment_code::EnrollmentCode;
pub use verified::VerifiedRequest;
