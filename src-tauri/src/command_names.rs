// The commands the UI may call. Shared by `build.rs` (declared to Tauri's app manifest, so
// capabilities govern them and nothing else is callable) and `commands.rs`.
pub const COMMAND_NAMES: &[&str] = &[
    "snapshot",
    "prefill",
    "identify",
    "enroll",
    "request",
    "decide",
    "submit_pin",
    "cancel_ceremony",
    "history",
    "settings",
    "unenroll",
    "painted",
    "notification_status",
    "pause_notifications",
    "take_pending",
    "set_start_at_login",
    "quit",
];
