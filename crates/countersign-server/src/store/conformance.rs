//! One behaviour for every backend: cases written against `&dyn Store` only, run by each
//! backend's tests through [`conformance_cases!`]. Each case states what the request logic
//! relies on: every state transition, every refusal leaving nothing written, audit entries
//! written with their change, and concurrency (one redemption, one quorum, one counted
//! approval out of many identical ones).

use super::{
    ApprovalRecord, ApproverRecord, AttestationTrust, Created, CredentialRecord, Decide,
    DecisionWrite, DeviceRecord, Freeze, FreezeRecord, NonceUse, PendingCap, PendingCaps, Redeemed,
    RequestRecord, RequestState, Store, StoreError,
};
use countersign_core::audit::{verify_chain, Event, Head};
use countersign_core::transaction::Transaction;
use countersign_core::{Decision, Digest, Timestamp};
use std::sync::Arc;

/// Expands to one `#[tokio::test]` per case, each on a fresh store from `$fresh` (an async
/// expression giving `(guard, store)`: the guard keeps the backend's database alive).
macro_rules! conformance_cases {
    ($fresh:expr) => {
        $crate::store::conformance::conformance_cases!(@cases $fresh;
            requests_move_through_every_state_once,
            an_idempotent_retry_returns_the_first_request_and_a_reuse_writes_nothing,
            refused_approvals_leave_nothing_written,
            refused_creations_and_enrollments_leave_nothing_written,
            expiry_moves_only_closed_pending_requests_with_their_entries,
            a_report_freezes_and_cancels_the_states_its_rule_names,
            a_frozen_requester_s_decision_is_not_redeemed_until_unfrozen,
            a_nonce_is_used_once,
            a_decision_is_redeemed_exactly_once_under_concurrency,
            a_quorum_is_reached_exactly_once_under_concurrency,
            one_of_fifty_identical_approvals_is_counted,
            the_audit_chain_verifies_after_every_case,
        );
    };
    (@cases $fresh:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (_guard, store) = $fresh.await;
                $crate::store::conformance::$case(store.as_ref()).await;
            }
        )*
    };
}
pub(crate) use conformance_cases;

/// The request every case works with: the test vector's transaction under `id`, open for
/// approval now.
fn transaction(id: &str, now: Timestamp) -> Transaction {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../../tests/vectors/transaction.json")).unwrap();
    let mut tx =
        Transaction::from_json(doc["cases"][0]["transaction"].to_string().as_bytes()).unwrap();
    tx.id = id.into();
    tx.approve_by = now.plus_seconds(600).unwrap();
    tx.execute_by = now.plus_seconds(900).unwrap();
    tx
}

fn event(at: Timestamp, kind: &str, request: Option<&str>) -> Event {
    Event {
        at,
        kind: kind.into(),
        request_id: request.map(str::to_owned),
        actor: "conformance".into(),
        data: serde_json::json!({}),
    }
}

/// Caps no case reaches unless it means to.
fn roomy(now: Timestamp) -> PendingCaps {
    PendingCaps {
        api_key_id: "test-key".into(),
        per_requester: 1000,
        per_api_key: 1000,
        now: now.unix(),
    }
}

fn record(tx: Transaction, key: &str) -> RequestRecord {
    RequestRecord {
        digest: tx.digest().unwrap(),
        transaction: tx,
        idempotency_key: key.into(),
        fingerprint: Digest::ZERO,
        state: RequestState::Pending,
        decision_token: None,
        decision_exp: None,
    }
}

/// A store seeded with `approvers` approvers (`approver<i>`, device `dev<i>`, credential
/// `[i]` at counter 0) and `requests` pending requests `req_<j>` of the vector's requester.
pub(crate) struct World<'s> {
    store: &'s dyn Store,
    /// When the world was seeded.
    pub(crate) now: Timestamp,
    requester: String,
    audience: String,
}

