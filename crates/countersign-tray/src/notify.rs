//! Desktop notifications for new requests, through `notify-rust` on the session bus (called
//! directly: it reports a missing or failing notification server, and its actions work on
//! Linux). One notification per request this approver may act on, never twice for the same
//! request (a resync or reconnect re-delivers the list), withdrawn when the request leaves the
//! inbox, suppressed while paused. "Review" only opens the request's screen: the approval
//! itself always happens there, with a key touch.

use countersign_desk::views::InboxItem;
use notify_rust::{Notification, NotificationHandle, NotificationResponse, Timeout, Urgency};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

/// Requests closer than this to their deadline are notified as critical.
const URGENT_SECONDS: i64 = 300;
/// The action key of the "Review" button (the body's click is `default`).
pub const REVIEW: &str = "review";

pub use countersign_desk::agent::NotificationStatus;

/// Where the notifier's effects go: opening a request's screen, and its status.
pub trait NotifierHost: Send + Sync {
    /// "Review" (or a click on the notification) for request `id`.
    fn open_request(&self, id: &str);
    /// The status changed.
    fn status_changed(&self, status: &NotificationStatus);
}

/// What a notification says about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    /// First line: what, and how much or on what.
    pub summary: String,
    /// The sentence, who asks, and the time left.
    pub body: String,
    /// Critical when the deadline is near.
    pub urgent: bool,
}

impl Text {
    /// The text for `item` at `now`.
    pub fn of(item: &InboxItem, now: i64) -> Self {
        let left = (item.approve_by - now).max(0);
        let time_left = countersign_desk::views::time_left(left);
        Text {
            summary: match &item.amount {
                Some(amount) => format!("{}: {amount}", item.title),
                None => format!("{}: {}", item.title, item.object),
            },
            body: format!(
                "{}\nAsked by {} · {time_left}",
                item.headline, item.requester
            ),
            urgent: left < URGENT_SECONDS,
        }
    }
}

/// What to do after the inbox changed: which requests to notify and which to withdraw.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// New requests to notify, in inbox order.
    pub show: Vec<String>,
    /// Requests whose notifications must be withdrawn.
    pub close: Vec<String>,
}

#[derive(Default)]
struct State {
    /// Requests already notified (or seen while paused): never notified again.
    seen: HashSet<String>,
    /// Notifications on screen, by request id.
    shown: HashMap<String, Arc<NotificationHandle>>,
    paused_until: Option<i64>,
    status: Option<NotificationStatus>,
}

impl State {
    /// Decides, and remembers what it decided; `seen` keeps only ids still in the inbox.
    fn plan(&mut self, inbox: &[InboxItem], now: i64) -> Plan {
        let ids: HashSet<&str> = inbox.iter().map(|i| i.id.as_str()).collect();
        let paused = self.paused_until.is_some_and(|until| now < until);
        let mut plan = Plan::default();
        for item in inbox {
            if self.seen.insert(item.id.clone()) && !paused {
                plan.show.push(item.id.clone());
            }
        }
        self.seen.retain(|id| ids.contains(id.as_str()));
        plan.close = self
            .shown
            .keys()
            .filter(|id| !ids.contains(id.as_str()))
            .cloned()
            .collect();
        plan
    }
}

/// The notifier.
pub struct Notifier {
    runtime: tokio::runtime::Handle,
    host: Weak<dyn NotifierHost>,
    state: Mutex<State>,
}

impl Notifier {
    /// A notifier whose effects go to `host`.
    pub fn new(runtime: tokio::runtime::Handle, host: Weak<dyn NotifierHost>) -> Arc<Self> {
        Arc::new(Notifier {
            runtime,
            host,
            state: Mutex::new(State::default()),
        })
    }

    /// The status now.
    pub fn status(&self, now: i64) -> NotificationStatus {
        let Ok(state) = self.state.lock() else {
            return NotificationStatus::On;
        };
        match (state.paused_until, &state.status) {
            (Some(until), _) if now < until => NotificationStatus::Paused { until },
            (_, Some(status @ NotificationStatus::Unavailable { .. })) => status.clone(),
            _ => NotificationStatus::On,
        }
    }

    /// Pauses until `until` (Unix seconds), or resumes with `None`. Requests that arrive while
    /// paused are not notified later.
    pub fn pause(&self, until: Option<i64>, now: i64) {
        if let Ok(mut state) = self.state.lock() {
            state.paused_until = until;
        }
        self.report(self.status(now));
    }

    fn report(&self, status: NotificationStatus) {
        if let Some(host) = self.host.upgrade() {
            host.status_changed(&status);
        }
    }

