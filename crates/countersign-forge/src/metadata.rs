//! FIDO metadata for tests: certificate authorities that play a key vendor (issuing
//! attestation certificates) and the FIDO Alliance (signing a Metadata Service BLOB), and the
//! BLOB itself, in the MDS3 format a server reads from a file.

use crate::{ForgeError, ForgingKey};
use base64::Engine;
use countersign_core::webauthn::CredentialSecret;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};

pub(crate) fn cert_err(e: rcgen::Error) -> ForgeError {
    ForgeError::Certificate(e.to_string())
}

pub(crate) fn key_pair(key: &ForgingKey) -> Result<KeyPair, ForgeError> {
    KeyPair::try_from(key.pkcs8_der()?.as_slice()).map_err(cert_err)
}

/// The subject and extensions of a packed attestation certificate (WebAuthn §8.2.1).
pub(crate) fn attestation_params(
    organizational_unit: &str,
    is_ca: bool,
    aaguid: Option<[u8; 16]>,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "SE");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Countersign Test Vendor");
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, organizational_unit);
    params
        .distinguished_name
        .push(DnType::CommonName, "Countersign Test Key");
    params.is_ca = if is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    if let Some(aaguid) = aaguid {
        let mut content = vec![0x04, 0x10];
        content.extend_from_slice(&aaguid);
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4],
                content,
            ));
    }
    params
}

/// A certificate authority of the tests: a vendor's attestation root, or the root that signs
/// the metadata BLOB.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
    /// For an intermediate CA: its certificate and those above it, up to (not including) the
    /// root — what a chain from a certificate it issues must carry.
    chain: Vec<Vec<u8>>,
}

impl TestCa {
    /// A self-signed CA named `name`, its P-256 key from `seed`.
    pub fn new(name: &str, seed: u8) -> Result<Self, ForgeError> {
        let key = key_pair(&ForgingKey::es256(seed))?;
        let params = Self::params(name);
        let der = params.self_signed(&key).map_err(cert_err)?.der().to_vec();
        Ok(TestCa {
            params,
            key,
            der,
            chain: Vec::new(),
        })
    }

    /// An intermediate CA named `name` that this CA issues, its P-256 key from `seed`.
    pub fn intermediate(&self, name: &str, seed: u8) -> Result<Self, ForgeError> {
        let params = Self::params(name);
        let der = self.issue(&params, &ForgingKey::es256(seed))?;
        let mut chain = vec![der.clone()];
        chain.extend(self.chain.iter().cloned());
        Ok(TestCa {
            params,
            key: key_pair(&ForgingKey::es256(seed))?,
            der,
            chain,
        })
    }

    fn params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Countersign Tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
    }

    /// The certificates a chain from a certificate this CA issues carries after it (empty for
    /// a root).
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The CA's certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The CA's certificate, PEM (as an operator provides the metadata root).
    pub fn pem(&self) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    fn issue(&self, params: &CertificateParams, key: &ForgingKey) -> Result<Vec<u8>, ForgeError> {
        let subject = key_pair(key)?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        Ok(params
            .signed_by(&subject, &issuer)
            .map_err(cert_err)?
            .der()
            .to_vec())
    }

    /// An attestation certificate for the P-256 `key` of model `aaguid`, issued by this CA.
    pub fn issue_attestation(
        &self,
        key: &ForgingKey,
        aaguid: [u8; 16],
    ) -> Result<Vec<u8>, ForgeError> {
        self.issue(
            &attestation_params("Authenticator Attestation", false, Some(aaguid)),
            key,
        )
    }

    /// The end-entity certificate that signs a metadata BLOB, for the P-256 `key`.
    pub fn issue_blob_signer(&self, key: &ForgingKey) -> Result<Vec<u8>, ForgeError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "Countersign Tests Metadata Signer");
        params.is_ca = IsCa::ExplicitNoCa;
        self.issue(&params, key)
    }
}

/// One authenticator model in a test BLOB.
pub struct Model {
    /// Its AAGUID.
    pub aaguid: [u8; 16],
    /// Its name.
    pub description: String,
    /// Its attestation roots, DER.
    pub roots: Vec<Vec<u8>>,
    /// Its status reports, e.g. `FIDO_CERTIFIED_L1` or `ATTESTATION_KEY_COMPROMISE`.
    pub statuses: Vec<String>,
}

fn uuid(aaguid: &[u8; 16]) -> String {
    let hex: String = aaguid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A Metadata Service BLOB (compact JWS, ES256, x5c = the signer's certificate and the
/// intermediates above it) listing `models`, signed by a signer that `root` (a root or an
/// intermediate CA) issues, due for replacement on `next_update` (`YYYY-MM-DD`).
pub fn blob(
    root: &TestCa,
    models: &[Model],
    number: u64,
    next_update: &str,
) -> Result<String, ForgeError> {
    let std_b64 = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signer_key = ForgingKey::es256(0x5a);
    let signer = root.issue_blob_signer(&signer_key)?;
    let x5c: Vec<String> = std::iter::once(&signer)
        .chain(root.chain())
        .map(|c| std_b64.encode(c))
        .collect();
    let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": x5c});
    let entries: Vec<serde_json::Value> = models
        .iter()
        .map(|m| {
            serde_json::json!({
                "aaguid": uuid(&m.aaguid),
                "metadataStatement": {
                    "legalHeader": "test",
                    "aaguid": uuid(&m.aaguid),
                    "description": m.description,
                    "protocolFamily": "fido2",
                    "schema": 3,
                    "attestationTypes": ["basic_full"],
                    "attestationRootCertificates":
                        m.roots.iter().map(|r| std_b64.encode(r)).collect::<Vec<_>>(),
                },
                "statusReports": m.statuses.iter()
                    .map(|s| serde_json::json!({"status": s, "effectiveDate": "2026-01-01"}))
                    .collect::<Vec<_>>(),
                "timeOfLastStatusChange": "2026-01-01",
            })
        })
        .collect();
    let payload = serde_json::json!({
        "legalHeader": "Countersign test metadata: not the FIDO Alliance's.",
        "no": number,
        "nextUpdate": next_update,
        "entries": entries,
    });
    let signing_input = format!(
        "{}.{}",
        url.encode(header.to_string()),
        url.encode(payload.to_string())
    );
    let CredentialSecret::Es256(key) = signer_key.secret() else {
        return Err(ForgeError::InvalidKey);
    };
    let signature: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(key, signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        url.encode(signature.to_bytes())
    ))
}