impl<'s> World<'s> {
    pub(crate) async fn seed(store: &'s dyn Store, approvers: u8, requests: u8) -> World<'s> {
        let now = crate::clock::now().unwrap();
        for i in 0..approvers {
            let who = format!("approver{i}");
            let approver = ApproverRecord {
                id: who.clone(),
                display_name: who.clone(),
                groups: vec!["finance-approvers".into()],
                created_at: now.unix(),
                disabled_at: None,
            };
            assert!(store
                .add_approver(&approver, event(now, "approver.added", None))
                .await
                .unwrap());
            let code = format!("code{i}");
            store
                .insert_enrollment_code(
                    &code,
                    &who,
                    now.unix(),
                    now.unix() + 900,
                    event(now, "enrollment.code", None),
                )
                .await
                .unwrap();
            store
                .enroll(
                    &code,
                    now.unix(),
                    &device(i, now),
                    &credential(i, now),
                    event(now, "device.enrolled", None),
                )
                .await
                .unwrap();
        }
        let tx = transaction("req_0", now);
        let world = World {
            store,
            now,
            requester: tx.requester.id.clone(),
            audience: tx.audience.clone(),
        };
        for j in 0..requests {
            world.create(&format!("req_{j}")).await;
        }
        world
    }

    async fn create(&self, id: &str) -> RequestRecord {
        let created = self
            .store
            .create_request(
                &record(transaction(id, self.now), &format!("key-{id}")),
                &roomy(self.now),
                event(self.now, "request.created", Some(id)),
            )
            .await
            .unwrap();
        match created {
            Created::New(r) => r,
            Created::Existing(r) => panic!("{} existed", r.transaction.id),
        }
    }

    /// Approver `i`'s approval of `request`.
    fn approval(&self, i: u8, request: &str, decision: Decision) -> ApprovalRecord {
        ApprovalRecord {
            request_id: request.into(),
            approver_id: format!("approver{i}"),
            role: crate::lifecycle::Role::Approver,
            decision,
            credential_id: vec![i],
            user_verified: true,
            hardware_attested: false,
            groups: vec!["finance-approvers".into()],
            created_at: self.now.unix(),
        }
    }

    /// Records approver `i`'s approval of `request` with its counter moving `previous` → +1.
    async fn approve(
        &self,
        i: u8,
        request: &str,
        previous: u32,
        decide: Arc<Decide<'static>>,
    ) -> Result<super::Recorded, StoreError> {
        self.store
            .record_approval(
                &self.approval(i, request, Decision::Approve),
                &format!("dev{i}"),
                previous,
                previous + 1,
                decide,
                event(self.now, "approval.approve", Some(request)),
            )
            .await
    }

    /// A decision rule: approved once `needed` approvals are in.
    fn approved_after(&self, needed: usize, request: &str) -> Arc<Decide<'static>> {
        let (now, request) = (self.now, request.to_owned());
        Arc::new(move |approvals: &[ApprovalRecord]| {
            Ok((approvals.len() >= needed).then(|| DecisionWrite {
                state: RequestState::Approved,
                token: format!("token-for-{request}"),
                exp: now.unix() + 300,
                audit: event(now, "decision.approved", Some(&request)),
            }))
        })
    }

    /// Moves `request` from one of `from` to `to`, audited as `request.<to>`.
    async fn transition(
        &self,
        audience: &str,
        request: &str,
        from: &[RequestState],
        to: RequestState,
    ) -> Result<(), Option<RequestState>> {
        let kind = format!("request.{}", to.as_str());
        self.store
            .transition(
                audience,
                request,
                from,
                to,
                self.now.unix(),
                event(self.now, &kind, Some(request)),
            )
            .await
            .unwrap()
    }

    async fn state(&self, request: &str) -> RequestState {
        self.store
            .request(&self.audience, request)
            .await
            .unwrap()
            .unwrap()
            .state
    }

    async fn redeem(&self, request: &str) -> Redeemed {
        self.store
            .redeem(
                &self.audience,
                request,
                self.now.unix(),
                event(self.now, "decision.redeemed", Some(request)),
            )
            .await
            .unwrap()
    }

    /// Everything a refusal must leave as it was: the chain's head, every approval of
    /// `request` and every seeded credential's counter.
    async fn footprint(&self, request: &str) -> (Head, usize, Vec<u32>) {
        let head = self.store.audit_head().await.unwrap();
        let approvals = self.store.approvals(request).await.unwrap().len();
        let mut counters = Vec::new();
        for i in 0..=u8::MAX {
            match self.store.credential(&[i]).await.unwrap() {
                Some(c) => counters.push(c.sign_count),
                None => break,
            }
        }
        (head, approvals, counters)
    }

