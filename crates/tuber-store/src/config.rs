//! Store configuration.

/// How to open a store. `Config::new(budget)` gives working defaults for
/// everything but the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Hard limit on what the piece files occupy on disk: each piece is
    /// charged its size rounded up to the filesystem block. The database
    /// (metadata, indexes, manifests) and the directories come on top; the
    /// crate docs state the bound on the whole directory. Opening with a
    /// budget below what is stored evicts down to it.
    pub budget_bytes: u64,
    /// sled's page cache. Default 64 MiB: sled's own default of 1 GiB is too
    /// much for a peer on a small board.
    pub cache_bytes: u64,
    /// How often sled syncs its log in the background; `None` syncs only on
    /// `flush`. Default 500 ms, which bounds what a power cut loses. A kill -9
    /// loses at most the writes still in sled's in-memory buffers.
    pub flush_every_ms: Option<u64>,
    /// The allocation unit each piece's size is rounded up to when charged
    /// against the budget. `None` (the default) measures the filesystem at
    /// open (4096 on ext4, xfs, btrfs and tmpfs); `Some(1)` charges exact
    /// piece bytes, which only tests of the eviction policy want.
    pub block_bytes: Option<u64>,
    /// fsync every piece file before it is renamed into place. Default off:
    /// a kill -9 loses nothing either way, and after a power cut a piece
    /// whose bytes had not reached the disk fails verification, is deleted
    /// and is fetched again. On costs one fsync per put.
    pub sync_pieces: bool,
    /// Pieces whose reads may wait in memory before every pending read is
    /// written into the pieces' records (see the `access` module): about 64
    /// bytes each. Default 65,536. The read log holds at most four times as
    /// many reads (40 bytes each on disk).
    pub pending_reads: usize,
}

impl Config {
    /// Defaults with the given budget.
    pub fn new(budget_bytes: u64) -> Self {
        Self {
            budget_bytes,
            cache_bytes: 64 * 1024 * 1024,
            flush_every_ms: Some(500),
            block_bytes: None,
            sync_pieces: false,
            pending_reads: 65_536,
        }
    }
}

impl Default for Config {
    /// A 1 GiB budget.
    fn default() -> Self {
        Self::new(1024 * 1024 * 1024)
    }
}
