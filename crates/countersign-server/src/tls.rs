//! TLS with rustls (ring provider, TLS 1.2 and 1.3): loads the configured PEM certificate
//! chain and private key, with a precise error for each way they can be wrong.

use crate::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// Why the TLS configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no PEM certificate.
    #[error("tls.cert {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    /// The key file is missing, unreadable or holds no PEM private key.
    #[error("tls.key {path}: {message}")]
    Key { path: PathBuf, message: String },
    /// rustls refused the pair (for example, the key does not match the certificate).
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The rustls server configuration for `tls`, advertising HTTP/1.1.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_error = |message: String| TlsError::Certificate {
        path: tls.cert.clone(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no PEM certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| TlsError::Key {
        path: tls.key.clone(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
