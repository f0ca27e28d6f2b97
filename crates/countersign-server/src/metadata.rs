//! Which authenticator models to believe: the FIDO Metadata Service BLOB (MDS3), a signed JWT
//! that the operator downloads and provides as a file (nothing is fetched at run time), and
//! the root certificate its signature must lead to (for the FIDO Alliance's BLOB, GlobalSign
//! Root CA – R3). From it: per AAGUID, the model's name, the root certificates its attestation
//! chains must lead to, and its status reports (revoked, compromised keys).
//!
//! A key's claimed AAGUID is only a claim; [`Metadata::verify_attestation`] is what turns it
//! into a fact: the key's x5c chain must verify up to one of that model's roots, and the model
//! must not be reported compromised.

use countersign_core::b64;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};

/// The largest BLOB read (the FIDO Alliance's is a few MB).
pub const MAX_BLOB_BYTES: u64 = 64 * 1024 * 1024;

/// Status reports that make a model's attestation worthless.
const UNTRUSTED_STATUSES: [&str; 5] = [
    "REVOKED",
    "USER_VERIFICATION_BYPASS",
    "ATTESTATION_KEY_COMPROMISE",
    "USER_KEY_REMOTE_COMPROMISE",
    "USER_KEY_PHYSICAL_COMPROMISE",
];

/// Signature algorithms accepted in certificate chains and for the BLOB.
static CHAIN_ALGORITHMS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
];

