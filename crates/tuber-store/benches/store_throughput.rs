//! Store throughput and disk use against plain files: a command that prints
//! figures.
//!
//! `cargo bench -p tuber-store --bench store_throughput` runs, for 16 KiB,
//! 256 KiB and 1 MiB pieces, `TUBER_BENCH_PIECES` (default 512) x 256 KiB of
//! random pieces (128 MiB) through:
//! - plain files + SHA-256 (the baseline): hash, then `fs::write` one file
//!   per piece; `fs::read` it back, then hash;
//! - the store (`StoreCore`, one thread): `put` (hashes, writes the piece
//!   file, commits the metadata) into a store with room, then `get` (reads,
//!   hashes, counts the access);
//! - 50 readers at once, as 50 links would: 50 tasks reading every piece
//!   four times through the async `Store` handle, against 50 tasks reading
//!   the plain files + SHA-256 on tokio's blocking pool, the bytes handed
//!   back to the task on both sides;
//! - churn: a store with a budget of a quarter of the pieces, written all of
//!   them (4x its budget), flushed; then what `du` counts for its directory,
//!   against the budget (whole, and beyond the fixed allowance the crate
//!   docs state) and against the piece bytes it holds; again after a
//!   reopen.
//!
//! Files are closed without fsync on both sides; reads come from warm caches
//! on both sides. Baseline and store take turns in 32 slices of each pass,
//! and each figure is the best of two rounds, to damp the noise of a shared
//! machine.
//! `tests/bench_smoke.rs` runs the same code with 16 pieces (4 MiB a size).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::unix::fs::MetadataExt;

use tuber_store::{Config, Owner, PieceHash, Store, StoreCore, FIXED_ALLOWANCE};

/// Bytes per piece size, in units of 256 KiB.
const DEFAULT_PIECES: usize = 512;
const UNIT: usize = 256 * 1024;
pub const SIZES: [usize; 3] = [16 * 1024, 256 * 1024, 1024 * 1024];
const READERS: usize = 50;
const ROUNDS: usize = 2;

/// Timings and disk figures at one piece size.
pub struct SizeReport {
    pub piece_bytes: usize,
    pub pieces: usize,
    pub bytes: u64,
    pub file_write: Duration,
    pub file_read: Duration,
    pub store_put: Duration,
    pub store_flush: Duration,
    pub store_get: Duration,
    pub file_read_50: Duration,
    pub store_get_50: Duration,
    /// The churned store's budget and the piece bytes it held at the end.
    pub churn_budget: u64,
    pub churn_piece_bytes: u64,
    /// `du` of the churned store's directory, after the churn and after a
    /// reopen.
    pub churn_du: u64,
    pub reopen_du: u64,
    /// What the store itself reports (`disk_usage`) after the churn.
    pub churn_reported: u64,
    pub churn_put: Duration,
}

pub struct Report {
    pub sizes: Vec<SizeReport>,
}

fn random_pieces(n: usize, len: usize, seed: u64) -> Vec<(PieceHash, Vec<u8>)> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D ^ seed;
    (0..n)
        .map(|_| {
            let mut b = Vec::with_capacity(len);
            while b.len() < len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.extend_from_slice(&x.to_le_bytes());
            }
            b.truncate(len);
            (PieceHash::of(&b), b)
        })
        .collect()
}

/// What `du` counts under `path`: allocated blocks of every file and
/// directory. The bench's own (not `tuber_store::du`), so that the same file
/// also builds against the store before piece files, for before/after runs.
pub fn du(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| du(&e.path())).sum::<u64>())
        .unwrap_or(0)
        + own
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn best(a: &mut Duration, b: Duration) {
    if *a == Duration::ZERO || b < *a {
        *a = b;
    }
}

fn owner() -> Owner {
    Owner::new("https://bench.example/", "/big.bin")
}

fn files_write(dir: &Path, pieces: &[(PieceHash, Vec<u8>)]) -> Duration {
    timed(|| {
        for (h, b) in pieces {
            assert!(h.verifies(b));
            std::fs::write(dir.join(h.to_hex()), b).unwrap();
        }
    })
}

fn files_read(dir: &Path, pieces: &[(PieceHash, Vec<u8>)]) -> Duration {
    timed(|| {
        for (h, _) in pieces {
            assert!(h.verifies(&std::fs::read(dir.join(h.to_hex())).unwrap()));
        }
    })
}

/// Slices per pass: baseline and store take turns slice by slice, so that
/// both meet the same disk (writeback, other processes) at the same time.
const SLICES: usize = 32;

