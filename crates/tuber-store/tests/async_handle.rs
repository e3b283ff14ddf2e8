//! The async handle from a tokio runtime: concurrent callers, shutdown,
//! reopen.

mod common;

use common::{bytes, owner};
use tokio::task::JoinSet;
use tuber_store::{Config, PieceHash, Store, StoreError};

const BUDGET: u64 = 300_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_from_many_tasks_keep_the_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = Store::open(&path, Config::new(BUDGET)).await.unwrap();

    let mut tasks = JoinSet::new();
    for task in 0..16u64 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            for i in 0..30u64 {
                let seed = task * 1000 + i;
                let b = bytes(seed, 1000 + (seed as usize * 37) % 9000);
                let h = PieceHash::of(&b);
                match store
                    .put(h, b.clone(), owner(&format!("/t{task}")), i % 9 == 0)
                    .await
                {
                    Ok(_) => mine.push((h, b)),
                    // Pinned pieces may fill the budget; refusing is correct.
                    Err(StoreError::Full { .. }) => {}
                    Err(e) => panic!("put failed: {e}"),
                }
                if let Some((h, b)) = mine.get(i as usize / 2) {
                    // It may have been evicted by another task's put.
                    if let Some(got) = store.get(*h).await.unwrap() {
                        assert_eq!(&got, b);
                    }
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }

    let totals = store.totals().await.unwrap();
    assert!(totals.bytes <= BUDGET);
    assert!(
        totals.evictions > 0,
        "the budget should have forced evictions"
    );
    assert_eq!(store.recount().await.unwrap(), totals.contents());
    let listed = store.list_by_swarm(common::SWARM).await.unwrap();
    assert_eq!(listed.len() as u64, totals.pieces);
    for h in &listed {
        let got = store.get(*h).await.unwrap().unwrap();
        assert!(h.verifies(&got));
    }
    assert!(store.scrub().await.unwrap().is_clean());

    // Shutdown flushes and closes: the directory reopens at once, and the
    // other handles are told the store is gone.
    let other = store.clone();
    store.shutdown().await.unwrap();
    assert!(matches!(other.totals().await, Err(StoreError::Closed)));
    let reopened = Store::open(&path, Config::new(BUDGET)).await.unwrap();
    assert_eq!(reopened.totals().await.unwrap(), totals);
    assert!(
        matches!(
            Store::open(&path, Config::new(BUDGET)).await,
            Err(StoreError::Open { .. })
        ),
        "one open at a time"
    );
    reopened.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_operation_works_through_the_handle() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store"), Config::new(10_000))
        .await
        .unwrap();
    let b = bytes(1, 4000);
    let h = PieceHash::of(&b);
    assert!(
        store
            .put(h, b.clone(), owner("/a"), false)
            .await
            .unwrap()
            .added
    );
    assert!(store.has(h).await.unwrap());
    assert_eq!(store.get(h).await.unwrap(), Some(b.clone()));
    assert_eq!(store.meta(h).await.unwrap().unwrap().hits, 1);
    assert_eq!(
        store.list_by_resource(common::SWARM, "/a").await.unwrap(),
        vec![h]
    );
    store.set_pinned(h, true).await.unwrap();
    assert_eq!(store.totals().await.unwrap().pinned_bytes, 4000);
    assert!(matches!(
        store.put(h, bytes(2, 10), owner("/a"), false).await,
        Err(StoreError::HashMismatch { .. })
    ));
    store
        .put_manifest(common::SWARM, "/m", b"m".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.get_manifest(common::SWARM, "/m").await.unwrap(),
        Some(b"m".to_vec())
    );
    assert_eq!(store.list_manifests(common::SWARM).await.unwrap().len(), 1);
    assert!(store.delete_manifest(common::SWARM, "/m").await.unwrap());
    assert_eq!(store.set_budget(1000).await.unwrap(), vec![h]);
    assert!(!store.delete(h).await.unwrap());
    store.flush().await.unwrap();
    assert!(store.disk_usage().await.unwrap() > 0);
    // Dropping the last handle ends the store thread (after a flush).
    drop(store);
}

/// Reads from many tasks at once (their files read on the blocking pool):
/// every one counted, in order with the commands around it, and a damaged
/// file repaired by the store thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_are_counted_in_order_and_damage_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let piece = 4000u64;
    // Room for exactly three pieces.
    let store = Store::open(&path, common::exact(3 * piece)).await.unwrap();
    let [a, b, c, d] = [1u64, 2, 3, 4].map(|seed| {
        let bytes = bytes(seed, piece as usize);
        (PieceHash::of(&bytes), bytes)
    });
    for (h, bytes) in [&a, &b, &c] {
        store
            .put(*h, bytes.clone(), owner("/r"), false)
            .await
            .unwrap();
    }

    // Many concurrent reads, more than one batch of them: every one counted.
    let reads = 3 * 1024 + 7;
    let mut tasks = JoinSet::new();
    for task in 0..50 {
        let (store, a) = (store.clone(), a.clone());
        tasks.spawn(async move {
            for _ in (task..reads).step_by(50) {
                assert_eq!(store.get(a.0).await.unwrap(), Some(a.1.clone()));
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    // A mutation right after reads keeps both: the pin, and the hits.
    store.set_pinned(a.0, true).await.unwrap();
    let meta = store.meta(a.0).await.unwrap().unwrap();
    assert_eq!(meta.hits, reads as u64);
    assert_eq!(meta.bytes_served, reads as u64 * piece);
    assert!(meta.pinned);
    store.set_pinned(a.0, false).await.unwrap();

    // The eviction order follows the reads: A was read after C was put,
    // and B is read now, so C is the least recently used.
    assert!(store.get(b.0).await.unwrap().is_some());
    let evicted = store
        .put(d.0, d.1.clone(), owner("/r"), false)
        .await
        .unwrap()
        .evicted;
    assert_eq!(evicted, vec![c.0], "C was the least recently used");
    assert_eq!(store.get(c.0).await.unwrap(), None);

    // A damaged file: the store deletes the piece and says so.
    let hex = b.0.to_hex();
    std::fs::write(
        path.join("pieces").join(&hex[..2]).join(&hex),
        vec![0u8; piece as usize],
    )
    .unwrap();
    assert!(matches!(
        store.get(b.0).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(!store.has(b.0).await.unwrap());
    assert_eq!(store.totals().await.unwrap().corrupt_detected, 1);
    assert_eq!(
        store.recount().await.unwrap(),
        store.totals().await.unwrap().contents()
    );

    // Closed: reads are refused like everything else.
    let other = store.clone();
    store.shutdown().await.unwrap();
    assert!(matches!(other.get(a.0).await, Err(StoreError::Closed)));
}
