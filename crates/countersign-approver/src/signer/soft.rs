//! [`DemoKeySigner`]: the software key behind the [`Signer`] trait, driven through the
//! `authenticator` crate's own CTAP2 `register` and `sign` functions.

use super::ctap::{self, KeyPrompt};
use super::soft_key::{DemoAuthenticator, SimulatedTouch};
use super::soft_key_file::{SoftAlgorithm, SoftKeyFileError, SoftKeyState};
use super::{Assertion, Registration, Signer, SignerError};
use authenticator::FidoDevice;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A software key (tests and demos only; servers can refuse it by its AAGUID).
pub struct DemoKeySigner {
    device: Mutex<DemoAuthenticator>,
    prompt: Arc<dyn KeyPrompt>,
    touch: SimulatedTouch,
}

impl DemoKeySigner {
    /// Creates a new key file at `path` (refusing to overwrite one).
    pub fn create(
        path: &Path,
        algorithm: SoftAlgorithm,
        pin: Option<&str>,
        prompt: Arc<dyn KeyPrompt>,
    ) -> Result<Self, SoftKeyFileError> {
        if path.exists() {
            return Err(SoftKeyFileError::Io {
                path: path.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a key file is already there",
                ),
            });
        }
        let state = SoftKeyState::new(algorithm, pin)?;
        state.save(path)?;
        Self::with_state(state, Some(path), prompt)
    }

    /// Opens the key file at `path`.
    pub fn open(path: &Path, prompt: Arc<dyn KeyPrompt>) -> Result<Self, SoftKeyFileError> {
        Self::with_state(SoftKeyState::load(path)?, Some(path), prompt)
    }

    /// A key that lives only in memory.
    pub fn in_memory(
        state: SoftKeyState,
        prompt: Arc<dyn KeyPrompt>,
    ) -> Result<Self, SoftKeyFileError> {
        Self::with_state(state, None, prompt)
    }

    fn with_state(
        state: SoftKeyState,
        path: Option<&Path>,
        prompt: Arc<dyn KeyPrompt>,
    ) -> Result<Self, SoftKeyFileError> {
        let device = DemoAuthenticator::new(state, path.map(Path::to_owned)).map_err(|e| {
            SoftKeyFileError::Invalid {
                path: path.map(Path::to_owned).unwrap_or_default(),
                detail: e.to_string(),
            }
        })?;
        Ok(DemoKeySigner {
            device: Mutex::new(device),
            prompt,
            touch: SimulatedTouch::default(),
        })
    }

    /// Makes the key wait `delay` for its simulated touch (demos show the "touch" step).
    pub fn with_touch_delay(mut self, delay: std::time::Duration) -> Self {
        self.touch = SimulatedTouch::after(delay);
        if let Ok(device) = self.device.get_mut() {
            device.set_touch(self.touch.clone());
        }
        self
    }

    /// Stops the operation in progress at its touch (a UI's cancel button); it ends with
    /// [`SignerError::Cancelled`].
    pub fn cancel(&self) {
        self.touch.cancel();
    }

    /// The key's state now: credentials, counters, PIN tries left.
    pub fn state(&self) -> Result<SoftKeyState, SignerError> {
        self.lock()?
            .state()
            .map_err(|e| SignerError::Device(e.to_string()))
    }

    /// Simulates unplugging and plugging in the key: a new session (CTAP2's power cycle).
    pub fn replug(&self) -> Result<(), SignerError> {
        let mut device = self.lock()?;
        let state = device
            .state()
            .map_err(|e| SignerError::Device(e.to_string()))?;
        let path = device.path().map(Path::to_owned);
        *device =
            DemoAuthenticator::new(state, path).map_err(|e| SignerError::Device(e.to_string()))?;
        device.set_touch(self.touch.clone());
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, DemoAuthenticator>, SignerError> {
        self.device
            .lock()
            .map_err(|_| SignerError::Device("software key state poisoned".into()))
    }

    /// Runs one CTAP2 operation on the device, as the USB state machine does per device.
    fn run<T: Send + 'static>(
        &self,
        operation: impl FnOnce(
            &mut DemoAuthenticator,
            std::sync::mpsc::Sender<authenticator::StatusUpdate>,
            authenticator::statecallback::StateCallback<authenticator::Result<T>>,
        ),
    ) -> Result<T, SignerError> {
        self.touch.reset();
        let mut device = self.lock()?;
        if !device.initialized() {
            device
                .init()
                .map_err(|e| SignerError::Device(e.to_string()))?;
        }
        ctap::drive(
            self.prompt.clone(),
            ctap::Completion::WhenStartReturns,
            |status, callback| {
                operation(&mut device, status, callback);
                Ok(())
            },
        )
    }
}

impl Signer for DemoKeySigner {
    fn make_credential(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        user_verification: bool,
    ) -> Result<Registration, SignerError> {
        let args = ctap::register_args(rp_id, client_data_json, user_verification);
        let result = self.run(|device, status, callback| {
            authenticator::ctap2::register(device, args, status, callback, &|| true);
        })?;
        ctap::registration_from(result)
    }

    fn get_assertion(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        credential_id: &[u8],
        user_verification: bool,
    ) -> Result<Assertion, SignerError> {
        let args = ctap::sign_args(rp_id, client_data_json, credential_id, user_verification);
        let result = self.run(|device, status, callback| {
            authenticator::ctap2::sign(device, args, status, callback, &|| true);
        })?;
        ctap::assertion_from(result, credential_id)
    }
}
