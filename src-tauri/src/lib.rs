//! The Countersign desktop approver: a thin Tauri 2 shell over `countersign-approver`.
//!
//! - [`desk`]: the state and logic behind every command (testable without a window);
//! - [`stream`]: the task that follows the server's event stream into the desk;
//! - [`ceremony`]: one security-key operation at a time, its progress, PIN and cancel;
//! - [`commands`]: the IPC commands, thin wrappers over the desk;
//! - [`notify`]: desktop notifications for new requests (notify-rust on the session bus);
//! - [`tray`]: the tray icon and menu (what waits, the connection, pause, quit);
//! - [`window`]: the main window, destroyed when closed and created again on demand;
//! - [`links`]: `countersign://` links, validated strictly;
//! - [`views`]: what the UI receives; [`history`]: this device's decisions;
//! - [`error`]: the one typed error that crosses the IPC boundary.
#![forbid(unsafe_code)]

pub mod ceremony;
pub mod commands;
pub mod desk;
pub mod error;
pub mod history;
pub mod links;
pub mod notify;
pub mod stream;
pub mod tray;
pub mod views;
pub mod window;

use ceremony::{CeremonySink, CeremonyUpdate};
use desk::{Desk, DeskConfig, Ui};
use links::{Link, LinkError};
use notify::{NotificationStatus, Notifier, NotifierHost};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use tauri::{Emitter, Manager};
use tray::{Tray, TrayAction, TrayModel};
use views::Snapshot;

/// How often the tray's "time left" and the notification pause are brought up to date.
const TRAY_TICK: std::time::Duration = std::time::Duration::from_secs(30);

/// The app's side of the desk and the notifier: events the window listens to, notifications,
/// the tray, and opening a request's screen from a notification or the tray.
pub struct Shell {
    app: tauri::AppHandle,
    notifier: OnceLock<Arc<Notifier>>,
    /// Models for the tray, applied on a thread of their own: a tray update waits for the main
    /// thread, which must never wait for it in turn.
    tray: OnceLock<mpsc::Sender<TrayModel>>,
    last: Mutex<Option<Snapshot>>,
}

impl Shell {
    /// The notifier (set once at start-up).
    pub fn notifier(&self) -> Option<&Arc<Notifier>> {
        self.notifier.get()
    }

    /// Whether a tray exists (then closing the window keeps the app running).
    pub fn has_tray(&self) -> bool {
        self.tray.get().is_some()
    }

    /// Brings the tray up to date with `snapshot`.
    fn refresh_tray(&self, snapshot: &Snapshot) {
        let Some(tray) = self.tray.get() else {
            return;
        };
        let status = self
            .notifier
            .get()
            .map_or(NotificationStatus::On, |n| n.status(snapshot.now));
        let _ = tray.send(TrayModel::of(snapshot, &status, &tray::local_clock));
    }

    fn remember(&self, snapshot: &Snapshot) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot.clone());
    }

    fn last(&self) -> Option<Snapshot> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl CeremonySink for Shell {
    fn ceremony(&self, update: &CeremonyUpdate) {
        let _ = self.app.emit("ceremony", update);
    }
}

impl Ui for Shell {
    fn changed(&self, snapshot: &Snapshot) {
        let _ = self.app.emit("snapshot", snapshot);
        if let Some(notifier) = self.notifier.get() {
            notifier.sync(&snapshot.inbox, snapshot.now);
        }
        self.remember(snapshot);
        self.refresh_tray(snapshot);
    }
}

impl NotifierHost for Shell {
    fn open_request(&self, id: &str) {
        let id = id.to_owned();
        window::show_with(&self.app, |p| p.request = Some(id));
    }

    fn status_changed(&self, status: &NotificationStatus) {
        let _ = self.app.emit("notifications", status);
        if let Some(mut snapshot) = self.last() {
            snapshot.now = desk::now();
            self.refresh_tray(&snapshot);
        }
    }
}