    /// The kinds of the audit entries after `from`, oldest first.
    async fn kinds_since(&self, from: Head) -> Vec<String> {
        let entries = self.store.audit_entries(from.seq, 1000).await.unwrap();
        verify_chain(from, &entries).unwrap();
        entries.into_iter().map(|e| e.event.kind).collect()
    }

    /// Approver `reporter` reports `request` (counter `previous` → +1) under a freeze rule that
    /// cancels `cancels`.
    async fn report(
        &self,
        reporter: u8,
        request: &str,
        previous: u32,
        cancels: &'static [RequestState],
    ) -> super::Reported {
        self.store
            .record_report(
                &self.approval(reporter, request, Decision::Deny),
                &format!("dev{reporter}"),
                previous,
                previous + 1,
                undecided(),
                event(self.now, "approval.report", Some(request)),
                self.freeze(reporter, request, cancels),
            )
            .await
            .unwrap()
    }

    fn freeze(&self, reporter: u8, request: &str, cancels: &'static [RequestState]) -> Freeze {
        let now = self.now;
        Freeze {
            record: FreezeRecord {
                requester_id: self.requester.clone(),
                frozen_at: now.unix(),
                reported_by: format!("approver{reporter}"),
                request_id: request.into(),
                reason: Some("not me".into()),
            },
            audit: event(now, "requester.frozen", Some(request)),
            cancels,
            cancel_audit: Arc::new(move |id, was| Event {
                data: serde_json::json!({"rule": "under test", "was": was.as_str()}),
                ..event(now, "request.cancelled", Some(id))
            }),
        }
    }
}

fn device(i: u8, now: Timestamp) -> DeviceRecord {
    DeviceRecord {
        id: format!("dev{i}"),
        approver_id: format!("approver{i}"),
        name: "laptop".into(),
        device_key: [i; 32],
        created_at: now.unix(),
        disabled_at: None,
    }
}

fn credential(i: u8, now: Timestamp) -> CredentialRecord {
    CredentialRecord {
        id: vec![i],
        device_id: format!("dev{i}"),
        approver_id: format!("approver{i}"),
        public_key: vec![0xa5],
        aaguid: [0; 16],
        attestation: AttestationTrust::None,
        sign_count: 0,
        created_at: now.unix(),
        cloned_at: None,
    }
}

fn undecided() -> Arc<Decide<'static>> {
    Arc::new(|_| Ok(None))
}

/// pending → approved → redeemed → executed, each with its entry; a transition from the wrong
/// state reports the state found and writes nothing.
pub(crate) async fn requests_move_through_every_state_once(store: &dyn Store) {
    let w = World::seed(store, 1, 2).await;
    assert_eq!(w.state("req_0").await, RequestState::Pending);
    let before = store.audit_head().await.unwrap();
    let recorded = w
        .approve(0, "req_0", 0, w.approved_after(1, "req_0"))
        .await
        .unwrap();
    assert_eq!(recorded.approvals.len(), 1);
    assert_eq!(
        recorded.decision.map(|d| d.state),
        Some(RequestState::Approved)
    );
    let approved = store.request_by_id("req_0").await.unwrap().unwrap();
    assert_eq!(approved.state, RequestState::Approved);
    assert_eq!(approved.decision_token.as_deref(), Some("token-for-req_0"));
    assert_eq!(approved.decision_exp, Some(w.now.unix() + 300));
    assert_eq!(store.credential(&[0]).await.unwrap().unwrap().sign_count, 1);
    assert_eq!(
        w.redeem("req_0").await,
        Redeemed::Now("token-for-req_0".into())
    );
    assert_eq!(w.state("req_0").await, RequestState::Redeemed);
    let executed = w
        .transition(
            &w.audience,
            "req_0",
            &[RequestState::Redeemed],
            RequestState::Executed,
        )
        .await;
    assert_eq!(executed, Ok(()));
    assert_eq!(
        w.kinds_since(before).await,
        [
            "approval.approve",
            "decision.approved",
            "decision.redeemed",
            "request.executed"
        ]
    );
    // From the wrong state: the state found, nothing written.
    let head = store.audit_head().await.unwrap();
    let again = w
        .transition(
            &w.audience,
            "req_0",
            &[RequestState::Redeemed],
            RequestState::Failed,
        )
        .await;
    assert_eq!(again, Err(Some(RequestState::Executed)));
    let unknown = w
        .transition(
            &w.audience,
            "req_missing",
            &[RequestState::Pending],
            RequestState::Cancelled,
        )
        .await;
    assert_eq!(unknown, Err(None));
    // Another audience sees nothing and moves nothing.
    assert_eq!(
        store.request("other-audience", "req_1").await.unwrap(),
        None
    );
    let elsewhere = w
        .transition(
            "other-audience",
            "req_1",
            &[RequestState::Pending],
            RequestState::Cancelled,
        )
        .await;
    assert_eq!(elsewhere, Err(None));
    assert_eq!(w.state("req_1").await, RequestState::Pending);
    // pending → cancelled, once.
    let cancel = || {
        w.transition(
            &w.audience,
            "req_1",
            &[RequestState::Pending],
            RequestState::Cancelled,
        )
    };
    assert_eq!(cancel().await, Ok(()));
    assert_eq!(cancel().await, Err(Some(RequestState::Cancelled)));
    assert_eq!(w.kinds_since(head).await, ["request.cancelled"]);
}

