//! Reads served beside the store thread.
//!
//! A hit needs only the piece's metadata record (for its length) and its
//! file. Going through the store thread for the lookup cost two thread hops
//! per piece and made every reader wait in one queue: 50 links reading
//! 16 KiB pieces got under half of what plain files gave them. sled trees
//! are safe to read from any thread, so readers look the record up
//! themselves, on tokio's blocking pool, and read and hash the file there.
//!
//! The store thread stays the only writer. It counts the reads served here
//! (access order, hits, bytes served) from the hashes they leave in
//! [`Readers::counted`], before each command it runs, so every command sees
//! the reads that came before it. It reloads each counted piece's record
//! itself rather than trusting the reader's copy, which a mutation may have
//! replaced meanwhile. Anything but a verified hit goes to the store thread,
//! which owns repair: a damaged file or record, a sled error, a store that
//! is closing.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError, RwLock};

use tuber_proto::PieceHash;

use crate::core::StoreCore;
use crate::files::{read_verified, PieceFiles};
use crate::meta::PieceMeta;

/// Reads counted before a reader asks the store thread to count them.
const COUNT_EVERY: usize = 1024;
/// Reads kept for counting at most: past this (a store thread stuck behind
/// a long scrub) reads are served but not counted, which costs only the
/// precision of the eviction order.
const MAX_UNCOUNTED: usize = 64 * COUNT_EVERY;

/// The live database's `meta` tree and the piece files, as readers see them.
struct View {
    generation: u64,
    meta: sled::Tree,
    files: PieceFiles,
}

/// What a reader found.
pub(crate) enum Lookup {
    /// The piece, verified.
    Hit(Vec<u8>),
    /// Not stored.
    Absent,
    /// Anything else: the store thread decides (and repairs).
    Ask,
}

pub(crate) struct Readers {
    /// `None` once the store is closing: the database must be released
    /// before the directory can be opened again.
    view: RwLock<Option<View>>,
    counted: Mutex<Vec<PieceHash>>,
}

impl Readers {
    pub(crate) fn new(core: &StoreCore) -> Self {
        Self {
            view: RwLock::new(Some(view_of(core))),
            counted: Mutex::new(Vec::new()),
        }
    }

    /// Looks a piece up and reads it. The second value asks the caller to
    /// have the store thread count the reads ([`COUNT_EVERY`] are waiting).
    pub(crate) fn read(&self, hash: &PieceHash) -> (Lookup, bool) {
        let Some((path, size)) = (match self.locate(hash) {
            Ok(found) => found,
            Err(ask) => return (ask, false),
        }) else {
            return (Lookup::Absent, false);
        };
        let Some(bytes) = read_verified(&path, size, hash) else {
            return (Lookup::Ask, false);
        };
        let mut counted = self.counted.lock().unwrap_or_else(PoisonError::into_inner);
        if counted.len() < MAX_UNCOUNTED {
            counted.push(*hash);
        }
        let nudge = counted.len().is_multiple_of(COUNT_EVERY);
        (Lookup::Hit(bytes), nudge)
    }

    /// The piece's file and length; the view's lock is held only for the
    /// lookup, so a closing store waits microseconds for it.
    fn locate(&self, hash: &PieceHash) -> Result<Option<(PathBuf, u64)>, Lookup> {
        let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
        let view = view.as_ref().ok_or(Lookup::Ask)?;
        match view.meta.get(hash.as_bytes()) {
            Ok(None) => Ok(None),
            Ok(Some(raw)) => match PieceMeta::decode(&raw) {
                Ok(meta) => Ok(Some((view.files.path(hash), meta.size))),
                Err(_) => Err(Lookup::Ask),
            },
            Err(_) => Err(Lookup::Ask),
        }
    }

    /// The reads served since the last call, for the store thread to count.
    pub(crate) fn take_counted(&self) -> Vec<PieceHash> {
        std::mem::take(&mut *self.counted.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Follows the store to a rebuilt database (a repair opens a new one).
    pub(crate) fn follow(&self, core: &StoreCore) {
        let stale = {
            let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
            view.as_ref()
                .is_some_and(|v| v.generation != core.generation)
        };
        if stale {
            *self.view.write().unwrap_or_else(PoisonError::into_inner) = Some(view_of(core));
        }
    }

    /// Lets go of the database: called before the store closes it.
    pub(crate) fn close(&self) {
        *self.view.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

fn view_of(core: &StoreCore) -> View {
    View {
        generation: core.generation,
        meta: core.t.meta.clone(),
        files: core.files.clone(),
    }
}
