//! The budget holds on disk: what `du` counts for the store directory (the
//! real filesystem's allocated blocks) stays within 1.1 x the budget plus a
//! fixed overhead, after filling, after churn (writing several times the
//! budget), after a restart and after kill -9 in the middle of writing.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{bytes, owner};
use tuber_store::{du, Config, PieceHash, StoreCore, StoreError};

/// The fixed part the crate docs state: the 256 fan-out directories
/// (4 KiB each on ext4), `CURRENT`, and sled's own minimum (its config,
/// log segments in use and snapshot).
const FIXED: u64 = 4 << 20;

fn bound(budget: u64) -> u64 {
    budget + budget / 10 + FIXED
}

fn assert_within(root: &Path, budget: u64, when: &str) -> u64 {
    let used = du(root);
    assert!(
        used <= bound(budget),
        "{when}: du {used} bytes for a {budget}-byte budget (bound {})",
        bound(budget)
    );
    used
}

/// A piece of a size a real swarm would have: mostly full pieces of the
/// swarm's piece size, some short last pieces of a resource.
fn sized_piece(seed: u64, piece_size: usize) -> (PieceHash, Vec<u8>) {
    let len = if seed.is_multiple_of(7) {
        1 + (seed as usize * 7919) % piece_size
    } else {
        piece_size
    };
    let b = bytes(seed, len);
    (PieceHash::of(&b), b)
}

fn churn(piece_size: usize, budget: u64) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut store = StoreCore::open(&root, Config::new(budget)).unwrap();
    let mut seed = 0u64;
    let mut put = |store: &mut StoreCore, until: u64| {
        let mut written = 0;
        while written < until {
            let (h, b) = sized_piece(seed, piece_size);
            store
                .put(&h, &b, &owner(&format!("/r{}", seed % 13)), seed.is_multiple_of(11))
                .unwrap();
            written += b.len() as u64;
            seed += 1;
            if seed.is_multiple_of(5) {
                // Reads move pieces in the eviction order.
                let (old, _) = sized_piece(seed / 2, piece_size);
                let _ = store.get(&old).unwrap();
            }
        }
    };
    put(&mut store, budget);
    store.flush().unwrap();
    let filled = assert_within(&root, budget, "after filling");
    let t = store.totals();
    assert!(t.disk_bytes <= budget);
    assert!(
        t.disk_bytes > budget - budget / 8,
        "the store fills up: {t:?}"
    );
    put(&mut store, 4 * budget);
    store.flush().unwrap();
    let churned = assert_within(&root, budget, "after churn");
    // What the store reports is what du finds.
    let reported = store.disk_usage().unwrap();
    assert!(
        reported.abs_diff(churned) <= churned / 50 + (64 << 10),
        "store reports {reported}, du {churned}"
    );
    assert!(store.totals().evictions > 0);
    drop(store);
    let reopened = {
        let store = StoreCore::open(&root, Config::new(budget)).unwrap();
        common::assert_consistent(&store);
        assert_within(&root, budget, "after a restart")
    };
    eprintln!(
        "{} KiB pieces, budget {budget}: du filled {filled}, churned {churned}, reopened {reopened}",
        piece_size / 1024
    );
}

#[test]
fn disk_use_stays_within_the_budget_under_churn_16k() {
    churn(16 * 1024, 24 << 20);
}

#[test]
fn disk_use_stays_within_the_budget_under_churn_256k() {
    churn(256 * 1024, 48 << 20);
}

#[test]
fn disk_use_stays_within_the_budget_under_churn_1m() {
    churn(1024 * 1024, 48 << 20);
}

// --- kill -9 mid-write -----------------------------------------------------

const KILL_BUDGET: u64 = 16 << 20;
const CHILD_ENV: &str = "TUBER_STORE_DISK_BUDGET_CHILD";
const PUTS_BEFORE_KILL: u64 = 600;
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);

/// The writer: runs only when this test binary is started by the kill test
/// with `CHILD_ENV` naming a store; otherwise it passes at once. Puts
/// forever (bounded by the parent's kill, and by a hard cap), printing
/// `puts <n>` every 100.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var("TUBER_STORE_CHILD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut store = StoreCore::open(&dir, Config::new(KILL_BUDGET)).unwrap();
    let mut out = std::io::stdout().lock();
    // A cap so an unkilled child still ends: far more than the parent waits for.
    for i in 1..=1_000_000u64 {
        let s = seed * 1_000_000 + i;
        let size = if s.is_multiple_of(3) { 256 * 1024 } else { 16 * 1024 };
        let (h, b) = sized_piece(s, size);
        match store.put(&h, &b, &owner(&format!("/r{}", s % 5)), s.is_multiple_of(17)) {
            Ok(_) | Err(StoreError::Full { .. }) => {}
            Err(e) => panic!("put: {e}"),
        }
        if i.is_multiple_of(4) {
            store.delete(&sized_piece(s - 2, size).0).unwrap();
        }
        if i.is_multiple_of(100) {
            writeln!(out, "puts {i}").unwrap();
            out.flush().unwrap();
        }
    }
}

fn write_then_kill(root: &Path, seed: u64, jitter: Duration) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, root)
        .env("TUBER_STORE_CHILD_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + ROUND_TIMEOUT;
    let reached = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(line)) => {
                let n = line
                    .strip_prefix("puts ")
                    .and_then(|n| n.parse::<u64>().ok());
                if n.is_some_and(|n| n >= PUTS_BEFORE_KILL) {
                    break Ok(());
                }
            }
            Ok(Err(e)) => break Err(format!("reading the writer: {e}")),
            Err(RecvTimeoutError::Timeout) => break Err("the writer is too slow".to_owned()),
            Err(RecvTimeoutError::Disconnected) => break Err("the writer exited".to_owned()),
        }
    };
    if reached.is_ok() {
        std::thread::sleep(jitter);
    }
    // SIGKILL, by pid: no destructor, no flush.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    drop(rx);
    reader.join().unwrap();
    reached.unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
}

#[test]
fn disk_use_stays_within_the_budget_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    for round in 0..3 {
        write_then_kill(&root, round + 1, Duration::from_millis(round * 41 % 100));
        // Before the store repairs anything: whatever the kill left behind
        // (files of pieces whose record was lost, files of removed pieces not
        // deleted yet) is bounded too.
        let raw = du(&root);
        assert!(
            raw <= bound(KILL_BUDGET) + KILL_BUDGET / 10,
            "round {round}: {raw} bytes on disk straight after the kill"
        );
        let mut store = StoreCore::open(&root, Config::new(KILL_BUDGET)).unwrap();
        let used = assert_within(&root, KILL_BUDGET, &format!("reopened after kill {round}"));
        common::assert_consistent(&store);
        let t = store.totals();
        assert!(t.pieces > 0);
        assert_eq!(t.corrupt_detected, 0, "kill -9 lost no piece: {t:?}");
        let report = store.scrub().unwrap();
        assert!(report.is_clean(), "round {round}: {report:?}");
        eprintln!("round {round}: du {raw} after the kill, {used} reopened, {t:?}");
    }
}
