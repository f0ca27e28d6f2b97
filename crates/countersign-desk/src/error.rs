//! The one error type that crosses the IPC boundary: a stable `kind` the UI switches on, the
//! server's problem `code` when the server refused, and a `message` for people.

use countersign_approver::client::ClientError;
use countersign_approver::device_key::DeviceKeyError;
use countersign_approver::enroll::EnrollError;
use countersign_approver::profile::ProfileError;
use countersign_approver::signer::{SignerError, SoftKeyFileError};
use serde::ser::SerializeStruct;
use serde::Serialize;

/// What went wrong, by cause. It reaches the UI as `{kind, code, message}`: `kind` is the
/// variant's snake_case name, `code` the server's problem code when the server refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum ShellError {
    /// No device is enrolled yet.
    #[error("this device is not enrolled")]
    NotEnrolled,
    /// A device is enrolled already; unenroll first.
    #[error("this device is already enrolled; unenroll it in Settings first")]
    AlreadyEnrolled,
    /// No usable keyring for the device key.
    #[error("{message}")]
    NoKeyring {
        /// What to install.
        message: String,
    },
    /// The enrollment code does not parse.
    #[error("this is not a valid enrollment code: {message}")]
    InvalidCode {
        /// Why.
        message: String,
    },
    /// The server's key is not the one the enrollment code names.
    #[error("{message}")]
    ServerNotTrusted {
        /// Why.
        message: String,
    },
    /// The server could not be reached or answered unreadably.
    #[error("cannot reach the server: {message}")]
    ServerUnreachable {
        /// What the connection said.
        message: String,
    },
    /// The server refused with a problem document.
    #[error("the server refused ({code}): {message}")]
    ServerRefused {
        /// The server's stable problem code (`approval_expired`, `already_decided`, ...).
        code: countersign_core::wire::ProblemCode,
        /// The server's detail.
        message: String,
    },
    /// The request is no longer pending here (decided, withdrawn, or not for this approver).
    #[error("this request is no longer waiting for you (decided, withdrawn or expired)")]
    NotPending,
    /// What the screen showed is not what the shell holds now: show it again.
    #[error("this request changed since it was shown; review it again")]
    Changed,
    /// The approval deadline has passed.
    #[error("this request has expired and can no longer be answered")]
    Expired,
    /// Another key ceremony is running.
    #[error("another security key operation is in progress")]
    Busy,
    /// The person cancelled.
    #[error("cancelled: nothing was signed or sent")]
    Cancelled,
    /// The key waited too long for a touch or a PIN.
    #[error("the security key timed out: nothing was signed or sent")]
    TimedOut,
    /// Too many wrong PINs in a row.
    #[error("too many wrong PINs: unplug the security key and plug it in again")]
    PinAuthBlocked,
    /// The PIN is blocked for good.
    #[error("the security key's PIN is blocked; the key must be reset and enrolled again")]
    PinBlocked,
    /// User verification needed but the key has no PIN.
    #[error("this request needs a PIN but your security key has none: set one first")]
    PinNotSet,
    /// The key does not hold the enrolled credential.
    #[error("this security key is not the one enrolled here")]
    UnknownCredential,
    /// No security key can be reached.
    #[error("no security key found: {message}")]
    NoKeyFound {
        /// What the transport said.
        message: String,
    },
    /// The security key reported something else.
    #[error("security key: {message}")]
    Key {
        /// What the key said.
        message: String,
    },
    /// A pushed request failed verification.
    #[error("{message}")]
    Unverified {
        /// Why it is not shown.
        message: String,
    },
    /// The saved profile, the software key file or the history could not be used.
    #[error("{message}")]
    Storage {
        /// What failed.
        message: String,
    },
    /// A field the person entered is not acceptable.
    #[error("{message}")]
    Invalid {
        /// What to correct.
        message: String,
    },
    /// A bug or an operating-system failure.
    #[error("internal error: {message}")]
    Internal {
        /// What failed.
        message: String,
    },
}

impl Serialize for ShellError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let code = match self {
            ShellError::ServerRefused { code, .. } => Some(code.as_str()),
            _ => None,
        };
        let mut fields = serializer.serialize_struct("ShellError", 3)?;
        fields.serialize_field("kind", self.kind())?;
        fields.serialize_field("code", &code)?;
        fields.serialize_field("message", &self.to_string())?;
        fields.end()
    }
}

