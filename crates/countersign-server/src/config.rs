//! Server configuration: a TOML file whose every key has a default, so the server starts with
//! no file at all (127.0.0.1, an embedded SQLite database in `./countersign-data`).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape (unknown keys included).
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// Plain HTTP is only allowed on loopback addresses.
    #[error("listen address {0} is not loopback: configure [tls] to listen elsewhere")]
    PlainHttpOffLoopback(SocketAddr),
    /// The origin must be https (or http on a loopback host).
    #[error("origin {0:?} must be https://<rp_id> (http only for localhost)")]
    BadOrigin(String),
    /// An AAGUID in the allow-list is not 32 hex digits.
    #[error("enrollment.allowed_aaguids: {0:?} is not 32 hex digits")]
    BadAaguid(String),
    /// An allow-list without metadata would trust what each key claims to be.
    #[error("enrollment.allowed_aaguids needs enrollment.metadata_blob and enrollment.metadata_root: without them a key's model is only its own claim")]
    AllowListWithoutMetadata,
    /// Only one of the two metadata files is set.
    #[error("enrollment.metadata_blob and enrollment.metadata_root go together")]
    HalfMetadata,
    /// The webhook must be https (or http to a loopback host), without user info. The URL is
    /// not repeated: it may carry a secret.
    #[error(
        "webhook url must be an https:// URL (http:// only to localhost, 127.0.0.1 or [::1]) \
         without user name or password, and attempts at least 1"
    )]
    BadWebhook,
    /// `database.url` names no PostgreSQL server (the URL is not repeated: it may carry a
    /// password).
    #[error("database.url must be a postgres:// (or postgresql://) URL")]
    BadDatabaseUrl,
    /// A connection pool that cannot work.
    #[error("database.max_connections must be at least 2 and database.acquire_timeout_seconds at least 1")]
    BadDatabasePool,
    /// A rate limit of zero would refuse everything.
    #[error("limits.{0} must be at least 1")]
    ZeroRateLimit(&'static str),
    /// The RP id must be the origin's host or a registrable suffix of it.
    #[error("rp_id {rp_id:?} is not the host of origin {origin:?} or a parent domain of it")]
    RpIdNotOriginHost { rp_id: String, origin: String },
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the database and other state.
    pub data_dir: PathBuf,
    /// WebAuthn relying-party id approvers' keys are scoped to; use a name dedicated to approvals.
    pub rp_id: String,
    /// Exact origin in approvers' clientDataJSON; also the decision token's `iss`.
    pub origin: String,
    /// Policy inputs.
    pub policy: PolicyConfig,
    /// Request limits.
    pub limits: Limits,
    /// Approver enrollment.
    pub enrollment: EnrollmentConfig,
    /// TLS (rustls); required to listen off loopback.
    pub tls: Option<TlsConfig>,
    /// Called when an approver reports a request as suspicious.
    pub webhook: Option<WebhookConfig>,
    /// The embedded database.
    pub database: DatabaseConfig,
    /// The audit chain's signed checkpoints.
    pub audit: AuditConfig,
}

/// How often the server signs a checkpoint of the audit chain's head (`checkpoints`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Seconds between checkpoints while the chain grows (and one when the server stops).
    pub checkpoint_seconds: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_seconds: 60,
        }
    }
}

/// The database: the embedded SQLite file in the data directory unless `url` names a
/// PostgreSQL server (several instances share one).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user[:password]@host[:port]/database[?sslmode=verify-full…]`; unset: SQLite.
    /// Never logged: it may carry a password.
    pub url: Option<String>,
    /// Run the single database writer and its connection thread on a CPU of their own (the
    /// last one the process may use; other threads get the rest). Only with two CPUs or more,
    /// on Linux. See `cpu_placement` for why. Turn it off when several server processes share
    /// one machine: each would put its writer on the same CPU.
    pub dedicated_writer_cpu: bool,
    /// PostgreSQL: connections per instance (one of them listens for other instances'
    /// changes), at least 2.
    pub max_connections: u32,
    /// PostgreSQL: how long a call waits for a connection before it fails (while the
    /// database is unreachable, say), in seconds, at least 1.
    pub acquire_timeout_seconds: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            dedicated_writer_cpu: true,
            max_connections: 16,
            acquire_timeout_seconds: 5,
        }
    }
}

