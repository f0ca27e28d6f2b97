//! `countersign`: the command line. `verify-decision` runs the protected application's whole
//! check on a decision token, offline, so any language can call it before acting. (The
//! approver subcommands arrive with the approver client.)
//!
//! Exit status: 0 the token is valid for this transaction and audience; 1 it is refused (the
//! reason on stderr, or in the JSON); 2 the inputs could not be read.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use countersign_sdk::{verify_decision, SdkError};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "countersign",
    about = "Countersign step-up approvals from the command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verifies a decision token against the server's JWKS and the exact transaction about to
    /// run: signature, issuer, audience, expiry, transaction digest, request id, approval.
    VerifyDecision {
        /// The token; `-` or absent reads it from stdin.
        #[arg(long)]
        token: Option<String>,
        /// The server's JWKS (`/.well-known/jwks.json`), saved to a file.
        #[arg(long)]
        jwks: PathBuf,
        /// The transaction JSON the application is about to execute.
        #[arg(long)]
        transaction: PathBuf,
        /// The server origin (`iss`).
        #[arg(long)]
        issuer: String,
        /// This application's audience (`aud`).
        #[arg(long)]
        audience: String,
        /// Unix time to check expiry against (default: now).
        #[arg(long)]
        now: Option<i64>,
        /// Seconds of clock skew tolerated on `iat` and `exp`.
        #[arg(long, default_value_t = 0)]
        leeway: i64,
        /// Print a JSON result instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The stable code of a refusal, for scripts.
fn code(e: &SdkError) -> &'static str {
    match e {
        SdkError::Token(t) => t.code(),
        SdkError::Transaction(t) => t.code(),
        SdkError::Keys(k) => k.code(),
        _ => "refused",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::VerifyDecision {
            token,
            jwks,
            transaction,
            issuer,
            audience,
            now: at,
            leeway,
            json,
        } => {
            let inputs = (|| -> Result<_, String> {
                let token = match token.as_deref() {
                    Some(t) if t != "-" => t.to_owned(),
                    _ => {
                        let mut t = String::new();
                        std::io::stdin()
                            .read_to_string(&mut t)
                            .map_err(|e| format!("stdin: {e}"))?;
                        t
                    }
                };
                Ok((token.trim().to_owned(), read(&jwks)?, read(&transaction)?))
            })();
            let (token, jwks, transaction) = match inputs {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let result = verify_decision(
                &token,
                &jwks,
                &transaction,
                &issuer,
                &audience,
                at.unwrap_or_else(now),
                leeway,
            );
            match (result, json) {
                (Ok(claims), true) => {
                    println!("{}", serde_json::json!({"valid": true, "claims": claims}));
                    ExitCode::SUCCESS
                }
                (Ok(claims), false) => {
                    println!(
                        "valid: {} of request {} approved by {} (execute before {})",
                        claims.transaction,
                        claims.jti,
                        claims.approvers.join(", "),
                        claims.exp
                    );
                    ExitCode::SUCCESS
                }
                (Err(e), true) => {
                    println!(
                        "{}",
                        serde_json::json!({"valid": false, "code": code(&e), "error": e.to_string()})
                    );
                    ExitCode::FAILURE
                }
                (Err(e), false) => {
                    eprintln!("refused ({}): {e}", code(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}
