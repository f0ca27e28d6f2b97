//! Authenticating an enrolled approver device's HTTP requests with its Ed25519 key: no bearer
//! secret exists, and each request is bound to its method, path, body, time and a nonce the
//! server accepts once.
//!
//! ```text
//! Authorization: Countersign-Device id="<device id>", ts="<unix seconds>", nonce="<b64url>", sig="<b64url>"
//! signed = "countersign/device-request/v1\n" METHOD "\n" PATH_AND_QUERY "\n" TS "\n" NONCE "\n" b64url(SHA-256(body))
//! ```

use crate::b64;
use crate::canonical::sha256;

/// The authorization scheme name.
pub const SCHEME: &str = "Countersign-Device";
/// Domain prefix of the signed bytes.
pub const DOMAIN: &str = "countersign/device-request/v1\n";

/// The parsed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAuth {
    /// Device id assigned at enrollment.
    pub device_id: String,
    /// Unix seconds when the request was signed.
    pub timestamp: i64,
    /// 16–64 random bytes, base64url, never reused.
    pub nonce: String,
    /// Ed25519 signature over [`signing_input`].
    pub signature: Vec<u8>,
}

/// Why a device authorization header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceAuthError {
    /// Not the `Countersign-Device` scheme with `id`, `ts`, `nonce`, `sig`.
    #[error("malformed Countersign-Device authorization: {0}")]
    Malformed(&'static str),
}

impl DeviceAuthError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

/// The bytes the device signs.
pub fn signing_input(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    format!(
        "{DOMAIN}{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{}",
        b64::encode(sha256(body))
    )
    .into_bytes()
}

impl DeviceAuth {
    /// The header value.
    pub fn to_header(&self) -> String {
        format!(
            "{SCHEME} id=\"{}\", ts=\"{}\", nonce=\"{}\", sig=\"{}\"",
            self.device_id,
            self.timestamp,
            self.nonce,
            b64::encode(&self.signature)
        )
    }

    /// Parses a header value strictly: the four parameters, once each, in any order.
    pub fn parse(header: &str) -> Result<Self, DeviceAuthError> {
        let params = header
            .strip_prefix(SCHEME)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or(DeviceAuthError::Malformed("scheme"))?;
        let (mut id, mut ts, mut nonce, mut sig) = (None, None, None, None);
        for part in params.split(',') {
            let (name, value) = part
                .trim()
                .split_once('=')
                .ok_or(DeviceAuthError::Malformed("parameter"))?;
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .filter(|v| {
                    !v.is_empty()
                        && v.len() <= 256
                        && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
                })
                .ok_or(DeviceAuthError::Malformed("value"))?;
            let slot = match name {
                "id" => &mut id,
                "ts" => &mut ts,
                "nonce" => &mut nonce,
                "sig" => &mut sig,
                _ => return Err(DeviceAuthError::Malformed("unknown parameter")),
            };
            if slot.replace(value).is_some() {
                return Err(DeviceAuthError::Malformed("duplicate parameter"));
            }
        }
        let (Some(id), Some(ts), Some(nonce), Some(sig)) = (id, ts, nonce, sig) else {
            return Err(DeviceAuthError::Malformed("missing parameter"));
        };
        let nonce_len = b64::decode(nonce)
            .map_err(|_| DeviceAuthError::Malformed("nonce"))?
            .len();
        if !(16..=64).contains(&nonce_len) {
            return Err(DeviceAuthError::Malformed("nonce"));
        }
        Ok(DeviceAuth {
            device_id: id.to_owned(),
            timestamp: ts.parse().map_err(|_| DeviceAuthError::Malformed("ts"))?,
            nonce: nonce.to_owned(),
            signature: b64::decode(sig).map_err(|_| DeviceAuthError::Malformed("sig"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_defects() {
        let auth = DeviceAuth {
            device_id: "dev_1".into(),
            timestamp: 1_800_000_000,
            nonce: b64::encode([7u8; 16]),
            signature: vec![1; 64],
        };
        assert_eq!(DeviceAuth::parse(&auth.to_header()).unwrap(), auth);
        let nonce = b64::encode([7u8; 16]);
        for bad in [
            "Bearer x".to_owned(),
            format!("Countersign-Device id=\"d\", ts=\"1\", nonce=\"{nonce}\""),
            format!(
                "Countersign-Device id=\"d\", id=\"e\", ts=\"1\", nonce=\"{nonce}\", sig=\"AA\""
            ),
            format!("Countersign-Device id=\"d\", ts=\"x\", nonce=\"{nonce}\", sig=\"AA\""),
            "Countersign-Device id=\"d\", ts=\"1\", nonce=\"AA\", sig=\"AA\"".to_owned(),
            format!(
                "Countersign-Device id=\"d\", ts=\"1\", nonce=\"{nonce}\", sig=\"AA\", extra=\"1\""
            ),
        ] {
            assert!(DeviceAuth::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signing_input_binds_every_part() {
        let base = signing_input("POST", "/v1/x", 1, "n", b"{}");
        for other in [
            signing_input("GET", "/v1/x", 1, "n", b"{}"),
            signing_input("POST", "/v1/y", 1, "n", b"{}"),
            signing_input("POST", "/v1/x", 2, "n", b"{}"),
            signing_input("POST", "/v1/x", 1, "m", b"{}"),
            signing_input("POST", "/v1/x", 1, "n", b"{ }"),
        ] {
            assert_ne!(other, base);
        }
    }
}
