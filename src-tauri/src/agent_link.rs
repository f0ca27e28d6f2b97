//! The window app's side of the tray agent (`countersign-tray`, see
//! [`countersign_desk::agent`]): the agent holds the tray and the notifications and outlives
//! the window, so this process — and its web view — exists only while the window is open.
//!
//! The window starts the agent when none runs, tells it when the profile changed, asks it about
//! notifications, and closes when the agent quits.

use countersign_desk::agent::{AgentProxy, NotificationStatus, BUS_NAME};
use countersign_desk::desk::DeskConfig;
use countersign_desk::error::ShellError;
use futures_util::StreamExt;
use std::ffi::OsString;
use std::time::Duration;
use tauri::Emitter;

/// How long a freshly started agent has to appear on the bus.
const AGENT_START: Duration = Duration::from_secs(5);

/// The connection to the agent.
pub struct AgentLink {
    bus: zbus::Connection,
}

/// The agent's command line: `countersign-tray` beside this program, with the same profile,
/// and this program (with the same options) as the window it starts.
pub fn agent_command(config: &DeskConfig) -> Vec<OsString> {
    let me = std::env::current_exe().unwrap_or_else(|_| "countersign-desktop".into());
    let agent = me.with_file_name("countersign-tray");
    let mut key_file: Vec<OsString> = Vec::new();
    if let Some(file) = &config.insecure_device_key_file {
        key_file.extend(["--insecure-device-key-file".into(), file.into()]);
    }
    let mut line: Vec<OsString> = vec![
        agent.into(),
        "--profile".into(),
        config.profile_path.clone().into(),
    ];
    line.extend(key_file.iter().cloned());
    line.extend([
        "--".into(),
        me.into(),
        "--profile".into(),
        config.profile_path.clone().into(),
        "--demo-key".into(),
        config.demo_key_path.clone().into(),
        "--usb-timeout-seconds".into(),
        config.usb_timeout.as_secs().to_string().into(),
        "--demo-key-touch-ms".into(),
        config.demo_touch.as_millis().to_string().into(),
    ]);
    line.extend(key_file);
    line
}

fn no_agent(why: impl std::fmt::Display) -> NotificationStatus {
    NotificationStatus::Unavailable {
        message: format!("the tray agent is not running ({why}), so nothing is notified"),
    }
}

impl AgentLink {
    /// A link over `bus`.
    pub fn new(bus: zbus::Connection) -> AgentLink {
        AgentLink { bus }
    }

    async fn proxy(&self) -> zbus::Result<AgentProxy<'static>> {
        AgentProxy::new(&self.bus).await
    }

    async fn running(&self) -> bool {
        let Ok(dbus) = zbus::fdo::DBusProxy::new(&self.bus).await else {
            return false;
        };
        match zbus::names::BusName::try_from(BUS_NAME) {
            Ok(name) => dbus.name_has_owner(name).await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Starts the agent unless one runs; `true` once one is on the bus.
    pub async fn ensure_running(&self, command: &[OsString]) -> bool {
        if self.running().await {
            return true;
        }
        let Some((program, args)) = command.split_first() else {
            return false;
        };
        match std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .spawn()
        {
            Ok(mut child) => {
                // Reaped if it ends while this process lives (a second agent leaves at once).
                let _ = std::thread::Builder::new()
                    .name("agent".into())
                    .spawn(move || child.wait());
            }
            Err(error) => {
                eprintln!("countersign-desktop: cannot start the tray agent {program:?}: {error}");
                return false;
            }
        }
        let deadline = tokio::time::Instant::now() + AGENT_START;
        while tokio::time::Instant::now() < deadline {
            if self.running().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("countersign-desktop: the tray agent did not appear on the session bus");
        false
    }

    /// Tells the agent that the profile changed.
    pub async fn reload(&self) {
        let reloaded = match self.proxy().await {
            Ok(agent) => agent.reload().await,
            Err(e) => Err(e),
        };
        if let Err(error) = reloaded {
            eprintln!("countersign-desktop: the tray agent did not take the new profile: {error}");
        }
    }

    /// The notifications' status, as the agent reports it.
    pub async fn notification_status(&self) -> NotificationStatus {
        match self.proxy().await {
            Ok(agent) => match agent.notification_status().await {
                Ok(wire) => NotificationStatus::from_wire(&wire),
                Err(e) => no_agent(e),
            },
            Err(e) => no_agent(e),
        }
    }

    /// Pauses notifications until `until`, or resumes them.
    pub async fn pause(&self, until: Option<i64>) -> Result<NotificationStatus, ShellError> {
        let unreachable = |e: zbus::Error| ShellError::Internal {
            message: format!("the tray agent, which shows notifications, did not answer: {e}"),
        };
        let agent = self.proxy().await.map_err(unreachable)?;
        let wire = agent
            .pause_notifications(until.unwrap_or(0))
            .await
            .map_err(unreachable)?;
        Ok(NotificationStatus::from_wire(&wire))
    }

    /// Asks the agent to quit.
    pub async fn quit(&self) {
        if let Ok(agent) = self.proxy().await {
            let _ = agent.quit().await;
        }
    }

    /// Follows the agent's signals: status changes reach the window, and the agent's Quit
    /// closes the app.
    pub async fn follow(&self, app: tauri::AppHandle) {
        let Ok(agent) = self.proxy().await else {
            return;
        };
        let (Ok(mut statuses), Ok(mut quitting)) = (
            agent.receive_notification_status_changed().await,
            agent.receive_quitting().await,
        ) else {
            return;
        };
        loop {
            tokio::select! {
                Some(signal) = statuses.next() => {
                    if let Ok(args) = signal.args() {
                        let status = NotificationStatus::from_wire(&args.status);
                        let _ = app.emit("notifications", status);
                    }
                }
                Some(_) = quitting.next() => {
                    app.exit(0);
                    return;
                }
                else => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_starts_this_program_again_with_the_same_profile_and_options() {
        let config = DeskConfig {
            profile_path: "/p/profile.json".into(),
            demo_key_path: "/p/demo.json".into(),
            insecure_device_key_file: Some("/p/device.key".into()),
            usb_timeout: Duration::from_secs(30),
            demo_touch: Duration::from_millis(200),
            device_name: "desktop app".into(),
        };
        let line: Vec<String> = agent_command(&config)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(line[0].ends_with("/countersign-tray"), "{line:?}");
        let split = line.iter().position(|a| a == "--").unwrap();
        assert_eq!(
            &line[1..split],
            [
                "--profile",
                "/p/profile.json",
                "--insecure-device-key-file",
                "/p/device.key"
            ]
        );
        let window = &line[split + 1..];
        assert_eq!(
            std::path::Path::new(&window[0]).file_name(),
            std::env::current_exe().unwrap().file_name()
        );
        assert_eq!(
            &window[1..],
            [
                "--profile",
                "/p/profile.json",
                "--demo-key",
                "/p/demo.json",
                "--usb-timeout-seconds",
                "30",
                "--demo-key-touch-ms",
                "200",
                "--insecure-device-key-file",
                "/p/device.key"
            ]
        );
    }
}
