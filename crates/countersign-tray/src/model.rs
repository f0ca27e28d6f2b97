//! What the tray shows, on every platform's terms. Many Linux panels (AppIndicator hosts)
//! send no clicks on the icon and show no tooltip, so the count and the pending requests are
//! menu entries, and the icon switches between an idle, a badged and a warning variant.
//!
//! [`TrayModel`] is what the tray should show, computed from the desk's snapshot (tested
//! without a tray); [`crate::tray`] publishes a model on the bus.

use countersign_desk::agent::NotificationStatus;
use countersign_desk::views::{time_left, Connection, Snapshot};

/// At most this many requests are listed; the rest are "and N more".
pub const MAX_ITEMS: usize = 8;
/// A long refusal message is cut to this many characters in the menu.
const MAX_MESSAGE: usize = 80;

/// Which of the three icons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrayIconKind {
    /// Nothing waits (or not enrolled).
    Idle,
    /// Something waits: the badged icon.
    Waiting,
    /// Not connected to the server (the list may be stale): the warning icon.
    Offline,
}

impl TrayIconKind {
    /// The icon as a PNG file (the PNGs in `icons/`, rendered by `icons/render.sh`).
    pub fn png(self) -> &'static [u8] {
        match self {
            TrayIconKind::Idle => include_bytes!("../../../icons/tray-idle.png"),
            TrayIconKind::Waiting => include_bytes!("../../../icons/tray-waiting.png"),
            TrayIconKind::Offline => include_bytes!("../../../icons/tray-offline.png"),
        }
    }
}

/// What a menu entry does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrayAction {
    /// Show the window (recreating it if it was closed), on the inbox.
    Open,
    /// Show this request's screen.
    OpenRequest(String),
    /// Pause notifications for an hour.
    PauseHour,
    /// Pause notifications until tomorrow 08:00 local time.
    PauseTomorrow,
    /// Resume notifications.
    Resume,
    /// Quit the app.
    Quit,
}

const REQUEST_PREFIX: &str = "request:";

impl TrayAction {
    /// The menu id that carries this action.
    pub fn id(&self) -> String {
        match self {
            TrayAction::Open => "open".into(),
            TrayAction::OpenRequest(id) => format!("{REQUEST_PREFIX}{id}"),
            TrayAction::PauseHour => "pause-hour".into(),
            TrayAction::PauseTomorrow => "pause-tomorrow".into(),
            TrayAction::Resume => "resume".into(),
            TrayAction::Quit => "quit".into(),
        }
    }

    /// The action behind a menu id (`None` for entries that only inform).
    pub fn from_id(id: &str) -> Option<TrayAction> {
        Some(match id {
            "open" | "more" => TrayAction::Open,
            "pause-hour" => TrayAction::PauseHour,
            "pause-tomorrow" => TrayAction::PauseTomorrow,
            "resume" => TrayAction::Resume,
            "quit" => TrayAction::Quit,
            _ => TrayAction::OpenRequest(id.strip_prefix(REQUEST_PREFIX)?.to_owned()),
        })
    }
}

/// One pending request's entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrayEntry {
    /// The menu id (`request:<id>`, or `more`).
    pub id: String,
    /// "Payout change · EUR 12,500.00 · 14 min left".
    pub label: String,
}

/// Everything the tray shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrayModel {
    /// Which icon.
    pub icon: TrayIconKind,
    /// "3 requests waiting", "Nothing waiting", "Not enrolled".
    pub headline: String,
    /// The pending requests, soonest deadline first, then "and N more" if any.
    pub entries: Vec<TrayEntry>,
    /// The connection, in words.
    pub connection: String,
    /// The notifications' state, in words.
    pub notifications: String,
    /// Whether "Resume" applies.
    pub paused: bool,
    /// Whether pausing applies (not when notifications are unavailable).
    pub can_pause: bool,
    /// The item's title and tooltip, where the platform shows them: "Countersign: 2 requests
    /// waiting", or the connection's trouble.
    pub tooltip: String,
}

