//! The HTTP client for protected applications. Everything the server says is checked before it
//! is believed: the transaction it created must be the one asked for, and the decision token
//! must verify offline against that transaction.

use crate::{SdkError, StepUp, LEEWAY_SECONDS};
use countersign_core::jwk::KeySet;
use countersign_core::token::{self, DecisionClaims, Expectations, TokenError};
use countersign_core::wire::application::{
    DecisionAnswer, ExecutionOutcome, OutcomeReport, RedeemAnswer, RequestStatus, StepUpAnswer,
};
use countersign_core::wire::approver::ServerInfo;
use countersign_core::wire::{ProblemDocument, RequestState};
use countersign_core::{Decision, Transaction};
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest single long-poll the server accepts, in seconds.
const MAX_WAIT_SECONDS: u64 = 60;

/// A connection to one Countersign server for one audience.
pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: String,
    audience: String,
    issuer: String,
    keys: tokio::sync::RwLock<KeySet>,
}

/// What creating a request gave.
#[derive(Debug)]
pub enum Created {
    /// Policy needs no step-up: the action may run.
    NotRequired,
    /// Approvals are needed first.
    StepUp(Box<Pending>),
}

/// A request waiting for approval, with the transaction the server will have approvers sign.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Request id.
    pub id: String,
    /// The canonical transaction, checked against what the application asked for.
    pub transaction: Transaction,
}

/// A decision token that verified against the transaction; only [`Client::verified_decision`]
/// makes one.
#[derive(Clone, Debug)]
pub struct VerifiedDecision {
    id: String,
    token: String,
    claims: DecisionClaims,
}

/// Proof that a verified, approving decision was redeemed by this call: the only thing that
/// should let a protected action run.
#[derive(Debug)]
pub struct Redeemed {
    decision: VerifiedDecision,
}

impl Redeemed {
    /// The decision that was redeemed.
    pub fn decision(&self) -> &VerifiedDecision {
        &self.decision
    }
}

impl VerifiedDecision {
    /// The verified claims (approvers, `amr`, execution deadline...).
    pub fn claims(&self) -> &DecisionClaims {
        &self.claims
    }

