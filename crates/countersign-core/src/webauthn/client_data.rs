//! clientDataJSON (WebAuthn Level 3 §5.8.1), built and strictly parsed.
//!
//! Countersign builds exactly
//! `{"type":"webauthn.get","challenge":<b64url>,"origin":<origin>,"crossOrigin":false}`.
//! Parsing accepts what the specification's serialization (§5.8.1.1) produces and nothing
//! looser: the four members first and in that order, `crossOrigin` false, no `topOrigin`, no
//! duplicate members; further members after those four are tolerated because the
//! specification lets clients add them (its own test vectors do), and the signature covers
//! them.

use crate::b64;
use serde::Deserialize;

/// Largest clientDataJSON accepted.
pub const MAX_LEN: usize = 4096;

/// Which ceremony the client data belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CeremonyType {
    /// `webauthn.get`, an assertion.
    Get,
    /// `webauthn.create`, a registration.
    Create,
}

impl CeremonyType {
    /// The `type` member's value.
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyType::Get => "webauthn.get",
            CeremonyType::Create => "webauthn.create",
        }
    }
}

/// The members Countersign relies on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientData {
    /// `type`.
    pub ceremony: CeremonyType,
    /// `challenge`, decoded.
    pub challenge: Vec<u8>,
    /// `origin`.
    pub origin: String,
}

/// Why clientDataJSON was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum ClientDataError {
    /// Longer than [`MAX_LEN`].
    #[error("clientDataJSON is {0} bytes; the limit is {MAX_LEN}")]
    TooLong(usize),
    /// Not UTF-8.
    #[error("clientDataJSON is not UTF-8")]
    NotUtf8,
    /// Not a JSON object with string `type`, `challenge`, `origin`, or a duplicate member.
    #[error("malformed clientDataJSON: {0}")]
    Malformed(String),
    /// A `type` other than the two ceremonies.
    #[error("unknown clientDataJSON type {0:?}")]
    UnknownType(String),
    /// `challenge` is not unpadded base64url.
    #[error("challenge is not unpadded base64url")]
    ChallengeEncoding,
    /// `crossOrigin` true or a `topOrigin` present: the ceremony ran in an embedded frame.
    #[error("cross-origin ceremony refused")]
    CrossOrigin,
    /// Members out of the specification's serialization order, or `crossOrigin` missing.
    #[error("clientDataJSON is not in the WebAuthn serialization form")]
    NotSerializationForm,
    /// §7.1 step 7 / §7.2 step 11: wrong ceremony type.
    #[error("clientDataJSON type is {found}, expected {expected}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// §7.1 step 8 / §7.2 step 12: the challenge is not the one derived for this approval.
    #[error("challenge does not match the expected challenge")]
    ChallengeMismatch,
    /// §7.1 step 9 / §7.2 step 13: wrong origin.
    #[error("origin {found:?} is not the expected origin {expected:?}")]
    OriginMismatch { expected: String, found: String },
}

impl ClientDataError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

#[derive(Deserialize)]
struct Members {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin")]
    cross_origin: Option<bool>,
    #[serde(rename = "topOrigin")]
    top_origin: Option<String>,
    #[serde(flatten)]
    _others: serde_json::Map<String, serde_json::Value>,
}

impl ClientData {
    /// Client data for an assertion.
    pub fn get(challenge: &[u8], origin: impl Into<String>) -> Self {
        ClientData {
            ceremony: CeremonyType::Get,
            challenge: challenge.to_vec(),
            origin: origin.into(),
        }
    }

    /// The exact bytes Countersign signs: the serialization of §5.8.1.1, no extra members.
    pub fn to_json(&self) -> String {
        let mut out = self.prefix();
        out.push('}');
        out
    }

    /// `{"type":…,"challenge":…,"origin":…,"crossOrigin":false` — every valid form starts so.
    fn prefix(&self) -> String {
        let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
        format!(
            "{{\"type\":{},\"challenge\":{},\"origin\":{},\"crossOrigin\":false",
            quote(self.ceremony.as_str()),
            quote(&b64::encode(&self.challenge)),
            quote(&self.origin),
        )
    }