/// Passes over the pieces in a 50-reader figure: one pass of 128 MiB takes
/// under 0.1 s at 1 MiB pieces, short enough for thread start-up and one
/// descheduling to move the figure by a tenth.
const PASSES_50: usize = 4;

/// `READERS` tasks, reader `r` reading pieces `r, r + READERS, ...`,
/// [`PASSES_50`] times over.
fn concurrent<F, Fut>(rt: &tokio::runtime::Runtime, n: usize, read: F) -> Duration
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..READERS)
            .map(|r| {
                let reads: Vec<_> = (0..PASSES_50)
                    .flat_map(|_| (r..n).step_by(READERS))
                    .map(&read)
                    .collect();
                tokio::spawn(async move {
                    for f in reads {
                        f.await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        start.elapsed()
    })
}

fn run_size(piece_bytes: usize, units: usize, rt: &tokio::runtime::Runtime) -> SizeReport {
    let bytes = (units * UNIT) as u64;
    let n = (bytes as usize / piece_bytes).max(1);
    let pieces = Arc::new(random_pieces(n, piece_bytes, piece_bytes as u64));
    let bytes = (n * piece_bytes) as u64;
    let tmp = tempfile::tempdir().unwrap();
    let mut r = SizeReport {
        piece_bytes,
        pieces: n,
        bytes,
        file_write: Duration::ZERO,
        file_read: Duration::ZERO,
        store_put: Duration::ZERO,
        store_flush: Duration::ZERO,
        store_get: Duration::ZERO,
        file_read_50: Duration::ZERO,
        store_get_50: Duration::ZERO,
        churn_budget: 0,
        churn_piece_bytes: 0,
        churn_du: 0,
        reopen_du: 0,
        churn_reported: 0,
        churn_put: Duration::ZERO,
    };
    for round in 0..ROUNDS {
        let files = tmp.path().join(format!("files{round}"));
        std::fs::create_dir_all(&files).unwrap();
        let path = tmp.path().join(format!("store{round}"));
        let mut store = StoreCore::open(&path, Config::new(2 * bytes + (64 << 20))).unwrap();
        let owner = owner();
        let slice = n.div_ceil(SLICES);
        let (mut fw, mut sp, mut fr, mut sg) = Default::default();
        for chunk in pieces.chunks(slice) {
            fw += files_write(&files, chunk);
            sp += timed(|| {
                for (h, b) in chunk {
                    store.put(h, b, &owner, false).unwrap();
                }
            });
        }
        best(&mut r.store_flush, timed(|| store.flush().unwrap()));
        for chunk in pieces.chunks(slice) {
            fr += files_read(&files, chunk);
            sg += timed(|| {
                for (h, b) in chunk {
                    assert_eq!(store.get(h).unwrap().unwrap().len(), b.len());
                }
            });
        }
        best(&mut r.file_write, fw);
        best(&mut r.store_put, sp);
        best(&mut r.file_read, fr);
        best(&mut r.store_get, sg);
        drop(store);

        let dir = Arc::new(files.clone());
        let p = pieces.clone();
        best(
            &mut r.file_read_50,
            concurrent(rt, n, move |i| {
                let (dir, p) = (dir.clone(), p.clone());
                async move {
                    // The bytes come back to the task, as a link's read
                    // must (it sends them): freed on another thread than
                    // the one that allocated them, which costs a tenth to a
                    // fifth of this figure, as much as the store's own.
                    let len = p[i].1.len();
                    let got = tokio::task::spawn_blocking(move || {
                        let (h, _) = &p[i];
                        let bytes = std::fs::read(dir.join(h.to_hex())).unwrap();
                        assert!(h.verifies(&bytes));
                        bytes
                    })
                    .await
                    .unwrap();
                    assert_eq!(got.len(), len);
                }
            }),
        );
        let store = rt
            .block_on(Store::open(
                path.clone(),
                Config::new(2 * bytes + (64 << 20)),
            ))
            .unwrap();
        let (s, p) = (store.clone(), pieces.clone());
        best(
            &mut r.store_get_50,
            concurrent(rt, n, move |i| {
                let (s, p) = (s.clone(), p.clone());
                async move {
                    let got = s.get(p[i].0).await.unwrap().unwrap();
                    assert_eq!(got.len(), p[i].1.len());
                }
            }),
        );
        rt.block_on(store.shutdown()).unwrap();
        std::fs::remove_dir_all(&files).unwrap();
        std::fs::remove_dir_all(&path).unwrap();
    }

    // Churn: four times the budget through the store.
    let path = tmp.path().join("churn");
    let budget = (bytes / 4).max(piece_bytes as u64);
    let mut store = StoreCore::open(&path, Config::new(budget)).unwrap();
    let owner = owner();
    r.churn_put = timed(|| {
        for (h, b) in pieces.iter() {
            store.put(h, b, &owner, false).unwrap();
        }
    });
    store.flush().unwrap();
    r.churn_budget = budget;
    r.churn_piece_bytes = store.totals().bytes;
    r.churn_du = du(&path);
    r.churn_reported = store.disk_usage().unwrap();
    drop(store);
    drop(StoreCore::open(&path, Config::new(budget)).unwrap());
    r.reopen_du = du(&path);
    r
}

/// Runs every piece size with `units` x 256 KiB of pieces each.
pub fn run(units: usize) -> Report {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `TUBER_BENCH_SIZES=16,1024` (KiB) runs a subset.
    let sizes: Vec<usize> = std::env::var("TUBER_BENCH_SIZES")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|k| k.trim().parse::<usize>().ok())
                .map(|k| k * 1024)
                .collect()
        })
        .unwrap_or_else(|| SIZES.to_vec());
    Report {
        sizes: sizes.iter().map(|&s| run_size(s, units, &rt)).collect(),
    }
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