    /// The compact JWS, for the application's own records.
    pub fn token(&self) -> &str {
        &self.token
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Client {
    /// Connects to the server at `base_url` (e.g. `https://approvals.example.com`) with this
    /// application's API key and audience, and learns the token issuer and signing keys.
    pub async fn connect(base_url: &str, api_key: &str, audience: &str) -> Result<Self, SdkError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(MAX_WAIT_SECONDS + 30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = base_url.trim_end_matches('/').to_owned();
        let info: ServerInfo = http
            .get(format!("{base}/v1/info"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let issuer = info.origin;
        let jwks = http
            .get(format!("{base}/.well-known/jwks.json"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        Ok(Client {
            http,
            base,
            api_key: api_key.to_owned(),
            audience: audience.to_owned(),
            issuer,
            keys: tokio::sync::RwLock::new(KeySet::from_jwks_json(&jwks)?),
        })
    }

    /// Sends an authenticated call; a problem document becomes [`SdkError::Problem`].
    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, SdkError> {
        let response = request.bearer_auth(&self.api_key).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| SdkError::Unexpected(format!("HTTP {status}: {e}")));
        }
        let problem = ProblemDocument::from_json(&body).ok_or_else(|| {
            SdkError::Unexpected(format!("HTTP {status} without a problem document"))
        })?;
        Err(SdkError::Problem {
            status: status.as_u16(),
            code: problem.code,
            detail: problem.detail,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Asks for a step-up. A retry with the same idempotency key returns the same request.
    pub async fn request(&self, step_up: &StepUp) -> Result<Created, SdkError> {
        let answer: StepUpAnswer<serde_json::Value> = self
            .call(self.http.post(self.url("/v1/requests")).json(step_up))
            .await?;
        let view = match answer {
            StepUpAnswer::NotRequired => return Ok(Created::NotRequired),
            StepUpAnswer::StepUp(view) => view,
        };
        // Parsed by the transaction's own strict reader, not by serde alone.
        let json = serde_json::to_vec(&view.transaction)
            .map_err(|e| SdkError::Unexpected(e.to_string()))?;
        let transaction = Transaction::from_json(&json)?;
        if transaction.digest()? != view.digest {
            return Err(SdkError::TransactionMismatch("digest"));
        }
        self.check_matches(step_up, &transaction, &view.id)?;
        Ok(Created::StepUp(Box::new(Pending {
            id: view.id,
            transaction,
        })))
    }

    /// The server must have created exactly what was asked, for this audience.
    fn check_matches(&self, asked: &StepUp, got: &Transaction, id: &str) -> Result<(), SdkError> {
        let checks: [(&'static str, bool); 9] = [
            ("id", got.id == id),
            ("action", got.action == asked.action),
            ("object", got.object == asked.object),
            ("amount", got.amount == asked.amount),
            ("scope", got.scope == asked.scope),
            ("change", got.change == asked.change),
            ("requester", got.requester == asked.requester),
            ("session", got.session == asked.session),
            ("audience", got.audience == self.audience),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            Some((field, _)) => Err(SdkError::TransactionMismatch(field)),
            None => Ok(()),
        }
    }

    /// Waits (long-polling) until the request leaves `pending` or `max` passes. Returns when it
    /// is approved; any other end is [`SdkError::NotApproved`].
    pub async fn wait(&self, pending: &Pending, max: Duration) -> Result<(), SdkError> {
        let deadline = Instant::now() + max;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SdkError::Timeout(pending.id.clone()));
            }
            let wait = left.as_secs().clamp(1, MAX_WAIT_SECONDS);
            let path = format!("/v1/requests/{}?wait={wait}", pending.id);
            let status: RequestStatus = self.call(self.http.get(self.url(&path))).await?;
            match status.state {
                RequestState::Pending => continue,
                RequestState::Approved => return Ok(()),
                other => {
                    return Err(SdkError::NotApproved {
                        id: pending.id.clone(),
                        state: other,
                    })
                }
            }
        }
    }

    /// Fetches the decision token and verifies it offline against `pending`'s transaction: the
    /// server's signature (keys refreshed once if the token names a new one), issuer, audience,
    /// expiry, the transaction digest and request id, and that it approves.
    pub async fn verified_decision(&self, pending: &Pending) -> Result<VerifiedDecision, SdkError> {
        let path = format!("/v1/requests/{}/decision", pending.id);
        let answer: DecisionAnswer = self.call(self.http.get(self.url(&path))).await?;
        let token = answer.token;
        let verified = match self.verify(&token, &pending.transaction).await {
            Err(SdkError::Token(TokenError::UnknownKey(_))) => {
                self.refresh_keys().await?;
                self.verify(&token, &pending.transaction).await
            }
            other => other,
        };
        let denied = || SdkError::NotApproved {
            id: pending.id.clone(),
            state: RequestState::Denied,
        };
        let claims = match verified {
            // A verified denial: say so plainly.
            Err(SdkError::Token(TokenError::Denied)) => return Err(denied()),
            other => other?,
        };
        if claims.decision != Decision::Approve {
            return Err(denied());
        }
        Ok(VerifiedDecision {
            id: pending.id.clone(),
            token,
            claims,
        })
    }

    async fn verify(&self, token: &str, tx: &Transaction) -> Result<DecisionClaims, SdkError> {
        let keys = self.keys.read().await;
        let expect = Expectations {
            issuer: &self.issuer,
            audience: &self.audience,
            now: now(),
            leeway_seconds: LEEWAY_SECONDS,
        };
        Ok(token::verify_for_transaction(token, &keys, &expect, tx)?)
    }

    async fn refresh_keys(&self) -> Result<(), SdkError> {
        let jwks = self
            .http
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        *self.keys.write().await = KeySet::from_jwks_json(&jwks)?;
        Ok(())
    }

    /// Consumes the decision, exactly once: a second call (from anywhere) is refused with
    /// `already_redeemed`. The returned [`Redeemed`] is the proof an application's execute
    /// step should demand; nothing else makes one.
    pub async fn redeem(&self, decision: VerifiedDecision) -> Result<Redeemed, SdkError> {
        let path = format!("/v1/requests/{}/redeem", decision.id);
        let answer: RedeemAnswer = self.call(self.http.post(self.url(&path))).await?;
        if answer.token != decision.token {
            return Err(SdkError::Unexpected(
                "the server redeemed a different token".into(),
            ));
        }
        Ok(Redeemed { decision })
    }

    /// Reports how the executed action went; closes the request's audit trail.
    pub async fn report(
        &self,
        pending: &Pending,
        succeeded: bool,
        detail: Option<&str>,
    ) -> Result<(), SdkError> {
        let path = format!("/v1/requests/{}/outcome", pending.id);
        let body = OutcomeReport {
            outcome: if succeeded {
                ExecutionOutcome::Succeeded
            } else {
                ExecutionOutcome::Failed
            },
            detail: detail.map(str::to_owned),
        };
        self.call::<RequestStatus>(self.http.post(self.url(&path)).json(&body))
            .await
            .map(|_| ())
    }

    /// Withdraws a pending request.
    pub async fn cancel(&self, pending: &Pending) -> Result<(), SdkError> {
        let path = format!("/v1/requests/{}/cancel", pending.id);
        self.call::<RequestStatus>(self.http.post(self.url(&path)))
            .await
            .map(|_| ())
    }
}
