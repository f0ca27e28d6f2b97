//! A tiny payouts service protected by Countersign. It exists to show where the check sits:
//! money moves only in [`execute`], and `execute` demands a [`countersign_sdk::Redeemed`]
//! proof, which only exists after the decision was verified offline against this exact payout
//! and redeemed once (or the policy said no step-up is needed).
//!
//! `POST /payouts` asks for the payout and answers at once (`executed`, `pending` with the
//! request id and the fingerprint the requester can compare with the approver's screen, or
//! `refused`); a pending payout is followed in the background. `GET /payouts/{id}` shows where
//! it stands, `GET /ledger` what was paid.
#![forbid(unsafe_code)]

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use countersign_sdk::{Client, Created, Pending, Redeemed, SdkError, StepUp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// A payout someone asks for.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Payout {
    /// The caller's id for this payout (also the idempotency key).
    pub id: String,
    /// Who is paid.
    pub vendor: String,
    /// Decimal amount.
    pub amount: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// The signed-in user asking.
    pub requester: String,
    /// Their session id (only its hash leaves this service).
    pub session_id: String,
}

/// Where a payout stands.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Waiting for approval.
    Pending {
        /// Countersign request id.
        request_id: String,
        /// Digest fingerprint to compare with the approver's screen.
        fingerprint: String,
    },
    /// Paid.
    Executed,
    /// Not paid, and why.
    Refused {
        /// The reason.
        reason: String,
    },
}

/// Why the ledger could not be written.
#[derive(Debug, thiserror::Error)]
#[error("ledger: {0}")]
pub struct LedgerError(#[from] std::io::Error);

/// The service's state.
pub struct App {
    countersign: Client,
    ledger: PathBuf,
    ledger_lock: Mutex<()>,
    statuses: Mutex<BTreeMap<String, Status>>,
    /// How long a payout may wait for its approval.
    pub approval_wait: Duration,
}

/// What allows a payout to run: nothing else can be passed to [`execute`].
pub enum Authorization<'a> {
    /// Policy needs no step-up for this payout.
    NotRequired,
    /// An approving decision, verified against this payout and redeemed once.
    Approved(&'a Redeemed),
}

impl App {
    /// A service that asks `countersign` and appends paid payouts to `ledger` (JSON Lines).
    pub fn new(countersign: Client, ledger: PathBuf) -> Self {
        App {
            countersign,
            ledger,
            ledger_lock: Mutex::new(()),
            statuses: Mutex::new(BTreeMap::new()),
            approval_wait: Duration::from_secs(15 * 60),
        }
    }

    async fn set(&self, id: &str, status: Status) {
        self.statuses.lock().await.insert(id.to_owned(), status);
    }
}

/// The only place money moves. It takes an [`Authorization`], so code that has not asked
/// Countersign, or has not redeemed an approval, cannot call it.
pub async fn execute(
    app: &App,
    payout: &Payout,
    why: Authorization<'_>,
) -> Result<(), LedgerError> {
    let approvers = match why {
        Authorization::NotRequired => Vec::new(),
        Authorization::Approved(proof) => proof.decision().claims().approvers.clone(),
    };
    let line = serde_json::json!({"payout": payout, "approvers": approvers}).to_string();
    let _guard = app.ledger_lock.lock().await;
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&app.ledger)
        .await?;
    file.write_all(format!("{line}\n").as_bytes()).await?;
    file.sync_all().await?;
    Ok(())
}

fn step_up(payout: &Payout) -> StepUp {
    StepUp::new(
        &payout.id,
        "payout.send",
        &format!("vendor:{}", payout.vendor),
        &payout.requester,
        &payout.session_id,
    )
    .amount(&payout.amount, &payout.currency)
}

/// Follows a pending payout to its end: wait, verify, redeem, pay, report.
async fn follow(app: Arc<App>, payout: Payout, pending: Pending) {
    let outcome: Result<(), SdkError> = async {
        app.countersign.wait(&pending, app.approval_wait).await?;
        let decision = app.countersign.verified_decision(&pending).await?;
        let proof = app.countersign.redeem(decision).await?;
        let paid = execute(&app, &payout, Authorization::Approved(&proof)).await;
        let detail = paid.as_ref().err().map(ToString::to_string);
        app.countersign
            .report(&pending, paid.is_ok(), detail.as_deref())
            .await?;
        paid.map_err(|e| SdkError::Unexpected(e.to_string()))
    }
    .await;
    let status = match outcome {
        Ok(()) => Status::Executed,
        Err(e) => Status::Refused {
            reason: e.to_string(),
        },
    };
    app.set(&payout.id, status).await;
}

async fn create(
    State(app): State<Arc<App>>,
    Json(payout): Json<Payout>,
) -> (StatusCode, Json<Status>) {
    let status = match app.countersign.request(&step_up(&payout)).await {
        Ok(Created::NotRequired) => {
            match execute(&app, &payout, Authorization::NotRequired).await {
                Ok(()) => Status::Executed,
                Err(e) => Status::Refused {
                    reason: e.to_string(),
                },
            }
        }
        Ok(Created::StepUp(pending)) => {
            let status = Status::Pending {
                request_id: pending.id.clone(),
                fingerprint: pending
                    .transaction
                    .digest()
                    .map(|d| d.fingerprint())
                    .unwrap_or_default(),
            };
            tokio::spawn(follow(app.clone(), payout.clone(), *pending));
            status
        }
        Err(e) => Status::Refused {
            reason: e.to_string(),
        },
    };
    app.set(&payout.id, status.clone()).await;
    let code = match status {
        Status::Pending { .. } => StatusCode::ACCEPTED,
        Status::Executed => StatusCode::OK,
        Status::Refused { .. } => StatusCode::FORBIDDEN,
    };
    (code, Json(status))
}

async fn status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Status>, StatusCode> {
    app.statuses
        .lock()
        .await
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or(StatusCode::NOT_FOUND)
}

async fn ledger(State(app): State<Arc<App>>) -> Result<Json<Vec<serde_json::Value>>, StatusCode> {
    let text = match tokio::fs::read_to_string(&app.ledger).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(_) => return Err(StatusCode::INTERNAL_SERVER_ERROR),
    };
    text.lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map(Json)
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

/// The service's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/payouts", post(create))
        .route("/payouts/{id}", get(status))
        .route("/ledger", get(ledger))
        .with_state(app)
}