impl SizeReport {
    fn ratio(&self, store: Duration, files: Duration) -> f64 {
        files.as_secs_f64() / store.as_secs_f64().max(1e-9)
    }
    pub fn put_ratio(&self) -> f64 {
        self.ratio(self.store_put, self.file_write)
    }
    pub fn get_ratio(&self) -> f64 {
        self.ratio(self.store_get, self.file_read)
    }
    pub fn get_50_ratio(&self) -> f64 {
        self.ratio(self.store_get_50, self.file_read_50)
    }
}

impl Report {
    /// The table `main` prints.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<8} {:>6} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6}\n",
            "piece",
            "pieces",
            "put file",
            "put store",
            "ratio",
            "get file",
            "get store",
            "ratio",
            "get50 fil",
            "get50 sto",
            "ratio"
        );
        for s in &self.sizes {
            out += &format!(
                "{:<8} {:>6} {:>9.1} {:>9.1} {:>6.2} {:>9.1} {:>9.1} {:>6.2} {:>9.1} {:>9.1} {:>6.2}\n",
                format!("{} KiB", s.piece_bytes / 1024),
                s.pieces,
                mbps(s.bytes, s.file_write),
                mbps(s.bytes, s.store_put),
                s.put_ratio(),
                mbps(s.bytes, s.file_read),
                mbps(s.bytes, s.store_get),
                s.get_ratio(),
                mbps(s.bytes * PASSES_50 as u64, s.file_read_50),
                mbps(s.bytes * PASSES_50 as u64, s.store_get_50),
                s.get_50_ratio(),
            );
        }
        out += "MB/s; files = plain files + SHA-256; get50 = 50 concurrent readers; \
                ratio = store / files\n";
        for s in &self.sizes {
            let mib = |b: u64| b as f64 / 1048576.0;
            out += &format!(
                "churn {:>4} KiB: wrote {:.1} MiB into a {:.1} MiB budget at {:.1} MB/s; \
                 du {:.2} MiB = {:.3}x budget, beyond the fixed {:.0} MiB {:.3}x budget, \
                 {:.3}x piece bytes ({:.1} MiB); store reports {:.2} MiB; du after reopen {:.2} MiB ({:.3}x budget); \
                 flush {:.3} s\n",
                s.piece_bytes / 1024,
                mib(s.bytes),
                mib(s.churn_budget),
                mbps(s.bytes, s.churn_put),
                mib(s.churn_du),
                s.churn_du as f64 / s.churn_budget as f64,
                mib(FIXED_ALLOWANCE),
                s.churn_du.saturating_sub(FIXED_ALLOWANCE) as f64 / s.churn_budget as f64,
                s.churn_du as f64 / s.churn_piece_bytes.max(1) as f64,
                mib(s.churn_piece_bytes),
                mib(s.churn_reported),
                mib(s.reopen_du),
                s.reopen_du as f64 / s.churn_budget as f64,
                s.store_flush.as_secs_f64(),
            );
        }
        out
    }
}

fn main() {
    let n = std::env::var("TUBER_BENCH_PIECES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PIECES);
    print!("{}", run(n).table());
}
