//! The built desktop app under a private X server (Xvfb) and a private D-Bus session with a
//! real Secret Service, driven over WebDriver through `tauri-driver` and Debian's
//! WebKitWebDriver. Everything stops when the [`Desktop`] is dropped.
#![allow(dead_code)]

use crate::support::Keyring;
use crate::webdriver::WebDriver;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The window app's binary (`countersign-desktop`).
pub fn desktop_app() -> PathBuf {
    countersign_testkit::workspace_bin("countersign-desktop", "countersign-desktop")
}

/// Only one app at a time on this two-core machine: WebKit is heavy and the tests wait in
/// real time.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `tauri-driver`: `$TAURI_DRIVER`, else `~/.cargo/bin/tauri-driver`, else from `PATH`.
fn tauri_driver() -> PathBuf {
    if let Some(path) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(path);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let path = PathBuf::from(home).join(".cargo/bin/tauri-driver");
        if path.exists() {
            return path;
        }
    }
    PathBuf::from("tauri-driver")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `pid` and all its descendants, deepest last.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", pids[i]));
        for task in tasks.into_iter().flatten().flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    pids
}

/// The processes whose command line starts with a program named `name` and whose command line
/// or environment mentions `needle` (the profile path tells this test's processes from
/// another's).
pub fn processes(name: &str, needle: &str) -> Vec<(u32, Vec<String>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let named = args
            .first()
            .is_some_and(|a| Path::new(a).file_name().is_some_and(|f| f == name));
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let mentions = args.iter().any(|a| a.contains(needle))
            || String::from_utf8_lossy(&environ).contains(needle);
        if named && mentions {
            found.push((pid, args));
        }
    }
    found
}

