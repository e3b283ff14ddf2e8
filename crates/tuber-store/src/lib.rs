//! Tuber's piece store: content-addressed piece files beside a sled
//! database of metadata, verified on every write and every read, held within
//! a hard disk budget.
//!
//! A piece is addressed by the SHA-256 of its bytes ([`PieceHash`]). `put`
//! refuses bytes that do not hash to their address; `get` hashes again on
//! every read, and a piece that fails is deleted and reported
//! ([`StoreError::Corrupt`]), never returned. The budget is a hard limit on
//! what the store occupies on disk (each piece's size rounded up to the
//! filesystem block, and the database measured): a put that does not fit
//! evicts the least valuable pieces (unpinned before pinned, then least
//! recently used) or, if even that cannot make room, fails without
//! evicting anything.
//!
//! [`StoreCore`] is the blocking store; [`Store`] is the async handle that
//! runs one on its own thread (and reads piece files on tokio's blocking
//! pool, so that many readers run in parallel).
//!
//! # Layout
//!
//! Modules:
//! - `core`: [`StoreCore`]: open, reads, listings, groups of writes.
//! - `write`: put with eviction, delete, pinning, budget changes.
//! - `files`: the piece files; `reap`: deleting them once their removal is
//!   durable; `access`: read bookkeeping (pending reads, the read log).
//! - `manifests`: opaque manifest bytes per (swarm, path).
//! - `repair`: deleting corrupt pieces, rebuilding a damaged database.
//! - `scrub`: the full verification pass ([`StoreCore::scrub`]).
//! - `migrate`: moving a store of the older layout to piece files.
//! - `actor`: [`Store`], the async handle.
//! - `meta`, `totals`, `keys`: record encodings and key layouts.
//! - `layout`: the store directory and its `CURRENT` pointer.
//! - `error`, `config`.
//!
//! On disk:
//!
//! ```text
//! <root>/CURRENT                 "db.<n>": the live sled database
//! <root>/db.<n>/                 sled: metadata, indexes, manifests, totals
//! <root>/pieces/<h0h1>/<hex>     one file per piece, named by its hash
//! <root>/pieces/tmp/             piece writes in flight
//! ```
//!
//! The database's trees (integers big-endian):
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `meta` | hash (32 bytes) | [`PieceMeta`], encoded by `meta` |
//! | `lru` | pinned u8, last access u64, hash | empty |
//! | `owners` | swarm, 0x00, resource, 0x00, hash | empty |
//! | `reads` | record number u64 | reads not yet folded into `meta`: hash, clock |
//! | `manifests` | swarm, 0x00, path | manifest bytes (opaque) |
//! | `stats` | `totals`, `clean`, `reads_folded` | totals, counters, clock; clean-close marker; last folded `reads` record |
//! | `pieces` | hash | piece bytes: the old layout only, emptied at open |
//!
//! The first `lru` key is the next eviction victim unless the piece was read
//! since its record was written (see `access`); an `owners` prefix scan
//! lists a swarm or a resource.
//!
//! # Crash safety
//!
//! A put writes the piece file completely (under `tmp/`, then renamed into
//! place) before it records the piece; a removal deletes the file only after
//! the removal is durable in sled (`reap`). So a piece the database knows
//! always has its whole file after a kill -9, and a file the database does
//! not know is debris, deleted at the next open. The database's writes are
//! plain sled writes, not transactions: each sled 0.34 transaction writes
//! and syncs sled's log buffer, about a millisecond here, which held puts of
//! 16 KiB pieces to 20 MB/s. A piece's metadata is one record, so it is
//! never half-written; the indexes and totals derived from it are trusted at
//! open only after a clean close (the `clean` marker) and are otherwise
//! rebuilt from the metadata. No fsync of piece files by default
//! ([`Config::sync_pieces`]): after a power cut, a piece whose bytes had
//! not reached the disk fails verification, is deleted and counted, and is
//! fetched again.
//!
//! # Disk use
//!
//! The budget is for the whole store directory. `du` of it stays within
//! `1.1 x budget + 4 MiB` ([`FIXED_ALLOWANCE`]; tested in
//! `tests/disk_budget.rs` on the real filesystem, with the longest names
//! too). The piece files get the budget less what the rest of the
//! directory takes beyond those 4 MiB (`room`: the database, measured
//! with `du` at open, at every reap and every 64 KiB of records written).
//! The 4 MiB are the 256 fan-out directories (1 MiB on ext4) and sled's
//! minimum. The database grows with the pieces (about 1.5 KiB a piece
//! after churn, so 9 % of the budget with 16 KiB pieces, 0.6 % with
//! 256 KiB) and with their names (the longest names the store accepts
//! make it larger than the pieces), and sled does not give its file back,
//! so what it takes at its largest stays taken from the pieces. On top
//! come the files of removed pieces awaiting deletion: at most a 32nd of
//! the budget, briefly. [`StoreCore::disk_usage`] reports the same figure
//! without walking the piece files.
//!
//! A damaged database (a sled checksum failure) is rebuilt into a fresh
//! generation from whatever metadata reads back (see `repair`); the piece
//! files are kept for the pieces whose metadata survived and swept for the
//! rest. If sled cannot open the database at all, the store starts empty
//! ([`StoreCore::was_reset_at_open`]) and sweeps every piece file.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod access;
mod actor;
mod config;
mod core;
mod error;
mod files;
mod keys;
mod layout;
mod manifests;
mod meta;
mod migrate;
mod reap;
mod repair;
mod room;
mod scrub;
mod totals;
mod write;

pub use tuber_proto::PieceHash;

pub use crate::actor::Store;
pub use crate::config::Config;
pub use crate::core::StoreCore;
pub use crate::error::{Result, StoreError};
pub use crate::files::du;
pub use crate::meta::{Owner, PieceMeta};
pub use crate::repair::ScrubReport;
pub use crate::room::FIXED_ALLOWANCE;
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
