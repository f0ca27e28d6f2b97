//! `countersign-desktop`: the approver's desktop app.
#![forbid(unsafe_code)]
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use clap::Parser;
use countersign_approver::profile::Profile;
use countersign_desktop::commands::Prefill;
use countersign_desktop::desk::DeskConfig;
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

/// Environment defaults that only cost memory when left on; each is kept when the environment
/// sets it already (docs/benchmarks.md has what each saves with the window open):
/// - `GDK_GL=disable`: GTK's own OpenGL. The app draws nothing with it (the web view composites
///   in its web process), and initialising it maps a GL driver into the app process even
///   without a window — under Mesa's software renderer that is libLLVM, about 26 MB.
/// - `WEBKIT_DISABLE_DMABUF_RENDERER=1`: the web process hands its frames over in shared memory
///   instead of GPU buffers; a few small screens do not need the GPU path.
/// - `JSC_useJIT=0`: JavaScriptCore interprets instead of compiling to machine code. The UI's
///   script is small, and no JIT means no writable-and-executable memory in the web process.
const QUIET_DEFAULTS: [(&str, &str); 3] = [
    ("GDK_GL", "disable"),
    ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
    ("JSC_useJIT", "0"),
];

fn quiet_defaults() {
    for (name, value) in QUIET_DEFAULTS {
        if std::env::var_os(name).is_none() {
            // Before any thread exists: nothing reads the environment concurrently.
            std::env::set_var(name, value);
        }
    }
}

fn main() -> std::process::ExitCode {
    let started = std::time::Instant::now();
    quiet_defaults();
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