    /// The inbox changed: notify what is new, withdraw what left.
    pub fn sync(self: &Arc<Self>, inbox: &[InboxItem], now: i64) {
        let (plan, closing) = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            let plan = state.plan(inbox, now);
            let closing: Vec<Arc<NotificationHandle>> = plan
                .close
                .iter()
                .filter_map(|id| state.shown.remove(id))
                .collect();
            (plan, closing)
        };
        for handle in closing {
            self.runtime
                .spawn(async move { handle.close_async().await });
        }
        for id in plan.show {
            let Some(item) = inbox.iter().find(|i| i.id == id) else {
                continue;
            };
            let text = Text::of(item, now);
            let notifier = self.clone();
            self.runtime
                .spawn(async move { notifier.show(id, text).await });
        }
    }

    async fn show(self: Arc<Self>, id: String, text: Text) {
        let shown = Notification::new()
            .appname("Countersign")
            .summary(&text.summary)
            .body(&text.body)
            .action("default", "Review")
            .action(REVIEW, "Review")
            .urgency(if text.urgent {
                Urgency::Critical
            } else {
                Urgency::Normal
            })
            .timeout(Timeout::Never)
            .show_async()
            .await;
        let handle = match shown {
            Ok(handle) => Arc::new(handle),
            Err(e) => {
                let status = NotificationStatus::Unavailable {
                    message: e.to_string(),
                };
                if let Ok(mut state) = self.state.lock() {
                    state.status = Some(status.clone());
                }
                self.report(status);
                return;
            }
        };
        // Decided while it was being shown: withdraw it at once.
        let (kept, recovered) = match self.state.lock() {
            Ok(mut state) => {
                let recovered = state.status.take().is_some();
                let kept = state.seen.contains(&id);
                if kept {
                    state.shown.insert(id.clone(), handle.clone());
                }
                (kept, recovered)
            }
            Err(_) => return,
        };
        if !kept {
            handle.close_async().await;
            return;
        }
        if recovered {
            self.report(NotificationStatus::On);
        }
        let host = self.host.clone();
        handle
            .wait_for_action_async(move |response| {
                let review = match response {
                    NotificationResponse::Default => true,
                    NotificationResponse::Action(key) => key == REVIEW,
                    _ => false,
                };
                if let (true, Some(host)) = (review, host.upgrade()) {
                    host.open_request(&id);
                }
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, approve_by: i64) -> InboxItem {
        InboxItem {
            id: id.into(),
            title: "Send a payout".into(),
            headline: "Pay 25,000.00 EUR to vendor:4711".into(),
            amount: Some("25,000.00 EUR".into()),
            object: "vendor:4711".into(),
            requester: "alice@example.com (person)".into(),
            approve_by,
            fingerprint: "AAAA-BBBB-CCCC".into(),
        }
    }

    #[test]
    fn each_request_is_notified_once_and_pause_suppresses_for_good() {
        let mut state = State::default();
        let a = item("a", 1000);
        assert_eq!(state.plan(std::slice::from_ref(&a), 0).show, ["a"]);
        // A resync delivers the same list again: nothing new.
        assert!(state.plan(std::slice::from_ref(&a), 1).show.is_empty());
        state.paused_until = Some(100);
        let b = item("b", 1000);
        assert!(state.plan(&[a.clone(), b.clone()], 50).show.is_empty());
        // After the pause, what arrived during it is not notified late.
        let c = item("c", 1000);
        assert_eq!(state.plan(&[a, b, c], 150).show, ["c"]);
    }

    #[test]
    fn what_it_remembers_shrinks_with_the_inbox() {
        let mut state = State::default();
        let _ = state.plan(&[item("a", 1000), item("b", 1000)], 0);
        let _ = state.plan(&[item("b", 1000)], 1);
        assert_eq!(
            state.seen.len(),
            1,
            "a day of requests leaves nothing behind"
        );
        assert!(state.seen.contains("b"));
    }

    #[test]
    fn the_text_says_what_how_much_who_and_how_long() {
        let text = Text::of(&item("a", 3600 + 125), 0);
        assert_eq!(text.summary, "Send a payout: 25,000.00 EUR");
        assert_eq!(
            text.body,
            "Pay 25,000.00 EUR to vendor:4711\nAsked by alice@example.com (person) · 1 h 02 min left"
        );
        assert!(!text.urgent);
        let soon = Text::of(&item("a", 90), 0);
        assert!(soon.urgent);
        assert!(soon.body.ends_with("2 min left"));
        let mut no_amount = item("a", 600);
        no_amount.amount = None;
        assert_eq!(
            Text::of(&no_amount, 0).summary,
            "Send a payout: vendor:4711"
        );
    }
}
