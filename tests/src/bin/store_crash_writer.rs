//! Writes random pieces into a piece store until it is killed, for the
//! kill -9 test (`tests/store_sigkill.rs`).
//!
//! Usage: `store-crash-writer <store-dir> <budget-bytes> <seed>`. Prints
//! `opened <pieces> <bytes>` once, then `puts <n>` after every 100 puts.
//! Exits with an error only if the store misbehaves (a corrupt piece, or any
//! error but a full store), which the test reports.

use std::io::Write;

use anyhow::{bail, Context};
use tuber_store::{Config, Owner, PieceHash, StoreCore, StoreError};
use tuber_tests::Rng;

/// How many recent pieces the writer remembers for reads, deletes, unpins.
const RECENT: usize = 64;
const REPORT_EVERY: u64 = 100;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, budget, seed] = args.as_slice() else {
        bail!("usage: store-crash-writer <store-dir> <budget-bytes> <seed>");
    };
    let budget: u64 = budget.parse().context("budget")?;
    let mut rng = Rng::new(seed.parse().context("seed")?);
    let mut store = StoreCore::open(dir, Config::new(budget)).context("open")?;
    let mut out = std::io::stdout().lock();
    let t = store.totals();
    writeln!(out, "opened {} {}", t.pieces, t.bytes)?;
    out.flush()?;

    let mut recent: Vec<PieceHash> = Vec::with_capacity(RECENT);
    for puts in 1u64.. {
        // Mostly 16..64 KiB (inline in sled's log), some 200 KiB (sled blob
        // files), so both write paths are being written when the kill lands.
        let len = if rng.below(16) == 0 {
            200 * 1024
        } else {
            16 * 1024 + rng.below(48 * 1024) as usize
        };
        let bytes = rng.bytes(len);
        let hash = PieceHash::of(&bytes);
        let owner = Owner::new(
            format!("https://swarm{}.example/", rng.below(3)),
            format!("/r{}", rng.below(20)),
        );
        match store.put(&hash, &bytes, &owner, rng.below(20) == 0) {
            Ok(_) | Err(StoreError::Full { .. }) => {}
            Err(e) => return Err(e).context("put"),
        }
        if recent.len() == RECENT {
            recent.remove(0);
        }
        recent.push(hash);
        let pick = recent[rng.below(recent.len() as u64) as usize];
        match rng.below(8) {
            0..=2 => {
                store.get(&pick).context("get")?;
            }
            3 => {
                store.delete(&pick).context("delete")?;
            }
            4 => match store.set_pinned(&pick, false) {
                Ok(()) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e).context("unpin"),
            },
            _ => {}
        }
        if puts % REPORT_EVERY == 0 {
            writeln!(out, "puts {puts}")?;
            out.flush()?;
        }
    }
    Ok(())
}
