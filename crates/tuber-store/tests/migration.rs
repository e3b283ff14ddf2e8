//! A store written by the layout before piece files (piece bytes inside
//! sled) opens and keeps its pieces: they move out to files, the old
//! database goes, and everything else (owners, pins, counters, manifests)
//! carries over.
//!
//! `tests/fixtures/v1-store` was made by the old code (commit 1343313) with
//! `tests/fixtures/make_v1_fixture.rs.txt` run as an example of that tree:
//! pieces of 16 KiB (pinned), 16 KiB (read once), 1000 bytes and 200 KiB
//! (which sled kept as a blob file), and one manifest.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_consistent, bytes, SWARM};
use tuber_store::{du, Config, Owner, PieceHash, StoreCore};

const SIZES: [usize; 4] = [16 * 1024, 16 * 1024, 1000, 200 * 1024];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A fresh copy of the fixture (opening it changes it).
fn fixture(dir: &Path) -> PathBuf {
    let root = dir.join("store");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store"),
        &root,
    );
    root
}

/// The fixture's pieces, made as `make_v1_fixture` made them.
fn expected() -> Vec<(PieceHash, Vec<u8>)> {
    SIZES
        .iter()
        .enumerate()
        .map(|(i, len)| {
            let b = bytes(i as u64 + 1, *len);
            (PieceHash::of(&b), b)
        })
        .collect()
}

#[test]
fn an_old_layout_store_opens_and_keeps_its_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture(dir.path());
    let old_du = du(&root);
    let pieces = expected();
    {
        let mut store = StoreCore::open(&root, Config::new(64 << 20)).unwrap();
        let t = store.totals();
        assert_eq!((t.pieces, t.bytes, t.pinned_bytes), (4, 238_568, 16_384));
        assert_eq!(t.corrupt_detected, 0);
        assert_consistent(&store);
        for (i, (h, b)) in pieces.iter().enumerate() {
            assert!(store.piece_path(h).exists(), "piece {i} has its file");
            let meta = store.meta(h).unwrap().unwrap();
            assert_eq!(meta.pinned, i == 0);
            assert_eq!(meta.hits, u64::from(i == 1), "piece {i}");
            assert_eq!(meta.owners, vec![Owner::new(SWARM, format!("/r{i}"))]);
            assert_eq!(store.get(h).unwrap().as_deref(), Some(&b[..]), "piece {i}");
        }
        assert_eq!(store.list_by_swarm(SWARM).unwrap().len(), 4);
        assert_eq!(
            store.get_manifest(SWARM, "/v.m3u8").unwrap().as_deref(),
            Some(&b"the manifest"[..])
        );
        assert!(
            store.db_path().ends_with("db.1"),
            "the old database was left for a fresh one"
        );
        assert!(!root.join("db.0").exists());
        assert!(store.scrub().unwrap().is_clean());
    }
    // Reopened: nothing left to move, nothing lost.
    let mut store = StoreCore::open(&root, Config::new(64 << 20)).unwrap();
    assert_eq!(store.totals().pieces, 4);
    assert!(store.db_path().ends_with("db.1"));
    for (h, b) in &pieces {
        assert_eq!(store.get(h).unwrap().as_deref(), Some(&b[..]));
    }
    assert_consistent(&store);
    eprintln!("old layout: du {old_du}; migrated: du {}", du(&root));
}

/// A migration killed after writing a batch of files, before removing those
/// pieces from the old tree, leaves files already in place; the next open
/// carries on to the same result.
#[test]
fn a_migration_that_finds_files_already_moved_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture(dir.path());
    let pieces = expected();
    let (h, b) = &pieces[3];
    let hex = h.to_hex();
    std::fs::create_dir_all(root.join("pieces").join(&hex[..2])).unwrap();
    std::fs::write(root.join("pieces").join(&hex[..2]).join(&hex), b).unwrap();
    let mut store = StoreCore::open(&root, Config::new(64 << 20)).unwrap();
    assert_eq!(store.totals().pieces, 4);
    for (h, b) in &pieces {
        assert_eq!(store.get(h).unwrap().as_deref(), Some(&b[..]));
    }
    assert!(store.scrub().unwrap().is_clean());
}