/// Without the URL, which may carry a password.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("postgres", &self.url.is_some())
            .field("dedicated_writer_cpu", &self.dedicated_writer_cpu)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_seconds", &self.acquire_timeout_seconds)
            .finish()
    }
}

/// The webhook told about reports of suspicious requests (and the requester's freeze).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `https://...`, or `http://` to a loopback host only.
    pub url: String,
    /// Delivery attempts before giving up (each failure and the outcome are audited).
    #[serde(default = "default_webhook_attempts")]
    pub attempts: u32,
}

fn default_webhook_attempts() -> u32 {
    5
}

/// How approvers enroll.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollmentConfig {
    /// Lifetime of a one-time enrollment code, in seconds.
    pub code_ttl_seconds: u32,
    /// AAGUIDs (32 hex digits) of authenticator models allowed to enroll; empty allows any.
    /// A key's AAGUID is only its claim: with a list, the key's attestation must verify
    /// against the metadata (`metadata_blob`, `metadata_root`), which a list requires.
    pub allowed_aaguids: Vec<String>,
    /// Whether the key must verify the user (PIN/biometrics) during enrollment.
    pub require_user_verification: bool,
    /// The FIDO Metadata Service BLOB (MDS3, the signed JWT from the FIDO Alliance, or your
    /// own), read at start. Keys whose attestation verifies against it are recorded as
    /// hardware-attested, and only their approvals put `hwk` into decisions.
    pub metadata_blob: Option<PathBuf>,
    /// PEM root certificate(s) the BLOB's signature must lead to (for the FIDO Alliance's
    /// BLOB: GlobalSign Root CA - R3).
    pub metadata_root: Option<PathBuf>,
    /// Let this project's own software keys (the demo key, the test key) enroll. Off by
    /// default: they keep their private keys in files. `serve --allow-demo-keys` turns it on.
    pub allow_demo_keys: bool,
}

impl Default for EnrollmentConfig {
    fn default() -> Self {
        EnrollmentConfig {
            code_ttl_seconds: 900,
            allowed_aaguids: Vec::new(),
            require_user_verification: false,
            metadata_blob: None,
            metadata_root: None,
            allow_demo_keys: false,
        }
    }
}

/// Where the action catalog and Cedar policies come from; the built-in samples by default.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// TOML action catalog; `None` uses the built-in sample catalog.
    pub catalog: Option<PathBuf>,
    /// Cedar policy file; `None` uses the built-in sample policies.
    pub policies: Option<PathBuf>,
}

/// Bounds on what clients may send.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most pending requests one requester may have at once, whichever application asks.
    pub max_pending_per_requester: u32,
    /// Most pending requests one API key may have at once, whoever they are for: one
    /// compromised application cannot crowd out the others.
    pub max_pending_per_api_key: u32,
    /// Seconds between keep-alive comments on approver event streams.
    pub stream_keepalive_seconds: u64,
    /// Most pending requests one approver's pending list or stream snapshot carries (soonest
    /// deadline first), so a flood cannot make every connection load every row.
    pub max_pending_listed: u32,
    /// Requests per minute from one client IP address, on every endpoint (bursts up to this).
    pub requests_per_minute_per_ip: u32,
    /// Step-up requests per minute one requester may cause (bursts up to this).
    pub requests_per_minute_per_requester: u32,
    /// Step-up requests per minute one API key may make (bursts up to this).
    pub requests_per_minute_per_api_key: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_pending_per_requester: 5,
            max_pending_per_api_key: 200,
            stream_keepalive_seconds: 15,
            max_pending_listed: 1000,
            requests_per_minute_per_ip: 6000,
            requests_per_minute_per_requester: 30,
            requests_per_minute_per_api_key: 600,
        }
    }
}

