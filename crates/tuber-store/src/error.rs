//! The store's one error type.

use std::path::PathBuf;

use tuber_proto::PieceHash;

/// Why a store operation failed.
///
/// Everything the caller can act on has its own variant; `Db` is what is left
/// of sled (I/O errors, or corruption outside the piece trees, which the store
/// cannot repair by itself).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The bytes offered to `put` do not hash to the given address; nothing
    /// was stored.
    #[error("piece bytes hash to {actual}, not to {expected}")]
    HashMismatch {
        /// The address the caller claimed.
        expected: PieceHash,
        /// The SHA-256 of the bytes actually offered.
        actual: PieceHash,
    },
    /// A piece larger than [`crate::MAX_PIECE_BYTES`].
    #[error("piece of {size} bytes exceeds the {max}-byte piece limit")]
    PieceTooLarge {
        /// Size offered.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The piece does not fit in the budget, even after evicting everything
    /// this put is allowed to evict (unpinned pieces only, unless the put is
    /// pinned). Nothing was evicted.
    #[error(
        "store full: piece needs {needed} bytes but only {available} can be made free \
         within the {budget}-byte budget"
    )]
    Full {
        /// What the piece would occupy on disk (its size rounded up to the
        /// filesystem block).
        needed: u64,
        /// Bytes free now plus bytes this put may evict, on disk.
        available: u64,
        /// The disk budget.
        budget: u64,
    },
    /// The stored piece failed verification (hash mismatch, missing bytes,
    /// undecodable metadata or a sled checksum error). It has been deleted and
    /// counted; fetch it again elsewhere.
    #[error("piece {hash} was corrupt on disk and has been deleted")]
    Corrupt {
        /// The piece's address.
        hash: PieceHash,
    },
    /// No piece with this address is stored.
    #[error("piece {hash} is not stored")]
    NotFound {
        /// The piece's address.
        hash: PieceHash,
    },
    /// A piece already lists the maximum number of owners.
    #[error("piece {hash} already has the maximum of {max} owners")]
    TooManyOwners {
        /// The piece's address.
        hash: PieceHash,
        /// The limit, [`crate::MAX_OWNERS`].
        max: usize,
    },
    /// A swarm, resource or manifest path is empty, too long or contains NUL
    /// (NUL separates the parts of index keys).
    #[error("invalid {what}: {reason}")]
    InvalidName {
        /// Which name: "swarm", "resource" or "manifest path".
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A manifest larger than [`crate::MAX_MANIFEST_BYTES`].
    #[error("manifest of {size} bytes exceeds the {max}-byte limit")]
    ManifestTooLarge {
        /// Size offered.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// sled could not open the database at all. For sled 0.34 this is what a
    /// damaged log segment or blob near the recovery point looks like; the
    /// store is a cache, so the usual remedy is to move the directory aside
    /// and start empty.
    #[error("cannot open the store at {path}: {source}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// sled's reason.
        source: sled::Error,
    },
    /// Any other sled failure.
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    /// The store thread behind an async [`crate::Store`] has stopped.
    #[error("the store has been shut down")]
    Closed,
}

impl From<sled::transaction::TransactionError<()>> for StoreError {
    fn from(e: sled::transaction::TransactionError<()>) -> Self {
        match e {
            sled::transaction::TransactionError::Storage(e) => StoreError::Db(e),
            // Our transaction closures never abort: every decision is taken
            // before the transaction starts.
            sled::transaction::TransactionError::Abort(()) => StoreError::Db(
                sled::Error::ReportableBug("store transaction aborted".into()),
            ),
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
