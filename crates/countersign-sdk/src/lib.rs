//! What a protected application needs from Countersign, and nothing more: ask for a step-up
//! before a high-risk action, wait for the decision, verify the signed decision offline
//! against the exact transaction it is about to execute, redeem it once, report the outcome.
//!
//! ```no_run
//! # async fn payout() -> Result<(), countersign_sdk::SdkError> {
//! use countersign_sdk::{Client, Created, StepUp};
//! let client = Client::connect("https://approvals.example.com", "cs_…", "payouts-service").await?;
//! let ask = StepUp::new("payout-4711", "payout.send", "vendor:4711", "alice@example.com", "the user's session id")
//!     .amount("2500.00", "EUR");
//! if let Created::StepUp(pending) = client.request(&ask).await? {
//!     client.wait(&pending, std::time::Duration::from_secs(600)).await?;
//!     let decision = client.verified_decision(&pending).await?; // refuses anything else
//!     let proof = client.redeem(decision).await?;               // exactly once
//!     // ... execute the payout here, and only with `proof` ...
//!     client.report(&pending, true, None).await?;
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod client;
mod error;
mod step_up;

pub use client::{Client, Created, Pending, Redeemed, VerifiedDecision};
pub use countersign_core::wire::ProblemCode;
pub use error::SdkError;
pub use step_up::{Context, StepUp};

use countersign_core::jwk::KeySet;
use countersign_core::token::{self, DecisionClaims, Expectations};
use countersign_core::Transaction;

/// Clock skew the online client tolerates on the token's `iat` and `exp`, in seconds (the
/// server enforces the execution deadline itself at redemption).
pub const LEEWAY_SECONDS: i64 = 30;

/// Verifies a decision token offline: signed by a key in `jwks_json`, issued by `issuer` for
/// `audience`, unexpired at `now` (give or take `leeway_seconds` of clock skew; offline there is
/// no redemption to enforce the deadline, so keep it small), and bound to exactly
/// `transaction_json` (its digest and request id). This is the whole check a protected application makes before it acts; the
/// `countersign verify-decision` command runs it from any language's shell.
pub fn verify_decision(
    token: &str,
    jwks_json: &[u8],
    transaction_json: &[u8],
    issuer: &str,
    audience: &str,
    now: i64,
    leeway_seconds: i64,
) -> Result<DecisionClaims, SdkError> {
    let keys = KeySet::from_jwks_json(jwks_json)?;
    let transaction = Transaction::from_json(transaction_json)?;
    let expect = Expectations {
        issuer,
        audience,
        now,
        leeway_seconds,
    };
    Ok(token::verify_for_transaction(
        token,
        &keys,
        &expect,
        &transaction,
    )?)
}
