//! Starting the server: load policy and keys, bind, print the address, serve until a signal.

use crate::api::{self, AppState};
use crate::catalog::{self, Catalog};
use crate::config::Config;
use crate::keys;
use crate::policy::{self, PolicyEngine};
use crate::ratelimit;
use crate::store::sqlite::SqliteStore;
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
    /// TLS is configured but not available in this build yet.
    #[error("TLS is configured, but this build serves plain HTTP on loopback only; remove [tls] or put a TLS proxy in front")]
    TlsUnavailable,
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

/// Runs the server with `config` on `store` until SIGINT or SIGTERM.
pub async fn run(config: Config, store: SqliteStore) -> Result<(), ServeError> {
    if config.tls.is_some() {
        return Err(ServeError::TlsUnavailable);
    }
    let catalog = Catalog::parse(&read(&config.policy.catalog, catalog::SAMPLE)?)?;
    let policy = PolicyEngine::new(&read(&config.policy.policies, policy::SAMPLE)?)?;
    let keys = keys::load_or_create(&store).await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (changes, _) = tokio::sync::broadcast::channel(1024);
    let ip_limits = ratelimit::ip_layer(&config.limits)?;
    let state = Arc::new(AppState {
        limits: ratelimit::RequesterLimits::new(&config.limits),
        metrics: Arc::new(crate::metrics::Metrics::new()),
        store: Arc::new(store),
        policy,
        catalog,
        keys,
        config,
        changes,
    });
    // Tests and scripts read this line to find the port.
    println!("countersign-server listening on http://{addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, "listening");
    spawn_limit_cleanup(state.clone());
    let app = api::router(state).layer(ip_limits);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await?;
    Ok(())
}

/// Forgets idle requesters' rate-limit state once a minute, so memory stays bounded.
fn spawn_limit_cleanup(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            state.limits.forget_idle();
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
