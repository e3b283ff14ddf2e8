//! Round trips of every operation on a real sled store.

mod common;

use common::{assert_consistent, open, owner, piece, SWARM};
use tuber_store::{Owner, PieceHash, StoreError, MAX_OWNERS, MAX_PIECE_BYTES};

#[test]
fn put_get_has_meta_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let (h, b) = piece(1, 10_000);
    assert!(!store.has(&h).unwrap());
    assert_eq!(store.get(&h).unwrap(), None);

    let out = store.put(&h, &b, &owner("/v/a.ts"), false).unwrap();
    assert!(out.added);
    assert!(out.evicted.is_empty());
    assert!(store.has(&h).unwrap());
    assert_eq!(store.get(&h).unwrap().as_deref(), Some(&b[..]));
    assert_eq!(store.get(&h).unwrap().as_deref(), Some(&b[..]));

    let meta = store.meta(&h).unwrap().unwrap();
    assert_eq!(meta.size, 10_000);
    assert_eq!(meta.hits, 2);
    assert_eq!(meta.bytes_served, 20_000);
    assert_eq!(meta.owners, vec![owner("/v/a.ts")]);
    assert!(!meta.pinned);
    let t = store.totals();
    assert_eq!((t.pieces, t.bytes, t.pinned_bytes), (1, 10_000, 0));
    assert_consistent(&store);

    assert!(store.delete(&h).unwrap());
    assert!(!store.delete(&h).unwrap());
    assert!(!store.has(&h).unwrap());
    assert_eq!(store.get(&h).unwrap(), None);
    assert_eq!(store.totals().pieces, 0);
    assert!(store.list_by_swarm(SWARM).unwrap().is_empty());
    assert_consistent(&store);
}

#[test]
fn wrong_hash_is_rejected_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let (h, _) = piece(1, 1000);
    let (_, other) = piece(2, 1000);
    let err = store.put(&h, &other, &owner("/a"), false).unwrap_err();
    assert!(matches!(err, StoreError::HashMismatch { expected, .. } if expected == h));
    assert!(!store.has(&h).unwrap());
    assert_eq!(store.totals().pieces, 0);
    assert_eq!(store.recount().unwrap().pieces, 0);
}

#[test]
fn limits_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 64 << 20);
    let big = vec![0u8; MAX_PIECE_BYTES as usize + 1];
    let err = store
        .put(&PieceHash::of(&big), &big, &owner("/a"), false)
        .unwrap_err();
    assert!(matches!(err, StoreError::PieceTooLarge { .. }), "{err}");

    let (h, b) = piece(1, 100);
    for bad in [
        Owner::new("", "/a"),
        Owner::new("s\0x", "/a"),
        Owner::new(SWARM, ""),
        Owner::new(SWARM, "r".repeat(2049)),
    ] {
        let err = store.put(&h, &b, &bad, false).unwrap_err();
        assert!(matches!(err, StoreError::InvalidName { .. }), "{err}");
        assert!(err.to_string().starts_with("invalid "), "{err}");
    }
    assert!(matches!(
        store.list_by_swarm("a\0b"),
        Err(StoreError::InvalidName { .. })
    ));
    assert!(matches!(
        store.set_pinned(&h, true),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.totals().pieces, 0);
}

