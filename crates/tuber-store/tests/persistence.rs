//! Closing and reopening keeps pieces, metadata, manifests, totals, counters
//! and the eviction order.

mod common;

use common::{assert_consistent, open, owner, piece, SWARM};

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let pieces: Vec<_> = (0..6).map(|i| piece(i, 1000)).collect();
    let (before_totals, before_metas) = {
        let mut store = open(dir.path(), 6000);
        for (i, (h, b)) in pieces.iter().enumerate() {
            store.put(h, b, &owner(&format!("/r{i}")), i == 0).unwrap();
        }
        store
            .put(&pieces[1].0, &pieces[1].1, &owner("/shared"), false)
            .unwrap();
        store.get(&pieces[2].0).unwrap().unwrap();
        store.get(&pieces[2].0).unwrap().unwrap();
        // One eviction and one corruption, so the counters are not zero.
        let (extra, eb) = piece(100, 1000);
        assert_eq!(
            store
                .put(&extra, &eb, &owner("/extra"), false)
                .unwrap()
                .evicted,
            vec![pieces[3].0]
        );
        store
            .overwrite_piece_bytes_for_test(&pieces[4].0, b"rot")
            .unwrap();
        assert!(store.get(&pieces[4].0).is_err());
        store
            .put_manifest(SWARM, "/v.m3u8", b"the manifest")
            .unwrap();
        let metas: Vec<_> = pieces.iter().map(|(h, _)| store.meta(h).unwrap()).collect();
        (store.totals(), metas)
    };

    let mut store = open(dir.path(), 6000);
    assert_eq!(store.totals(), before_totals);
    assert_eq!(before_totals.evictions, 1);
    assert_eq!(before_totals.corrupt_detected, 1);
    let metas: Vec<_> = pieces.iter().map(|(h, _)| store.meta(h).unwrap()).collect();
    assert_eq!(metas, before_metas);
    assert_eq!(
        store.get_manifest(SWARM, "/v.m3u8").unwrap().as_deref(),
        Some(&b"the manifest"[..])
    );
    assert_eq!(
        store.list_by_resource(SWARM, "/shared").unwrap(),
        vec![pieces[1].0]
    );
    assert_consistent(&store);
    assert!(store.scrub().unwrap().is_clean());

    // The logical clock carried over: pieces put after the restart rank as
    // newer than everything before it. Unpinned, oldest first: 5 (put), 1
    // (put again later), 2 (read later still), then the extra piece.
    let (h, b) = piece(101, 1000);
    assert!(store
        .put(&h, &b, &owner("/after"), false)
        .unwrap()
        .evicted
        .is_empty());
    let (h2, b2) = piece(102, 3000);
    let out = store.put(&h2, &b2, &owner("/after"), false).unwrap();
    assert_eq!(out.evicted, vec![pieces[5].0, pieces[1].0, pieces[2].0]);
    assert_consistent(&store);
}

#[test]
fn open_clears_debris_of_an_interrupted_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let (h, b) = piece(1, 1000);
    {
        let mut store = open(dir.path(), 6000);
        store.put(&h, &b, &owner("/a"), false).unwrap();
    }
    // A rebuild that died before switching CURRENT leaves a newer database.
    std::fs::create_dir_all(root.join("db.1")).unwrap();
    std::fs::write(root.join("db.1/junk"), b"half a copy").unwrap();
    let mut store = open(dir.path(), 6000);
    assert!(!root.join("db.1").exists());
    assert_eq!(store.get(&h).unwrap().as_deref(), Some(&b[..]));
    drop(store);

    std::fs::write(root.join("CURRENT"), "not a database name\n").unwrap();
    let err = tuber_store::StoreCore::open(&root, tuber_store::Config::new(6000)).unwrap_err();
    assert!(matches!(err, tuber_store::StoreError::Open { .. }), "{err}");
}
