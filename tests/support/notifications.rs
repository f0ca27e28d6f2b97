//! A real `org.freedesktop.Notifications` server on a test's session bus: it records every
//! notification with its arrival time and actions, records closes, and can invoke an action
//! the way a person clicking "Review" would (the `ActionInvoked` signal).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zbus::object_server::SignalEmitter;

const PATH: &str = "/org/freedesktop/Notifications";

/// One notification as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: u32,
    pub app_name: String,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
    pub urgency: Option<u8>,
    pub at: Instant,
    pub closed: bool,
}

#[derive(Default)]
struct Log {
    next_id: u32,
    received: Vec<Received>,
}

struct Server {
    log: Arc<Mutex<Log>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: std::collections::HashMap<String, zbus::OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
        let mut log = self.log.lock().unwrap();
        log.next_id += 1;
        let id = log.next_id;
        log.received.push(Received {
            id,
            app_name,
            summary,
            body,
            actions,
            urgency,
            at: Instant::now(),
            closed: false,
        });
        id
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        if let Some(n) = self
            .log
            .lock()
            .unwrap()
            .received
            .iter_mut()
            .find(|n| n.id == id)
        {
            n.closed = true;
        }
        // Reason 3: closed by a call to CloseNotification.
        Self::notification_closed(&emitter, id, 3).await?;
        Ok(())
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "countersign-test".into(),
            "countersign".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;
}

/// The running server; it stops when dropped.
pub struct Notifications {
    log: Arc<Mutex<Log>>,
    connection: zbus::Connection,
    runtime: tokio::runtime::Runtime,
}

impl Notifications {
    /// Serves `org.freedesktop.Notifications` on the bus at `address`.
    pub fn start(address: &str) -> Notifications {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let connection = runtime.block_on(async {
            zbus::connection::Builder::address(address)
                .name("org.freedesktop.Notifications")
                .serve_at(PATH, Server { log: log.clone() })
                .build()
                .await
                .unwrap()
        });
        Notifications {
            log,
            connection,
            runtime,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().received.clone()
    }

    /// Waits up to `secs` for a notification whose body contains `needle`.
    pub fn wait_for(&self, needle: &str, secs: u64) -> Received {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(n) = self
                .received()
                .into_iter()
                .find(|n| n.body.contains(needle) || n.summary.contains(needle))
            {
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "no notification mentioning {needle:?} within {secs} s: {:?}",
                self.received()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `secs` until notification `id` was closed.
    pub fn wait_closed(&self, id: u32, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.received().iter().any(|n| n.id == id && n.closed) {
            assert!(
                Instant::now() < deadline,
                "notification {id} not closed within {secs} s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Clicks the action `key` of notification `id`.
    pub fn invoke(&self, id: u32, key: &str) {
        self.runtime.block_on(async {
            let emitter = SignalEmitter::new(&self.connection, PATH).unwrap();
            Server::action_invoked(&emitter, id, key).await.unwrap();
        });
    }
}
