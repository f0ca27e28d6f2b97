//! `countersign-tray`: the tray agent (see the library's documentation). Started by the
//! window app, or at login; a second one in the same session leaves at once.
#![forbid(unsafe_code)]

use clap::Parser;
use countersign_approver::profile::Profile;
use countersign_desk::desk::DeskConfig;
use countersign_tray::launch::Launcher;
use countersign_tray::Ended;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The Countersign tray agent: tray, event stream and notifications.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The approver profile (shared with the window app and the `countersign` CLI).
    #[arg(long, env = "COUNTERSIGN_PROFILE")]
    profile: Option<PathBuf>,
    /// The device key's file instead of the OS keyring: tests and demos only.
    #[arg(long, env = "COUNTERSIGN_INSECURE_DEVICE_KEY_FILE")]
    insecure_device_key_file: Option<PathBuf>,
    /// How to start the window app (default: `countersign-desktop` beside this program, with
    /// the same profile); a link is added at the end.
    #[arg(last = true, value_name = "WINDOW_COMMAND")]
    window: Vec<OsString>,
}

/// The window app beside this program, with the same profile and key file.
fn default_window(profile: &std::path::Path, key_file: Option<&PathBuf>) -> Vec<OsString> {
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("countersign-desktop")))
        .map_or_else(|| OsString::from("countersign-desktop"), OsString::from);
    let mut line = vec![program, "--profile".into(), profile.into()];
    if let Some(file) = key_file {
        line.extend(["--insecure-device-key-file".into(), file.into()]);
    }
    line
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let profile_path = args.profile.unwrap_or_else(Profile::default_path);
    let mut window = if args.window.is_empty() {
        default_window(&profile_path, args.insecure_device_key_file.as_ref())
    } else {
        args.window
    };
    let program = window.remove(0);
    let config = DeskConfig {
        demo_key_path: profile_path.with_file_name("demo-soft-key.json"),
        profile_path,
        insecure_device_key_file: args.insecure_device_key_file,
        usb_timeout: Duration::from_secs(60),
        demo_touch: Duration::ZERO,
        device_name: "tray agent".into(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("countersign-tray: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let launcher = Launcher::new(program, window);
    match runtime.block_on(countersign_tray::run(config, launcher)) {
        Ok(Ended::AlreadyRunning) => {
            eprintln!("countersign-tray: already running in this session");
            std::process::ExitCode::SUCCESS
        }
        Ok(Ended::Quit | Ended::SessionEnded) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("countersign-tray: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
