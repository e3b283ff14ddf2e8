//! Reads and the eviction order: a read is logged, not written into the
//! piece's records, yet eviction stays least-recently-used, across a clean
//! reopen and a crash once the read log is durable.

mod common;

use common::{open, owner, piece};
use tuber_store::PieceHash;

const LEN: usize = 1000;

/// A store with room for three pieces, holding a, b, c put in that order.
fn three(dir: &std::path::Path) -> (tuber_store::StoreCore, Vec<PieceHash>) {
    let mut store = open(dir, 3 * LEN as u64);
    let hashes = (0..3)
        .map(|i| {
            let (h, b) = piece(i, LEN);
            store.put(&h, &b, &owner("/r"), false).unwrap();
            h
        })
        .collect();
    (store, hashes)
}

fn put_new(store: &mut tuber_store::StoreCore, seed: u64) -> Vec<PieceHash> {
    let (h, b) = piece(seed, LEN);
    store.put(&h, &b, &owner("/r"), false).unwrap().evicted
}

#[test]
fn a_read_piece_is_evicted_in_its_true_place() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, h) = three(dir.path());
    // a was read after c was put: the order is b, c, a.
    store.get(&h[0]).unwrap().unwrap();
    assert_eq!(put_new(&mut store, 10), vec![h[1]]);
    assert_eq!(put_new(&mut store, 11), vec![h[2]]);
    assert_eq!(put_new(&mut store, 12), vec![h[0]]);
}

#[test]
fn a_read_piece_ahead_of_others_still_is_taken_when_its_turn_comes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, h) = three(dir.path());
    store.get(&h[0]).unwrap().unwrap();
    store.get(&h[1]).unwrap().unwrap();
    // Order now: c, a, b. One put needing two pieces' room takes c and a.
    let (big, bytes) = piece(20, 2 * LEN);
    let mut evicted = store
        .put(&big, &bytes, &owner("/r"), false)
        .unwrap()
        .evicted;
    evicted.sort();
    let mut want = vec![h[2], h[0]];
    want.sort();
    assert_eq!(evicted, want);
    assert!(store.has(&h[1]).unwrap());
    assert_eq!(store.meta(&h[1]).unwrap().unwrap().hits, 1);
}

#[test]
fn reads_count_before_and_after_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, h) = three(dir.path());
    for _ in 0..3 {
        store.get(&h[0]).unwrap().unwrap();
    }
    let meta = store.meta(&h[0]).unwrap().unwrap();
    assert_eq!((meta.hits, meta.bytes_served), (3, 3 * LEN as u64));
    drop(store);
    let mut store = open(dir.path(), 3 * LEN as u64);
    assert_eq!(store.meta(&h[0]).unwrap().unwrap().hits, 3);
    store.get(&h[0]).unwrap().unwrap();
    assert_eq!(store.meta(&h[0]).unwrap().unwrap().hits, 4);
    assert_eq!(put_new(&mut store, 10), vec![h[1]]);
    // Pinning folds the reads into the record; they are counted once.
    store.set_pinned(&h[0], true).unwrap();
    drop(store);
    let mut store = open(dir.path(), 3 * LEN as u64);
    let meta = store.meta(&h[0]).unwrap().unwrap();
    assert_eq!((meta.hits, meta.pinned), (4, true));
}

#[test]
fn logged_reads_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, h) = three(dir.path());
    store.get(&h[0]).unwrap().unwrap();
    store.get(&h[0]).unwrap().unwrap();
    // A flush writes the read log; the crash comes after it.
    store.flush().unwrap();
    store.crash_for_test().unwrap();
    let mut store = open(dir.path(), 3 * LEN as u64);
    assert_eq!(store.meta(&h[0]).unwrap().unwrap().hits, 2);
    assert_eq!(put_new(&mut store, 10), vec![h[1]]);
    assert_eq!(store.recount().unwrap(), store.totals().contents());
}

#[test]
fn a_deleted_and_stored_again_piece_does_not_inherit_its_old_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, h) = three(dir.path());
    store.get(&h[0]).unwrap().unwrap();
    assert!(store.delete(&h[0]).unwrap());
    let (_, b) = piece(0, LEN);
    store.put(&h[0], &b, &owner("/r"), false).unwrap();
    assert_eq!(store.meta(&h[0]).unwrap().unwrap().hits, 0);
}

#[test]
fn many_reads_of_many_pieces_fold_and_stay_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300u64;
    // Room for 100 pieces' pending reads: the reads below fold many times,
    // for too many pieces and for a log too long.
    let config = tuber_store::Config {
        pending_reads: 100,
        ..common::exact(n * 64)
    };
    let mut store = tuber_store::StoreCore::open(dir.path().join("store"), config.clone()).unwrap();
    let hashes: Vec<_> = (0..n)
        .map(|i| {
            let (h, b) = piece(100 + i, 64);
            store.put(&h, &b, &owner("/r"), false).unwrap();
            h
        })
        .collect();
    // Past a log record's worth of reads, several times over.
    for round in 0..10 {
        for h in &hashes {
            store.get(h).unwrap().unwrap();
        }
        assert_eq!(store.meta(&hashes[0]).unwrap().unwrap().hits, round + 1);
    }
    // Eviction meets folded and pending pieces alike, in order: the ten
    // least recently read go first.
    let (h, b) = piece(1, 640);
    let mut evicted = store.put(&h, &b, &owner("/r"), false).unwrap().evicted;
    evicted.sort();
    let mut first: Vec<_> = hashes[..10].to_vec();
    first.sort();
    assert_eq!(evicted, first);
    drop(store);
    let mut store = tuber_store::StoreCore::open(dir.path().join("store"), config).unwrap();
    assert!(store.scrub().unwrap().is_clean());
    for h in &hashes[10..] {
        assert_eq!(store.meta(h).unwrap().unwrap().hits, 10);
    }
}
