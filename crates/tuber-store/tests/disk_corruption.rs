//! Damage done to the store's files on disk, not through the store: a
//! flipped byte in a piece file, a truncated file, a missing file, stray
//! files, and a damaged database. Each must be caught (on read, by scrub or
//! at open), deleted and counted, and never returned or panicked on.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_consistent, owner, piece, SWARM};
use tuber_store::{du, Config, PieceHash, StoreCore, StoreError};

const PIECE: usize = 16 * 1024;
const BUDGET: u64 = 16 << 20;

fn open(root: &Path) -> StoreCore {
    StoreCore::open(root, Config::new(BUDGET)).unwrap()
}

/// The documented layout: `pieces/<first two hex digits>/<hash hex>`.
fn file_of(root: &Path, hash: &PieceHash) -> PathBuf {
    let hex = hash.to_hex();
    root.join("pieces").join(&hex[..2]).join(hex)
}

/// A closed store of 8 pieces and a manifest; returns its pieces.
fn setup(root: &Path) -> Vec<(PieceHash, Vec<u8>)> {
    let all: Vec<_> = (0..8).map(|s| piece(s, PIECE)).collect();
    let mut store = open(root);
    for (i, (h, b)) in all.iter().enumerate() {
        store.put(h, b, &owner(&format!("/r{i}")), i == 0).unwrap();
    }
    store.put_manifest(SWARM, "/v.m3u8", b"manifest").unwrap();
    assert_eq!(store.piece_path(&all[3].0), file_of(root, &all[3].0));
    all
}

fn assert_others_intact(store: &mut StoreCore, all: &[(PieceHash, Vec<u8>)], gone: &[PieceHash]) {
    for (h, b) in all {
        if gone.contains(h) {
            assert!(!store.has(h).unwrap(), "{h:?} should be gone");
        } else {
            assert_eq!(store.get(h).unwrap().as_deref(), Some(&b[..]), "{h:?}");
        }
    }
}

fn flip(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 0x01;
    std::fs::write(path, &data).unwrap();
}

#[test]
fn a_flipped_byte_in_a_piece_file_is_caught_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let all = setup(&root);
    let (t, tb) = &all[2];
    flip(&file_of(&root, t), 5000);

    let mut store = open(&root);
    let err = store.get(t).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { hash } if hash == *t),
        "{err}"
    );
    assert!(!store.has(t).unwrap());
    assert_eq!(store.totals().corrupt_detected, 1);
    assert_eq!(store.totals().pieces, 7);
    assert_consistent(&store);
    assert_others_intact(&mut store, &all, &[*t]);
    store.flush().unwrap();
    assert!(!file_of(&root, t).exists(), "the bad file is deleted");

    // Fetched again, it is stored afresh.
    store.put(t, tb, &owner("/r2"), false).unwrap();
    drop(store);
    let mut store = open(&root);
    assert_eq!(store.get(t).unwrap().as_deref(), Some(&tb[..]));
    assert_eq!(
        store.get_manifest(SWARM, "/v.m3u8").unwrap().as_deref(),
        Some(&b"manifest"[..])
    );
    assert!(store.scrub().unwrap().is_clean());
    assert_consistent(&store);
}

#[test]
fn scrub_finds_flipped_truncated_grown_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let all = setup(&root);
    flip(&file_of(&root, &all[1].0), 0);
    let truncated = std::fs::OpenOptions::new()
        .write(true)
        .open(file_of(&root, &all[3].0))
        .unwrap();
    truncated.set_len(100).unwrap();
    let mut grown = std::fs::read(file_of(&root, &all[4].0)).unwrap();
    grown.extend_from_slice(b"trailing junk");
    std::fs::write(file_of(&root, &all[4].0), grown).unwrap();
    std::fs::remove_file(file_of(&root, &all[6].0)).unwrap();

    let mut store = open(&root);
    let report = store.scrub().unwrap();
    let mut found = report.corrupt.clone();
    found.sort();
    let mut expected = vec![all[1].0, all[3].0, all[4].0, all[6].0];
    expected.sort();
    assert_eq!(found, expected, "{report:?}");
    assert_eq!(report.checked, 7, "every piece with a file was read");
    assert!(!report.totals_fixed);
    let t = store.totals();
    assert_eq!((t.pieces, t.corrupt_detected), (4, 4));
    assert_consistent(&store);
    assert_others_intact(&mut store, &all, &expected);
    assert!(store.scrub().unwrap().is_clean());
    for h in &expected {
        assert!(!file_of(&root, h).exists());
    }
}

