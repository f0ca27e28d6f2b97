//! The decision token: a JWS compact serialization (RFC 7515) signed with EdDSA over Ed25519
//! (RFC 8037), verifiable by any JOSE library given the server's JWKS.
//!
//! Header, in this order: `{"alg":"EdDSA","kid":<thumbprint>,"typ":"countersign-decision+jwt"}`.
//! Verification accepts exactly that header: `alg: none` and every other algorithm, `crit`,
//! a missing or unknown `kid` and any other `typ` are refused before the signature is
//! checked, and every claim is checked after it.

use crate::b64;
use crate::canonical::Digest;
use crate::jwk::{KeySet, SigningKey, VerifyingKey};
use crate::statement::Decision;
use crate::transaction::{Transaction, TransactionError};
use serde::{Deserialize, Serialize};

/// The `typ` header of a decision token (explicit typing, RFC 8725 §3.11).
pub const TOKEN_TYPE: &str = "countersign-decision+jwt";
/// The claims version this crate speaks.
pub const VERSION: u32 = 1;
/// Largest token accepted.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The protected header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always `EdDSA`.
    pub alg: String,
    /// Thumbprint of the signing key.
    pub kid: String,
    /// Always [`TOKEN_TYPE`].
    pub typ: String,
}

/// The claims of a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionClaims {
    /// Claims version, [`VERSION`].
    pub ver: u32,
    /// The Countersign server (its origin).
    pub iss: String,
    /// The application allowed to execute the action.
    pub aud: String,
    /// The requester.
    pub sub: String,
    /// The request id; each decision is redeemed once under it.
    pub jti: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Execution deadline, Unix seconds.
    pub exp: i64,
    /// Digest of the approved transaction.
    pub transaction: Digest,
    /// Approve or deny.
    pub decision: Decision,
    /// Ids of the approvers whose assertions were counted.
    pub approvers: Vec<String>,
    /// Authentication methods (RFC 8176), e.g. `hwk`, `user`, `pin`.
    pub amr: Vec<String>,
    /// Digest of the originating session.
    pub session: Digest,
}

impl DecisionClaims {
    /// The claims for a decision on `tx`, issued at `issued_at` (Unix seconds): `exp` is the
    /// execution TTL after issue, and never later than the transaction's `execute_by`.
    pub fn for_transaction(
        tx: &Transaction,
        issuer: &str,
        decision: Decision,
        issued_at: i64,
        approvers: Vec<String>,
        amr: Vec<String>,
    ) -> Result<Self, TokenError> {
        let ttl_end = issued_at.saturating_add(i64::from(tx.requirements.execution_ttl_seconds));
        Ok(DecisionClaims {
            ver: VERSION,
            iss: issuer.to_owned(),
            aud: tx.audience.clone(),
            sub: tx.requester.id.clone(),
            jti: tx.id.clone(),
            iat: issued_at,
            exp: ttl_end.min(tx.execute_by.unix()),
            transaction: tx.digest()?,
            decision,
            approvers,
            amr,
            session: tx.session,
        })
    }
}

/// What the verifier expects.
#[derive(Clone, Copy, Debug)]
pub struct Expectations<'a> {
    /// The issuer.
    pub issuer: &'a str,
    /// This application's audience name.
    pub audience: &'a str,
    /// Current time, Unix seconds.
    pub now: i64,
    /// Clock skew tolerated on `iat` and `exp`, in seconds.
    pub leeway_seconds: i64,
}

/// Why a token was refused, one variant per check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("token longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// Not three dot-separated parts.
    #[error("not a JWS compact serialization")]
    NotCompact,
    /// A part is not canonical base64url.
    #[error("{0} is not unpadded base64url")]
    Base64(&'static str),
    /// The header is not the JSON object this profile allows.
    #[error("malformed header: {0}")]
    Header(String),
    /// `alg` is not `EdDSA` (this includes `none`).
    #[error("algorithm {0:?} refused; only EdDSA is accepted")]
    UnsupportedAlgorithm(String),
    /// `typ` is not [`TOKEN_TYPE`].
    #[error("token type {0:?} is not {TOKEN_TYPE}")]
    WrongType(String),
    /// No trusted key has this `kid`.
    #[error("unknown signing key {0:?}")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The payload is not the claims object.
    #[error("malformed claims: {0}")]
    Claims(String),
    /// A claims version other than [`VERSION`].
    #[error("unsupported claims version {0}")]
    UnsupportedVersion(u32),
    /// `exp` has passed.
    #[error("token expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    /// `iat` is in the future.
    #[error("token issued in the future at {iat} (now {now})")]
    NotYetValid { iat: i64, now: i64 },
    /// `iss` is not the expected issuer.
    #[error("issuer {found:?} is not {expected:?}")]
    WrongIssuer { expected: String, found: String },
    /// `aud` is not this application.
    #[error("audience {found:?} is not {expected:?}")]
    WrongAudience { expected: String, found: String },
    /// The token names a different transaction than the one about to run.
    #[error("token does not match the transaction: {0} differs")]
    TransactionMismatch(&'static str),
    /// The decision is a denial.
    #[error("the decision is a denial")]
    Denied,
    /// The local transaction is itself invalid.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
}

impl TokenError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Transaction(e) => e.code(),
            other => other.into(),
        }
    }
}

/// Signs a JWS compact serialization over an already-encoded protected header.
pub fn sign_compact(protected_b64: &str, payload: &[u8], key: &SigningKey) -> String {
    let signing_input = format!("{protected_b64}.{}", b64::encode(payload));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64::encode(signature))
}

