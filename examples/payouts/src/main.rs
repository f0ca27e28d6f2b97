//! `payouts-service`: the example protected application (see the library docs).

use clap::Parser;
use countersign_example_payouts::{router, App};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(about = "A tiny payouts service that asks Countersign before it moves money")]
struct Args {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8720")]
    listen: std::net::SocketAddr,
    /// The Countersign server.
    #[arg(long, default_value = "http://127.0.0.1:8710")]
    countersign: String,
    /// This service's Countersign API key (or COUNTERSIGN_API_KEY).
    #[arg(long, env = "COUNTERSIGN_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The audience the API key is scoped to.
    #[arg(long, default_value = "payouts-service")]
    audience: String,
    /// Where paid payouts are appended (JSON Lines).
    #[arg(long, default_value = "payouts-ledger.jsonl")]
    ledger: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let client =
        match countersign_sdk::Client::connect(&args.countersign, &args.api_key, &args.audience)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    println!("payouts-service listening on http://{addr}");
    let _ = std::io::stdout().flush();
    let app = Arc::new(App::new(client, args.ledger));
    if let Err(e) = axum::serve(listener, router(app)).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
