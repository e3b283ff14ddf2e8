//! Tuber's piece store: content-addressed pieces in sled, verified on every
//! write and every read, held within a hard disk budget.
//!
//! A piece is addressed by the SHA-256 of its bytes ([`PieceHash`]). `put`
//! refuses bytes that do not hash to their address; `get` hashes again on
//! every read, and a piece that fails is deleted and reported
//! ([`StoreError::Corrupt`]), never returned. The budget is a hard limit on
//! stored piece bytes: a put that does not fit evicts the least valuable
//! pieces (unpinned before pinned, then least recently used) or, if even that
//! cannot make room, fails without evicting anything.
//!
//! Every mutation that touches several trees, including the persisted totals,
//! is one sled transaction, so a kill -9 leaves all of it or none of it and
//! the totals always equal the contents.
//!
//! [`StoreCore`] is the blocking store; [`Store`] is the async handle that
//! runs one on its own thread.
//!
//! # Layout
//!
//! Modules:
//! - `core`: [`StoreCore`]: open, reads, listings, transactions.
//! - `write`: put with eviction, delete, pinning, budget changes.
//! - `manifests`: opaque manifest bytes per (swarm, path).
//! - `repair`: deleting corrupt pieces, rebuilding a damaged database.
//! - `scrub`: the full verification pass ([`StoreCore::scrub`]).
//! - `actor`: [`Store`], the async handle.
//! - `meta`, `totals`, `keys`: record encodings and key layouts.
//! - `layout`: the store directory and its `CURRENT` pointer.
//! - `error`, `config`.
//!
//! On disk, the store directory holds `CURRENT`, naming the live sled
//! database `db.<n>` beside it. The database's trees (integers big-endian):
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `pieces` | hash (32 bytes) | piece bytes |
//! | `meta` | hash | [`PieceMeta`], encoded by `meta` |
//! | `lru` | pinned u8, last access u64, hash | empty |
//! | `owners` | swarm, 0x00, resource, 0x00, hash | empty |
//! | `manifests` | swarm, 0x00, path | manifest bytes (opaque) |
//! | `stats` | `totals` | totals, counters and the logical clock |
//!
//! The first `lru` key is always the next eviction victim; an `owners`
//! prefix scan lists a swarm or a resource.
//!
//! # sled 0.34 on disk, and what the store does about it
//!
//! Values larger than about 128 KiB (a quarter of sled's 512 KiB log
//! segment), so every 256 KiB piece and every B-tree leaf holding one, are
//! written as separate files under `blobs/`, each with a CRC. sled also
//! rewrites whole leaves (up to 16 values), so disk usage is a few times the
//! piece bytes; [`StoreCore::disk_usage`] reports it.
//!
//! A flipped byte in a blob file is caught by that CRC. If the blob predates
//! the last open, sled reads it lazily and reports `Corruption`; sled 0.34 can
//! then neither read, write nor free that node, and its segment cleaner will
//! later fail unrelated writes on it. So on any sled checksum failure the
//! store copies every readable, verified piece and manifest into a fresh
//! database, switches `CURRENT` to it, and deletes the old one; the lost
//! pieces (the whole damaged leaf: up to 16) are counted as corrupt. The copy
//! reads the whole store and needs room for a second copy for a while; it is
//! the price of sled 0.34's failure mode, paid only on real damage. If instead sled's recovery reads the bad
//! blob (it was written since the last open), sled 0.34 stops recovery there
//! and silently drops later writes, or refuses to open
//! ([`StoreError::Open`]); the store cannot tell the former from a clean
//! shutdown, but it stays consistent.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod actor;
mod config;
mod core;
mod error;
mod keys;
mod layout;
mod manifests;
mod meta;
mod repair;
mod scrub;
mod totals;
mod write;

pub use tuber_proto::PieceHash;

pub use crate::actor::Store;
pub use crate::config::Config;
pub use crate::core::StoreCore;
pub use crate::error::{Result, StoreError};
pub use crate::meta::{Owner, PieceMeta};
pub use crate::repair::ScrubReport;
pub use crate::totals::{Contents, Totals};
pub use crate::write::PutOutcome;

/// Largest piece the store accepts, in bytes (4 MiB).
pub const MAX_PIECE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest manifest the store accepts, in bytes (16 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;
/// Most owners one piece can list.
pub const MAX_OWNERS: usize = 16;
/// Longest swarm name, in bytes.
pub const MAX_SWARM_BYTES: usize = 256;
/// Longest resource name, in bytes.
pub const MAX_RESOURCE_BYTES: usize = 2048;
/// Longest manifest path, in bytes.
pub const MAX_PATH_BYTES: usize = 2048;
