//! `countersign-desktop`: the approver's desktop app.
#![forbid(unsafe_code)]
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use clap::Parser;
use countersign_approver::profile::Profile;
use countersign_desktop::commands::Prefill;
use countersign_desktop::desk::DeskConfig;
use countersign_desktop::webkit_env::Sandbox;
use countersign_desktop::LaunchOptions;
use std::path::PathBuf;
use std::time::Duration;

/// The Countersign desktop approver.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The approver profile (shared with the `countersign` CLI).
    #[arg(long, env = "COUNTERSIGN_PROFILE")]
    profile: Option<PathBuf>,
    /// Server address to fill in on the enrollment screen.
    #[arg(long, env = "COUNTERSIGN_SERVER")]
    server: Option<String>,
    /// Enrollment code to fill in on the enrollment screen (you still confirm the server and
    /// touch the key).
    #[arg(long, env = "COUNTERSIGN_ENROLL_CODE")]
    enroll_code: Option<String>,
    /// Where the demo software key lives (default: beside the profile).
    #[arg(long, env = "COUNTERSIGN_DEMO_KEY")]
    demo_key: Option<PathBuf>,
    /// Keep the device key in this file instead of the OS keyring: tests and demos only, the
    /// key is not protected at rest.
    #[arg(long, env = "COUNTERSIGN_INSECURE_DEVICE_KEY_FILE")]
    insecure_device_key_file: Option<PathBuf>,
    /// How long a USB security key waits for a touch or a PIN, in seconds.
    #[arg(long, env = "COUNTERSIGN_USB_TIMEOUT_SECONDS", default_value_t = 60)]
    usb_timeout_seconds: u64,
    /// How long the demo software key takes to be "touched", in milliseconds (so the touch
    /// step can be seen and cancelled).
    #[arg(long, env = "COUNTERSIGN_DEMO_KEY_TOUCH_MS", default_value_t = 1200)]
    demo_key_touch_ms: u64,
    /// Start in the tray without opening the window (what start at login does).
    #[arg(long)]
    hidden: bool,
    /// Turn on starting at login (off unless asked; also a setting in the window).
    #[arg(long)]
    start_at_login: bool,
    /// Register this program as the handler of countersign:// links for this user, then quit.
    #[arg(long)]
    register_links: bool,
    /// `countersign://enroll?code=…` or `countersign://request/ID` links to follow.
    #[arg(value_name = "LINK")]
    links: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let started = std::time::Instant::now();
    // Before any thread exists: nothing reads the environment while it changes.
    match countersign_desktop::webkit_env::apply() {
        Sandbox::Bubblewrap => {}
        unsandboxed => eprintln!(
            "countersign-desktop: the web view's process runs without WebKit's sandbox ({unsandboxed:?})"
        ),
    }
    let args = Args::parse();
    let profile_path = args.profile.unwrap_or_else(Profile::default_path);
    let demo_key_path = args
        .demo_key
        .unwrap_or_else(|| profile_path.with_file_name("demo-soft-key.json"));
    let config = DeskConfig {
        profile_path,
        demo_key_path,
        insecure_device_key_file: args.insecure_device_key_file,
        usb_timeout: Duration::from_secs(args.usb_timeout_seconds),
        demo_touch: Duration::from_millis(args.demo_key_touch_ms),
        device_name: "desktop app".into(),
    };
    let prefill = Prefill {
        server: args.server,
        code: args.enroll_code,
    };
    let options = LaunchOptions {
        hidden: args.hidden,
        links: args.links,
        start_at_login: args.start_at_login,
        register_links: args.register_links,
    };
    match countersign_desktop::run(config, prefill, options, started) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("countersign-desktop: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