    /// Strictly parses untrusted clientDataJSON.
    pub fn parse(bytes: &[u8]) -> Result<Self, ClientDataError> {
        if bytes.len() > MAX_LEN {
            return Err(ClientDataError::TooLong(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ClientDataError::NotUtf8)?;
        let members: Members =
            serde_json::from_str(text).map_err(|e| ClientDataError::Malformed(e.to_string()))?;
        let ceremony = match members.kind.as_str() {
            "webauthn.get" => CeremonyType::Get,
            "webauthn.create" => CeremonyType::Create,
            _ => return Err(ClientDataError::UnknownType(members.kind)),
        };
        if members.cross_origin == Some(true) || members.top_origin.is_some() {
            return Err(ClientDataError::CrossOrigin);
        }
        let challenge =
            b64::decode(&members.challenge).map_err(|_| ClientDataError::ChallengeEncoding)?;
        let data = ClientData {
            ceremony,
            challenge,
            origin: members.origin,
        };
        // The members must appear first and in order, exactly as the serialization writes
        // them; what follows is either the end of the object or further members.
        let prefix = data.prefix();
        match text.strip_prefix(prefix.as_str()) {
            Some(rest) if rest == "}" || rest.starts_with(',') => Ok(data),
            _ => Err(ClientDataError::NotSerializationForm),
        }
    }

    /// Checks type, challenge and origin against what the relying party expects.
    pub fn check(
        &self,
        ceremony: CeremonyType,
        challenge: &[u8],
        origin: &str,
    ) -> Result<(), ClientDataError> {
        if self.ceremony != ceremony {
            return Err(ClientDataError::WrongType {
                expected: ceremony.as_str(),
                found: self.ceremony.as_str(),
            });
        }
        if !constant_time_eq(&self.challenge, challenge) {
            return Err(ClientDataError::ChallengeMismatch);
        }
        if self.origin != origin {
            return Err(ClientDataError::OriginMismatch {
                expected: origin.to_owned(),
                found: self.origin.clone(),
            });
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "https://approvals.example.com";

    #[test]
    fn builds_the_fixed_member_order() {
        let json = ClientData::get(&[0xfb; 3], ORIGIN).to_json();
        assert_eq!(
            json,
            r#"{"type":"webauthn.get","challenge":"-_v7","origin":"https://approvals.example.com","crossOrigin":false}"#
        );
        assert_eq!(
            ClientData::parse(json.as_bytes()).unwrap(),
            ClientData::get(&[0xfb; 3], ORIGIN)
        );
    }

    #[test]
    fn tolerates_trailing_members_only() {
        let with_extra = r#"{"type":"webauthn.get","challenge":"AA","origin":"https://a.example","crossOrigin":false,"other_keys_can_be_added_here":"x"}"#;
        assert!(ClientData::parse(with_extra.as_bytes()).is_ok());
    }

    #[test]
    fn rejects_each_defect() {
        use ClientDataError as E;
        type Case = (&'static str, fn(&E) -> bool);
        let cases: [Case; 10] = [
            (
                r#"{"challenge":"AA","type":"webauthn.get","origin":"https://a.example","crossOrigin":false}"#,
                |e| *e == E::NotSerializationForm,
            ),
            (
                r#"{"type":"webauthn.get","challenge":"AA","origin":"https://a.example"}"#,
                |e| *e == E::NotSerializationForm,
            ),
            (
                r#"{"type": "webauthn.get","challenge":"AA","origin":"https://a.example","crossOrigin":false}"#,
                |e| *e == E::NotSerializationForm,
            ),
            (
                r#"{"type":"webauthn.get","challenge":"AA","origin":"https://a.example","crossOrigin":true}"#,
                |e| *e == E::CrossOrigin,
            ),
            (
                r#"{"type":"webauthn.get","challenge":"AA","origin":"https://a.example","crossOrigin":false,"topOrigin":"https://b.example"}"#,
                |e| *e == E::CrossOrigin,
            ),
            (
                r#"{"type":"payment.get","challenge":"AA","origin":"https://a.example","crossOrigin":false}"#,
                |e| matches!(e, E::UnknownType(_)),
            ),
            (
                r#"{"type":"webauthn.get","challenge":"AA==","origin":"https://a.example","crossOrigin":false}"#,
                |e| *e == E::ChallengeEncoding,
            ),
            (
                r#"{"type":"webauthn.get","challenge":"AA","origin":"https://a.example","crossOrigin":false,"challenge":"AQ"}"#,
                |e| matches!(e, E::Malformed(m) if m.contains("duplicate")),
            ),
            (
                r#"{"type":"webauthn.get","challenge":1,"origin":"https://a.example"}"#,
                |e| matches!(e, E::Malformed(_)),
            ),
            ("[]", |e| matches!(e, E::Malformed(_))),
        ];
        for (json, expected) in cases {
            let err = ClientData::parse(json.as_bytes()).unwrap_err();
            assert!(expected(&err), "{json}: {err:?}");
        }
        assert_eq!(ClientData::parse(&[0xff]), Err(E::NotUtf8));
        assert_eq!(
            ClientData::parse(&vec![b' '; MAX_LEN + 1]),
            Err(E::TooLong(MAX_LEN + 1))
        );
    }

    #[test]
    fn check_names_the_mismatch() {
        let data = ClientData::get(&[1; 32], ORIGIN);
        assert!(data.check(CeremonyType::Get, &[1; 32], ORIGIN).is_ok());
        assert_eq!(
            data.check(CeremonyType::Create, &[1; 32], ORIGIN),
            Err(ClientDataError::WrongType {
                expected: "webauthn.create",
                found: "webauthn.get"
            })
        );
        assert_eq!(
            data.check(CeremonyType::Get, &[2; 32], ORIGIN),
            Err(ClientDataError::ChallengeMismatch)
        );
        assert!(matches!(
            data.check(CeremonyType::Get, &[1; 32], "https://evil.example"),
            Err(ClientDataError::OriginMismatch { .. })
        ));
    }
}
