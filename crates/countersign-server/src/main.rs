//! `countersign-server`: the step-up server and its admin commands.

use clap::{Parser, Subcommand};
use countersign_server::config::Config;
use countersign_server::store::postgres::PgStore;
use countersign_server::store::sqlite::SqliteStore;
use countersign_server::{admin, cpu_placement, keys, serve};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: request handling allocates on many threads, and
/// glibc's malloc took about 13 % of the server's CPU samples under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "countersign-server",
    version,
    about = "Countersign step-up approval server"
)]
struct Cli {
    /// TOML configuration file; every key has a default.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Overrides `data_dir`.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve {
        /// Overrides `listen` (use port 0 for any free port; the chosen address is printed).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Let this project's own software keys enroll (demos and tests only; sets
        /// `enrollment.allow_demo_keys`).
        #[arg(long)]
        allow_demo_keys: bool,
    },
    /// Protected applications' API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Server signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Approvers and their groups.
    #[command(subcommand)]
    Approver(ApproverCommand),
    /// One-time enrollment codes.
    #[command(subcommand)]
    EnrollCode(EnrollCodeCommand),
    /// Requesters frozen after a report.
    #[command(subcommand)]
    Requester(RequesterCommand),
    /// The audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Prints the OpenAPI document, as `GET /openapi.json` serves it (the committed
    /// `crates/countersign-server/openapi.json` must equal it; the tests check).
    Openapi,
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Creates a key scoped to one audience and prints it once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        audience: String,
        /// Requesters the key may ask step-ups for: an exact id, `*@example.com`, `agent-*`,
        /// or `*` for any; repeat for several.
        #[arg(long = "requesters", required = true)]
        requesters: Vec<String>,
    },
    /// Lists keys (never their secrets).
    List,
    /// Revokes a key by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum ApproverCommand {
    /// Adds an approver.
    Add {
        /// Id (compared with requester ids: use the same identity).
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Group membership; repeat for several.
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Disables an approver and their devices.
    Disable { id: String },
    /// Lists approvers.
    List,
}

#[derive(Subcommand)]
enum RequesterCommand {
    /// Lists frozen requesters: who reported which request, when and why.
    Frozen,
    /// Lifts a freeze after the report was investigated.
    Unfreeze { id: String },
}

