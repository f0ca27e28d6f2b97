//! Enrolling this device end to end, the one way the CLI and the desktop app both do it:
//! first the device key's store is proven to work (so a missing keyring is reported before
//! the one-time code is spent), then the enrollment, then the device key and the profile are
//! saved. A failed enrollment removes the placeholder it stored.

use crate::audit_memory::CheckpointMemory;
use crate::client::{ClientError, ServerClient};
use crate::device_key::DeviceKeyError;
use crate::profile::{DeviceKeyLocation, Profile, ProfileError};
use crate::signer::Signer;
use crate::EnrollmentCode;
use std::path::{Path, PathBuf};

/// Why enrolling failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// A profile is already there and replacing it was not asked for.
    #[error("this device is already enrolled ({0})")]
    AlreadyEnrolled(PathBuf),
    /// The device key's store (the keyring, or the opted-in file) does not work.
    #[error(transparent)]
    DeviceKey(#[from] DeviceKeyError),
    /// The server, the code or the security key refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The profile could not be written.
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// A new keyring location with a random account name.
pub fn keyring_location() -> Result<DeviceKeyLocation, ClientError> {
    let mut id = [0u8; 12];
    getrandom::getrandom(&mut id).map_err(|_| ClientError::Random)?;
    Ok(DeviceKeyLocation::Keyring {
        account: format!("device-{}", countersign_core::b64::encode(id)),
    })
}

/// A device whose key store was proven to work; nothing has been sent yet.
#[derive(Debug)]
pub struct Prepared {
    profile_path: PathBuf,
    location: DeviceKeyLocation,
}

/// Checks that enrolling can succeed locally before any code is spent: no profile at
/// `profile_path` unless `replace`, its folder can be made, and the device key's store takes
/// a placeholder (replaced by the real key after enrollment).
pub fn prepare(
    profile_path: &Path,
    location: DeviceKeyLocation,
    replace: bool,
) -> Result<Prepared, EnrollError> {
    if profile_path.exists() && !replace {
        return Err(EnrollError::AlreadyEnrolled(profile_path.to_owned()));
    }
    if let Some(dir) = profile_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ProfileError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    location.store().save(&[0u8; 32])?;
    Ok(Prepared {
        profile_path: profile_path.to_owned(),
        location,
    })
}

impl Prepared {
    /// Enrolls with `code` at `server` (the key named `key`, `usb` or `soft:PATH`, is
    /// `signer`), then saves the device key and the profile.
    pub async fn enroll(
        self,
        server: &str,
        code: &EnrollmentCode,
        device_name: &str,
        key: &str,
        signer: &dyn Signer,
    ) -> Result<Profile, EnrollError> {
        let store = self.location.store();
        let enrolled = match ServerClient::enroll(server, code, device_name, signer).await {
            Ok(enrolled) => enrolled,
            Err(e) => {
                let _ = store.delete();
                return Err(e.into());
            }
        };
        store.save(&enrolled.device_key_seed())?;
        let profile = enrolled.profile(key, self.location);
        // A checkpoint kept for an earlier enrollment (maybe of another server) says nothing
        // about this one.
        let checkpoint_file = Profile::checkpoint_file(&self.profile_path);
        CheckpointMemory::forget(&checkpoint_file).map_err(|source| ProfileError::Io {
            path: checkpoint_file,
            source,
        })?;
        profile.save(&self.profile_path)?;
        Ok(profile)
    }

    /// Gives up without enrolling: removes the placeholder.
    pub fn abandon(self) {
        let _ = self.location.store().delete();
    }
}
