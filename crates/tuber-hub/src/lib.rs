//! The Tuber hub: what a site operator runs in front of a site to make it a
//! swarm (roles Content Origin, Central Planner, Gateway and Signaling).
//!
//! ## Layout
//! - [`planner`] — the Central Planner as a pure state machine: holdings,
//!   provider ranking, partition assignment, reports and bans, liveness.
//!   Fed `(now, input)`, drained of outputs; no clock, no sockets.
//! - [`proxy`] — the Content Origin: the streaming reverse proxy to the site,
//!   script injection, the distributable rules, HLS and DASH playlists,
//!   WebSockets.
//! - [`stun`] — the Gateway: a STUN binding server on UDP.
//! - [`turn`] — the Gateway's relay fallback: short-lived TURN credentials
//!   (TURN REST API, shared secret) for a real TURN server such as coturn.
//! - [`config`] — the configuration file, every field with its default.
//! - [`db`] — the hub's sled database (one process at a time).
//! - [`demo`] — the built-in demo site behind `tuber-hub demo`.
//! - [`invites`] — invite tokens that register a permanent peer's key as trusted.
//! - [`manifests`] — manifests computed from the upstream's bytes, cached by
//!   path and version in a bounded index that forgets what nobody asks for
//!   and expired signed URLs, and the pieces they list.
//! - [`network`] — the network (IPv4 /24, IPv6 /48) an address counts as.
//! - [`metrics`] — `/metrics` in Prometheus text format.
//! - [`range`] — HTTP byte ranges for the hub's own endpoints.
//! - [`upstream_client`] — the one HTTP client builder for the upstream
//!   (pool, connect timeout, TLS with bundled roots), shared by the proxy
//!   and the manifests.
//! - [`publisher`] — what the proxy saw becomes content for the planner:
//!   distributable responses, live segments pushed and retired.
//! - [`publication`] — what the planner assigns follows the manifest index
//!   (the most wanted manifests the trusted peers can hold).
//! - [`server`] — assembles the hub and runs it; [`routes`] and [`admin`]
//!   are its own endpoints, the proxy takes everything else.
//! - [`site_worker`] — a site's own Service Worker hosted by Tuber's: the
//!   hub answers its host URL (`/sw.js?tuber-host=classic`) itself.
//! - [`tls`] — HTTPS terminated by the hub: certificate files or ACME,
//!   the TLS listener, the plain-HTTP redirect and HTTP-01 challenges.
//! - [`signaling`] — the WebSocket side: one actor per swarm around its
//!   planner, one task per connection.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod bans;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod invites;
pub mod manifests;
pub mod metrics;
pub mod network;
pub mod planner;
pub mod proxy;
pub mod publication;
pub mod publisher;
pub mod range;
pub mod routes;
pub mod server;
pub mod signaling;
pub mod site_worker;
pub mod stun;
pub mod tls;
pub mod turn;
pub mod upstream_client;
