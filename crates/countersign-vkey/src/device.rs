//! The virtual key plugged in: a uhid device served by two threads. One reads what the host
//! sends (reports, cancels) and answers the transport's own commands at once; the other runs
//! the CTAP2 authenticator, which may wait for a touch, sending CTAPHID keep-alives meanwhile
//! (CTAP 2.1 §11.2.9.2.1: at least every 100 ms) and giving up on the host's CANCEL.

use crate::ctap2::{Authenticator, Presence, Status};
use crate::ctaphid::{self, Cid, DeviceInfo, KeepaliveStatus, Report, Request, Transport};
use crate::uhid::{self, Device, Event, Identity, UhidError};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When the person touches the key, for each request that needs a touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// At once.
    Now,
    /// This long after the key starts waiting.
    After(Duration),
    /// Never: the request ends when the host cancels it or after [`TOUCH_TIMEOUT`].
    Never,
}

/// How long the key waits for a touch before it answers "user action timeout", as keys do.
pub const TOUCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting key says so.
const KEEPALIVE_EVERY: Duration = Duration::from_millis(80);

/// Who the virtual key says it is on the bus.
pub const IDENTITY: Identity<'static> = Identity {
    name: "Countersign virtual key",
    vendor: 0x1209,
    product: 0xc5c5,
    version: 0x0100,
};

/// Writes reports to the host; shared by both threads.
type Writer = Arc<Mutex<Device<File>>>;

fn send(writer: &Writer, reports: &[Report]) -> Result<(), UhidError> {
    let mut device = writer
        .lock()
        .map_err(|_| UhidError::Io(std::io::Error::other("virtual key writer poisoned")))?;
    for report in reports {
        device.send(report)?;
    }
    Ok(())
}

/// What the key saw, for tests to assert on.
#[derive(Debug, Default)]
pub struct KeyStats {
    /// CTAP2 requests answered.
    pub requests: AtomicUsize,
    /// Requests answered with success that made a credential.
    pub credentials_made: AtomicUsize,
    /// Keep-alives sent while waiting for a touch.
    pub keepalives: AtomicUsize,
    /// CANCELs from the host.
    pub cancels: AtomicUsize,
}

/// A plugged-in key; it stays until [`PluggedKey::unplug`] or the end of the process.
pub struct PluggedKey {
    pub stats: Arc<KeyStats>,
    writer: Writer,
    _reader: JoinHandle<Result<(), UhidError>>,
    _worker: JoinHandle<Result<(), UhidError>>,
}

impl PluggedKey {
    /// Pulls the key out (UHID_DESTROY): its hidraw node goes away mid-whatever.
    pub fn unplug(&self) -> Result<(), UhidError> {
        let mut device = self
            .writer
            .lock()
            .map_err(|_| UhidError::Io(std::io::Error::other("virtual key writer poisoned")))?;
        device.unplug()
    }
}

/// Plugs the key in through `uhid` (`/dev/uhid` opened read-write).
pub fn plug(uhid: File, touch: Touch) -> Result<PluggedKey, UhidError> {
    let reads = uhid.try_clone()?;
    let writer: Writer = Arc::new(Mutex::new(Device::create(
        uhid,
        &IDENTITY,
        &uhid::FIDO_REPORT_DESCRIPTOR,
    )?));
    let transport = Arc::new(Mutex::new(Transport::new(DeviceInfo {
        version: [0, 1, 0],
        msg: false,
    })));
    let cancelled = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(KeyStats::default());
    let (requests, work) = mpsc::channel::<(Cid, Vec<u8>)>();

    let reader = {
        let (writer, transport, cancelled) = (writer.clone(), transport.clone(), cancelled.clone());
        let stats = stats.clone();
        std::thread::spawn(move || {
            let mut events = Device::attach(reads);
            loop {
                let Event::Output(bytes) = events.next_event()? else {
                    continue;
                };
                let Ok(report) = Report::try_from(bytes.as_slice()) else {
                    continue;
                };
                let received = lock(&transport)?.receive(&report, Instant::now());
                send(&writer, &received.replies)?;
                match received.request {
                    Some(Request::Cbor { cid, payload }) => {
                        cancelled.store(false, Ordering::SeqCst);
                        if requests.send((cid, payload)).is_err() {
                            return Ok(());
                        }
                    }
                    Some(Request::Cancel { .. }) => {
                        stats.cancels.fetch_add(1, Ordering::SeqCst);
                        cancelled.store(true, Ordering::SeqCst);
                    }
                    Some(Request::Msg { .. }) | None => {}
                }
            }
        })
    };

    let worker = {
        let (writer, stats) = (writer.clone(), stats.clone());
        std::thread::spawn(move || {
            let mut authenticator = Authenticator::default();
            while let Ok((cid, payload)) = work.recv() {
                let presence = Waiting {
                    cid,
                    touch,
                    writer: &writer,
                    cancelled: &cancelled,
                    keepalives: &stats.keepalives,
                };
                let answer = authenticator.handle(&payload, &presence);
                stats.requests.fetch_add(1, Ordering::SeqCst);
                if payload.first() == Some(&0x01) && answer.first() == Some(&(Status::Ok as u8)) {
                    stats.credentials_made.fetch_add(1, Ordering::SeqCst);
                }
                let reports = lock(&transport)?
                    .response(cid, &answer)
                    .map_err(|e| UhidError::Io(std::io::Error::other(e.to_string())))?;
                send(&writer, &reports)?;
            }
            Ok(())
        })
    };
    Ok(PluggedKey {
        stats,
        writer,
        _reader: reader,
        _worker: worker,
    })
}

fn lock(transport: &Mutex<Transport>) -> Result<std::sync::MutexGuard<'_, Transport>, UhidError> {
    transport
        .lock()
        .map_err(|_| UhidError::Io(std::io::Error::other("virtual key transport poisoned")))
}

/// The key waiting for its touch on one request.
struct Waiting<'a> {
    cid: Cid,
    touch: Touch,
    writer: &'a Writer,
    cancelled: &'a AtomicBool,
    keepalives: &'a AtomicUsize,
}

impl Presence for Waiting<'_> {
    fn confirm(&self) -> Result<(), Status> {
        let started = Instant::now();
        let touched_at = match self.touch {
            Touch::Now => return Ok(()),
            Touch::After(delay) => Some(started + delay),
            Touch::Never => None,
        };
        loop {
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(Status::KeepaliveCancel);
            }
            let now = Instant::now();
            if touched_at.is_some_and(|at| now >= at) {
                return Ok(());
            }
            if now.duration_since(started) >= TOUCH_TIMEOUT {
                return Err(Status::UserActionTimeout);
            }
            let keepalive =
                ctaphid::keepalive_report(self.cid, KeepaliveStatus::UserPresenceNeeded);
            send(self.writer, &[keepalive]).map_err(|_| Status::Other)?;
            self.keepalives.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(KEEPALIVE_EVERY);
        }
    }
}
