//! The Countersign server: policy evaluation, the request lifecycle, storage and the HTTP API.
//! `docs/architecture.md` maps the modules; `docs/protocol.md` the formats.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod catalog;
pub mod changes;
pub mod checkpoints;
pub mod clock;
pub mod config;
pub mod cpu_placement;
pub mod identity;
pub mod key_provider;
pub mod keys;
pub mod lifecycle;
pub mod metadata;
pub mod metrics;
pub mod policy;
pub mod problem;
pub mod ratelimit;
pub mod serve;
pub mod service;
pub mod store;
pub mod tls;
pub mod webhook;
