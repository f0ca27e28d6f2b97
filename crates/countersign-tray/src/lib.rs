//! The Countersign tray agent: the tray, the event stream and the notifications, in a process
//! that links no web view, so an approver who keeps Countersign in the tray all day pays for
//! a small process only. The window app (`countersign-desktop`) is started on demand — from
//! the tray, a notification's "Review", or a link — and exits when its window closes.
//!
//! - [`model`]: what the tray shows, computed from the desk's snapshot;
//! - [`tray`]: that model published as a StatusNotifierItem (`ksni`, D-Bus only);
//! - [`notify`]: desktop notifications for new requests (notify-rust on the session bus);
//! - [`service`]: the D-Bus interface the window app calls ([`countersign_desk::agent`]);
//! - [`launch`]: starting the window app.
#![forbid(unsafe_code)]

pub mod launch;
pub mod model;
pub mod notify;
pub mod service;
pub mod tray;

use countersign_desk::agent::{NotificationStatus, BUS_NAME, OBJECT_PATH};
use countersign_desk::ceremony::{CeremonySink, CeremonyUpdate};
use countersign_desk::desk::{self, Desk, DeskConfig, Ui};
use countersign_desk::links::request_link;
use countersign_desk::views::Snapshot;
use futures_util::StreamExt;
use launch::Launcher;
use model::{TrayAction, TrayModel};
use notify::{Notifier, NotifierHost};
use std::sync::{Arc, Weak};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tray::Tray;

/// How often the tray's "time left" and the notification pause are brought up to date.
const TRAY_TICK: std::time::Duration = std::time::Duration::from_secs(30);