/// Splits a compact JWS and verifies its signature with `key`; returns header and payload bytes.
pub fn verify_compact(token: &str, key: &VerifyingKey) -> Result<(Vec<u8>, Vec<u8>), TokenError> {
    let (header, payload, signature, signing_input) = split(token)?;
    key.verify(signing_input.as_bytes(), &signature)
        .map_err(|_| TokenError::BadSignature)?;
    Ok((header, payload))
}

/// Decoded header, payload and signature, and the signing input they came from.
type Parts<'a> = (Vec<u8>, Vec<u8>, Vec<u8>, &'a str);

fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::NotCompact);
    };
    let header = b64::decode(h).map_err(|_| TokenError::Base64("header"))?;
    let payload = b64::decode(p).map_err(|_| TokenError::Base64("payload"))?;
    let signature = b64::decode(s).map_err(|_| TokenError::Base64("signature"))?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    Ok((header, payload, signature, signing_input))
}

/// Issues a decision token signed by `key`.
pub fn issue(claims: &DecisionClaims, key: &SigningKey) -> Result<String, TokenError> {
    let header = Header {
        alg: "EdDSA".into(),
        kid: key.kid().into(),
        typ: TOKEN_TYPE.into(),
    };
    let header = serde_json::to_vec(&header).map_err(|e| TokenError::Header(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| TokenError::Claims(e.to_string()))?;
    Ok(sign_compact(&b64::encode(header), &payload, key))
}

/// Verifies a decision token: header profile, signature by a trusted key, then every claim.
pub fn verify(
    token: &str,
    keys: &KeySet,
    expect: &Expectations<'_>,
) -> Result<DecisionClaims, TokenError> {
    let (header, payload, signature, signing_input) = split(token)?;
    let header = parse_header(&header)?;
    let key = keys
        .get(&header.kid)
        .ok_or_else(|| TokenError::UnknownKey(header.kid.clone()))?;
    key.verify(signing_input.as_bytes(), &signature)
        .map_err(|_| TokenError::BadSignature)?;
    let claims: DecisionClaims =
        serde_json::from_slice(&payload).map_err(|e| TokenError::Claims(e.to_string()))?;
    if claims.ver != VERSION {
        return Err(TokenError::UnsupportedVersion(claims.ver));
    }
    if claims.iss != expect.issuer {
        return Err(TokenError::WrongIssuer {
            expected: expect.issuer.into(),
            found: claims.iss,
        });
    }
    if claims.aud != expect.audience {
        return Err(TokenError::WrongAudience {
            expected: expect.audience.into(),
            found: claims.aud,
        });
    }
    if claims.iat > expect.now.saturating_add(expect.leeway_seconds) {
        return Err(TokenError::NotYetValid {
            iat: claims.iat,
            now: expect.now,
        });
    }
    if claims.exp <= expect.now.saturating_sub(expect.leeway_seconds) {
        return Err(TokenError::Expired {
            exp: claims.exp,
            now: expect.now,
        });
    }
    Ok(claims)
}

/// Verifies a token and that it approves exactly `tx`: the check a protected application makes
/// before it executes the action.
pub fn verify_for_transaction(
    token: &str,
    keys: &KeySet,
    expect: &Expectations<'_>,
    tx: &Transaction,
) -> Result<DecisionClaims, TokenError> {
    let claims = verify(token, keys, expect)?;
    if claims.transaction != tx.digest()? {
        return Err(TokenError::TransactionMismatch("transaction digest"));
    }
    if claims.jti != tx.id {
        return Err(TokenError::TransactionMismatch("request id"));
    }
    if claims.aud != tx.audience {
        return Err(TokenError::TransactionMismatch("audience"));
    }
    if claims.sub != tx.requester.id {
        return Err(TokenError::TransactionMismatch("requester"));
    }
    if claims.session != tx.session {
        return Err(TokenError::TransactionMismatch("session"));
    }
    if claims.exp > tx.execute_by.unix() {
        return Err(TokenError::TransactionMismatch("execution deadline"));
    }
    if claims.decision != Decision::Approve {
        return Err(TokenError::Denied);
    }
    Ok(claims)
}

fn parse_header(bytes: &[u8]) -> Result<Header, TokenError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| TokenError::Header(e.to_string()))?;
    // The algorithm is judged first, so `alg: none` is named as such whatever else is wrong.
    match value.get("alg") {
        Some(serde_json::Value::String(alg)) if alg == "EdDSA" => {}
        Some(serde_json::Value::String(alg)) => {
            return Err(TokenError::UnsupportedAlgorithm(alg.clone()))
        }
        _ => return Err(TokenError::Header("missing alg".into())),
    }
    let header: Header =
        serde_json::from_slice(bytes).map_err(|e| TokenError::Header(e.to_string()))?;
    if header.typ != TOKEN_TYPE {
        return Err(TokenError::WrongType(header.typ));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8037_a4_ed25519_signature() {
        let key = SigningKey::from_seed(
            &b64::decode_array("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap(),
        );
        let token = sign_compact("eyJhbGciOiJFZERTQSJ9", b"Example of Ed25519 signing", &key);
        assert_eq!(
            token,
            "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
        // RFC 8037 A.5: verification of the same token.
        let (_, payload) = verify_compact(&token, key.verifying_key()).unwrap();
        assert_eq!(payload, b"Example of Ed25519 signing");
    }
}
