//! Store configuration.

/// How to open a store. `Config::new(budget)` gives working defaults for
/// everything but the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Hard limit on the sum of stored piece sizes. Manifests and sled's own
    /// overhead are not counted (sled 0.34 needs a few times the piece bytes
    /// on disk; see the crate docs). Opening with a budget below what is
    /// stored evicts down to it.
    pub budget_bytes: u64,
    /// sled's page cache. Default 64 MiB: sled's own default of 1 GiB is too
    /// much for a peer on a small board.
    pub cache_bytes: u64,
    /// How often sled syncs its log in the background; `None` syncs only on
    /// `flush`. Default 500 ms, which bounds what a power cut loses. A kill -9
    /// loses at most the writes still in sled's in-memory buffers.
    pub flush_every_ms: Option<u64>,
}

impl Config {
    /// Defaults with the given budget.
    pub fn new(budget_bytes: u64) -> Self {
        Self {
            budget_bytes,
            cache_bytes: 64 * 1024 * 1024,
            flush_every_ms: Some(500),
        }
    }
}

impl Default for Config {
    /// A 1 GiB budget.
    fn default() -> Self {
        Self::new(1024 * 1024 * 1024)
    }
}
