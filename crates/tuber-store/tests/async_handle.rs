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
