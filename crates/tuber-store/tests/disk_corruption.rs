//! A byte flipped in sled's files on disk, not through the store.
//!
//! sled 0.34 writes every value above ~128 KiB (and every B-tree leaf holding
//! one) to its own file under `blobs/`, with a CRC. These tests flip a byte
//! of a piece inside such a file and check that sled's checksum error becomes
//! the store's `Corrupt` path, on read and on scrub.

mod common;

use std::path::Path;

use common::{assert_consistent, open, owner, piece};
use tuber_store::{PieceHash, StoreCore, StoreError};

const PIECE: usize = 256 * 1024;

/// The live sled directory of the store at `root`.
fn db_dir(root: &Path) -> std::path::PathBuf {
    let current = std::fs::read_to_string(root.join("CURRENT")).unwrap();
    root.join(current.trim())
}

/// Flips one byte of `needle`'s bytes wherever they appear in a blob file;
/// how many files were changed.
fn flip_in_blobs(store_root: &Path, needle: &[u8]) -> usize {
    let db_dir = db_dir(store_root);
    let window = &needle[4096..4096 + 64];
    let mut flipped = 0;
    for entry in std::fs::read_dir(db_dir.join("blobs")).unwrap() {
        let path = entry.unwrap().path();
        let mut data = std::fs::read(&path).unwrap();
        if let Some(at) = data.windows(window.len()).position(|w| w == window) {
            data[at + 7] ^= 0x01;
            std::fs::write(&path, &data).unwrap();
            flipped += 1;
        }
    }
    flipped
}

struct Setup {
    dir: tempfile::TempDir,
    target: (PieceHash, Vec<u8>),
    /// Every piece stored, the target included.
    all: Vec<(PieceHash, Vec<u8>)>,
}

const PIECES: u64 = 48;

/// Stores 48 pieces of 256 KiB (several B-tree leaves of up to 16), pushes
/// sled's log well past their blobs, and closes and reopens once so that
/// recovery starts after them: the blobs are then read lazily, as in a
/// long-running store. Then flips a byte of one piece in its blob file.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<_> = (0..PIECES).map(|seed| piece(seed, PIECE)).collect();
    let target = all[7].clone();
    {
        let mut store = open(dir.path(), 64 << 20);
        for (h, b) in &all {
            store.put(h, b, &owner("/video"), false).unwrap();
        }
        store
            .put_manifest(common::SWARM, "/video", b"manifest")
            .unwrap();
        // Each read rewrites a few small records: megabytes of log in all.
        for i in 0..8000 {
            store.get(&all[i % 4].0).unwrap().unwrap();
        }
        store.flush().unwrap();
    }
    drop(open(dir.path(), 64 << 20));
    assert!(
        flip_in_blobs(&dir.path().join("store"), &target.1) > 0,
        "the piece should live in a blob file"
    );
    Setup { dir, target, all }
}

/// Every piece either reads back intact or is gone; returns how many are
/// gone. A damaged leaf takes its neighbours (up to 16 pieces) with it.
fn survivors_intact(store: &mut StoreCore, all: &[(PieceHash, Vec<u8>)]) -> u64 {
    let mut gone = 0;
    for (h, b) in all {
        match store.get(h).unwrap() {
            Some(got) => assert_eq!(&got, b),
            None => gone += 1,
        }
    }
    assert!(gone <= 16, "{gone} pieces lost: more than one leaf");
    assert_eq!(store.totals().pieces, PIECES - gone);
    gone
}

/// Opens the damaged store. Usually sled's recovery starts after the damaged
/// blob and reads it lazily (what the tests below are about); on a slow or
/// loaded machine its background flushes can land the recovery point before
/// it, and then sled cannot open at all: the store must then start empty,
/// consistent and usable. None in that case.
fn open_damaged(s: &Setup) -> Option<StoreCore> {
    let mut store = open(s.dir.path(), 64 << 20);
    if !store.was_reset_at_open() {
        return Some(store);
    }
    eprintln!("sled could not open the damaged store; it was started empty");
    assert_eq!(store.totals().pieces, 0);
    assert_consistent(&store);
    let (h, b) = &s.target;
    store.put(h, b, &owner("/video"), false).unwrap();
    assert_eq!(store.get(h).unwrap().as_deref(), Some(&b[..]));
    assert_eq!(
        std::fs::read_dir(s.dir.path().join("store"))
            .unwrap()
            .count(),
        2,
        "CURRENT and one database, the damaged one deleted"
    );
    None
}

