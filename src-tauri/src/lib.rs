//! The Countersign desktop approver's window: a thin Tauri 2 shell over `countersign-desk`.
//! It exists only while its window is open; the tray, the notifications and the event stream
//! between windows live in the tray agent (`countersign-tray`), which starts this app on demand.
//!
//! - [`commands`]: the IPC commands, thin wrappers over the desk;
//! - [`window`]: the main window; closing it ends this process (the agent stays);
//! - [`agent_link`]: starting and talking to the tray agent;
//! - [`webkit_env`]: what WebKitGTK is told at start (memory defaults, the web process's sandbox);
//! - the desk, ceremony, links, views, history and error modules come from
//!   `countersign-desk` and are re-exported here.
#![forbid(unsafe_code)]

pub mod agent_link;
pub mod commands;
pub mod webkit_env;
pub mod window;

pub use countersign_desk::{ceremony, desk, error, history, links, views};

use agent_link::AgentLink;
use ceremony::{CeremonySink, CeremonyUpdate};
use desk::{Desk, DeskConfig, Ui};
use links::{Link, LinkError};
use std::sync::Arc;
use tauri::{Emitter, Manager};
use views::Snapshot;

/// The app's side of the desk: events the window listens to.
pub struct Shell {
    app: tauri::AppHandle,
}

impl CeremonySink for Shell {
    fn ceremony(&self, update: &CeremonyUpdate) {
        let _ = self.app.emit("ceremony", update);
    }
}

impl Ui for Shell {
    fn changed(&self, snapshot: &Snapshot) {
        let _ = self.app.emit("snapshot", snapshot);
    }
}

/// Why the app could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// No D-Bus session bus: one instance, the tray agent and the keyring all need it.
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
    /// Start only the tray agent, without a window (start at login does this).
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
    let agent = Arc::new(AgentLink::new(bus));
    if options.hidden && options.links.is_empty() && !options.register_links {
        // At login: the agent is all that runs until a window is asked for.
        if runtime.block_on(agent.ensure_running(&agent_link::agent_command(&config))) {
            return Ok(());
        }
        eprintln!("countersign-desktop: no tray agent; opening the window instead");
    }
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
            });
            let agent_command = agent_link::agent_command(&config);
            let desk = Desk::open(config, shell.clone(), handle.clone());
            app.manage(desk.clone());
            app.manage(agent.clone());
            desk.start();
            let started = agent.clone();
            let app_handle = app.handle().clone();
            handle.spawn(async move {
                if started.ensure_running(&agent_command).await {
                    started.follow(app_handle).await;
                }
            });
            let links = links::in_arguments(&first_links);
            window::create(app.handle())?;
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
    // Closing the window ends this process; the agent keeps the tray.
    app.run(|_, _| {});
    drop(runtime);
    Ok(())
}