/// Calls the tray agent's `method` on the bus at `address` (no reply awaited).
fn call_agent(address: &str, method: &str) {
    let _ = Command::new("dbus-send")
        .args([
            "--session",
            "--type=method_call",
            "--dest=dev.countersign.Tray",
            "/dev/countersign/Tray",
            &format!("dev.countersign.Tray1.{method}"),
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .stderr(Stdio::null())
        .status();
}

/// Stops tauri-driver and everything it started (WebKitWebDriver, the app, its web
/// processes), the tray agent, and any window the agent started.
fn stop(ui: &WebDriver, driver: &mut Child, bus: &str, profile_dir: &Path) {
    let profile = profile_dir.display().to_string();
    // Collected first: once the session ends, the app would be an orphan, out of the tree.
    let mut pids = process_tree(driver.id());
    call_agent(bus, "Quit");
    ui.quit();
    for name in ["countersign-tray", "countersign-desktop"] {
        pids.extend(processes(name, &profile).into_iter().map(|(pid, _)| pid));
    }
    for pid in pids.into_iter().rev() {
        // (Some ended already: the agent quits when asked, its window with it.)
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    let _ = driver.wait();
}

/// A private X display.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (package xvfb) is needed; scripts/setup.sh installs it");
        let mut out = child.stdout.take().unwrap();
        let mut number = String::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            number.push(byte[0] as char);
        }
        Xvfb {
            child,
            display: format!(":{}", number.trim()),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether bubblewrap can run here, by the probe the app makes (WebKit's own, from
/// src-tauri/src/webkit_env.rs).
pub fn bubblewrap_works() -> bool {
    Command::new("/usr/bin/bwrap")
        .args(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"])
        .args(["--unshare-all", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// What [`Desktop::web_isolation`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct WebIsolation {
    pub web_process_in_bubblewrap: bool,
    pub app_maps_libllvm: bool,
}

/// How to start the app.
#[derive(Default)]
pub struct Launch<'a> {
    /// Server address filled in on the enrollment screen.
    pub server: Option<&'a str>,
    /// Enrollment code filled in.
    pub code: Option<&'a str>,
    /// More environment for the app (e.g. `GTK_THEME`).
    pub env: Vec<(&'a str, String)>,
    /// Reuse this profile folder (another launch of the same device).
    pub profile_dir: Option<&'a Path>,
}

/// The running app.
pub struct Desktop {
    pub ui: WebDriver,
    driver: Child,
    keyring: Keyring,
    xvfb: Xvfb,
    _profile_dir: tempfile::TempDir,
    pub profile_dir_path: PathBuf,
}

/// Starts tauri-driver for the app with this environment, and a session on it.
fn start_app(
    xvfb: &Xvfb,
    keyring: &Keyring,
    profile_dir: &Path,
    launch: &Launch<'_>,
) -> (Child, WebDriver) {
    let app = desktop_app();
    // The app starts its tray agent from beside it (built there if it is missing).
    countersign_testkit::workspace_bin("countersign-tray", "countersign-tray");
    let agent = app.with_file_name("countersign-tray");
    assert!(
        agent.exists(),
        "{} is missing: the app starts its tray agent from beside it; build it with \
         `cargo build --workspace --bins`",
        agent.display()
    );
    let (port, native_port) = (free_port(), free_port());
    let mut command = Command::new(tauri_driver());
    command
        .args(["--port", &port.to_string()])
        .args(["--native-port", &native_port.to_string()])
        .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
        .env("DISPLAY", &xvfb.display)
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .env("NO_AT_BRIDGE", "1")
        .env("GTK_A11Y", "none")
        .env("COUNTERSIGN_PROFILE", profile_dir.join("profile.json"))
        .env_remove("COUNTERSIGN_SERVER")
        .env_remove("COUNTERSIGN_ENROLL_CODE")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in keyring.env() {
        command.env(k, v);
    }
    if let Some(server) = launch.server {
        command.env("COUNTERSIGN_SERVER", server);
    }
    if let Some(code) = launch.code {
        command.env("COUNTERSIGN_ENROLL_CODE", code);
    }
    for (k, v) in &launch.env {
        command.env(k, v);
    }
    let driver = command.spawn().unwrap_or_else(|e| {
        panic!(
            "{}: {e}; install it with `cargo install tauri-driver --locked` (scripts/setup.sh does)",
            tauri_driver().display()
        )
    });
    let app = app.to_str().expect("the app's path is UTF-8");
    let ui = WebDriver::start(&format!("http://127.0.0.1:{port}"), app);
    (driver, ui)
}

impl Desktop {
    /// Starts the app and a WebDriver session on it.
    pub fn launch(launch: Launch<'_>) -> Desktop {
        let xvfb = Xvfb::start();
        let keyring = Keyring::start();
        let profile_dir = tempfile::tempdir().unwrap();
        let profile_dir_path = launch.profile_dir.unwrap_or(profile_dir.path()).to_owned();
        let (driver, ui) = start_app(&xvfb, &keyring, &profile_dir_path, &launch);
        Desktop {
            ui,
            driver,
            keyring,
            xvfb,
            _profile_dir: profile_dir,
            profile_dir_path,
        }
    }

    /// Quits the app and starts it again on the same profile, keyring and display.
    pub fn relaunch(&mut self, launch: Launch<'_>) {
        self.stop();
        let (driver, ui) = start_app(&self.xvfb, &self.keyring, &self.profile_dir_path, &launch);
        self.driver = driver;
        self.ui = ui;
    }

    /// Runs the app once more with `args` and `env`, as a person launching it again or
    /// opening a link would, on the same display, bus and profile; waits for it to end.
    pub fn launch_again(&self, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
        let mut command = Command::new(desktop_app());
        command
            .args(args)
            .env("DISPLAY", &self.xvfb.display)
            .env("NO_AT_BRIDGE", "1")
            .arg("--profile")
            .arg(self.profile_dir_path.join("profile.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in self.keyring.env() {
            command.env(k, v);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("a second launch did not hand over and end within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    }

    fn stop(&mut self) {
        let bus = self.bus_address();
        stop(&self.ui, &mut self.driver, &bus, &self.profile_dir_path);
    }

    /// Closes the app's window as a window manager's close button would (a WM_DELETE_WINDOW
    /// message; WebDriver's own "close window" ends the session and kills the app instead), and
    /// waits until no window process of this profile runs any more (closing the window ends
    /// it; the tray agent stays). The WebDriver session ends with it.
    pub fn close_window(&self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/wm_close.py");
        let out = Command::new("/usr/bin/python3")
            .arg(script)
            .env("DISPLAY", &self.xvfb.display)
            .output()
            .expect("/usr/bin/python3 with python3-xlib (scripts/setup.sh installs it)");
        assert!(out.status.success(), "closing the window: {out:?}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !self.window_processes().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the window's process did not end: {:?}",
                self.window_processes()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The window app's processes on this profile, with their command lines.
    pub fn window_processes(&self) -> Vec<(u32, Vec<String>)> {
        processes(
            "countersign-desktop",
            &self.profile_dir_path.display().to_string(),
        )
    }

    /// How the window's web content runs: whether its web process is a descendant of
    /// bubblewrap (WebKit's sandbox), and whether the window app itself maps Mesa's libLLVM
    /// (the GL driver WebKit's render-device lookup loads when the device is not named).
    pub fn web_isolation(&self) -> WebIsolation {
        let windows = self.window_processes();
        let (app, _) = windows.first().expect("a window process");
        let tree = process_tree(*app);
        let comm = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let parent = |pid: u32| -> Option<u32> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The fields after the command name (which is in parentheses): state, ppid, ...
            stat.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        let web_processes: Vec<u32> = tree
            .iter()
            .copied()
            .filter(|pid| comm(*pid).starts_with("WebKitWebProces"))
            .collect();
        assert!(!web_processes.is_empty(), "no web process under {app}");
        let sandboxed = web_processes.iter().all(|pid| {
            let mut at = *pid;
            while let Some(up) = parent(at).filter(|up| *up != *app && *up > 1) {
                if comm(up) == "bwrap" {
                    return true;
                }
                at = up;
            }
            false
        });
        let maps = std::fs::read_to_string(format!("/proc/{app}/maps")).unwrap_or_default();
        WebIsolation {
            web_process_in_bubblewrap: sandboxed,
            app_maps_libllvm: maps.contains("libLLVM"),
        }
    }

    /// The tray agent's processes on this profile.
    pub fn agent_processes(&self) -> Vec<(u32, Vec<String>)> {
        processes(
            "countersign-tray",
            &self.profile_dir_path.display().to_string(),
        )
    }

    /// Waits up to `secs` for a window process of this profile whose command line `ok` accepts
    /// and for its window titled "Countersign" on the display; returns its command line.
    pub fn wait_window_process(&self, secs: u64, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/wm_close.py");
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let found = self
                .window_processes()
                .into_iter()
                .find(|(_, args)| ok(args));
            if let Some((_, args)) = found {
                let listed = Command::new("/usr/bin/python3")
                    .args([script.as_os_str(), "--list".as_ref()])
                    .env("DISPLAY", &self.xvfb.display)
                    .output()
                    .unwrap();
                if listed.status.success() {
                    return args;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no matching window within {secs} s; window processes: {:?}",
                self.window_processes()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The private session bus the app is on (for a notification server of the test's).
    pub fn bus_address(&self) -> String {
        self.keyring
            .env()
            .into_iter()
            .find(|(k, _)| k == "DBUS_SESSION_BUS_ADDRESS")
            .map(|(_, v)| v)
            .unwrap()
    }

    /// Saves a screenshot as `docs/screenshots/NAME.png` (the README links them).
    pub fn screenshot(&self, name: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        // Let the last change paint.
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(dir.join(format!("{name}.png")), self.ui.screenshot()).unwrap();
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop();
    }
}