/// The same idempotency key and body returns the first request and writes nothing; the same
/// key with another body is refused and writes nothing.
pub(crate) async fn an_idempotent_retry_returns_the_first_request_and_a_reuse_writes_nothing(
    store: &dyn Store,
) {
    let w = World::seed(store, 0, 1).await;
    let head = store.audit_head().await.unwrap();
    let first = store.request_by_id("req_0").await.unwrap().unwrap();
    // A retry carries a fresh id; the key and body fingerprint are what match.
    let retry = record(transaction("req_retry", w.now), "key-req_0");
    let again = store
        .create_request(&retry, &roomy(w.now), event(w.now, "request.created", None))
        .await
        .unwrap();
    assert_eq!(again, Created::Existing(first));
    let reuse = RequestRecord {
        fingerprint: Digest([7; 32]),
        ..record(transaction("req_reuse", w.now), "key-req_0")
    };
    let refused = store
        .create_request(&reuse, &roomy(w.now), event(w.now, "request.created", None))
        .await;
    assert!(
        matches!(refused, Err(StoreError::IdempotencyConflict)),
        "{refused:?}"
    );
    for id in ["req_retry", "req_reuse"] {
        assert_eq!(store.request_by_id(id).await.unwrap(), None, "{id}");
    }
    assert_eq!(store.audit_head().await.unwrap(), head);
}

/// Every refusal of an approval (request gone, not pending, window closed, already decided,
/// counter moved, approver or device disabled) leaves the chain, the approvals and every
/// counter as they were.
pub(crate) async fn refused_approvals_leave_nothing_written(store: &dyn Store) {
    let w = World::seed(store, 3, 3).await;
    // Already decided: approver 0 approves req_0, then tries again with a fresh counter.
    w.approve(0, "req_0", 0, undecided()).await.unwrap();
    let before = w.footprint("req_0").await;
    let twice = w.approve(0, "req_0", 1, undecided()).await;
    assert!(
        matches!(twice, Err(StoreError::AlreadyDecided)),
        "{twice:?}"
    );
    assert_eq!(w.footprint("req_0").await, before, "already decided");
    // Counter moved meanwhile (the caller read 5, the store has 1).
    let before = w.footprint("req_1").await;
    let raced = w.approve(0, "req_1", 5, undecided()).await;
    assert!(matches!(raced, Err(StoreError::CounterRace)), "{raced:?}");
    assert_eq!(w.footprint("req_1").await, before, "counter race");
    // No such request.
    let before = w.footprint("req_missing").await;
    let missing = w.approve(1, "req_missing", 0, undecided()).await;
    assert!(
        matches!(missing, Err(StoreError::NoSuchRequest)),
        "{missing:?}"
    );
    assert_eq!(w.footprint("req_missing").await, before, "no such request");
    // Not pending: req_2 cancelled.
    let cancelled = w
        .transition(
            &w.audience,
            "req_2",
            &[RequestState::Pending],
            RequestState::Cancelled,
        )
        .await;
    assert_eq!(cancelled, Ok(()));
    let before = w.footprint("req_2").await;
    let late = w.approve(1, "req_2", 0, undecided()).await;
    assert!(
        matches!(late, Err(StoreError::NotPending(RequestState::Cancelled))),
        "{late:?}"
    );
    assert_eq!(w.footprint("req_2").await, before, "not pending");
    // Window closed: a request whose approval deadline has passed (not yet expired).
    let mut closed = transaction("req_closed", w.now);
    closed.approve_by = w.now.plus_seconds(-60).unwrap();
    store
        .create_request(
            &record(closed, "key-closed"),
            &roomy(w.now),
            event(w.now, "request.created", Some("req_closed")),
        )
        .await
        .unwrap();
    let before = w.footprint("req_closed").await;
    let shut = w.approve(1, "req_closed", 0, undecided()).await;
    assert!(matches!(shut, Err(StoreError::ApprovalClosed)), "{shut:?}");
    assert_eq!(w.footprint("req_closed").await, before, "window closed");
    // The approver disabled after the call was authenticated.
    assert!(store
        .disable_approver(
            "approver2",
            w.now.unix(),
            event(w.now, "approver.disabled", None)
        )
        .await
        .unwrap());
    let before = w.footprint("req_1").await;
    let disabled = w.approve(2, "req_1", 0, undecided()).await;
    assert!(
        matches!(disabled, Err(StoreError::CallerDisabled)),
        "{disabled:?}"
    );
    assert_eq!(w.footprint("req_1").await, before, "caller disabled");
    // A refused decision rule: the approval and its counter are not kept either.
    let before = w.footprint("req_1").await;
    let failing: Arc<Decide<'static>> = Arc::new(|_| {
        Err(crate::lifecycle::DecisionError::Sign(
            countersign_core::token::TokenError::TooLong,
        ))
    });
    let refused = w.approve(1, "req_1", 0, failing).await;
    // The rule's error, or the backend's account of the write it undid.
    assert!(
        matches!(
            refused,
            Err(StoreError::Decision(_) | StoreError::Database(_))
        ),
        "{refused:?}"
    );
    assert_eq!(w.footprint("req_1").await, before, "decision failed");
}

