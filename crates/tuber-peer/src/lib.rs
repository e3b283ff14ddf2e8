//! The Tuber peer engine: what a permanent content peer (the desktop app or
//! the headless daemon) runs: the [`Engine`] handle ties the parts together,
//! and the `tuber-peer` binary is the headless daemon over it.
//!
//! The shape follows the workspace's style: a pure core fed `(now, input)`
//! (budgets, meters) under thin async drivers (the swarm client), every task
//! owned by a handle, bounded channels, no secret in any log.
//!
//! ## Layout
//! - [`identity`] — the installation's ed25519 key: load or create (private,
//!   atomically written), peer id, signing the hub's challenge.
//! - [`budget`] — token buckets for the upload and download caps, and
//!   pause; a request beyond the budget is [`budget::Busy`] at once.
//! - [`meter`] — bytes and rates up and down, in total, per swarm and per
//!   remote peer; the history for graphs ([`meter::history`]), saved and
//!   restored across restarts.
//! - [`swarm_client`] — joins a swarm by URL (descriptor, signaling,
//!   challenge → hello → welcome), keeps the session and reconnects with
//!   jittered backoff.
//! - [`transport`] — WebRTC links: one tuned DataChannel per remote peer.
//! - [`engine`] — the [`Engine`] handle over all of it: swarms, links,
//!   serving, fetching, trusted duties, settings, status and events.
//! - [`daemon`] — the headless `tuber-peer` binary's parts: command line,
//!   the local HTTP API (loopback, token, Host/Origin checks, SSE) and its
//!   client.
//! - [`desktop`] — what the desktop app decides (tray state, deep links,
//!   notifications, its preferences), testable without a display.
//! - [`wire_session`] — one DataChannel's peer wire (protocol §6) as a pure
//!   state machine: hello and the frame limit, requests both ways,
//!   round-robin answers, assembly, verification, timeouts.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod budget;
pub mod daemon;
pub mod desktop;
pub mod engine;
mod http_body;
pub mod identity;
pub mod meter;
pub mod swarm_client;
pub mod tls;
pub mod transport;
pub mod wire_session;

pub use budget::{Budgets, Busy, Rate, RateLimit};
pub use engine::{Engine, EngineConfig, EngineError, EngineEvent, Settings, SettingsPatch, Status};
pub use identity::{default_config_dir, Identity, IdentityError};
pub use meter::{Direction, History, HistorySnapshot, Meter, MeterSnapshot, Traffic, UpDown};
pub use swarm_client::{Invite, JoinError, SendError, SwarmClient, SwarmClientBuilder, SwarmState};
pub use wire_session::{WireSession, WireSessionConfig};
