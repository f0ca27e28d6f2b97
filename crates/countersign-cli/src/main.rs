//! `countersign`: the command line. `verify-decision` runs the protected application's whole
//! check on a decision token, offline, so any language can call it before acting. The
//! approver subcommands (`enroll`, `pending`, `show`, `approve`, `deny`, `report`, `watch`)
//! are a headless approver on the same engine as the desktop app.
//!
//! Exit status: 0 success (for `verify-decision`: the token is valid for this transaction and
//! audience); 1 refused or failed (the reason on stderr, or a stable `code` in the JSON);
//! 2 the inputs could not be read or the command line is wrong.
#![forbid(unsafe_code)]

mod approver;
mod terminal;
mod text;

use approver::{Choice, CliError, EnrollArgs};
use countersign_approver::signer::SoftAlgorithm;
use countersign_approver::Verdict;

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
    /// The approver profile (approver subcommands).
    #[arg(long, global = true, env = "COUNTERSIGN_PROFILE")]
    profile: Option<PathBuf>,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// `--soft-key-algorithm` values.
#[derive(Clone, Copy, clap::ValueEnum)]
enum AlgorithmArg {
    Es256,
    Eddsa,
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
    },
    /// Enrolls this device as an approver with a one-time code from the administrator.
    Enroll {
        /// The Countersign server's base URL.
        #[arg(long)]
        server: String,
        /// The one-time enrollment code.
        #[arg(long)]
        code: String,
        /// A name for this device, shown to administrators.
        #[arg(long, default_value = "countersign-cli")]
        device_name: String,
        /// The security key: `usb`, or `soft:PATH` (a software key file for tests and demos,
        /// created if missing; servers can refuse it by its AAGUID).
        #[arg(long, default_value = "usb")]
        key: String,
        /// Algorithm of a newly created software key.
        #[arg(long, value_enum, default_value = "es256")]
        soft_key_algorithm: AlgorithmArg,
        /// PIN for a newly created software key (demos only: visible in the process list).
        #[arg(long)]
        soft_key_pin: Option<String>,
        /// Keep the device key in this plain file instead of the OS keyring. Not protected at
        /// rest: for tests, demos and machines without a keyring, by explicit choice only.
        #[arg(long)]
        insecure_device_key_file: Option<PathBuf>,
        /// Replace an existing profile.
        #[arg(long)]
        force: bool,
    },
    /// Lists the verified requests you may act on.
    Pending,
    /// Shows one request exactly as it must be checked before approving.
    Show {
        /// Request id.
        id: String,
    },
    /// Approves a request with your security key.
    Approve {
        /// Request id.
        id: String,
        /// Do not ask for confirmation (the request is still printed).
        #[arg(long)]
        yes: bool,
        /// Use another security key than the enrolled one's setting.
        #[arg(long)]
        key: Option<String>,
    },
    /// Denies a request, signed with your security key.
    Deny {
        /// Request id.
        id: String,
        /// Why (recorded in the audit chain).
        #[arg(long)]
        reason: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Use another security key than the enrolled one's setting.
        #[arg(long)]
        key: Option<String>,
    },
    /// Denies and reports a request as suspicious: the requester is frozen.
    Report {
        /// Request id.
        id: String,
        /// What is suspicious (required).
        #[arg(long)]
        reason: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Use another security key than the enrolled one's setting.
        #[arg(long)]
        key: Option<String>,
    },
    /// Follows new requests and asks for each (with --json: prints them, one JSON per line).
    /// Ctrl-C stops it, as does end of input at a prompt.
    Watch {
        /// Use another security key than the enrolled one's setting.
        #[arg(long)]
        key: Option<String>,
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

/// Prints an approver command's result; errors on stderr (or as JSON) with exit status 1.
fn finish<T>(
    json: bool,
    result: Result<T, CliError>,
    as_json: impl FnOnce(&T) -> serde_json::Value,
    as_text: impl FnOnce(&T) -> String,
) -> ExitCode {
    match (result, json) {
        (Ok(value), true) => {
            println!("{}", as_json(&value));
            ExitCode::SUCCESS
        }
        (Ok(value), false) => {
            println!("{}", as_text(&value));
            ExitCode::SUCCESS
        }
        (Err(e), true) => {
            println!(
                "{}",
                serde_json::json!({"ok": false, "code": e.code(), "error": e.to_string()})
            );
            ExitCode::FAILURE
        }
        (Err(e), false) => {
            eprintln!("error ({}): {e}", e.code());
            ExitCode::FAILURE
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let profile = cli
        .profile
        .clone()
        .unwrap_or_else(approver::default_profile_path);
    let decided = |r: Result<approver::Answered, CliError>| finish(json, r, to_json, text::answer);
    match cli.command {
        Command::Enroll {
            server,
            code,
            device_name,
            key,
            soft_key_algorithm,
            soft_key_pin,
            insecure_device_key_file,
            force,
        } => {
            let args = EnrollArgs {
                server,
                code,
                device_name,
                key,
                soft_key_algorithm: match soft_key_algorithm {
                    AlgorithmArg::Es256 => SoftAlgorithm::ES256,
                    AlgorithmArg::Eddsa => SoftAlgorithm::EdDSA,
                },
                soft_key_pin,
                insecure_device_key_file,
                force,
            };
            finish(json, approver::enroll(&profile, args), to_json, |v| {
                format!(
                    "enrolled device {} for {} (profile {})",
                    v.device_id,
                    v.approver_id,
                    profile.display()
                )
            })
        }
        Command::Pending => finish(json, approver::pending(&profile), to_json, |list| {
            if list.is_empty() {
                "nothing waiting for you".to_owned()
            } else {
                list.iter().map(text::line).collect::<Vec<_>>().join("\n")
            }
        }),
        Command::Show { id } => finish(json, approver::show(&profile, &id), to_json, text::display),
        Command::Approve { id, yes, key } => decided(approver::decide(
            &profile,
            &id,
            &Choice {
                verdict: Verdict::Approve,
                reason: None,
            },
            yes,
            key.as_deref(),
        )),
        Command::Deny {
            id,
            reason,
            yes,
            key,
        } => decided(approver::decide(
            &profile,
            &id,
            &Choice {
                verdict: Verdict::Deny,
                reason,
            },
            yes,
            key.as_deref(),
        )),
        Command::Report {
            id,
            reason,
            yes,
            key,
        } => decided(approver::decide(
            &profile,
            &id,
            &Choice {
                verdict: Verdict::Report,
                reason: Some(reason),
            },
            yes,
            key.as_deref(),
        )),
        Command::Watch { key } => finish(
            json,
            approver::watch(&profile, json, key.as_deref()),
            |_| serde_json::json!({"ok": true}),
            |_| "stopped watching".to_owned(),
        ),
        Command::VerifyDecision {
            token,
            jwks,
            transaction,
            issuer,
            audience,
            now: at,
            leeway,
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