/// Why the app could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// No D-Bus session bus: one instance, notifications and the keyring all need it.
    #[error(
        "no D-Bus session bus ({0}): Countersign needs one to keep to a single instance, show \
         notifications and reach the keyring. Start it from a desktop session, or inside \
         `dbus-run-session`."
    )]
    NoSessionBus(String),
    /// Tauri could not start (no display, no web view).
    #[error("cannot start the window: {0}")]
    Tauri(#[from] tauri::Error),
}

/// How this launch was asked to start.
#[derive(Clone, Debug, Default)]
pub struct LaunchOptions {
    /// Start in the tray without a window (start at login does this).
    pub hidden: bool,
    /// Links given on the command line (`countersign://…`).
    pub links: Vec<String>,
    /// Turn start-at-login on (the demo, when asked).
    pub start_at_login: bool,
    /// Register this binary as the `countersign://` link handler, then quit.
    pub register_links: bool,
}

/// Follows a link: a request link shows that request (if this approver has it), an
/// enrollment link fills the enrollment screen (nothing is spent or saved before the person
/// confirms the server and touches the key), anything else is refused and said so.
fn follow(app: &tauri::AppHandle, link: Result<Link, LinkError>) {
    let enrolled = app
        .try_state::<Arc<Desk>>()
        .is_some_and(|desk| desk.snapshot().enrolled.is_some());
    match link {
        Ok(Link::Request { id }) => window::show_with(app, |p| p.request = Some(id)),
        Ok(Link::Enroll { .. }) if enrolled => window::show_with(app, |p| {
            p.notice = Some(
                "An enrollment link was opened, but this device is already enrolled. Forget it \
                 in Settings first to enroll again."
                    .into(),
            )
        }),
        Ok(Link::Enroll { code, server }) => {
            if let Some(prefill) = app.try_state::<commands::PrefillSlot>() {
                prefill.set(commands::Prefill {
                    server: server.or_else(|| prefill.get().server),
                    code: Some(code),
                });
            }
            window::show_with(app, |p| p.prefill_changed = true);
        }
        Err(error) => {
            eprintln!("countersign-desktop: refused a link: {error}");
            window::show_with(app, |p| {
                p.notice = Some(format!("A link was refused: {error}."))
            });
        }
    }
}

/// A second launch: its links are followed, and without links it shows the window.
fn second_launch(app: &tauri::AppHandle, argv: &[String]) {
    let links = links::in_arguments(argv);
    if links.is_empty() {
        window::show_with(app, |_| {});
    }
    for link in links {
        follow(app, link);
    }
}

fn on_tray_action(app: &tauri::AppHandle, action: TrayAction) {
    let now = desk::now();
    let notifier = app
        .try_state::<Arc<Shell>>()
        .and_then(|s| s.notifier().cloned());
    match action {
        TrayAction::Open => window::show_with(app, |_| {}),
        TrayAction::OpenRequest(id) => window::show_with(app, |p| p.request = Some(id)),
        TrayAction::PauseHour => {
            if let Some(n) = notifier {
                n.pause(Some(now + 3600), now);
            }
        }
        TrayAction::PauseTomorrow => {
            if let (Some(n), Some(until)) = (notifier, tray::tomorrow_morning(now)) {
                n.pause(Some(until), now);
            }
        }
        TrayAction::Resume => {
            if let Some(n) = notifier {
                n.pause(None, now);
            }
        }
        TrayAction::Quit => app.exit(0),
    }
}

/// Builds the tray and its updater thread; without a tray the app still runs (and quits when
/// its window closes).
fn start_tray(app: &tauri::AppHandle, shell: &Shell) {
    let tray = match Tray::build(app, on_tray_action) {
        Ok(tray) => tray,
        Err(error) => {
            eprintln!("countersign-desktop: {error}; closing the window will quit");
            return;
        }
    };
    let (sender, models) = mpsc::channel::<TrayModel>();
    let spawned = std::thread::Builder::new()
        .name("tray".into())
        .spawn(move || {
            while let Ok(mut model) = models.recv() {
                // Only the newest model matters.
                while let Ok(newer) = models.try_recv() {
                    model = newer;
                }
                if let Err(error) = tray.show(model) {
                    eprintln!("countersign-desktop: cannot update the tray: {error}");
                }
            }
        });
    match spawned {
        Ok(_) => {
            let _ = shell.tray.set(sender);
        }
        Err(error) => eprintln!("countersign-desktop: no tray: {error}"),
    }
}

