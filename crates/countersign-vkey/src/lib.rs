//! A virtual FIDO2 USB security key for Countersign's tests of the USB path: what a physical
//! key speaks over USB HID, so that the approver's real `authenticator` code can be driven
//! through the kernel's hidraw (issue 13). Test support only: never shipped to approvers.
//!
//! - [`ctaphid`]: the CTAPHID transport, the device's side;
//! - [`uhid`]: the Linux uhid events that make such a device appear as `/dev/hidraw*`;
//! - [`ctap2`]: the CTAP2 commands on top (getInfo, makeCredential, getAssertion, reset);
//! - [`device`]: all three plugged in, with a test-controlled touch, keep-alives and cancel.
#![forbid(unsafe_code)]

pub mod ctap2;
pub mod ctaphid;
pub mod device;
pub mod uhid;