#[derive(Subcommand)]
enum EnrollCodeCommand {
    /// Creates a one-time code for an approver's new device.
    Create {
        #[arg(long)]
        approver: String,
        /// Lifetime in seconds (default from config, 900).
        #[arg(long)]
        ttl_seconds: Option<u32>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Makes a new signing key; the old one stays published in the JWKS.
    Rotate,
    /// Prints the JWKS.
    Jwks,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Writes the audit log as JSON Lines with a signed checkpoint as the last line.
    Export {
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Verifies an export offline against a JWKS file.
    Verify {
        export: PathBuf,
        #[arg(long)]
        jwks: PathBuf,
        /// The server's `audit-checkpoints.jsonl`: the export must reach every checkpoint in
        /// it unchanged (catches truncation and rewriting by sequence number).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    // Before the runtime starts, so its threads inherit the placement.
    let writer_cpu = place_threads(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config, writer_cpu)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The config file (or the defaults), with the `--data-dir` override.
fn load_config(cli: &Cli) -> Result<Config, String> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

/// Keeps this thread (and so every thread started from it) off the database writer's CPU;
/// returns that CPU. A placement that fails only costs speed: logged, and nothing is moved.
fn place_threads(config: &Config) -> Option<usize> {
    if !config.database.dedicated_writer_cpu {
        return None;
    }
    let placed = cpu_placement::plan().and_then(|plan| match plan {
        Some(plan) => cpu_placement::pin_current_thread(&plan.rest).map(|()| Some(plan)),
        None => Ok(None),
    });
    match placed {
        Ok(Some(plan)) => {
            tracing::debug!(writer = plan.writer, rest = ?plan.rest, "database writer has a CPU of its own");
            Some(plan.writer)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "database writer shares the CPUs");
            None
        }
    }
}

async fn run(cli: Cli, mut config: Config, writer_cpu: Option<usize>) -> Result<(), String> {
    if let Command::Openapi = cli.command {
        let json = countersign_server::api::openapi::document_json()
            .ok_or("the OpenAPI document could not be written")?;
        print!("{json}");
        return Ok(());
    }
    if let Command::Audit(AuditCommand::Verify {
        export,
        jwks,
        checkpoints,
    }) = &cli.command
    {
        let file = std::fs::File::open(export).map_err(|e| format!("{}: {e}", export.display()))?;
        let jwks = std::fs::read(jwks).map_err(|e| format!("{}: {e}", jwks.display()))?;
        let head =
            admin::verify_export(std::io::BufReader::new(file), &jwks, checkpoints.as_deref())
                .map_err(|e| e.to_string())?;
        println!(
            "audit log verifies: {} entries, head {}",
            head.seq, head.hash
        );
        return Ok(());
    }
    private_data_dir(&config.data_dir)?;
    let store: std::sync::Arc<dyn countersign_server::store::Store> = match &config.database.url {
        Some(url) => std::sync::Arc::new(
            PgStore::open(url, (&config.database).into())
                .await
                .map_err(|e| e.to_string())?,
        ),
        None => std::sync::Arc::new(
            SqliteStore::open_with(&config.database_path(), writer_cpu)
                .await
                .map_err(|e| e.to_string())?,
        ),
    };
    // SQLite made the files with the umask's mode: keep them to this user.
    private_data_dir(&config.data_dir)?;
    let provider = keys::provider(&config).map_err(|e| e.to_string())?;
    match cli.command {
        Command::Serve {
            listen,
            allow_demo_keys,
        } => {
            if let Some(addr) = listen {
                config.listen = addr;
                config.validate().map_err(|e| e.to_string())?;
            }
            config.enrollment.allow_demo_keys |= allow_demo_keys;
            serve::run(config, store).await.map_err(|e| e.to_string())
        }
        Command::ApiKey(ApiKeyCommand::Create {
            name,
            audience,
            requesters,
        }) => {
            let key = admin::create_api_key(store.as_ref(), &name, &audience, &requesters)
                .await
                .map_err(|e| e.to_string())?;
            println!("{key}");
            eprintln!("store this key now: it is not shown again");
            Ok(())
        }
        Command::ApiKey(ApiKeyCommand::List) => {
            for key in store.api_keys().await.map_err(|e| e.to_string())? {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let requesters: Vec<&str> = key.requesters.iter().map(|p| p.as_str()).collect();
                println!(
                    "{}\t{}\t{}\t{}\trequesters={}",
                    key.id,
                    key.name,
                    key.audience,
                    state,
                    requesters.join(",")
                );
            }
            Ok(())
        }
        Command::ApiKey(ApiKeyCommand::Revoke { id }) => {
            admin::revoke_api_key(store.as_ref(), &id)
                .await
                .map_err(|e| e.to_string())?;
            println!("revoked {id}");
            Ok(())
        }
        Command::Approver(ApproverCommand::Add { id, name, groups }) => {
            admin::add_approver(store.as_ref(), &id, &name, &groups)
                .await
                .map_err(|e| e.to_string())?;
            println!("added approver {id}");
            Ok(())
        }
        Command::Approver(ApproverCommand::Disable { id }) => {
            admin::disable_approver(store.as_ref(), &id)
                .await
                .map_err(|e| e.to_string())?;
            println!("disabled approver {id}");
            Ok(())
        }
        Command::Requester(RequesterCommand::Frozen) => {
            for f in store.freezes().await.map_err(|e| e.to_string())? {
                println!(
                    "{}\tfrozen_at={}\treported_by={}\trequest={}\treason={}",
                    f.requester_id,
                    f.frozen_at,
                    f.reported_by,
                    f.request_id,
                    f.reason.unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Requester(RequesterCommand::Unfreeze { id }) => {
            admin::unfreeze_requester(store.as_ref(), &id)
                .await
                .map_err(|e| e.to_string())?;
            println!("unfroze requester {id}");
            Ok(())
        }
        Command::Approver(ApproverCommand::List) => {
            for a in store.approvers().await.map_err(|e| e.to_string())? {
                let state = if a.disabled_at.is_some() {
                    "disabled"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}",
                    a.id,
                    a.display_name,
                    a.groups.join(","),
                    state
                );
            }
            Ok(())
        }
        Command::EnrollCode(EnrollCodeCommand::Create {
            approver,
            ttl_seconds,
        }) => {
            let ttl = ttl_seconds.unwrap_or(config.enrollment.code_ttl_seconds);
            let keys = keys::load_or_create(store.as_ref(), &provider)
                .await
                .map_err(|e| e.to_string())?;
            let code = admin::create_enrollment_code(store.as_ref(), &keys, &approver, ttl)
                .await
                .map_err(|e| e.to_string())?;
            println!("{code}");
            eprintln!("one-time code for {approver}, valid {ttl} s");
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate) => {
            let kid = keys::rotate(store.as_ref(), &provider, "admin")
                .await
                .map_err(|e| e.to_string())?;
            println!("new signing key {kid}; restart the server to sign with it");
            Ok(())
        }
        Command::Keys(KeysCommand::Jwks) => {
            let keys = keys::load_or_create(store.as_ref(), &provider)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&keys.published.to_jwks())
                    .map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Command::Audit(AuditCommand::Export { output }) => {
            let keys = keys::load_or_create(store.as_ref(), &provider)
                .await
                .map_err(|e| e.to_string())?;
            // The newest signed checkpoint: a log that no longer reaches it is not signed over.
            let earlier: Vec<_> =
                countersign_server::checkpoints::CheckpointLog::at(&config.checkpoints_path())
                    .newest(&keys.published)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .collect();
            let head = match output {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(
                        std::fs::File::create(&path)
                            .map_err(|e| format!("{}: {e}", path.display()))?,
                    );
                    let head = admin::export_audit(store.as_ref(), &keys, &earlier, &mut file)
                        .await
                        .map_err(|e| e.to_string())?;
                    std::io::Write::flush(&mut file).map_err(|e| e.to_string())?;
                    head
                }
                None => admin::export_audit(
                    store.as_ref(),
                    &keys,
                    &earlier,
                    &mut std::io::stdout().lock(),
                )
                .await
                .map_err(|e| e.to_string())?,
            };
            eprintln!("exported {} entries, head {}", head.seq, head.hash);
            Ok(())
        }
        Command::Audit(AuditCommand::Verify { .. }) | Command::Openapi => Ok(()),
    }
}

/// Makes the data directory (0700) if missing and keeps it and the database files readable by
/// the server's user only: they hold every request, approval and enrolled key.
fn private_data_dir(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let failed = |path: &std::path::Path, e: std::io::Error| format!("{}: {e}", path.display());
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| failed(dir, e))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| failed(dir, e))?;
    for name in [
        "countersign.sqlite3",
        "countersign.sqlite3-wal",
        "countersign.sqlite3-shm",
    ] {
        let path = dir.join(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| failed(&path, e))?;
        }
    }
    Ok(())
}