#[test]
fn owners_accumulate_and_list_by_swarm_and_resource() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let (shared, sb) = piece(1, 500);
    let (only_a, ab) = piece(2, 500);
    let (other_swarm, ob) = piece(3, 500);
    store.put(&shared, &sb, &owner("/a"), false).unwrap();
    store.put(&only_a, &ab, &owner("/a"), false).unwrap();
    // The same bytes in a second resource: not added again, just owned twice.
    let again = store.put(&shared, &sb, &owner("/b"), false).unwrap();
    assert!(!again.added);
    store
        .put(
            &other_swarm,
            &ob,
            &Owner::new("https://other.example/", "/a"),
            false,
        )
        .unwrap();

    let mut a = store.list_by_resource(SWARM, "/a").unwrap();
    a.sort();
    let mut expected = vec![shared, only_a];
    expected.sort();
    assert_eq!(a, expected);
    assert_eq!(store.list_by_resource(SWARM, "/b").unwrap(), vec![shared]);
    assert_eq!(store.list_by_swarm(SWARM).unwrap(), expected);
    assert_eq!(
        store.list_by_swarm("https://other.example/").unwrap(),
        vec![other_swarm]
    );
    // A swarm whose name is a prefix of another's lists nothing of it.
    assert!(store
        .list_by_swarm("https://other.example")
        .unwrap()
        .is_empty());

    let meta = store.meta(&shared).unwrap().unwrap();
    assert_eq!(meta.owners, vec![owner("/a"), owner("/b")]);
    assert_eq!(store.totals().pieces, 3);
    assert_eq!(store.totals().bytes, 1500);

    store.delete(&shared).unwrap();
    assert_eq!(store.list_by_resource(SWARM, "/b").unwrap(), vec![]);
    assert_eq!(store.list_by_swarm(SWARM).unwrap(), vec![only_a]);
    assert_consistent(&store);
}

#[test]
fn owner_list_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let (h, b) = piece(1, 100);
    for i in 0..MAX_OWNERS {
        store.put(&h, &b, &owner(&format!("/r{i}")), false).unwrap();
    }
    // An owner already listed is fine; a new one is over the limit.
    store.put(&h, &b, &owner("/r0"), false).unwrap();
    let err = store
        .put(&h, &b, &owner("/one-too-many"), false)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooManyOwners {
                max: MAX_OWNERS,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.meta(&h).unwrap().unwrap().owners.len(), MAX_OWNERS);
}

#[test]
fn pinning_changes_pinned_bytes_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    let (h, b) = piece(1, 300);
    store.put(&h, &b, &owner("/a"), false).unwrap();
    store.set_pinned(&h, true).unwrap();
    assert!(store.meta(&h).unwrap().unwrap().pinned);
    assert_eq!(store.totals().pinned_bytes, 300);
    // An unpinned put of a pinned piece does not unpin it.
    store.put(&h, &b, &owner("/b"), false).unwrap();
    assert!(store.meta(&h).unwrap().unwrap().pinned);
    store.set_pinned(&h, false).unwrap();
    assert_eq!(store.totals().pinned_bytes, 0);
    // A pinned put of a stored piece pins it.
    store.put(&h, &b, &owner("/a"), true).unwrap();
    assert_eq!(store.totals().pinned_bytes, 300);
    assert_consistent(&store);
}

#[test]
fn manifests_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), 1 << 20);
    store
        .put_manifest(SWARM, "/v/b.m3u8", b"manifest b")
        .unwrap();
    store
        .put_manifest(SWARM, "/v/a.m3u8", b"manifest a")
        .unwrap();
    store
        .put_manifest("https://other.example/", "/x", b"other")
        .unwrap();
    assert_eq!(
        store.get_manifest(SWARM, "/v/a.m3u8").unwrap().as_deref(),
        Some(&b"manifest a"[..])
    );
    assert_eq!(store.get_manifest(SWARM, "/nope").unwrap(), None);
    store
        .put_manifest(SWARM, "/v/a.m3u8", b"manifest a2")
        .unwrap();
    assert_eq!(
        store.list_manifests(SWARM).unwrap(),
        vec![
            ("/v/a.m3u8".to_owned(), b"manifest a2".to_vec()),
            ("/v/b.m3u8".to_owned(), b"manifest b".to_vec())
        ]
    );
    assert!(store.delete_manifest(SWARM, "/v/a.m3u8").unwrap());
    assert!(!store.delete_manifest(SWARM, "/v/a.m3u8").unwrap());
    assert_eq!(store.list_manifests(SWARM).unwrap().len(), 1);
    let huge = vec![0u8; 16 * 1024 * 1024 + 1];
    assert!(matches!(
        store.put_manifest(SWARM, "/huge", &huge),
        Err(StoreError::ManifestTooLarge { .. })
    ));
    assert!(matches!(
        store.put_manifest(SWARM, "", b"x"),
        Err(StoreError::InvalidName { .. })
    ));
    // Manifests are not pieces.
    assert_eq!(store.totals().bytes, 0);
}