fn requests(n: usize) -> String {
    match n {
        0 => "Nothing waiting".into(),
        1 => "1 request waiting".into(),
        n => format!("{n} requests waiting"),
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl TrayModel {
    /// What the tray shows for `snapshot` and `notifications`; `clock` formats a Unix time as
    /// local "HH:MM".
    pub fn of(
        snapshot: &Snapshot,
        notifications: &NotificationStatus,
        clock: &dyn Fn(i64) -> String,
    ) -> TrayModel {
        let enrolled = snapshot.enrolled.is_some();
        let (connection, offline) = match &snapshot.connection {
            Connection::NotEnrolled => ("Not enrolled".to_owned(), false),
            Connection::Connecting => ("Connecting…".to_owned(), false),
            Connection::Connected { .. } => ("Connected".to_owned(), false),
            Connection::Reconnecting { offline_since, .. } => (
                format!("Offline since {}, reconnecting", clock(*offline_since)),
                true,
            ),
            Connection::Refused { message } => (
                format!("Refused by the server: {}", cut(message, MAX_MESSAGE)),
                true,
            ),
        };
        let waiting = snapshot.inbox.len();
        let mut entries: Vec<TrayEntry> = snapshot
            .inbox
            .iter()
            .take(MAX_ITEMS)
            .map(|item| TrayEntry {
                id: TrayAction::OpenRequest(item.id.clone()).id(),
                label: format!(
                    "{} · {} · {}",
                    item.title,
                    item.amount.as_deref().unwrap_or(&item.object),
                    time_left(item.approve_by - snapshot.now)
                ),
            })
            .collect();
        if waiting > MAX_ITEMS {
            entries.push(TrayEntry {
                id: "more".into(),
                label: format!("and {} more…", waiting - MAX_ITEMS),
            });
        }
        let headline = if enrolled {
            requests(waiting)
        } else {
            "Not enrolled".into()
        };
        let icon = if enrolled && offline {
            TrayIconKind::Offline
        } else if waiting > 0 {
            TrayIconKind::Waiting
        } else {
            TrayIconKind::Idle
        };
        let (notifications, paused, can_pause) = match notifications {
            NotificationStatus::On => ("Notifications on".to_owned(), false, true),
            NotificationStatus::Paused { until } => (
                format!("Notifications paused until {}", clock(*until)),
                true,
                true,
            ),
            NotificationStatus::Unavailable { .. } => {
                ("Notifications unavailable".to_owned(), false, false)
            }
        };
        let tooltip = if icon == TrayIconKind::Offline {
            format!("Countersign: {connection}")
        } else {
            format!("Countersign: {}", headline.to_lowercase())
        };
        TrayModel {
            icon,
            headline,
            entries,
            connection,
            notifications,
            paused,
            can_pause,
            tooltip,
        }
    }
}

/// "HH:MM" in local time.
pub fn local_clock(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string())
        .unwrap_or_default()
}

/// Tomorrow 08:00 local time, as Unix seconds (what "Pause until tomorrow" means, as in the
/// window's settings).
pub fn tomorrow_morning(now: i64) -> Option<i64> {
    use chrono::TimeZone;
    let today = chrono::DateTime::from_timestamp(now, 0)?
        .with_timezone(&chrono::Local)
        .date_naive();
    let morning = today.succ_opt()?.and_hms_opt(8, 0, 0)?;
    chrono::Local
        .from_local_datetime(&morning)
        .earliest()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_desk::views::{EnrolledView, InboxItem};

    fn item(id: &str, amount: Option<&str>, left: i64) -> InboxItem {
        InboxItem {
            id: id.into(),
            title: "Payout change".into(),
            headline: "Change the payout account".into(),
            amount: amount.map(String::from),
            object: "vendor/acme".into(),
            requester: "alice (person)".into(),
            approve_by: 1_000 + left,
            fingerprint: "AB-CD".into(),
        }
    }

    fn snapshot(connection: Connection, inbox: Vec<InboxItem>) -> Snapshot {
        Snapshot {
            enrolled: Some(EnrolledView {
                approver_id: "bob".into(),
                server: "http://127.0.0.1:1".into(),
                soft_key: false,
            }),
            profile_problem: None,
            connection,
            inbox,
            refused: vec![],
            audit_alarm: None,
            now: 1_000,
        }
    }

    fn clock(t: i64) -> String {
        format!("T{t}")
    }

    #[test]
    fn waiting_requests_are_counted_listed_and_badged() {
        let snap = snapshot(
            Connection::Connected { since: 1 },
            vec![
                item("req_a", Some("EUR 12,500.00"), 840),
                item("req_b", None, 3_900),
            ],
        );
        let model = TrayModel::of(&snap, &NotificationStatus::On, &clock);
        assert_eq!(model.icon, TrayIconKind::Waiting);
        assert_eq!(model.headline, "2 requests waiting");
        assert_eq!(model.tooltip, "Countersign: 2 requests waiting");
        assert_eq!(
            model.entries,
            vec![
                TrayEntry {
                    id: "request:req_a".into(),
                    label: "Payout change · EUR 12,500.00 · 14 min left".into()
                },
                TrayEntry {
                    id: "request:req_b".into(),
                    label: "Payout change · vendor/acme · 1 h 05 min left".into()
                },
            ]
        );
        assert_eq!(model.connection, "Connected");
        assert!(!model.paused && model.can_pause);
    }

    #[test]
    fn nothing_waiting_is_the_idle_icon_and_offline_is_the_warning_icon() {
        let snap = snapshot(Connection::Connected { since: 1 }, vec![]);
        let model = TrayModel::of(&snap, &NotificationStatus::On, &clock);
        assert_eq!(
            (model.icon, model.headline.as_str(), model.tooltip.as_str()),
            (
                TrayIconKind::Idle,
                "Nothing waiting",
                "Countersign: nothing waiting"
            )
        );
        let offline = Connection::Reconnecting {
            retry_at: 1_005,
            offline_since: 990,
        };
        let model = TrayModel::of(
            &snapshot(offline, vec![item("req_a", None, 60)]),
            &NotificationStatus::On,
            &clock,
        );
        assert_eq!(model.icon, TrayIconKind::Offline);
        assert_eq!(model.connection, "Offline since T990, reconnecting");
        assert_eq!(
            model.tooltip,
            "Countersign: Offline since T990, reconnecting"
        );
        let refused = Connection::Refused {
            message: "x".repeat(200),
        };
        let model = TrayModel::of(&snapshot(refused, vec![]), &NotificationStatus::On, &clock);
        assert_eq!(model.icon, TrayIconKind::Offline);
        assert_eq!(
            model.connection.chars().count(),
            "Refused by the server: ".len() + 80
        );
    }

    #[test]
    fn more_than_eight_requests_end_in_and_n_more() {
        let inbox = (0..11)
            .map(|i| item(&format!("req_{i}"), None, 600))
            .collect();
        let model = TrayModel::of(
            &snapshot(Connection::Connected { since: 1 }, inbox),
            &NotificationStatus::On,
            &clock,
        );
        assert_eq!(model.headline, "11 requests waiting");
        assert_eq!(model.entries.len(), MAX_ITEMS + 1);
        let last = model.entries.last().unwrap();
        assert_eq!(
            (last.id.as_str(), last.label.as_str()),
            ("more", "and 3 more…")
        );
        assert_eq!(TrayAction::from_id(&last.id), Some(TrayAction::Open));
    }

    #[test]
    fn pause_state_and_not_enrolled() {
        let snap = snapshot(Connection::Connected { since: 1 }, vec![]);
        let model = TrayModel::of(&snap, &NotificationStatus::Paused { until: 5_000 }, &clock);
        assert_eq!(model.notifications, "Notifications paused until T5000");
        assert!(model.paused && model.can_pause);
        let model = TrayModel::of(
            &snap,
            &NotificationStatus::Unavailable {
                message: "no server".into(),
            },
            &clock,
        );
        assert_eq!(model.notifications, "Notifications unavailable");
        assert!(!model.paused && !model.can_pause);
        let mut snap = snap;
        snap.enrolled = None;
        snap.connection = Connection::NotEnrolled;
        let model = TrayModel::of(&snap, &NotificationStatus::On, &clock);
        assert_eq!(
            (model.headline.as_str(), model.icon),
            ("Not enrolled", TrayIconKind::Idle)
        );
    }

    #[test]
    fn menu_ids_round_trip() {
        for action in [
            TrayAction::Open,
            TrayAction::OpenRequest("req_x".into()),
            TrayAction::PauseHour,
            TrayAction::PauseTomorrow,
            TrayAction::Resume,
            TrayAction::Quit,
        ] {
            assert_eq!(TrayAction::from_id(&action.id()), Some(action));
        }
        assert_eq!(TrayAction::from_id("headline"), None);
        assert_eq!(TrayAction::from_id("connection"), None);
    }

    #[test]
    fn tomorrow_morning_is_after_now_and_within_two_days() {
        let now = 1_790_000_000;
        let t = tomorrow_morning(now).unwrap();
        assert!(t > now && t <= now + 2 * 86_400, "{t}");
        assert_eq!(local_clock(t), "08:00");
    }
}