/// A frozen requester, a full pending cap or a spent enrollment code is refused, and nothing
/// of the refused write is stored.
pub(crate) async fn refused_creations_and_enrollments_leave_nothing_written(store: &dyn Store) {
    let w = World::seed(store, 1, 2).await;
    let head = store.audit_head().await.unwrap();
    // Pending caps: two requests are pending for this requester and this key.
    for (caps, cap) in [
        (
            PendingCaps {
                per_requester: 2,
                ..roomy(w.now)
            },
            PendingCap::Requester,
        ),
        (
            PendingCaps {
                per_api_key: 2,
                ..roomy(w.now)
            },
            PendingCap::ApiKey,
        ),
    ] {
        let refused = store
            .create_request(
                &record(transaction("req_capped", w.now), "key-capped"),
                &caps,
                event(w.now, "request.created", Some("req_capped")),
            )
            .await;
        assert!(
            matches!(&refused, Err(StoreError::PendingCap(c)) if *c == cap),
            "{refused:?}"
        );
    }
    assert_eq!(store.request_by_id("req_capped").await.unwrap(), None);
    assert_eq!(store.audit_head().await.unwrap(), head);
    // A spent enrollment code: nothing enrolled.
    let again = store
        .enroll(
            "code0",
            w.now.unix(),
            &DeviceRecord {
                id: "dev-second".into(),
                ..device(0, w.now)
            },
            &CredentialRecord {
                id: vec![0xee],
                device_id: "dev-second".into(),
                ..credential(0, w.now)
            },
            event(w.now, "device.enrolled", None),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::EnrollmentCode)),
        "{again:?}"
    );
    assert_eq!(store.device("dev-second").await.unwrap(), None);
    assert_eq!(store.credential(&[0xee]).await.unwrap(), None);
    assert_eq!(store.audit_head().await.unwrap(), head);
    // A frozen requester (frozen by a report that cancels nothing).
    let reported = w.report(0, "req_0", 0, &[]).await;
    assert!(reported.froze);
    let head = store.audit_head().await.unwrap();
    let frozen = store
        .create_request(
            &record(transaction("req_frozen", w.now), "key-frozen"),
            &roomy(w.now),
            event(w.now, "request.created", Some("req_frozen")),
        )
        .await;
    assert!(
        matches!(frozen, Err(StoreError::RequesterFrozen)),
        "{frozen:?}"
    );
    assert_eq!(store.request_by_id("req_frozen").await.unwrap(), None);
    assert_eq!(store.audit_head().await.unwrap(), head);
}

