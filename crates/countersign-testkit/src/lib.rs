//! Test support for the whole workspace (`publish = false`): the real `countersign-server`
//! binary started on loopback with a fresh data directory and driven through its admin
//! subcommands, enrolled approvers that sign their calls and answer with a software FIDO key,
//! the approver event stream read with deadlines, and what a protected application sends.
//! The server's integration tests, the end-to-end suites, the approver's, desk's and tray's
//! tests and the load generator all use it.
//!
//! A failed step panics with what went wrong: that is how a test fails.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app;
mod approver;
mod binary;
mod cluster;
pub mod postgres;
mod server;
mod stream;
mod time;

pub use app::{payout, session_hash};
pub use approver::{Approver, ORIGIN, RP_ID};
pub use binary::{server_bin, workspace_bin};
pub use cluster::{Balancer, Cluster};
pub use server::{admin, admin_fails, process_cpu_seconds, Endpoint, Server};
pub use stream::{verify_pushed, EventStream, SseEvent, SseItem};
pub use time::{sleep_until_after, unix_now};
