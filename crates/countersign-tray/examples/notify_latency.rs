//! How long from a request created on the server to its desktop notification on the bus
//! (docs/benchmarks.md). The real server binary on loopback, the shell's desk and notifier
//! (the app's own path: event stream → verified request → inbox → notify-rust → D-Bus), and a
//! real `org.freedesktop.Notifications` server recording arrival times, on a private bus. The
//! window is not involved in notifying, so it is left out.
//!
//! `cargo run --release -p countersign-tray --example notify_latency [N]` (N = 100).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../tests/support/notifications.rs"]
mod notifications;

use countersign_desk::ceremony::{CeremonySink, CeremonyUpdate};
use countersign_desk::desk::{Desk, DeskConfig, KeyChoice, Ui};
use countersign_desk::views::{Connection, Snapshot};
use countersign_tray::notify::{NotificationStatus, Notifier, NotifierHost};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The app's wiring without a window: snapshots go to the notifier.
struct Headless {
    notifier: OnceLock<Arc<Notifier>>,
}

impl CeremonySink for Headless {
    fn ceremony(&self, _update: &CeremonyUpdate) {}
}

impl Ui for Headless {
    fn changed(&self, snapshot: &Snapshot) {
        if let Some(n) = self.notifier.get() {
            n.sync(&snapshot.inbox, snapshot.now);
        }
    }
}

impl NotifierHost for Headless {
    fn open_request(&self, _id: &str) {}
    fn status_changed(&self, status: &NotificationStatus) {
        eprintln!("notifications: {status:?}");
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100, |a| a.parse().expect("N"));
    // A private session bus for the notifier and the notification server.
    let out = std::process::Command::new("dbus-daemon")
        .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
        .output()
        .expect("dbus-daemon");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let bus = lines.next().unwrap().to_owned();
    let bus_pid = lines.next().unwrap().trim().to_owned();
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &bus);
    let received = notifications::Notifications::start(&bus);

    // The per-requester limit (30 a minute by default) would refuse the run's requests.
    let server = countersign_testkit::Server::start_with_config(
        "[limits]\nrequests_per_minute_per_requester = 100000\nrequests_per_minute_per_ip = 100000\n",
    );
    let app = server.api_key("bench", "payouts-service");
    countersign_testkit::admin(
        &server.data_dir(),
        &[
            "approver",
            "add",
            "--id",
            "dana@example.com",
            "--name",
            "Dana",
            "--group",
            "agent-owners",
        ],
    );
    let code = countersign_testkit::admin(
        &server.data_dir(),
        &["enroll-code", "create", "--approver", "dana@example.com"],
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(Headless {
        notifier: OnceLock::new(),
    });
    let weak: std::sync::Weak<dyn NotifierHost> = Arc::downgrade(&host) as _;
    let _ = host.notifier.set(Notifier::new(rt.handle().clone(), weak));
    let desk = Desk::open(
        DeskConfig {
            profile_path: dir.path().join("profile.json"),
            demo_key_path: dir.path().join("key.json"),
            insecure_device_key_file: Some(dir.path().join("device.key")),
            usb_timeout: Duration::from_secs(5),
            demo_touch: Duration::ZERO,
            device_name: "bench".into(),
        },
        host.clone(),
        rt.handle().clone(),
    );
    desk.start();
    rt.block_on(desk.enroll(
        &server.base,
        code.trim(),
        KeyChoice::DemoSoftware { pin: None },
    ))
    .unwrap();
    while !matches!(desk.snapshot().connection, Connection::Connected { .. }) {
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let body = serde_json::json!({
            "idempotency_key": format!("bench-{i}"), "action": "agent.tool.invoke",
            "object": format!("tool:bench-{i}"), "requester": {"id": "copilot-7", "kind": "agent"},
            "session": countersign_testkit::session_hash("bench"), "context": {"privileges": []}
        });
        let before = received.received().len();
        let started = Instant::now();
        let (status, created) = server.post(&app, "/v1/requests", &body);
        assert_eq!(status, 201, "{created}");
        let arrived = loop {
            let all = received.received();
            if all.len() > before {
                break all[before].at;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no notification"
            );
            std::thread::sleep(Duration::from_micros(200));
        };
        latencies.push(arrived.duration_since(started));
        // Keep the inbox small (and under the pending cap): the application withdraws it.
        let id = created["id"].as_str().unwrap();
        let _ = server.post(
            &app,
            &format!("/v1/requests/{id}/cancel"),
            &serde_json::json!({}),
        );
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "request created → notification on the bus, {n} requests: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(p(0.50)),
        ms(p(0.99)),
        ms(*latencies.last().unwrap())
    );
    let _ = std::process::Command::new("kill").arg(bus_pid).status();
}