#[test]
fn a_flipped_byte_in_a_blob_file_is_caught_on_read() {
    let s = setup();
    let Some(mut store) = open_damaged(&s) else {
        return;
    };
    let (t, tb) = &s.target;
    let err = store.get(t).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { hash } if hash == *t),
        "{err}"
    );
    assert!(!store.has(t).unwrap());
    assert_consistent(&store);
    let gone = survivors_intact(&mut store, &s.all);
    assert_eq!(store.totals().corrupt_detected, gone);
    assert!(
        store.db_path().ends_with("db.1"),
        "the database was rebuilt"
    );
    assert_eq!(
        store
            .get_manifest(common::SWARM, "/video")
            .unwrap()
            .as_deref(),
        Some(&b"manifest"[..])
    );

    // The store works normally again: the piece can be fetched and stored anew.
    store.put(t, tb, &owner("/video"), false).unwrap();
    assert_eq!(store.get(t).unwrap().as_deref(), Some(&tb[..]));
    drop(store);

    let mut store = open(s.dir.path(), 64 << 20);
    assert_eq!(store.get(t).unwrap().as_deref(), Some(&tb[..]));
    assert!(store.scrub().unwrap().is_clean());
    assert_consistent(&store);
    let dirs = std::fs::read_dir(s.dir.path().join("store"))
        .unwrap()
        .count();
    assert_eq!(dirs, 2, "CURRENT and one database, the damaged one deleted");
}

#[test]
fn a_flipped_byte_in_a_blob_file_is_caught_by_scrub() {
    let s = setup();
    let Some(mut store) = open_damaged(&s) else {
        return;
    };
    let report = store.scrub().unwrap();
    assert!(report.rebuilt);
    assert!(report.corrupt.contains(&s.target.0), "{report:?}");
    assert!(!report.totals_fixed);
    assert_eq!(report.checked, PIECES - report.corrupt.len() as u64);
    assert_consistent(&store);
    let gone = survivors_intact(&mut store, &s.all);
    assert_eq!(gone, report.corrupt.len() as u64);
    assert!(store.scrub().unwrap().is_clean());
    drop(store);
    let store = open(s.dir.path(), 64 << 20);
    assert_eq!(store.totals().corrupt_detected, gone);
    assert_consistent(&store);
}

/// A blob that recovery itself reads (written after the last open) is a
/// different story in sled 0.34: recovery stops at it, or refuses to open.
/// Either way the store must not panic, and if it opens it is consistent.
#[test]
fn a_flipped_byte_near_the_recovery_point_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (t, tb) = piece(1, PIECE);
    let (later, lb) = piece(2, 1000);
    {
        let mut store = open(dir.path(), 64 << 20);
        store.put(&t, &tb, &owner("/t"), false).unwrap();
        store.put(&later, &lb, &owner("/later"), false).unwrap();
        store.flush().unwrap();
    }
    assert!(flip_in_blobs(&dir.path().join("store"), &tb) > 0);
    match StoreCore::open(dir.path().join("store"), tuber_store::Config::new(64 << 20)) {
        Ok(mut store) => {
            // Either recovery stopped before the damage, or the store was
            // started empty because sled could not open past it.
            assert_consistent(&store);
            assert!(!matches!(store.get(&t), Ok(Some(ref b)) if b != &tb));
            store.scrub().unwrap();
            assert_consistent(&store);
        }
        Err(e) => assert!(matches!(e, StoreError::Open { .. }), "{e}"),
    }
}