/// Expiry moves pending requests whose window closed, each with a `request.expired` entry,
/// and nothing else.
pub(crate) async fn expiry_moves_only_closed_pending_requests_with_their_entries(
    store: &dyn Store,
) {
    let w = World::seed(store, 0, 2).await;
    let head = store.audit_head().await.unwrap();
    let nothing = store.expire_pending(w.now.unix(), 100).await.unwrap();
    assert!(nothing.is_empty(), "{nothing:?}");
    assert_eq!(store.audit_head().await.unwrap(), head);
    // Both windows closed 600 s from now.
    let later = w.now.unix() + 601;
    let mut expired = store.expire_pending(later, 100).await.unwrap();
    expired.sort();
    assert_eq!(expired, ["req_0", "req_1"]);
    for id in ["req_0", "req_1"] {
        assert_eq!(w.state(id).await, RequestState::Expired);
    }
    assert_eq!(
        w.kinds_since(head).await,
        ["request.expired", "request.expired"]
    );
    assert!(store
        .pending_requests(w.now.unix(), 10)
        .await
        .unwrap()
        .is_empty());
}

/// A report denies, freezes once, and cancels exactly the states its rule names, each with
/// the rule's entry.
pub(crate) async fn a_report_freezes_and_cancels_the_states_its_rule_names(store: &dyn Store) {
    let w = World::seed(store, 2, 3).await;
    // A rule that cancels nothing: the requester is frozen, every request stays pending.
    let nothing = w.report(1, "req_0", 0, &[]).await;
    assert!(nothing.froze && nothing.cancelled.is_empty());
    assert!(nothing.denial.is_some(), "the report's denial is counted");
    assert_eq!(
        store
            .freeze(&w.requester)
            .await
            .unwrap()
            .map(|f| f.reported_by),
        Some("approver1".into())
    );
    // The next report (the same denial is not counted twice) under a rule that cancels
    // pending requests: all three, oldest first, each with the rule's entry.
    let head = store.audit_head().await.unwrap();
    let pending = w.report(1, "req_0", 1, &[RequestState::Pending]).await;
    assert!(!pending.froze, "frozen once");
    assert!(pending.denial.is_none());
    assert_eq!(pending.cancelled, ["req_0", "req_1", "req_2"]);
    for id in ["req_0", "req_1", "req_2"] {
        assert_eq!(w.state(id).await, RequestState::Cancelled);
    }
    assert_eq!(
        w.kinds_since(head).await,
        [
            "request.cancelled",
            "request.cancelled",
            "request.cancelled"
        ]
    );
    let entries = store.audit_entries(head.seq, 10).await.unwrap();
    for entry in entries {
        assert_eq!(
            entry.event.data,
            serde_json::json!({"rule": "under test", "was": "pending"})
        );
    }
    assert_eq!(store.freezes().await.unwrap().len(), 1);
    assert!(store
        .unfreeze(&w.requester, event(w.now, "requester.unfrozen", None))
        .await
        .unwrap());
    assert!(!store
        .unfreeze(&w.requester, event(w.now, "requester.unfrozen", None))
        .await
        .unwrap());
    assert_eq!(store.freeze(&w.requester).await.unwrap(), None);
}

/// A frozen requester's approved decision is refused at redemption (audited) and redeemed
/// once the freeze is lifted.
pub(crate) async fn a_frozen_requester_s_decision_is_not_redeemed_until_unfrozen(
    store: &dyn Store,
) {
    let w = World::seed(store, 2, 2).await;
    w.approve(0, "req_0", 0, w.approved_after(1, "req_0"))
        .await
        .unwrap();
    // Reported on the other request, by a rule that cancels nothing.
    w.report(1, "req_1", 0, &[]).await;
    let head = store.audit_head().await.unwrap();
    assert_eq!(w.redeem("req_0").await, Redeemed::RequesterFrozen);
    assert_eq!(w.kinds_since(head).await, ["decision.refused"]);
    assert_eq!(w.state("req_0").await, RequestState::Approved);
    assert!(store
        .unfreeze(&w.requester, event(w.now, "requester.unfrozen", None))
        .await
        .unwrap());
    assert_eq!(
        w.redeem("req_0").await,
        Redeemed::Now("token-for-req_0".into())
    );
}