/// Certificate and key files for rustls.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8710)),
            data_dir: PathBuf::from("countersign-data"),
            rp_id: "localhost".into(),
            origin: "http://localhost:8710".into(),
            policy: PolicyConfig::default(),
            limits: Limits::default(),
            enrollment: EnrollmentConfig::default(),
            tls: None,
            webhook: None,
            database: DatabaseConfig::default(),
            audit: AuditConfig::default(),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules no single key can express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls.is_none() && !self.listen.ip().is_loopback() {
            return Err(ConfigError::PlainHttpOffLoopback(self.listen));
        }
        for aaguid in &self.enrollment.allowed_aaguids {
            if aaguid.len() != 32 || !aaguid.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::BadAaguid(aaguid.clone()));
            }
        }
        let enrollment = &self.enrollment;
        match (&enrollment.metadata_blob, &enrollment.metadata_root) {
            (Some(_), Some(_)) => {}
            (None, None) if enrollment.allowed_aaguids.is_empty() => {}
            (None, None) => return Err(ConfigError::AllowListWithoutMetadata),
            _ => return Err(ConfigError::HalfMetadata),
        }
        if let Some(webhook) = &self.webhook {
            if !webhook_url_allowed(&webhook.url) || webhook.attempts == 0 {
                return Err(ConfigError::BadWebhook);
            }
        }
        if let Some(url) = &self.database.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::BadDatabaseUrl);
            }
        }
        if self.database.max_connections < 2 || self.database.acquire_timeout_seconds == 0 {
            return Err(ConfigError::BadDatabasePool);
        }
        if self.limits.requests_per_minute_per_ip == 0 {
            return Err(ConfigError::ZeroRateLimit("requests_per_minute_per_ip"));
        }
        if self.limits.requests_per_minute_per_requester == 0 {
            return Err(ConfigError::ZeroRateLimit(
                "requests_per_minute_per_requester",
            ));
        }
        if self.limits.requests_per_minute_per_api_key == 0 {
            return Err(ConfigError::ZeroRateLimit(
                "requests_per_minute_per_api_key",
            ));
        }
        let host =
            origin_host(&self.origin).ok_or_else(|| ConfigError::BadOrigin(self.origin.clone()))?;
        let host_is_suffix = host == self.rp_id || host.ends_with(&format!(".{}", self.rp_id));
        if !host_is_suffix {
            return Err(ConfigError::RpIdNotOriginHost {
                rp_id: self.rp_id.clone(),
                origin: self.origin.clone(),
            });
        }
        Ok(())
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("countersign.sqlite3")
    }

    /// The signing key files (never the database).
    pub fn keys_dir(&self) -> PathBuf {
        self.data_dir.join("keys")
    }

    /// The audit chain's signed checkpoints (never the database).
    pub fn checkpoints_path(&self) -> PathBuf {
        self.data_dir.join("audit-checkpoints.jsonl")
    }
}

/// Whether a webhook URL parses, names a host, carries no user info, and is https — or http to
/// a loopback host. Parsed, not prefix-matched: `http://localhost:@evil.example/` is a URL
/// for `evil.example`.
fn webhook_url_allowed(text: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(text) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return false,
    };
    match url.scheme() {
        "https" => true,
        "http" => loopback,
        _ => false,
    }
}

