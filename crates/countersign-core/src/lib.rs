//! The Countersign protocol: everything the server, the approver and a protected
//! application must agree on byte for byte, with no I/O.
//!
//! * [`transaction`]: the model of one high-risk action and its strict validation;
//!   [`requirements`] what policy demanded of it, [`quorum`] how approvals count against that.
//! * [`canonical`]: RFC 8785 canonical JSON and the versioned, domain-separated digests.
//! * [`statement`]: the approval statement and the WebAuthn challenge derived from it.
//! * [`webauthn`]: clientDataJSON, authenticatorData, COSE keys, assertion and registration
//!   verification (WebAuthn Level 3 §7.1 and §7.2).
//! * [`token`] and [`jwk`]: the Ed25519-signed decision token (JWS, RFC 8037) and its JWKS.
//! * [`audit`]: the hash-linked audit chain and its signed checkpoints.
//!
//! `docs/protocol.md` restates every format byte by byte.
#![forbid(unsafe_code)]

pub mod amount;
pub mod audit;
pub mod b64;
pub mod canonical;
pub mod device_auth;
pub mod enrollment;
pub mod invisible;
pub mod jwk;
#[cfg(feature = "openapi")]
mod openapi;
pub mod push;
pub mod quorum;
pub mod requirements;
pub mod rollover;
pub mod statement;
pub mod timestamp;
pub mod token;
pub mod transaction;
pub mod webauthn;
pub mod wire;

pub use canonical::Digest;
pub use statement::{ApprovalStatement, Decision};
pub use timestamp::Timestamp;
pub use transaction::Transaction;
