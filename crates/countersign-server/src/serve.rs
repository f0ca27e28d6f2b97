//! Starting the server: load policy and keys, bind, print the address, serve until a signal.

use crate::api::{self, AppState};
use crate::catalog::{self, Catalog};
use crate::config::Config;
use crate::keys;
use crate::policy::{self, PolicyEngine};
use crate::ratelimit;
use crate::store::Store;
use crate::tls;
use std::io::Write;
use std::sync::Arc;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A policy or catalog file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The catalog is invalid.
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    /// The policies are invalid.
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    /// Keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    /// Listening or serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// A rate limit is unusable.
    #[error(transparent)]
    RateLimit(#[from] ratelimit::BadQuota),
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The audit chain disagrees with its signed checkpoints, or they cannot be written.
    #[error(transparent)]
    Checkpoints(#[from] crate::checkpoints::CheckpointError),
    /// The FIDO metadata BLOB or its root is unusable.
    #[error(transparent)]
    Metadata(#[from] crate::metadata::MetadataError),
}

fn read(path: &Option<std::path::PathBuf>, builtin: &'static str) -> Result<String, ServeError> {
    match path {
        None => Ok(builtin.to_owned()),
        Some(p) => std::fs::read_to_string(p).map_err(|source| ServeError::Read {
            path: p.display().to_string(),
            source,
        }),
    }
}

/// The FIDO metadata the config names, verified now; a BLOB due for replacement is loaded
/// (enrollments that need it are refused until it is replaced) and said so in the log.
fn load_metadata(config: &Config) -> Result<Option<Arc<crate::metadata::Metadata>>, ServeError> {
    let enrollment = &config.enrollment;
    let (Some(blob), Some(root)) = (&enrollment.metadata_blob, &enrollment.metadata_root) else {
        return Ok(None);
    };
    let metadata = crate::metadata::Metadata::load(blob, root, rustls_pki_types::UnixTime::now())?;
    tracing::info!(
        number = metadata.number(),
        models = metadata.models(),
        "FIDO metadata loaded"
    );
    if metadata.is_stale(crate::clock::now().map(|t| t.unix()).unwrap_or(i64::MAX)) {
        tracing::error!(
            number = metadata.number(),
            "the FIDO metadata BLOB is past its nextUpdate: enrollments that need it are refused until it is replaced"
        );
    }
    Ok(Some(Arc::new(metadata)))
}

/// How long open connections may finish after SIGINT or SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the server with `config` on `store` (any backend) until SIGINT or SIGTERM.
pub async fn run(config: Config, store: Arc<dyn Store>) -> Result<(), ServeError> {
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let catalog = Catalog::parse(&read(&config.policy.catalog, catalog::SAMPLE)?)?;
    let policy = PolicyEngine::new(&read(&config.policy.policies, policy::SAMPLE)?)?;
    let provider = keys::provider(&config)?;
    let keys = keys::load_or_create(store.as_ref(), &provider).await?;
    let metadata = load_metadata(&config)?;
    if config.enrollment.allow_demo_keys {
        tracing::warn!("demo keys may enroll (allow_demo_keys): not for production");
    }
    // A database that lost or rewrote what a checkpoint signed does not serve.
    let checkpoint_log = crate::checkpoints::CheckpointLog::at(&config.checkpoints_path());
    let newest = checkpoint_log.newest(&keys.published)?;
    crate::checkpoints::check_database(store.as_ref(), newest.as_slice()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let changes = crate::changes::channel();
    // On a shared database, what the other instances commit reaches this one's subscribers.
    store.follow_changes(changes.clone());
    let ip_limits = ratelimit::ip_layer(&config.limits)?;
    let state = Arc::new(AppState {
        limits: ratelimit::RequesterLimits::new(&config.limits, store.shared_quotas()),
        metrics: Arc::new(crate::metrics::Metrics::new(store.as_ref())),
        store,
        policy,
        catalog,
        keys,
        config,
        changes,
        checkpoint: tokio::sync::watch::Sender::new(newest.clone()),
        metadata,
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to find the port.
    println!("countersign-server listening on {scheme}://{addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, scheme, "listening");
    spawn_limit_cleanup(state.clone());
    spawn_expiry_sweep(state.clone());
    let last_checkpoint = newest.as_ref().map(|c| countersign_core::audit::Head {
        seq: c.body.seq,
        hash: c.body.head,
    });
    let checkpoints: Checkpointing =
        Arc::new(tokio::sync::Mutex::new((checkpoint_log, last_checkpoint)));
    let checkpointer = spawn_checkpoints(state.clone(), checkpoints.clone());
    let app = api::router(state.clone())
        .layer(ip_limits)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Open event streams never end on their own: after a signal, connections get a grace
    // period and are then closed.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let grace_over = {
        let rx = stop_rx.clone();
        async move {
            stopped(rx).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::warn!("closing connections still open after the grace period");
        }
    };
    match tls {
        None => {
            let server = axum::serve(listener, app).with_graceful_shutdown(stopped(stop_rx));
            tokio::select! {
                served = server => served?,
                () = grace_over => {}
            }
        }
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                stopped(stop_rx).await;
                stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
            });
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(tls);
            axum_server::tls_rustls::from_tcp_rustls(listener.into_std()?, rustls)?
                .handle(handle)
                .serve(app)
                .await?;
        }
    }
    // One last checkpoint over everything written before the stop.
    checkpointer.abort();
    checkpoint_now(&state, &checkpoints).await;
    Ok(())
}

/// Signs and appends a checkpoint if the audit head moved, and pushes it to approver streams;
/// a failure is logged (the periodic task retries).
async fn checkpoint_now(state: &AppState, checkpoints: &Checkpointing) {
    let mut guard = checkpoints.lock().await;
    let (log, last) = &mut *guard;
    match log
        .checkpoint(&*state.store, &state.keys.active, last)
        .await
    {
        Ok(Some(made)) => {
            state.checkpoint.send_replace(Some(made));
        }
        Ok(None) => {}
        Err(error) => tracing::error!(%error, "audit checkpoint failed"),
    }
}

/// The checkpoint file and the last head it holds, shared by the periodic task and the stop.
type Checkpointing = Arc<
    tokio::sync::Mutex<(
        crate::checkpoints::CheckpointLog,
        Option<countersign_core::audit::Head>,
    )>,
>;

/// Signs a checkpoint of the audit head every `[audit] checkpoint_seconds` while it moves;
/// a failure is logged and retried next time.
fn spawn_checkpoints(
    state: Arc<AppState>,
    checkpoints: Checkpointing,
) -> tokio::task::JoinHandle<()> {
    let every = std::time::Duration::from_secs(state.config.audit.checkpoint_seconds.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            checkpoint_now(&state, &checkpoints).await;
        }
    })
}

/// Forgets idle requesters' rate-limit state once a minute, so memory stays bounded.
fn spawn_limit_cleanup(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(error) = state.limits.forget_idle().await {
                tracing::warn!(%error, "forgetting idle rate-limit buckets failed");
            }
        }
    });
}

/// How often pending requests past their approval window are moved to `expired`.
const EXPIRY_SWEEP: std::time::Duration = std::time::Duration::from_secs(5);
/// Requests expired per transaction (a backlog is worked off in several).
const EXPIRY_BATCH: u32 = 500;

/// Expires pending requests whose approval window closed, so they leave every approver's list
/// and stream, and the audit chain says when; failures are logged and retried next time.
fn spawn_expiry_sweep(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRY_SWEEP);
        loop {
            tick.tick().await;
            while let Ok(now) = crate::clock::now() {
                match state.store.expire_pending(now.unix(), EXPIRY_BATCH).await {
                    Ok(ids) => {
                        for id in &ids {
                            state.changed(id);
                        }
                        if ids.len() < EXPIRY_BATCH as usize {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "expiring pending requests failed");
                        break;
                    }
                }
            }
        }
    });
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