/// Host of an `https://host[:port]` origin, or of `http://localhost[:port]`.
fn origin_host(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    let host = rest.split(':').next()?;
    if host.is_empty() || rest.contains('/') {
        return None;
    }
    match scheme {
        "https" => Some(host),
        "http" if host == "localhost" || host == "127.0.0.1" => Some(host),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_safe_defaults() {
        let config = Config::parse("", Path::new("x.toml")).unwrap();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.limits.max_body_bytes, 65536);
        assert!(config.database.dedicated_writer_cpu);
    }

    #[test]
    fn an_allow_list_needs_metadata_and_demo_keys_are_off_by_default() {
        let parse = |t: &str| Config::parse(t, Path::new("x.toml"));
        assert!(!parse("").unwrap().enrollment.allow_demo_keys);
        assert!(matches!(
            parse("[enrollment]\nallowed_aaguids = [\"cb69481e8ff7403993ec0a2729a154a8\"]"),
            Err(ConfigError::AllowListWithoutMetadata)
        ));
        assert!(matches!(
            parse("[enrollment]\nmetadata_blob = \"mds.jwt\""),
            Err(ConfigError::HalfMetadata)
        ));
        let both = parse(
            "[enrollment]\nallowed_aaguids = [\"cb69481e8ff7403993ec0a2729a154a8\"]\nmetadata_blob = \"mds.jwt\"\nmetadata_root = \"root.pem\"",
        )
        .unwrap();
        assert_eq!(
            both.enrollment.metadata_root,
            Some(PathBuf::from("root.pem"))
        );
    }

    #[test]
    fn database_section_is_strict() {
        let parse = |t: &str| Config::parse(t, Path::new("x.toml"));
        let off = parse("[database]\ndedicated_writer_cpu = false").unwrap();
        assert!(!off.database.dedicated_writer_cpu);
        assert!(matches!(
            parse("[database]\ndedicated_writer_cpus = false"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            parse("[database]\ndedicated_writer_cpu = \"yes\""),
            Err(ConfigError::Parse { .. })
        ));
        assert!(
            parse("").unwrap().database.url.is_none(),
            "SQLite by default"
        );
        let pg =
            parse("[database]\nurl = \"postgres://cs:secret@db.internal/countersign\"").unwrap();
        assert!(pg.database.url.is_some());
        assert!(
            !format!("{:?}", pg.database).contains("secret"),
            "the URL is never shown"
        );
        for bad in ["max_connections = 1", "acquire_timeout_seconds = 0"] {
            let refused = parse(&format!("[database]\n{bad}"));
            assert!(
                matches!(refused, Err(ConfigError::BadDatabasePool)),
                "{bad}"
            );
        }
        let pool = parse("[database]\nmax_connections = 4\nacquire_timeout_seconds = 2")
            .unwrap()
            .database;
        assert_eq!((pool.max_connections, pool.acquire_timeout_seconds), (4, 2));
        for bad in ["mysql://db/x", "db.internal", "file:countersign.sqlite3"] {
            let refused = parse(&format!("[database]\nurl = \"{bad}\""));
            assert!(matches!(refused, Err(ConfigError::BadDatabaseUrl)), "{bad}");
            let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(!message.contains(bad), "{message}");
        }
    }

    #[test]
    fn rejects_unknown_keys_and_unsafe_settings() {
        let parse = |t: &str| Config::parse(t, Path::new("x.toml"));
        assert!(matches!(
            parse("listn = \"127.0.0.1:1\""),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            parse("listen = \"0.0.0.0:8710\""),
            Err(ConfigError::PlainHttpOffLoopback(_))
        ));
        assert!(matches!(
            parse("origin = \"http://approvals.example.com\"\nrp_id = \"approvals.example.com\""),
            Err(ConfigError::BadOrigin(_))
        ));
        assert!(matches!(
            parse("origin = \"https://approvals.example.com\"\nrp_id = \"example.org\""),
            Err(ConfigError::RpIdNotOriginHost { .. })
        ));
        assert!(
            parse("origin = \"https://approvals.example.com\"\nrp_id = \"example.com\"").is_ok()
        );
        for refused in [
            "http://hooks.example.com/x",
            "http://localhost.evil.com/x",
            "http://localhost:@evil.example/x",
            "http://127.0.0.1:@evil.example/x",
            "https://user:secret-token@hooks.example.com/x",
            "ftp://127.0.0.1/x",
            "not a url",
        ] {
            let refusal = parse(&format!("[webhook]\nurl = {refused:?}"));
            assert!(matches!(refusal, Err(ConfigError::BadWebhook)), "{refused}");
            let text = refusal.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(!text.contains("evil") && !text.contains("secret"), "{text}");
        }
        assert!(parse("[webhook]\nurl = \"http://[::1]:9/hook\"").is_ok());
        assert!(parse("[webhook]\nurl = \"https://hooks.example.com/x?token=1\"").is_ok());
        assert!(parse("[webhook]\nurl = \"http://127.0.0.1:9/hook\"").is_ok());
        assert!(
            parse("listen = \"0.0.0.0:8710\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"").is_ok(),
            "TLS allows listening off loopback"
        );
        assert!(matches!(
            parse("[limits]\nrequests_per_minute_per_ip = 0"),
            Err(ConfigError::ZeroRateLimit(_))
        ));
    }
}
