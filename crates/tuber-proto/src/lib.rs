//! Tuber's wire types and codecs: no I/O, no async runtime.
//!
//! ## Goals
//! - One definition of every message that crosses a process boundary: the
//!   swarm descriptor, manifests, signaling, and the peer wire.
//! - A limit for every field, checked by every decoder, so that hostile input
//!   becomes an error value, never a panic or an unbounded allocation.
//! - Byte-exact, versioned encodings that the browser client (`web/`)
//!   implements too; `docs/protocol-vectors.json` holds encoded messages with
//!   their decoded form, and both codecs must pass it.
//!
//! ## Non-goals
//! - Transport, timers, retries: the peer engine and the hub drive these types.
//! - Cryptography beyond SHA-256: ed25519 signing and verifying live with the
//!   peer and the hub ([`signal::hello_signing_payload`] fixes the bytes).
//!
//! ## Layout
//! - [`hash`] — 32-byte ids (piece hash, manifest id, peer id, nonce).
//! - [`limits`] — every limit, with its unit.
//! - [`descriptor`] — `/.well-known/tuber`.
//! - [`manifest`] — manifests, their canonical encoding and id.
//! - [`signal`] — signaling messages by direction (JSON over WebSocket).
//! - [`wire`] — peer wire frames (binary over a DataChannel).
//! - [`origin`] — web origins: what a proof is bound to, where a descriptor may point.
//! - [`expiry`] — when a signed URL says its resource stops being valid.
//!
//! The specification is `docs/protocol.md`.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod descriptor;
pub mod expiry;
pub mod hash;
pub mod limits;
pub mod manifest;
pub mod origin;
pub mod signal;
mod validate;
pub mod wire;

pub use descriptor::{DescriptorError, IceServer, SwarmDescriptor};
pub use hash::{IdParseError, ManifestId, Nonce, PeerId, PieceHash};
pub use manifest::{Manifest, ManifestError};
pub use signal::{ClientToHub, ErrorCode, HubToClient, Role, SignalError, Validate};
pub use validate::{LimitError, LimitKind};
pub use wire::{Frame, WireError, WireErrorCode};
