//! The key ceremony: one security-key operation at a time, its typed progress sent to the UI,
//! the PIN taken from the UI for exactly the one call that needs it, and a cancel that works
//! at every step (a PIN prompt answers "no PIN", a USB operation is told to stop).

use crate::error::ShellError;
use countersign_approver::signer::{
    Assertion, DemoKeySigner, KeyEvent, KeyPrompt, Registration, Signer, SignerError, UsbSigner,
};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

/// Longest wait for the person to type a PIN before the operation is cancelled.
const PIN_WAIT: Duration = Duration::from_secs(300);

/// Where the ceremony stands, for the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Looking for the key (insert it if it is not plugged in).
    WaitingForKey,
    /// The key is listening: touch it.
    Touch,
    /// Several keys: touch the one to use.
    SelectKey,
    /// Enter the PIN.
    Pin,
    /// The PIN was wrong; enter it again.
    WrongPin,
    /// Too many wrong PINs: replug the key.
    PinAuthBlocked,
    /// The PIN is blocked.
    PinBlocked,
    /// The key has no PIN but one is needed.
    PinNotSet,
    /// Built-in verification failed.
    UvFailed,
    /// Built-in verification blocked; the PIN is asked instead.
    UvBlocked,
    /// The key signed; the decision is on its way to the server.
    Sending,
}

/// One progress report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CeremonyUpdate {
    /// Where it stands.
    pub stage: Stage,
    /// For people: "touch your security key", "wrong PIN: enter it again, 7 tries left".
    pub message: String,
    /// PIN or UV tries left, when the key says.
    pub retries_left: Option<u8>,
}

impl CeremonyUpdate {
    fn of(event: &KeyEvent) -> Self {
        let (stage, retries_left) = match event {
            KeyEvent::TouchKey => (Stage::Touch, None),
            KeyEvent::SelectKey => (Stage::SelectKey, None),
            KeyEvent::PinRequired => (Stage::Pin, None),
            KeyEvent::WrongPin { retries_left } => (Stage::WrongPin, *retries_left),
            KeyEvent::PinAuthBlocked => (Stage::PinAuthBlocked, None),
            KeyEvent::PinBlocked => (Stage::PinBlocked, None),
            KeyEvent::PinNotSet => (Stage::PinNotSet, None),
            KeyEvent::UvFailed { retries_left } => (Stage::UvFailed, *retries_left),
            KeyEvent::UvBlocked => (Stage::UvBlocked, None),
            // A newer key event this shell does not know: say what the key said.
            _ => (Stage::WaitingForKey, None),
        };
        CeremonyUpdate {
            stage,
            message: event.to_string(),
            retries_left,
        }
    }

    fn stage(stage: Stage, message: &str) -> Self {
        CeremonyUpdate {
            stage,
            message: message.to_owned(),
            retries_left: None,
        }
    }
}

/// Where ceremony progress goes (the window, or a test).
pub trait CeremonySink: Send + Sync {
    /// Shows one update.
    fn ceremony(&self, update: &CeremonyUpdate);
}

/// The running ceremony's controls.
struct Active {
    pins: Sender<Option<Zeroizing<String>>>,
    cancelled: Arc<AtomicBool>,
    key: Option<KeySigner>,
}

/// At most one ceremony; PIN and cancel reach it from the UI's commands.
#[derive(Default)]
pub struct Control {
    active: Mutex<Option<Active>>,
}

/// A started ceremony; dropping it ends it. It owns what the blocking key thread needs.
pub struct Ceremony {
    control: Arc<Control>,
    cancelled: Arc<AtomicBool>,
    prompt: Arc<WindowPrompt>,
}

impl Control {
    /// Starts a ceremony, or refuses while another runs.
    pub fn begin(self: &Arc<Self>, sink: Arc<dyn CeremonySink>) -> Result<Ceremony, ShellError> {
        let mut active = self.active.lock().map_err(ShellError::internal)?;
        if active.is_some() {
            return Err(ShellError::Busy);
        }
        let (pins, receiver) = channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        *active = Some(Active {
            pins,
            cancelled: cancelled.clone(),
            key: None,
        });
        sink.ceremony(&CeremonyUpdate::stage(
            Stage::WaitingForKey,
            "looking for your security key: insert it if it is not plugged in",
        ));
        Ok(Ceremony {
            control: self.clone(),
            cancelled: cancelled.clone(),
            prompt: Arc::new(WindowPrompt {
                sink,
                pins: Mutex::new(receiver),
                cancelled,
            }),
        })
    }

    /// Hands the PIN to the waiting key. `false` when no ceremony runs.
    pub fn submit_pin(&self, pin: Zeroizing<String>) -> bool {
        match self.active.lock() {
            Ok(active) => active
                .as_ref()
                .is_some_and(|a| a.pins.send(Some(pin)).is_ok()),
            Err(_) => false,
        }
    }

    /// Cancels the running ceremony, whatever it waits for. `false` when none runs.
    pub fn cancel(&self) -> bool {
        let Ok(active) = self.active.lock() else {
            return false;
        };
        let Some(active) = active.as_ref() else {
            return false;
        };
        active.cancelled.store(true, Ordering::SeqCst);
        let _ = active.pins.send(None);
        if let Some(key) = &active.key {
            key.cancel();
        }
        true
    }

