//! kill -9 a process that is writing into a piece store, restart it on the
//! same directory, repeat; the store must always reopen consistent: every
//! piece verifies, the totals equal a recount, and the budget holds, on
//! disk too: `du` of the store stays within the bound the store states
//! (1.1 x the budget + 4 MiB), straight after the kill and once reopened.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use tuber_store::{Config, StoreCore};
use tuber_tests::KillOnDrop;

const BUDGET: u64 = 8 * 1024 * 1024;
/// Kill/restart rounds; `TUBER_SIGKILL_ROUNDS` raises it for a soak run.
const ROUNDS: u64 = 6;
/// Puts the writer must report before each kill.
const PUTS_BEFORE_KILL: u64 = 2000;
/// Bound on one round; a healthy writer needs a few seconds.
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);
const SWARMS: u64 = 3;

/// Starts the writer, waits for `PUTS_BEFORE_KILL` puts and then `jitter`
/// more (so the kill lands at a different point each round), SIGKILLs it.
fn write_then_kill(path: &Path, seed: u64, jitter: Duration) -> anyhow::Result<()> {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
            .arg(path)
            .arg(BUDGET.to_string())
            .arg(seed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn the writer")?,
    );
    let stdout = child.0.stdout.take().context("writer stdout")?;
    let (tx, rx) = mpsc::channel();
    // Ends when the writer's stdout closes, i.e. when it is killed.
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + ROUND_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let line = line?;
                if let Some(n) = line.strip_prefix("puts ") {
                    if n.parse::<u64>()? >= PUTS_BEFORE_KILL {
                        break;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                bail!("writer did not reach {PUTS_BEFORE_KILL} puts in {ROUND_TIMEOUT:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                bail!("writer exited on its own: {:?}", child.0.wait()?)
            }
        }
    }
    std::thread::sleep(jitter);
    // Child::kill is SIGKILL on Unix: no destructor, no flush.
    child.0.kill()?;
    let status = child.0.wait()?;
    ensure!(
        status.signal() == Some(9),
        "writer ended with {status:?}, not SIGKILL"
    );
    drop(rx);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
    Ok(())
}

/// The store's stated bound on its folder: 1.1 x the budget plus 4 MiB
/// (fan-out directories and sled's minimum).
const DISK_BOUND: u64 = BUDGET + BUDGET / 10 + (4 << 20);

/// Reopens the store and checks it before anything could repair it.
fn check(path: &Path) -> anyhow::Result<u64> {
    let killed = tuber_store::du(path);
    // What the kill left (files of removed pieces not deleted yet, files of
    // puts whose record was lost) is bounded by the store's batching too.
    ensure!(
        killed <= DISK_BOUND + BUDGET / 10,
        "{killed} bytes on disk straight after the kill"
    );
    let mut store = StoreCore::open(path, Config::new(BUDGET)).context("reopen after kill -9")?;
    let used = tuber_store::du(path);
    ensure!(
        used <= DISK_BOUND,
        "{used} bytes on disk for a {BUDGET}-byte budget after reopening"
    );
    let totals = store.totals();
    ensure!(
        totals.bytes <= BUDGET,
        "{} bytes over the {BUDGET} budget",
        totals.bytes
    );
    ensure!(
        store.recount()? == totals.contents(),
        "totals {totals:?} differ from a recount {:?}",
        store.recount()?
    );
    let mut listed = BTreeSet::new();
    for s in 0..SWARMS {
        listed.extend(store.list_by_swarm(&format!("https://swarm{s}.example/"))?);
    }
    ensure!(
        listed.len() as u64 == totals.pieces,
        "{} pieces listed, totals say {}",
        listed.len(),
        totals.pieces
    );
    for hash in &listed {
        let bytes = store.get(hash).with_context(|| format!("get {hash}"))?;
        ensure!(
            bytes.is_some_and(|b| hash.verifies(&b)),
            "piece {hash} missing or wrong"
        );
    }
    ensure!(
        store.totals().corrupt_detected == 0,
        "corruption after kill -9: {:?}",
        store.totals()
    );
    let report = store.scrub()?;
    ensure!(report.is_clean(), "scrub had to repair: {report:?}");
    Ok(totals.pieces)
}

#[test]
fn sigkill_mid_write_leaves_a_consistent_store() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store");
    let rounds = std::env::var("TUBER_SIGKILL_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    for round in 0..rounds {
        write_then_kill(&path, 1000 + round, Duration::from_millis(round * 37 % 100))?;
        let pieces = check(&path).with_context(|| format!("after kill {}", round + 1))?;
        ensure!(
            pieces > 0,
            "the store should hold pieces after round {round}"
        );
    }
    Ok(())
}
