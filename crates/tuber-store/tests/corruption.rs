//! Damage made behind the store's back (through the `test-hooks` feature):
//! never returned, always deleted and counted, found by `get` and by `scrub`.

mod common;

use common::{assert_consistent, open, owner, piece, SWARM};
use tuber_store::StoreError;

#[test]
fn corrupt_bytes_are_caught_on_read_deleted_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let (a, ab) = piece(1, 4000);
    let (b, bb) = piece(2, 4000);
    store.put(&a, &ab, &owner("/a"), true).unwrap();
    store.put(&b, &bb, &owner("/b"), false).unwrap();

    let mut rotten = ab.clone();
    rotten[1234] ^= 0x10;
    store.overwrite_piece_bytes_for_test(&a, &rotten).unwrap();

    let err = store.get(&a).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { hash } if hash == a),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("piece {a} was corrupt on disk and has been deleted")
    );
    assert!(!store.has(&a).unwrap());
    assert_eq!(
        store.get(&a).unwrap(),
        None,
        "a deleted piece is simply absent"
    );
    assert_eq!(store.list_by_swarm(SWARM).unwrap(), vec![b]);
    let t = store.totals();
    assert_eq!(
        (t.pieces, t.bytes, t.pinned_bytes, t.corrupt_detected),
        (1, 4000, 0, 1)
    );
    assert_eq!(store.get(&b).unwrap().as_deref(), Some(&bb[..]));
    assert_consistent(&store);
    assert!(store.scrub().unwrap().is_clean());
}

#[test]
fn truncated_bytes_are_corrupt_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let (a, ab) = piece(1, 4000);
    store.put(&a, &ab, &owner("/a"), false).unwrap();
    store
        .overwrite_piece_bytes_for_test(&a, &ab[..100])
        .unwrap();
    assert!(matches!(store.get(&a), Err(StoreError::Corrupt { .. })));
    assert_consistent(&store);
}

#[test]
fn scrub_finds_every_corrupt_piece() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let pieces: Vec<_> = (0..8).map(|i| piece(i, 3000 + i as usize)).collect();
    for (i, (h, b)) in pieces.iter().enumerate() {
        store
            .put(h, b, &owner(&format!("/r{i}")), i % 2 == 0)
            .unwrap();
    }
    store
        .overwrite_piece_bytes_for_test(&pieces[2].0, &pieces[3].1)
        .unwrap();
    store
        .overwrite_piece_bytes_for_test(&pieces[5].0, b"short")
        .unwrap();

    let report = store.scrub().unwrap();
    let mut found = report.corrupt.clone();
    found.sort();
    let mut expected = vec![pieces[2].0, pieces[5].0];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(report.checked, 8);
    assert_eq!(report.orphan_pieces, 0);
    assert!(!report.totals_fixed, "deletions keep the totals exact");
    assert_eq!(store.totals().corrupt_detected, 2);
    assert_eq!(store.totals().pieces, 6);
    assert_consistent(&store);
    assert!(store.scrub().unwrap().is_clean());
}

#[test]
fn undecodable_metadata_is_corruption_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let (a, ab) = piece(1, 2000);
    let (b, bb) = piece(2, 2000);
    store.put(&a, &ab, &owner("/a"), true).unwrap();
    store.put(&b, &bb, &owner("/b"), false).unwrap();
    store.overwrite_meta_bytes_for_test(&a, &[1, 2, 3]).unwrap();

    assert!(matches!(store.meta(&a), Err(StoreError::Corrupt { hash }) if hash == a));
    assert!(!store.has(&a).unwrap());
    assert!(
        store.list_by_resource(SWARM, "/a").unwrap().is_empty(),
        "index entries found by scan"
    );
    let t = store.totals();
    assert_eq!(
        (t.pieces, t.bytes, t.pinned_bytes, t.corrupt_detected),
        (1, 2000, 0, 1)
    );
    assert_consistent(&store);
    assert!(store.scrub().unwrap().is_clean());

    // The same through get, and through a put of the same piece, which then
    // stores it afresh.
    store.overwrite_meta_bytes_for_test(&b, b"garbage").unwrap();
    assert!(store.put(&b, &bb, &owner("/b"), false).unwrap().added);
    assert_eq!(store.get(&b).unwrap().as_deref(), Some(&bb[..]));
    assert_eq!(store.totals().corrupt_detected, 2);
    assert_consistent(&store);
}

#[test]
fn scrub_repairs_metadata_without_bytes_and_bytes_without_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let (a, ab) = piece(1, 2000);
    let (b, bb) = piece(2, 2000);
    let (stray, sb) = piece(3, 2000);
    store.put(&a, &ab, &owner("/a"), false).unwrap();
    store.put(&b, &bb, &owner("/b"), false).unwrap();
    store.remove_piece_bytes_for_test(&a).unwrap();
    store.overwrite_piece_bytes_for_test(&stray, &sb).unwrap();
    store.overwrite_meta_bytes_for_test(&b, b"").unwrap();

    let report = store.scrub().unwrap();
    let mut found = report.corrupt.clone();
    found.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(report.orphan_pieces, 1);
    assert_eq!(store.totals().pieces, 0);
    assert_eq!(store.totals().corrupt_detected, 2);
    assert_consistent(&store);
    assert!(store.scrub().unwrap().is_clean());
}

#[test]
fn get_of_metadata_without_bytes_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let (a, ab) = piece(1, 2000);
    store.put(&a, &ab, &owner("/a"), false).unwrap();
    store.remove_piece_bytes_for_test(&a).unwrap();
    assert!(matches!(store.get(&a), Err(StoreError::Corrupt { .. })));
    assert_eq!(store.totals().pieces, 0);
    assert_consistent(&store);
}