    /// Whether a ceremony is running.
    pub fn running(&self) -> bool {
        self.active.lock().is_ok_and(|a| a.is_some())
    }
}

impl Ceremony {
    /// The signer for the profile's key spec (`usb` or `soft:PATH`), wired to this
    /// ceremony's prompt and cancel; the software key's touch comes after `soft_touch`.
    pub fn signer(
        &self,
        spec: &str,
        usb_timeout: Duration,
        soft_touch: Duration,
    ) -> Result<KeySigner, ShellError> {
        let prompt: Arc<dyn KeyPrompt> = self.prompt.clone();
        let key = if spec == "usb" {
            KeySigner::Usb(Arc::new(UsbSigner::new(usb_timeout, prompt)))
        } else {
            let path = spec
                .strip_prefix("soft:")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ShellError::Storage {
                    message: format!("the profile names an unknown key {spec:?}"),
                })?;
            KeySigner::Soft(Arc::new(
                DemoKeySigner::open(Path::new(path), prompt)?.with_touch_delay(soft_touch),
            ))
        };
        self.arm(&key);
        Ok(key)
    }

    /// The demo software key, created at `path` (with `pin`, if given) if it does not exist.
    pub fn demo_signer(
        &self,
        path: &Path,
        pin: Option<&str>,
        touch: Duration,
    ) -> Result<KeySigner, ShellError> {
        let prompt: Arc<dyn KeyPrompt> = self.prompt.clone();
        let signer = if path.exists() {
            DemoKeySigner::open(path, prompt)?
        } else {
            let algorithm = countersign_approver::signer::SoftAlgorithm::ES256;
            DemoKeySigner::create(path, algorithm, pin, prompt)?
        };
        let key = KeySigner::Soft(Arc::new(signer.with_touch_delay(touch)));
        self.arm(&key);
        Ok(key)
    }

    /// Lets the cancel button reach `key`.
    fn arm(&self, key: &KeySigner) {
        if let Ok(mut active) = self.control.active.lock() {
            if let Some(active) = active.as_mut() {
                active.key = Some(key.clone());
            }
        }
    }

    /// Whether the person pressed cancel.
    pub fn was_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Reports that the key signed and the answer is being sent.
    pub fn sending(&self) {
        self.prompt.sink.ceremony(&CeremonyUpdate::stage(
            Stage::Sending,
            "signed: sending your decision to the server",
        ));
    }
}

impl Drop for Ceremony {
    fn drop(&mut self) {
        if let Ok(mut active) = self.control.active.lock() {
            *active = None;
        }
    }
}

/// Key events to the window; the PIN from the window.
struct WindowPrompt {
    sink: Arc<dyn CeremonySink>,
    pins: Mutex<Receiver<Option<Zeroizing<String>>>>,
    cancelled: Arc<AtomicBool>,
}

impl KeyPrompt for WindowPrompt {
    fn show(&self, event: &KeyEvent) {
        if !self.cancelled.load(Ordering::SeqCst) {
            self.sink.ceremony(&CeremonyUpdate::of(event));
        }
    }

    fn pin(&self, _event: &KeyEvent) -> Option<Zeroizing<String>> {
        if self.cancelled.load(Ordering::SeqCst) {
            return None;
        }
        let pins = self.pins.lock().ok()?;
        let pin = pins.recv_timeout(PIN_WAIT).ok().flatten()?;
        (!pin.is_empty()).then_some(pin)
    }
}

/// The key a profile names.
#[derive(Clone)]
pub enum KeySigner {
    /// A USB security key.
    Usb(Arc<UsbSigner>),
    /// The demo software key.
    Soft(Arc<DemoKeySigner>),
}

impl KeySigner {
    fn inner(&self) -> &dyn Signer {
        match self {
            KeySigner::Usb(usb) => usb.as_ref(),
            KeySigner::Soft(soft) => soft.as_ref(),
        }
    }

    /// Stops the operation in progress.
    fn cancel(&self) {
        match self {
            KeySigner::Usb(usb) => usb.cancel(),
            KeySigner::Soft(soft) => soft.cancel(),
        }
    }
}

impl Signer for KeySigner {
    fn make_credential(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        user_verification: bool,
    ) -> Result<Registration, SignerError> {
        self.inner()
            .make_credential(rp_id, client_data_json, user_verification)
    }

    fn get_assertion(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        credential_id: &[u8],
        user_verification: bool,
    ) -> Result<Assertion, SignerError> {
        self.inner()
            .get_assertion(rp_id, client_data_json, credential_id, user_verification)
    }
}

/// A signer that reports "sending" once the key has signed.
pub struct Reporting<'a> {
    /// The key.
    pub signer: &'a KeySigner,
    /// The ceremony to report to.
    pub ceremony: &'a Ceremony,
}

impl Signer for Reporting<'_> {
    fn make_credential(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        user_verification: bool,
    ) -> Result<Registration, SignerError> {
        let made = self
            .signer
            .make_credential(rp_id, client_data_json, user_verification)?;
        self.ceremony.sending();
        Ok(made)
    }

    fn get_assertion(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        credential_id: &[u8],
        user_verification: bool,
    ) -> Result<Assertion, SignerError> {
        let signed =
            self.signer
                .get_assertion(rp_id, client_data_json, credential_id, user_verification)?;
        self.ceremony.sending();
        Ok(signed)
    }
}
