//! Store throughput against plain files: a command that prints figures.
//!
//! `cargo bench -p tuber-store --bench store_throughput` writes
//! `TUBER_BENCH_PIECES` (default 512) random 256 KiB pieces through the store
//! (every put and every get hashes the piece), then the same bytes as one
//! file per piece, raw and with the same SHA-256 work, and prints MB/s and
//! the ratios. Files are closed without fsync; the store's line "put + flush"
//! includes its fsync. Reads come from warm caches on both sides.
//! `tests/bench_smoke.rs` runs the same code with 16 pieces.

use std::path::Path;
use std::time::{Duration, Instant};

use tuber_store::{Config, Owner, PieceHash, StoreCore};

const PIECE_BYTES: usize = 256 * 1024;
const DEFAULT_PIECES: usize = 512;

/// Timings of one run.
pub struct Report {
    pub pieces: usize,
    pub bytes: u64,
    pub store_put: Duration,
    pub store_flush: Duration,
    pub store_get: Duration,
    pub file_write: Duration,
    pub file_write_hashed: Duration,
    pub file_read: Duration,
    pub file_read_hashed: Duration,
    /// What sled reports it occupies, after the puts and a flush.
    pub store_disk_usage: u64,
    /// Sum of the file sizes under the store directory.
    pub store_dir_bytes: u64,
}

fn random_pieces(n: usize) -> Vec<(PieceHash, Vec<u8>)> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..n)
        .map(|_| {
            let mut b = Vec::with_capacity(PIECE_BYTES);
            while b.len() < PIECE_BYTES {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.extend_from_slice(&x.to_le_bytes());
            }
            (PieceHash::of(&b), b)
        })
        .collect()
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                dir_bytes(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// Runs the comparison with `n` pieces in a temporary directory.
pub fn run(n: usize) -> Report {
    let pieces = random_pieces(n);
    let bytes = (n * PIECE_BYTES) as u64;
    let tmp = tempfile::tempdir().unwrap();
    let owner = Owner::new("https://bench.example/", "/big.bin");

    let mut store = StoreCore::open(tmp.path().join("store"), Config::new(2 * bytes)).unwrap();
    let store_put = timed(|| {
        for (h, b) in &pieces {
            store.put(h, b, &owner, false).unwrap();
        }
    });
    let store_flush = timed(|| store.flush().unwrap());
    let store_get = timed(|| {
        for (h, b) in &pieces {
            assert_eq!(store.get(h).unwrap().unwrap().len(), b.len());
        }
    });
    let store_disk_usage = store.disk_usage().unwrap();
    let store_dir_bytes = dir_bytes(&tmp.path().join("store"));
    drop(store);

    let raw = tmp.path().join("raw");
    let hashed = tmp.path().join("hashed");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::create_dir_all(&hashed).unwrap();
    let file_write = timed(|| {
        for (h, b) in &pieces {
            std::fs::write(raw.join(h.to_hex()), b).unwrap();
        }
    });
    let file_write_hashed = timed(|| {
        for (h, b) in &pieces {
            assert!(h.verifies(b));
            std::fs::write(hashed.join(h.to_hex()), b).unwrap();
        }
    });
    let file_read = timed(|| {
        for (h, b) in &pieces {
            assert_eq!(std::fs::read(raw.join(h.to_hex())).unwrap().len(), b.len());
        }
    });
    let file_read_hashed = timed(|| {
        for (h, _) in &pieces {
            assert!(h.verifies(&std::fs::read(hashed.join(h.to_hex())).unwrap()));
        }
    });
    Report {
        pieces: n,
        bytes,
        store_put,
        store_flush,
        store_get,
        file_write,
        file_write_hashed,
        file_read,
        file_read_hashed,
        store_disk_usage,
        store_dir_bytes,
    }
}

impl Report {
    fn mbps(&self, d: Duration) -> f64 {
        self.bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
    }

    /// The table `main` prints.
    pub fn table(&self) -> String {
        let rows = [
            ("store put (sha256)", self.store_put),
            ("store put + flush", self.store_put + self.store_flush),
            ("store get (sha256)", self.store_get),
            ("files write raw", self.file_write),
            ("files write + sha256", self.file_write_hashed),
            ("files read raw", self.file_read),
            ("files read + sha256", self.file_read_hashed),
        ];
        let mut out = format!(
            "{} pieces x {} KiB = {:.1} MiB\n{:<22} {:>9} {:>10}\n",
            self.pieces,
            PIECE_BYTES / 1024,
            self.bytes as f64 / 1048576.0,
            "operation",
            "MB/s",
            "seconds"
        );
        for (name, d) in rows {
            out += &format!(
                "{name:<22} {:>9.1} {:>10.3}\n",
                self.mbps(d),
                d.as_secs_f64()
            );
        }
        let ratio = |a: Duration, b: Duration| self.mbps(a) / self.mbps(b);
        out += &format!(
            "ratio store put / files write + sha256: {:.2}   (vs raw {:.2})\n",
            ratio(self.store_put, self.file_write_hashed),
            ratio(self.store_put, self.file_write)
        );
        out += &format!(
            "ratio store get / files read + sha256:  {:.2}   (vs raw {:.2})\n",
            ratio(self.store_get, self.file_read_hashed),
            ratio(self.store_get, self.file_read)
        );
        out += &format!(
            "sled size_on_disk {:.1} MiB, store dir {:.1} MiB, for {:.1} MiB of pieces ({:.2}x)\n",
            self.store_disk_usage as f64 / 1048576.0,
            self.store_dir_bytes as f64 / 1048576.0,
            self.bytes as f64 / 1048576.0,
            self.store_dir_bytes as f64 / self.bytes as f64
        );
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