#[test]
fn truncated_and_missing_files_are_corrupt_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let all = setup(&root);
    std::fs::write(file_of(&root, &all[5].0), b"").unwrap();
    std::fs::remove_file(file_of(&root, &all[7].0)).unwrap();
    let mut store = open(&root);
    for h in [all[5].0, all[7].0] {
        assert!(matches!(store.get(&h), Err(StoreError::Corrupt { hash }) if hash == h));
        assert_eq!(store.get(&h).unwrap(), None, "gone once reported");
    }
    assert_eq!(store.totals().corrupt_detected, 2);
    assert_consistent(&store);
    assert_others_intact(&mut store, &all, &[all[5].0, all[7].0]);
}

#[test]
fn stray_files_are_swept_at_open_and_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let all = setup(&root);
    // A piece file nobody recorded (a put whose metadata a crash lost), a
    // half-written temporary file, and junk with a name that is no hash.
    let (stray, sb) = piece(99, PIECE);
    std::fs::write(file_of(&root, &stray), &sb).unwrap();
    std::fs::write(root.join("pieces/tmp").join(stray.to_hex()), &sb[..10]).unwrap();
    std::fs::write(root.join("pieces/ab/not-a-piece"), b"junk").unwrap();

    let mut store = open(&root);
    assert!(!file_of(&root, &stray).exists());
    assert!(!root.join("pieces/ab/not-a-piece").exists());
    assert_eq!(
        std::fs::read_dir(root.join("pieces/tmp")).unwrap().count(),
        0
    );
    assert!(!store.has(&stray).unwrap());
    assert_eq!(store.totals().corrupt_detected, 0);
    assert_others_intact(&mut store, &all, &[]);
    assert!(store.scrub().unwrap().is_clean());
}

/// Every file of the database damaged in turn (bytes flipped through it):
/// the store opens, started empty if sled cannot open past the damage, or
/// repairs itself by a rebuild; it never panics, never returns a wrong
/// piece, stays consistent, and the files of pieces whose metadata was lost
/// do not stay behind on disk.
#[test]
fn a_damaged_database_never_panics_and_leaves_no_unaccounted_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = 0;
    for victim in ["db", "conf"] {
        for at_fraction in [0.1, 0.5, 0.9] {
            let root = dir.path().join(format!("{victim}-{at_fraction}"));
            let all = setup(&root);
            let current = std::fs::read_to_string(root.join("CURRENT")).unwrap();
            let file = root.join(current.trim()).join(victim);
            let mut data = std::fs::read(&file).unwrap();
            let at = (data.len() as f64 * at_fraction) as usize;
            for b in data.iter_mut().skip(at).take(64) {
                *b ^= 0x5a;
            }
            std::fs::write(&file, &data).unwrap();
            cases += 1;

            let mut store = match StoreCore::open(&root, Config::new(BUDGET)) {
                Ok(store) => store,
                Err(e) => {
                    assert!(matches!(e, StoreError::Open { .. }), "{e}");
                    continue;
                }
            };
            for (h, b) in &all {
                match store.get(h) {
                    Ok(Some(got)) => assert_eq!(&got, b),
                    Ok(None) | Err(StoreError::Corrupt { .. }) => {}
                    Err(e) => panic!("{victim} at {at_fraction}: {e}"),
                }
            }
            let report = store.scrub().unwrap();
            assert_consistent(&store);
            let t = store.totals();
            eprintln!(
                "{victim} at {at_fraction}: reset {}, {} of 8 pieces kept, scrub {report:?}",
                store.was_reset_at_open(),
                t.pieces
            );
            // What is on disk is what the store accounts for.
            let files = du(&root.join("pieces"));
            assert!(
                files <= t.disk_bytes + (2 << 20),
                "{victim} at {at_fraction}: {files} bytes of piece files for {} counted",
                t.disk_bytes
            );
            // And it works.
            let (h, b) = piece(1000, PIECE);
            store.put(&h, &b, &owner("/after"), false).unwrap();
            assert_eq!(store.get(&h).unwrap().as_deref(), Some(&b[..]));
        }
    }
    assert_eq!(cases, 6);
}