/// Why the metadata could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The BLOB is larger than anything the FIDO Alliance publishes.
    #[error("{0} is larger than {MAX_BLOB_BYTES} bytes")]
    TooLarge(PathBuf),
    /// The root certificate file is not PEM.
    #[error("metadata root {path}: {source}")]
    RootPem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        source: rustls_pki_types::pem::Error,
    },
    /// The root certificate file holds no certificate.
    #[error("metadata root {0}: no certificate in the file")]
    NoRoot(PathBuf),
    /// The BLOB's header or payload is not the JSON MDS3 defines.
    #[error("metadata BLOB is not an MDS3 BLOB: its {part}: {source}")]
    Json {
        /// `header` or `payload`.
        part: &'static str,
        /// What the JSON reader said.
        source: serde_json::Error,
    },
    /// Not a compact JWS of the MDS3 shape.
    #[error("metadata BLOB is not an MDS3 BLOB: {0}")]
    Format(String),
    /// The BLOB's certificate chain does not lead to the configured root.
    #[error("metadata BLOB signature does not verify with the configured root: {0}")]
    Chain(#[source] ChainError),
    /// The BLOB's signature does not verify with its signing certificate.
    #[error("metadata BLOB signature does not verify with the configured root: {0}")]
    Signature(#[source] webpki::Error),
}

/// Why a certificate chain does not lead to a trusted root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// No certificate at all.
    #[error("empty chain")]
    Empty,
    /// A root certificate the metadata lists cannot be used as a trust anchor.
    #[error("a root certificate in the metadata is unusable: {0}")]
    UnusableRoot(#[source] webpki::Error),
    /// The first certificate is not a usable end-entity certificate.
    #[error("{0}")]
    Leaf(#[source] webpki::Error),
    /// The chain does not lead to any of the roots (or a certificate in it is not valid now).
    #[error("{0}")]
    Untrusted(#[source] webpki::Error),
}

/// Why an attestation is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// This server has no metadata to verify attestations with.
    #[error("this server has no FIDO metadata configured")]
    NoMetadata,
    /// The metadata does not know this model.
    #[error("authenticator model {0} is not in the metadata")]
    UnknownModel(String),
    /// The model is reported compromised or revoked.
    #[error("authenticator model {model} is reported {status} in the metadata")]
    Reported {
        /// The model's AAGUID.
        model: String,
        /// The status reported.
        status: String,
    },
    /// The key gave no certificate chain (self or no attestation).
    #[error("the security key gave no attestation certificate")]
    NoCertificate,
    /// The chain does not lead to one of the model's roots.
    #[error("the security key's attestation certificate does not lead to a root of model {model}: {source}")]
    Chain {
        /// The model's AAGUID.
        model: String,
        /// What the chain check said.
        source: ChainError,
    },
    /// The BLOB is past its `nextUpdate`: the operator must provide a fresh one.
    #[error("the metadata BLOB (number {number}) was due to be replaced on {next_update}")]
    Stale {
        /// The BLOB's serial number.
        number: u64,
        /// Its `nextUpdate` date.
        next_update: String,
    },
}

/// One authenticator model.
#[derive(Debug)]
struct Model {
    description: String,
    roots: Vec<CertificateDer<'static>>,
    untrusted_status: Option<String>,
}

/// The loaded, verified metadata.
#[derive(Debug)]
pub struct Metadata {
    number: u64,
    next_update: String,
    /// `nextUpdate` as Unix seconds (the end of that day, UTC).
    next_update_unix: i64,
    models: HashMap<[u8; 16], Model>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    x5c: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    no: u64,
    next_update: String,
    entries: Vec<PayloadEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadEntry {
    /// FIDO2 models have an AAGUID; U2F and UAF entries do not and are skipped.
    aaguid: Option<String>,
    metadata_statement: Option<Statement>,
    #[serde(default)]
    status_reports: Vec<StatusReport>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(default)]
    description: String,
    #[serde(default)]
    attestation_root_certificates: Vec<String>,
}

#[derive(Deserialize)]
struct StatusReport {
    status: String,
}

/// Attestation certificates are not issued for a TLS purpose: any EKU (or none) is fine; the
/// chain, its validity and its signatures are what count.
struct AnyPurpose;

impl ExtendedKeyUsageValidator for AnyPurpose {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, MetadataError> {
    let read = |source| MetadataError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_BLOB_BYTES {
        return Err(MetadataError::TooLarge(path.to_owned()));
    }
    std::fs::read(path).map_err(read)
}

/// `YYYY-MM-DD` → the Unix second just after that day ends (UTC).
fn end_of_day(date: &str) -> Option<i64> {
    let parsed = countersign_core::Timestamp::parse(&format!("{date}T23:59:59Z")).ok()?;
    Some(parsed.unix() + 1)
}

fn aaguid_from_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The AAGUID as lowercase hex, as the config and the audit log write it.
pub fn aaguid_hex(aaguid: &[u8; 16]) -> String {
    aaguid.iter().map(|b| format!("{b:02x}")).collect()
}

fn verify_chain(
    chain: &[Vec<u8>],
    roots: &[CertificateDer<'static>],
    now: UnixTime,
) -> Result<(), ChainError> {
    let leaf = chain.first().ok_or(ChainError::Empty)?;
    // Some models list their (self-signed) attestation certificate itself as the root.
    if roots.iter().any(|root| root.as_ref() == leaf.as_slice()) {
        return Ok(());
    }
    let anchors = roots
        .iter()
        .map(|root| webpki::anchor_from_trusted_cert(root).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ChainError::UnusableRoot)?;
    let leaf = CertificateDer::from(leaf.as_slice());
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let end_entity = EndEntityCert::try_from(&leaf).map_err(ChainError::Leaf)?;
    end_entity
        .verify_for_usage(
            CHAIN_ALGORITHMS,
            &anchors,
            &intermediates,
            now,
            AnyPurpose,
            None,
            None,
        )
        .map(|_| ())
        .map_err(ChainError::Untrusted)
}

impl Metadata {
    /// Loads the BLOB at `blob` and checks its signature up to the root certificate(s) in the
    /// PEM file `root`, at `now`.
    pub fn load(blob: &Path, root: &Path, now: UnixTime) -> Result<Self, MetadataError> {
        let blob_bytes = read_limited(blob)?;
        let root_bytes = read_limited(root)?;
        let roots = CertificateDer::pem_slice_iter(&root_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| MetadataError::RootPem {
                path: root.to_owned(),
                source,
            })?;
        if roots.is_empty() {
            return Err(MetadataError::NoRoot(root.to_owned()));
        }
        Self::from_blob(&blob_bytes, &roots, now)
    }

    /// Parses and verifies a BLOB against `roots`.
    pub fn from_blob(
        blob: &[u8],
        roots: &[CertificateDer<'static>],
        now: UnixTime,
    ) -> Result<Self, MetadataError> {
        let format = |detail: &str| MetadataError::Format(detail.to_owned());
        let text = std::str::from_utf8(blob)
            .map_err(|_| format("not text"))?
            .trim();
        let mut parts = text.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format("not three dot-separated parts"));
        };
        let header: Header = serde_json::from_slice(
            &b64::decode(header_b64).map_err(|_| format("header is not base64url"))?,
        )
        .map_err(|source| MetadataError::Json {
            part: "header",
            source,
        })?;
        let signature =
            b64::decode(signature_b64).map_err(|_| format("signature is not base64url"))?;
        let chain = header
            .x5c
            .iter()
            .map(|c| b64::standard::decode(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format("x5c entry is not base64"))?;
        if chain.is_empty() || chain.len() > 5 {
            return Err(format("x5c must hold 1 to 5 certificates"));
        }
        verify_chain(&chain, roots, now).map_err(MetadataError::Chain)?;
        let signer = CertificateDer::from(chain[0].as_slice());
        let signer = EndEntityCert::try_from(&signer).map_err(MetadataError::Signature)?;
        let signed = format!("{header_b64}.{payload_b64}");
        let (algorithm, signature) = match header.alg.as_str() {
            "RS256" => (webpki::ring::RSA_PKCS1_2048_8192_SHA256, signature),
            "ES256" => (
                webpki::ring::ECDSA_P256_SHA256,
                p256::ecdsa::Signature::from_slice(&signature)
                    .map_err(|_| format("ES256 signature is not 64 bytes"))?
                    .to_der()
                    .as_bytes()
                    .to_vec(),
            ),
            other => {
                return Err(MetadataError::Format(format!(
                    "signature algorithm {other:?} (RS256 or ES256 expected)"
                )))
            }
        };
        signer
            .verify_signature(algorithm, signed.as_bytes(), &signature)
            .map_err(MetadataError::Signature)?;

        let payload: Payload = serde_json::from_slice(
            &b64::decode(payload_b64).map_err(|_| format("payload is not base64url"))?,
        )
        .map_err(|source| MetadataError::Json {
            part: "payload",
            source,
        })?;
        let next_update_unix = end_of_day(&payload.next_update)
            .ok_or_else(|| format("nextUpdate is not a YYYY-MM-DD date"))?;
        let mut models = HashMap::new();
        for entry in payload.entries {
            let (Some(aaguid), Some(statement)) = (entry.aaguid, entry.metadata_statement) else {
                continue;
            };
            let aaguid = aaguid_from_uuid(&aaguid)
                .ok_or_else(|| MetadataError::Format(format!("aaguid {aaguid:?}")))?;
            let roots = statement
                .attestation_root_certificates
                .iter()
                .map(|c| b64::standard::decode(c).map(CertificateDer::from))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| format("attestationRootCertificates entry is not base64"))?;
            let untrusted_status = entry
                .status_reports
                .iter()
                .map(|r| r.status.as_str())
                .find(|s| UNTRUSTED_STATUSES.contains(s))
                .map(str::to_owned);
            models.insert(
                aaguid,
                Model {
                    description: statement.description,
                    roots,
                    untrusted_status,
                },
            );
        }
        Ok(Metadata {
            number: payload.no,
            next_update: payload.next_update,
            next_update_unix,
            models,
        })
    }

    /// The BLOB's serial number (`no`).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Whether the BLOB is past its `nextUpdate` at `now` (Unix seconds).
    pub fn is_stale(&self, now: i64) -> bool {
        now >= self.next_update_unix
    }

    /// How many FIDO2 models it describes.
    pub fn models(&self) -> usize {
        self.models.len()
    }

    /// Checks a key's attestation `chain` (leaf first) for its claimed `aaguid` at `now`
    /// (Unix seconds): a fresh BLOB, a known model not reported compromised, and a chain
    /// that verifies up to one of the model's roots. Returns the model's description.
    pub fn verify_attestation(
        &self,
        aaguid: &[u8; 16],
        chain: &[Vec<u8>],
        now: i64,
    ) -> Result<&str, TrustError> {
        if self.is_stale(now) {
            return Err(TrustError::Stale {
                number: self.number,
                next_update: self.next_update.clone(),
            });
        }
        let hex = aaguid_hex(aaguid);
        let model = self
            .models
            .get(aaguid)
            .ok_or_else(|| TrustError::UnknownModel(hex.clone()))?;
        if let Some(status) = &model.untrusted_status {
            return Err(TrustError::Reported {
                model: hex,
                status: status.clone(),
            });
        }
        if chain.is_empty() {
            return Err(TrustError::NoCertificate);
        }
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or(0),
        ));
        verify_chain(chain, &model.roots, at)
            .map_err(|source| TrustError::Chain { model: hex, source })?;
        Ok(&model.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_dates_are_read_strictly() {
        assert_eq!(
            aaguid_from_uuid("cb69481e-8ff7-4039-93ec-0a2729a154a8").map(|a| aaguid_hex(&a)),
            Some("cb69481e8ff7403993ec0a2729a154a8".into())
        );
        assert_eq!(aaguid_from_uuid("cb69481e-8ff7"), None);
        assert_eq!(aaguid_from_uuid("zz69481e8ff7403993ec0a2729a154a8"), None);
        assert_eq!(end_of_day("2026-12-01"), Some(1_796_169_600));
        assert_eq!(end_of_day("2026-13-01"), None);
        assert_eq!(end_of_day("soon"), None);
    }

    use countersign_forge::metadata::{blob, Model, TestCa};
    use countersign_forge::ForgingKey;

    const MODEL: [u8; 16] = *b"hardware-model-1";
    /// 2026-06-01, while the test BLOBs are fresh.
    const NOW: i64 = 1_780_272_000;

    struct World {
        fido: TestCa,
        vendor: TestCa,
    }

    fn world() -> World {
        World {
            fido: TestCa::new("Test FIDO root", 1).unwrap(),
            vendor: TestCa::new("Test vendor attestation root", 2).unwrap(),
        }
    }

    fn model(world: &World, statuses: &[&str]) -> Model {
        Model {
            aaguid: MODEL,
            description: "Test Hardware Key".into(),
            roots: vec![world.vendor.der().to_vec()],
            statuses: statuses.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn load(world: &World, models: &[Model], next_update: &str) -> Result<Metadata, MetadataError> {
        let text = blob(&world.fido, models, 7, next_update).unwrap();
        let root = CertificateDer::from(world.fido.der().to_vec());
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW as u64));
        Metadata::from_blob(text.as_bytes(), &[root], at)
    }

    #[test]
    fn a_chain_to_the_model_s_root_verifies_and_nothing_else_does() {
        let world = world();
        let metadata = load(
            &world,
            &[model(&world, &["FIDO_CERTIFIED_L1"])],
            "2026-12-31",
        )
        .unwrap();
        assert_eq!((metadata.number(), metadata.models()), (7, 1));
        let key = ForgingKey::es256(9);
        let leaf = world.vendor.issue_attestation(&key, MODEL).unwrap();
        assert_eq!(
            metadata.verify_attestation(&MODEL, std::slice::from_ref(&leaf), NOW),
            Ok("Test Hardware Key")
        );
        // Issued by another CA (a software key faking the model's certificate).
        let other = TestCa::new("Somebody else", 3).unwrap();
        let forged = other.issue_attestation(&key, MODEL).unwrap();
        assert!(matches!(
            metadata.verify_attestation(&MODEL, &[forged], NOW),
            Err(TrustError::Chain { .. })
        ));
        // A model the metadata does not list, and no certificate at all.
        assert_eq!(
            metadata.verify_attestation(b"unknown-model-00", &[leaf], NOW),
            Err(TrustError::UnknownModel(aaguid_hex(b"unknown-model-00")))
        );
        assert_eq!(
            metadata.verify_attestation(&MODEL, &[], NOW),
            Err(TrustError::NoCertificate)
        );
    }

    /// As the FIDO Alliance's BLOB and many vendors do: chains through intermediate CAs, the
    /// intermediates carried in x5c, only the roots configured.
    #[test]
    fn chains_through_intermediates_verify_up_to_the_roots() {
        let world = world();
        let fido_intermediate = world.fido.intermediate("Test FIDO signing CA", 4).unwrap();
        let vendor_intermediate = world
            .vendor
            .intermediate("Test vendor batch CA", 5)
            .unwrap();
        let text = blob(&fido_intermediate, &[model(&world, &[])], 9, "2026-12-31").unwrap();
        let root = CertificateDer::from(world.fido.der().to_vec());
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW as u64));
        let metadata = Metadata::from_blob(text.as_bytes(), &[root], at).unwrap();
        assert_eq!(metadata.number(), 9);
        let key = ForgingKey::es256(9);
        let leaf = vendor_intermediate.issue_attestation(&key, MODEL).unwrap();
        let mut chain = vec![leaf.clone()];
        chain.extend(vendor_intermediate.chain().iter().cloned());
        assert_eq!(chain.len(), 2);
        assert_eq!(
            metadata.verify_attestation(&MODEL, &chain, NOW),
            Ok("Test Hardware Key")
        );
        // Without the intermediate the leaf leads nowhere.
        assert!(matches!(
            metadata.verify_attestation(&MODEL, &[leaf], NOW),
            Err(TrustError::Chain { .. })
        ));
    }

    #[test]
    fn compromised_models_and_stale_blobs_are_refused() {
        let world = world();
        let key = ForgingKey::es256(9);
        let leaf = world.vendor.issue_attestation(&key, MODEL).unwrap();
        let compromised = load(
            &world,
            &[model(
                &world,
                &["FIDO_CERTIFIED_L1", "ATTESTATION_KEY_COMPROMISE"],
            )],
            "2026-12-31",
        )
        .unwrap();
        assert_eq!(
            compromised.verify_attestation(&MODEL, std::slice::from_ref(&leaf), NOW),
            Err(TrustError::Reported {
                model: aaguid_hex(&MODEL),
                status: "ATTESTATION_KEY_COMPROMISE".into()
            })
        );
        let stale = load(&world, &[model(&world, &[])], "2026-05-31").unwrap();
        assert_eq!(
            stale.verify_attestation(&MODEL, &[leaf], NOW),
            Err(TrustError::Stale {
                number: 7,
                next_update: "2026-05-31".into()
            })
        );
    }

    #[test]
    fn a_blob_signed_under_another_root_or_changed_is_refused() {
        let world = world();
        let text = blob(&world.fido, &[model(&world, &[])], 7, "2026-12-31").unwrap();
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW as u64));
        let other_root = CertificateDer::from(world.vendor.der().to_vec());
        assert!(matches!(
            Metadata::from_blob(text.as_bytes(), &[other_root], at),
            Err(MetadataError::Chain(ChainError::Untrusted(_)))
        ));
        // The payload swapped for another model list, the signature kept.
        let mut parts: Vec<&str> = text.split('.').collect();
        let changed = b64::encode(
            serde_json::json!({"no": 8, "nextUpdate": "2030-01-01", "entries": []}).to_string(),
        );
        parts[1] = &changed;
        let root = CertificateDer::from(world.fido.der().to_vec());
        assert!(matches!(
            Metadata::from_blob(parts.join(".").as_bytes(), &[root], at),
            Err(MetadataError::Signature(_))
        ));
    }

    #[test]
    fn the_files_an_operator_provides_load() {
        let world = world();
        let dir = tempfile::tempdir().unwrap();
        let (blob_path, root_path) = (dir.path().join("mds.jwt"), dir.path().join("root.pem"));
        std::fs::write(
            &blob_path,
            blob(&world.fido, &[model(&world, &[])], 7, "2099-12-31").unwrap(),
        )
        .unwrap();
        std::fs::write(&root_path, world.fido.pem()).unwrap();
        let metadata = Metadata::load(&blob_path, &root_path, UnixTime::now()).unwrap();
        assert_eq!(metadata.models(), 1);
        std::fs::write(&root_path, "not a certificate").unwrap();
        assert!(matches!(
            Metadata::load(&blob_path, &root_path, UnixTime::now()),
            Err(MetadataError::NoRoot(_))
        ));
        std::fs::write(
            &root_path,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(matches!(
            Metadata::load(&blob_path, &root_path, UnixTime::now()),
            Err(MetadataError::RootPem { .. })
        ));
    }

    fn openssl(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The FIDO Alliance signs its BLOB with RS256 under an RSA chain. OpenSSL, an independent
    /// implementation, makes an RSA root and signer and signs such a BLOB here.
    #[test]
    fn an_rs256_blob_signed_by_openssl_verifies_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ext = d.join("ext.cnf");
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "root.key",
                "-out",
                "root.pem",
                "-subj",
                "/CN=Test RSA metadata root",
                "-days",
                "3650",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "signer.key",
                "-out",
                "signer.csr",
                "-subj",
                "/CN=Test RSA metadata signer",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "signer.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-days",
                "3650",
                "-extfile",
                ext.to_str().unwrap(),
                "-outform",
                "DER",
                "-out",
                "signer.der",
            ],
        );
        let signer = std::fs::read(d.join("signer.der")).unwrap();
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [b64::standard::encode(&signer)]});
        let payload = |no: u64| {
            serde_json::json!({"no": no, "nextUpdate": "2099-12-31", "entries": [
                {"aaguid": "68617264-7761-7265-2d6d-6f64656c2d31", "metadataStatement": {"description": "RSA-listed key", "attestationRootCertificates": []}}
            ]})
        };
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string()),
            b64::encode(payload(3).to_string())
        );
        std::fs::write(d.join("input"), &input).unwrap();
        openssl(
            d,
            &[
                "dgst",
                "-sha256",
                "-sign",
                "signer.key",
                "-out",
                "sig",
                "input",
            ],
        );
        let signature = b64::encode(std::fs::read(d.join("sig")).unwrap());
        std::fs::write(d.join("mds.jwt"), format!("{input}.{signature}")).unwrap();
        let metadata =
            Metadata::load(&d.join("mds.jwt"), &d.join("root.pem"), UnixTime::now()).unwrap();
        assert_eq!((metadata.number(), metadata.models()), (3, 1));
        // The same signature over another payload.
        let changed = format!(
            "{}.{}.{signature}",
            b64::encode(header.to_string()),
            b64::encode(payload(4).to_string())
        );
        std::fs::write(d.join("changed.jwt"), changed).unwrap();
        assert!(matches!(
            Metadata::load(&d.join("changed.jwt"), &d.join("root.pem"), UnixTime::now()),
            Err(MetadataError::Signature(_))
        ));
    }

    #[test]
    fn a_blob_that_is_not_a_jws_is_refused_with_the_reason() {
        for (blob, says) in [
            (&b"one.two"[..], "three dot-separated parts"),
            (b"a.b.c.d", "three dot-separated parts"),
            (b"!!.e30.AA", "header is not base64url"),
            (b"e30.e30.AA", "header: missing field `alg`"),
        ] {
            let error = Metadata::from_blob(blob, &[], UnixTime::now()).unwrap_err();
            assert!(error.to_string().contains(says), "{error}");
        }
    }
}
