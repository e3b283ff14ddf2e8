//! What the piece files may occupy: the budget, less what the rest of the
//! store directory takes beyond a fixed allowance.
//!
//! The donor's budget is for the whole data folder. The piece files are most
//! of it, but the database grows with the number of pieces (about 1.5 KiB a
//! piece after churn, so 9 % of the budget with 16 KiB pieces) and with the
//! length of their names (a piece may list 16 owners of up to 2.3 KiB each),
//! and the fan-out directories grow with their entries. A fixed guess per
//! piece would be wrong for someone; so the store measures that overhead
//! (`du` of the database, the directories and `CURRENT`: a few hundred
//! stats, no piece file read) at open, at every reap and every
//! [`MEASURE_EVERY`] bytes of records written, and gives the pieces what
//! is left. The first [`FIXED_ALLOWANCE`] of overhead is not charged, so
//! that a small budget still holds pieces; it is the fixed part of the
//! bound the crate docs state.

use crate::core::StoreCore;
use crate::files::du;

/// Overhead not charged to the pieces: the 258 piece directories (1 MiB on
/// ext4), `CURRENT`, and sled's minimum (its config, the log segments in
/// use, a snapshot: 1.6 to 2.1 MiB measured for a store of 300 pieces read
/// 3,000 times).
pub const FIXED_ALLOWANCE: u64 = 4 << 20;

/// Bytes of records (keys and values) written between two measurements:
/// about 200 new pieces of short names, 4 owners of the longest. sled
/// takes 3 to 5 times what it is given (log-structured, whole leaves
/// rewritten), so the room lags the database by about 300 KiB at most.
const MEASURE_EVERY: u64 = 64 * 1024;

/// What a new piece or owner costs the database beyond its names: the
/// metadata's fixed fields, the hash in three keys, the `lru` key.
pub(crate) const RECORD_BYTES: u64 = 160;

/// The last measured overhead, and the record bytes written since.
#[derive(Debug, Default)]
pub(crate) struct Overhead {
    bytes: u64,
    written_since: u64,
}

impl StoreCore {
    /// What the piece files may occupy now.
    pub(crate) fn piece_room(&self) -> u64 {
        let charged = self.overhead.bytes.saturating_sub(FIXED_ALLOWANCE);
        self.budget.saturating_sub(charged)
    }

    /// Measures the overhead again.
    pub(crate) fn measure_overhead(&mut self) {
        self.overhead = Overhead {
            bytes: self.overhead_on_disk(),
            written_since: 0,
        };
    }

    /// Counts `bytes` of records written for a new piece or owner; measures
    /// again every [`MEASURE_EVERY`].
    pub(crate) fn note_written(&mut self, bytes: u64) {
        self.overhead.written_since += bytes;
        if self.overhead.written_since >= MEASURE_EVERY {
            self.measure_overhead();
        }
    }

    /// The store directory on disk but the piece files (live or doomed).
    pub(crate) fn overhead_on_disk(&self) -> u64 {
        self.files.dirs_disk_bytes() + du(&self.db_path()) + du(&self.root.join("CURRENT"))
    }
}
