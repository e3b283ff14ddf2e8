//! Helpers shared by Tuber's cross-component tests and their helper
//! binaries: a deterministic random source, a child-process guard that
//! never leaves a process behind, and the swarm harness ([`swarm`]).

use std::process::Child;

pub mod swarm;

/// xorshift64*: deterministic, seedable, dependency-free pseudo-random
/// numbers, so a failing run can be replayed from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`; slightly biased, which tests do not mind).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Owns a child process and SIGKILLs it (then reaps it) when dropped, so a
/// failing test never leaves it running.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Already exited or killed: both calls then fail harmlessly.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
