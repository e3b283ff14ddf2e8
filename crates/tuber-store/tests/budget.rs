//! The disk budget: eviction order, pinned pieces, refusals, budget changes.

mod common;

use common::{assert_consistent, open, owner, piece};
use tuber_store::{PieceHash, StoreCore, StoreError};

/// Puts `n` pieces of `len` bytes with seeds from `seed`, checking the
/// invariants after each.
fn fill(store: &mut StoreCore, seed: u64, n: u64, len: usize, pinned: bool) -> Vec<PieceHash> {
    (seed..seed + n)
        .map(|s| {
            let (h, b) = piece(s, len);
            store
                .put(&h, &b, &owner(&format!("/r{s}")), pinned)
                .unwrap();
            assert_consistent(store);
            h
        })
        .collect()
}

#[test]
fn filling_past_the_budget_evicts_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 10_000);
    let hs = fill(&mut store, 0, 10, 1000, false);
    assert_eq!(store.totals().bytes, 10_000);
    // Reading the oldest makes the second oldest the next victim.
    store.get(&hs[0]).unwrap().unwrap();
    let (h, b) = piece(100, 1000);
    let out = store.put(&h, &b, &owner("/new"), false).unwrap();
    assert_eq!(out.evicted, vec![hs[1]]);
    // A bigger piece evicts as many as it needs, oldest first.
    let (h2, b2) = piece(101, 2500);
    let out = store.put(&h2, &b2, &owner("/big"), false).unwrap();
    assert_eq!(out.evicted, vec![hs[2], hs[3], hs[4]]);
    assert!(store.has(&hs[0]).unwrap());
    assert_eq!(store.totals().evictions, 4);
    assert_consistent(&store);
}

#[test]
fn pinned_pieces_survive_unpinned_puts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 5000);
    let pinned = fill(&mut store, 0, 2, 1000, true);
    fill(&mut store, 10, 20, 1000, false);
    for h in &pinned {
        assert!(store.has(h).unwrap());
    }
    let t = store.totals();
    assert_eq!((t.bytes, t.pinned_bytes, t.pieces), (5000, 2000, 5));
}

#[test]
fn unpinned_put_that_only_pinned_evictions_could_fit_fails_and_evicts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 3000);
    let pinned = fill(&mut store, 0, 2, 1000, true);
    let unpinned = fill(&mut store, 10, 1, 1000, false);
    let (h, b) = piece(99, 1500);
    let err = store.put(&h, &b, &owner("/x"), false).unwrap_err();
    match &err {
        StoreError::Full {
            needed,
            available,
            budget,
        } => assert_eq!((*needed, *available, *budget), (1500, 1000, 3000)),
        other => panic!("expected Full, got {other}"),
    }
    assert!(
        err.to_string()
            .starts_with("store full: piece needs 1500 bytes"),
        "{err}"
    );
    for h in pinned.iter().chain(&unpinned) {
        assert!(
            store.has(h).unwrap(),
            "nothing may be evicted by a failed put"
        );
    }
    assert!(!store.has(&h).unwrap());
    assert_eq!(store.totals().evictions, 0);
    assert_consistent(&store);
}

#[test]
fn a_piece_larger_than_the_budget_is_refused_even_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 3000);
    let hs = fill(&mut store, 0, 3, 1000, false);
    let (h, b) = piece(99, 3001);
    assert!(matches!(
        store.put(&h, &b, &owner("/x"), true),
        Err(StoreError::Full { needed: 3001, .. })
    ));
    for h in &hs {
        assert!(store.has(h).unwrap());
    }
    assert_consistent(&store);
}

#[test]
fn pinned_put_evicts_unpinned_first_then_least_recently_used_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 4000);
    let pinned = fill(&mut store, 0, 2, 1000, true);
    let unpinned = fill(&mut store, 10, 2, 1000, false);
    // The first pinned piece becomes the most recently used of all.
    store.get(&pinned[0]).unwrap().unwrap();

    let (e, eb) = piece(50, 2000);
    let out = store.put(&e, &eb, &owner("/e"), true).unwrap();
    assert_eq!(
        out.evicted, unpinned,
        "unpinned pieces go first, oldest first"
    );

    let (f, fb) = piece(51, 1000);
    let out = store.put(&f, &fb, &owner("/f"), true).unwrap();
    assert_eq!(
        out.evicted,
        vec![pinned[1]],
        "then the least recently used pinned piece"
    );
    assert!(store.has(&pinned[0]).unwrap());
    let t = store.totals();
    assert_eq!((t.bytes, t.pinned_bytes, t.pieces), (4000, 4000, 3));
    assert_consistent(&store);

    // Now everything is pinned: an unpinned put cannot fit at all.
    let (g, gb) = piece(52, 10);
    assert!(matches!(
        store.put(&g, &gb, &owner("/g"), false),
        Err(StoreError::Full { available: 0, .. })
    ));
}

#[test]
fn shrinking_the_budget_evicts_unpinned_then_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 6000);
    let pinned = fill(&mut store, 0, 2, 1000, true);
    let unpinned = fill(&mut store, 10, 4, 1000, false);

    let evicted = store.set_budget(3000).unwrap();
    assert_eq!(evicted, unpinned[..3].to_vec());
    assert_consistent(&store);

    let evicted = store.set_budget(1000).unwrap();
    assert_eq!(evicted, vec![unpinned[3], pinned[0]]);
    assert!(store.has(&pinned[1]).unwrap());
    let t = store.totals();
    assert_eq!((t.bytes, t.budget, t.evictions), (1000, 1000, 5));
    assert_consistent(&store);

    assert_eq!(store.set_budget(0).unwrap(), vec![pinned[1]]);
    assert_eq!(store.totals().pieces, 0);
    // Growing evicts nothing.
    assert!(store.set_budget(10_000).unwrap().is_empty());
    assert_consistent(&store);
}

#[test]
fn reopening_with_a_smaller_budget_evicts_down_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let hs = {
        let mut store = open(dir.path(), 5000);
        fill(&mut store, 0, 5, 1000, false)
    };
    let mut store = open(dir.path(), 2000);
    assert_eq!(store.totals().bytes, 2000);
    assert!(store.has(&hs[4]).unwrap());
    assert!(!store.has(&hs[0]).unwrap());
    assert_consistent(&store);
}