/// Keeps the tray's times current.
fn tick_tray(app: tauri::AppHandle, runtime: &tokio::runtime::Handle) {
    runtime.spawn(async move {
        let mut every = tokio::time::interval(TRAY_TICK);
        loop {
            every.tick().await;
            if let (Some(desk), Some(shell)) =
                (app.try_state::<Arc<Desk>>(), app.try_state::<Arc<Shell>>())
            {
                shell.refresh_tray(&desk.snapshot());
            }
        }
    });
}

/// Turns start-at-login on or off.
pub fn set_start_at_login(app: &tauri::AppHandle, on: bool) -> Result<(), error::ShellError> {
    use tauri_plugin_autostart::ManagerExt;
    let manager = app.autolaunch();
    let done = if on {
        manager.enable()
    } else {
        manager.disable()
    };
    done.map_err(|e| error::ShellError::Internal {
        message: format!("cannot change start at login: {e}"),
    })
}

/// Runs the app until it quits.
pub fn run(
    config: DeskConfig,
    prefill: commands::Prefill,
    options: LaunchOptions,
    started: std::time::Instant,
) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    // The single-instance plugin needs the session bus (and quietly runs a second instance
    // without one): find out first, and say so.
    let bus = runtime
        .block_on(zbus::Connection::session())
        .map_err(|e| RunError::NoSessionBus(e.to_string()))?;
    drop(bus);
    let handle = runtime.handle().clone();
    tauri::async_runtime::set(handle.clone());
    let first_links: Vec<String> = std::iter::once(String::new())
        .chain(options.links.iter().cloned())
        .collect();
    let app = tauri::Builder::default()
        // First, so that a second launch hands over before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            second_launch(app, &argv)
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .manage(commands::PrefillSlot::new(prefill))
        .manage(window::PendingSlot::default())
        .manage(commands::Startup {
            started,
            reported: Default::default(),
        })
        .setup(move |app| {
            if options.register_links {
                use tauri_plugin_deep_link::DeepLinkExt;
                app.deep_link().register_all()?;
                eprintln!("countersign-desktop: registered as the countersign:// link handler");
                app.handle().exit(0);
                return Ok(());
            }
            if options.start_at_login {
                set_start_at_login(app.handle(), true)?;
            }
            let shell = Arc::new(Shell {
                app: app.handle().clone(),
                notifier: OnceLock::new(),
                tray: OnceLock::new(),
                last: Mutex::new(None),
            });
            let host: std::sync::Weak<dyn NotifierHost> = Arc::downgrade(&shell) as _;
            let _ = shell.notifier.set(Notifier::new(handle.clone(), host));
            start_tray(app.handle(), &shell);
            let desk = Desk::open(config, shell.clone(), handle.clone());
            app.manage(desk.clone());
            app.manage(shell.clone());
            desk.start();
            tick_tray(app.handle().clone(), &handle);
            let links = links::in_arguments(&first_links);
            if !options.hidden || !links.is_empty() || !shell.has_tray() {
                window::create(app.handle())?;
            }
            for link in links {
                follow(app.handle(), link);
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::snapshot,
            commands::prefill,
            commands::identify,
            commands::enroll,
            commands::request,
            commands::decide,
            commands::submit_pin,
            commands::cancel_ceremony,
            commands::history,
            commands::settings,
            commands::unenroll,
            commands::painted,
            commands::notification_status,
            commands::pause_notifications,
            commands::take_pending,
            commands::set_start_at_login,
            commands::quit,
        ])
        .build(tauri::generate_context!("../tauri.conf.json"))?;
    app.run(|app, event| {
        // Closing the window destroys it; with a tray the app keeps running (quit from the
        // tray). `code` is set when the app itself asked to exit.
        if let tauri::RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            if app.try_state::<Arc<Shell>>().is_some_and(|s| s.has_tray()) {
                api.prevent_exit();
            }
        }
    });
    drop(runtime);
    Ok(())
}