impl ShellError {
    /// The stable kind the UI switches on.
    pub fn kind(&self) -> &'static str {
        self.into()
    }

    /// An internal error from anything displayable.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        ShellError::Internal {
            message: error.to_string(),
        }
    }

    /// The security key's error; `cancelled` says whether the person pressed cancel, which
    /// tells a cancel from a timeout (the key reports both the same way).
    pub fn from_signer(error: &SignerError, cancelled: bool) -> Self {
        match error {
            SignerError::Cancelled if cancelled => ShellError::Cancelled,
            SignerError::Cancelled => ShellError::TimedOut,
            SignerError::UnknownCredential => ShellError::UnknownCredential,
            SignerError::PinAuthBlocked => ShellError::PinAuthBlocked,
            SignerError::PinBlocked => ShellError::PinBlocked,
            SignerError::PinNotSet => ShellError::PinNotSet,
            SignerError::NoTransport(message) => ShellError::NoKeyFound {
                message: message.clone(),
            },
            other => ShellError::Key {
                message: other.to_string(),
            },
        }
    }

    /// The approver client's error; `cancelled` as for [`ShellError::from_signer`].
    pub fn from_client(error: ClientError, cancelled: bool) -> Self {
        match error {
            ClientError::Problem { code, detail, .. } => ShellError::ServerRefused {
                code,
                message: detail,
            },
            ClientError::Http(e) => ShellError::ServerUnreachable {
                message: e.to_string(),
            },
            ClientError::Signer(e) => ShellError::from_signer(&e, cancelled),
            ClientError::Enrollment(e) => ShellError::ServerNotTrusted {
                message: e.to_string(),
            },
            ClientError::Refused(e) => ShellError::Unverified {
                message: e.to_string(),
            },
            other => ShellError::internal(other),
        }
    }
}

impl From<DeviceKeyError> for ShellError {
    fn from(error: DeviceKeyError) -> Self {
        match error {
            DeviceKeyError::NoKeyring { .. } => ShellError::NoKeyring {
                message: error.to_string(),
            },
            other => ShellError::Storage {
                message: other.to_string(),
            },
        }
    }
}

impl From<ProfileError> for ShellError {
    fn from(error: ProfileError) -> Self {
        match error {
            ProfileError::NotEnrolled(_) => ShellError::NotEnrolled,
            ProfileError::DeviceKey(e) => e.into(),
            ProfileError::Client(e) => ShellError::from_client(e, false),
            other => ShellError::Storage {
                message: other.to_string(),
            },
        }
    }
}

impl From<SoftKeyFileError> for ShellError {
    fn from(error: SoftKeyFileError) -> Self {
        ShellError::Storage {
            message: error.to_string(),
        }
    }
}

impl From<EnrollError> for ShellError {
    fn from(error: EnrollError) -> Self {
        match error {
            EnrollError::AlreadyEnrolled(_) => ShellError::AlreadyEnrolled,
            EnrollError::DeviceKey(e) => e.into(),
            EnrollError::Client(e) => ShellError::from_client(e, false),
            EnrollError::Profile(e) => e.into(),
            other => ShellError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crosses_the_boundary_as_kind_and_fields() {
        let e = ShellError::ServerRefused {
            code: countersign_core::wire::ProblemCode::ApprovalExpired,
            message: "too late".into(),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"kind": "server_refused", "code": "approval_expired",
                "message": "the server refused (approval_expired): too late"})
        );
        assert_eq!(
            serde_json::to_value(ShellError::PinAuthBlocked).unwrap(),
            serde_json::json!({"kind": "pin_auth_blocked", "code": null,
                "message": "too many wrong PINs: unplug the security key and plug it in again"})
        );
    }

    #[test]
    fn a_cancel_is_told_from_a_timeout() {
        assert_eq!(
            ShellError::from_signer(&SignerError::Cancelled, true),
            ShellError::Cancelled
        );
        assert_eq!(
            ShellError::from_signer(&SignerError::Cancelled, false),
            ShellError::TimedOut
        );
    }
}
