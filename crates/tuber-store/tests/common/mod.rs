//! Helpers shared by the store's scenario tests.
// Each test file uses a different subset.
#![allow(dead_code)]

use tuber_store::{Config, Owner, PieceHash, StoreCore};

pub const SWARM: &str = "https://video.example.org/";

/// Deterministic pseudo-random bytes (xorshift64*), so failures replay.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A piece and its address.
pub fn piece(seed: u64, len: usize) -> (PieceHash, Vec<u8>) {
    let b = bytes(seed, len);
    (PieceHash::of(&b), b)
}

pub fn owner(resource: &str) -> Owner {
    Owner::new(SWARM, resource)
}

/// A store that charges exact piece bytes (`block_bytes: Some(1)`): these
/// tests are about the eviction policy, stated in bytes. `disk_budget.rs`
/// tests the real filesystem's blocks.
pub fn open(dir: &std::path::Path, budget: u64) -> StoreCore {
    StoreCore::open(dir.join("store"), exact(budget)).unwrap()
}

/// [`Config::new`] charging exact piece bytes.
pub fn exact(budget: u64) -> Config {
    Config {
        block_bytes: Some(1),
        ..Config::new(budget)
    }
}

/// The store's invariants: within budget, and totals equal a recount.
pub fn assert_consistent(core: &StoreCore) {
    let t = core.totals();
    assert!(
        t.bytes <= t.budget,
        "{} bytes stored over a {} budget",
        t.bytes,
        t.budget
    );
    assert_eq!(
        core.recount().unwrap(),
        t.contents(),
        "totals differ from a recount"
    );
}
