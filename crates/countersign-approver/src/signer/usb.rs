//! [`UsbSigner`]: a FIDO2 security key over USB HID through the `authenticator` crate, which
//! finds the keys, lets the person pick one by touching it, and runs CTAP2 (or U2F for old
//! keys). Progress and PIN requests go through the shared [`KeyPrompt`]. Cannot run in CI
//! without hardware; the software key drives the same status and PIN path there.

use super::ctap::{self, KeyPrompt};
use super::{Assertion, Registration, Signer, SignerError};
use authenticator::authenticatorservice::AuthenticatorService;
use authenticator::errors::AuthenticatorError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A security key on USB.
pub struct UsbSigner {
    timeout: Duration,
    prompt: Arc<dyn KeyPrompt>,
    running: Mutex<Option<AuthenticatorService>>,
}

impl UsbSigner {
    /// Waits at most `timeout` for a key, a touch and a PIN per operation.
    pub fn new(timeout: Duration, prompt: Arc<dyn KeyPrompt>) -> Self {
        UsbSigner {
            timeout,
            prompt,
            running: Mutex::new(None),
        }
    }

    /// Stops the operation in progress (a UI's cancel button); it ends with
    /// [`SignerError::Cancelled`].
    pub fn cancel(&self) {
        if let Ok(mut running) = self.running.lock() {
            if let Some(service) = running.as_mut() {
                let _ = service.cancel();
            }
        }
    }

    /// Starts `operation` on a fresh service with the USB HID transport; it stays reachable
    /// for [`UsbSigner::cancel`] while it runs.
    fn start(
        &self,
        operation: impl FnOnce(&mut AuthenticatorService) -> Result<(), AuthenticatorError>,
    ) -> Result<(), AuthenticatorError> {
        let mut running = self
            .running
            .lock()
            .map_err(|_| AuthenticatorError::Custom("USB signer state poisoned".into()))?;
        let service = running.insert(AuthenticatorService::new()?);
        service.add_u2f_usb_hid_platform_transports();
        operation(service)
    }

    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
    }
}

impl Signer for UsbSigner {
    fn make_credential(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        user_verification: bool,
    ) -> Result<Registration, SignerError> {
        let args = ctap::register_args(rp_id, client_data_json, user_verification);
        let result = ctap::drive(
            self.prompt.clone(),
            ctap::Completion::InBackground,
            |status, callback| {
                self.start(|service| service.register(self.timeout_ms(), args, status, callback))
            },
        )?;
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
        let result = ctap::drive(
            self.prompt.clone(),
            ctap::Completion::InBackground,
            |status, callback| {
                self.start(|service| service.sign(self.timeout_ms(), args, status, callback))
            },
        )?;
        ctap::assertion_from(result, credential_id)
    }
}