/// What the agent's loop acts on.
#[derive(Debug)]
pub enum Event {
    /// The desk's state changed.
    Changed(Box<Snapshot>),
    /// The notifications' status changed.
    Status(NotificationStatus),
    /// "Review" on a notification.
    OpenRequest(String),
    /// The window app enrolled or forgot this device.
    Reload,
    /// Quit (from the window app).
    Quit,
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No D-Bus session bus: the tray, the notifications and the keyring all need it.
    #[error(
        "no D-Bus session bus ({0}): Countersign needs one for its tray, notifications and the \
         keyring. Start it from a desktop session, or inside `dbus-run-session`."
    )]
    NoSessionBus(#[source] zbus::Error),
    /// The bus refused to serve the agent's interface or name.
    #[error("cannot serve the agent on the session bus: {0}")]
    Bus(#[source] zbus::Error),
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Another agent already runs in this session.
    AlreadyRunning,
    /// Quit from the tray or the window app.
    Quit,
    /// The session bus went away (the session ended).
    SessionEnded,
}

/// The desk's and the notifier's effects, sent to the loop.
struct Bridge {
    events: UnboundedSender<Event>,
}

impl CeremonySink for Bridge {
    fn ceremony(&self, _update: &CeremonyUpdate) {}
}

impl Ui for Bridge {
    fn changed(&self, snapshot: &Snapshot) {
        let _ = self.events.send(Event::Changed(Box::new(snapshot.clone())));
    }
}

impl NotifierHost for Bridge {
    fn open_request(&self, id: &str) {
        let _ = self.events.send(Event::OpenRequest(id.to_owned()));
    }

    fn status_changed(&self, status: &NotificationStatus) {
        let _ = self.events.send(Event::Status(status.clone()));
    }
}

/// Claims the agent's name; `false` when another agent has it.
async fn claim_name(bus: &zbus::Connection) -> Result<bool, AgentError> {
    use zbus::fdo::{RequestNameFlags, RequestNameReply};
    match bus
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
        .await
    {
        Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => Ok(true),
        Ok(RequestNameReply::Exists | RequestNameReply::InQueue) | Err(zbus::Error::NameTaken) => {
            Ok(false)
        }
        Err(e) => Err(AgentError::Bus(e)),
    }
}

/// The agent's state inside its loop.
struct Agent {
    bus: zbus::Connection,
    desk: Arc<Desk>,
    notifier: Arc<Notifier>,
    tray: Option<Tray>,
    launcher: Launcher,
    last: Option<Snapshot>,
}

impl Agent {
    async fn refresh_tray(&mut self) {
        let Some(tray) = &self.tray else { return };
        let mut snapshot = self.last.clone().unwrap_or_else(|| self.desk.snapshot());
        snapshot.now = desk::now();
        let status = self.notifier.status(snapshot.now);
        tray.show(TrayModel::of(&snapshot, &status, &model::local_clock))
            .await;
    }

    fn open(&self, request: Option<&str>) {
        let link = match request {
            Some(id) => match request_link(id) {
                Some(link) => Some(link),
                None => return eprintln!("countersign-tray: refused to open request {id:?}"),
            },
            None => None,
        };
        if let Err(error) = self.launcher.open(link.as_deref()) {
            eprintln!("countersign-tray: {error}");
        }
    }

    /// Handles one event; `false` ends the loop.
    async fn on_event(&mut self, event: Event) -> bool {
        match event {
            Event::Changed(snapshot) => {
                self.notifier.sync(&snapshot.inbox, snapshot.now);
                self.last = Some(*snapshot);
                self.refresh_tray().await;
            }
            Event::Status(status) => {
                service::announce_status(&self.bus, &status).await;
                self.refresh_tray().await;
            }
            Event::OpenRequest(id) => self.open(Some(&id)),
            Event::Reload => self.desk.reload(),
            Event::Quit => return false,
        }
        true
    }

    /// Handles a tray click; `false` ends the loop.
    fn on_action(&self, action: TrayAction) -> bool {
        let now = desk::now();
        match action {
            TrayAction::Open => self.open(None),
            TrayAction::OpenRequest(id) => self.open(Some(&id)),
            TrayAction::PauseHour => self.notifier.pause(Some(now + 3600), now),
            TrayAction::PauseTomorrow => {
                if let Some(until) = model::tomorrow_morning(now) {
                    self.notifier.pause(Some(until), now);
                }
            }
            TrayAction::Resume => self.notifier.pause(None, now),
            TrayAction::Quit => return false,
        }
        true
    }
}

/// Runs the agent until it quits or the session ends. Call inside a Tokio runtime.
pub async fn run(config: DeskConfig, launcher: Launcher) -> Result<Ended, AgentError> {
    let runtime = tokio::runtime::Handle::current();
    let bus = zbus::Connection::session()
        .await
        .map_err(AgentError::NoSessionBus)?;
    let (events, mut received) = unbounded_channel();
    let bridge = Arc::new(Bridge {
        events: events.clone(),
    });
    let host: Weak<dyn NotifierHost> = Arc::downgrade(&bridge) as _;
    let notifier = Notifier::new(runtime.clone(), host);
    let served = service::AgentService {
        notifier: notifier.clone(),
        events,
    };
    bus.object_server()
        .at(OBJECT_PATH, served)
        .await
        .map_err(AgentError::Bus)?;
    if !claim_name(&bus).await? {
        return Ok(Ended::AlreadyRunning);
    }
    let desk = Desk::open(config, bridge.clone(), runtime);
    let (actions, mut clicked) = unbounded_channel();
    let first = TrayModel::of(
        &desk.snapshot(),
        &notifier.status(desk::now()),
        &model::local_clock,
    );
    let tray = match Tray::publish(first, actions).await {
        Ok(tray) => Some(tray),
        Err(error) => {
            eprintln!("countersign-tray: {error}; notifications still work");
            None
        }
    };
    let mut agent = Agent {
        bus: bus.clone(),
        desk,
        notifier,
        tray,
        launcher,
        last: None,
    };
    agent.desk.start();
    let mut messages = zbus::MessageStream::from(&bus);
    let mut tick = tokio::time::interval(TRAY_TICK);
    let ended = loop {
        tokio::select! {
            Some(event) = received.recv() => {
                if !agent.on_event(event).await {
                    break Ended::Quit;
                }
            }
            Some(action) = clicked.recv() => {
                if !agent.on_action(action) {
                    break Ended::Quit;
                }
            }
            _ = tick.tick() => agent.refresh_tray().await,
            message = messages.next() => {
                if message.is_none() {
                    break Ended::SessionEnded;
                }
            }
        }
    };
    if ended == Ended::Quit {
        service::announce_quit(&bus).await;
    }
    if let Some(tray) = agent.tray.take() {
        tray.remove().await;
    }
    Ok(ended)
}