/// A device call's nonce is accepted once per device.
pub(crate) async fn a_nonce_is_used_once(store: &dyn Store) {
    let w = World::seed(store, 2, 0).await;
    let nonce = |device: &str| NonceUse {
        device_id: device.into(),
        nonce: "n-1".into(),
        expires_at: w.now.unix() + 300,
    };
    assert!(store.use_nonce(&nonce("dev0"), w.now.unix()).await.unwrap());
    assert!(!store.use_nonce(&nonce("dev0"), w.now.unix()).await.unwrap());
    assert!(
        store.use_nonce(&nonce("dev1"), w.now.unix()).await.unwrap(),
        "another device's"
    );
}

/// Twenty redemptions of one decision at once: exactly one gets the token.
pub(crate) async fn a_decision_is_redeemed_exactly_once_under_concurrency(store: &dyn Store) {
    let w = World::seed(store, 1, 1).await;
    w.approve(0, "req_0", 0, w.approved_after(1, "req_0"))
        .await
        .unwrap();
    let head = store.audit_head().await.unwrap();
    let results = futures_util::future::join_all((0..20).map(|_| w.redeem("req_0"))).await;
    let redeemed = results
        .iter()
        .filter(|r| matches!(r, Redeemed::Now(_)))
        .count();
    assert_eq!(redeemed, 1, "{results:?}");
    assert!(
        results.iter().all(|r| matches!(
            r,
            Redeemed::Now(_) | Redeemed::WrongState(RequestState::Redeemed)
        )),
        "{results:?}"
    );
    assert_eq!(w.kinds_since(head).await, ["decision.redeemed"]);
}

/// Five approvers at once on a request that needs two: one decision, written once.
pub(crate) async fn a_quorum_is_reached_exactly_once_under_concurrency(store: &dyn Store) {
    let w = World::seed(store, 5, 1).await;
    let head = store.audit_head().await.unwrap();
    let results = futures_util::future::join_all(
        (0..5).map(|i| w.approve(i, "req_0", 0, w.approved_after(2, "req_0"))),
    )
    .await;
    let decided = results
        .iter()
        .filter(|r| matches!(r, Ok(recorded) if recorded.decision.is_some()))
        .count();
    assert_eq!(decided, 1, "{results:?}");
    // Once decided, the request is no longer pending: later approvals are refused whole.
    let counted = results.iter().filter(|r| r.is_ok()).count();
    assert!((2..=5).contains(&counted), "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(r, StoreError::NotPending(RequestState::Approved)),
            "{r:?}"
        );
    }
    assert_eq!(store.approvals("req_0").await.unwrap().len(), counted);
    let kinds = w.kinds_since(head).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "decision.approved").count(),
        1
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "approval.approve").count(),
        counted
    );
}

/// The same approval sent fifty times at once (one assertion, one counter): one is counted,
/// the counter moves once, one entry is written.
pub(crate) async fn one_of_fifty_identical_approvals_is_counted(store: &dyn Store) {
    let w = World::seed(store, 1, 1).await;
    let head = store.audit_head().await.unwrap();
    let results =
        futures_util::future::join_all((0..50).map(|_| w.approve(0, "req_0", 0, undecided())))
            .await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(r, StoreError::AlreadyDecided | StoreError::CounterRace),
            "{r:?}"
        );
    }
    assert_eq!(store.approvals("req_0").await.unwrap().len(), 1);
    assert_eq!(store.credential(&[0]).await.unwrap().unwrap().sign_count, 1);
    assert_eq!(w.kinds_since(head).await, ["approval.approve"]);
}

/// After seeding, approvals, reports and refusals, the whole chain verifies from genesis and
/// its head is the store's head.
pub(crate) async fn the_audit_chain_verifies_after_every_case(store: &dyn Store) {
    let w = World::seed(store, 2, 2).await;
    w.approve(0, "req_0", 0, w.approved_after(1, "req_0"))
        .await
        .unwrap();
    let _ = w.approve(0, "req_0", 1, undecided()).await;
    let _ = w.redeem("req_0").await;
    w.report(1, "req_1", 0, &[RequestState::Pending]).await;
    let entries = store.audit_entries(0, 10_000).await.unwrap();
    let head = verify_chain(Head::GENESIS, &entries).unwrap();
    assert_eq!(head, store.audit_head().await.unwrap());
    assert!(head.seq >= 10, "{head:?}");
}
