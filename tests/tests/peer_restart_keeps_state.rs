//! A peer shut down and started again on the same data dir keeps what it
//! had: its identity (same peer id, still trusted without a new invite),
//! its swarms (rejoined by itself), its store (every piece, verified), its
//! settings, and its metering (totals since install and the history).

use std::time::Duration;

use tuber_peer::engine::types::SwarmPhase;
use tuber_peer::SettingsPatch;
use tuber_tests::swarm::{init_tracing, sha256_hex, Hub, Origin, Peer};

const PATH: &str = "/files/kept-8MiB.bin";
const LEN: usize = 8 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_peer_keeps_its_state() {
    init_tracing();
    let origin = Origin::start(&[(PATH, LEN, 0x5e5_0001)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    let url = hub.url();
    let manifest = hub.manifest(PATH).await;
    let n = manifest.pieces.len() as u64;

    let mut a = Peer::start().await;
    let invite = hub.invite().await;
    a.join(&url, Some(&invite)).await;
    assert!(a.wait_joined(&url, WAIT).await, "trusted");
    let got = a.fetch(&url, PATH, Duration::from_secs(60)).await;
    assert_eq!(got.failed, 0, "{got:?}");
    let settings = a
        .engine()
        .update_settings(SettingsPatch {
            upload_bps: Some(3_000_000),
            ..SettingsPatch::default()
        })
        .await
        .expect("settings");

    let id = a.id();
    let before = a.engine().status().await;
    assert!(before.total.down >= LEN as u64, "{:?}", before.total);
    let history_before: u64 = a.engine().history().seconds.iter().map(|s| s.down).sum();
    assert!(
        history_before >= LEN as u64,
        "history before: {history_before}"
    );

    a.restart().await;

    assert_eq!(a.id(), id, "same identity");
    let swarms = a.engine().swarms().await;
    assert_eq!(swarms.len(), 1, "{swarms:?}");
    assert!(
        a.wait_joined(&url, WAIT).await,
        "rejoined by itself, still trusted"
    );
    assert_eq!(
        a.phase(&url).await,
        Some(SwarmPhase::Joined { trusted: true })
    );
    assert_eq!(a.engine().settings(), settings, "settings kept");

    let after = a.engine().status().await;
    println!(
        "before: total {:?}, store {:?}\nafter:  total {:?}, store {:?}",
        before.total, before.store, after.total, after.store
    );
    assert!(
        after.total.down >= before.total.down,
        "totals since install kept"
    );
    assert!(
        after.total.up >= before.total.up,
        "totals since install kept"
    );
    assert_eq!(after.store.pieces, before.store.pieces, "store kept");
    assert_eq!(after.store.bytes, before.store.bytes, "store kept");
    let history_after: u64 = a.engine().history().seconds.iter().map(|s| s.down).sum();
    assert!(
        history_after >= history_before,
        "history kept: {history_after} < {history_before}"
    );

    assert_eq!(a.verify_store(&url).await, n as usize);
    assert_eq!(
        sha256_hex(&a.reassemble(&manifest).await),
        origin.sha256(PATH)
    );
    let cached = a.engine().cached().await.expect("cached");
    assert!(
        cached.iter().any(|c| c.resource == PATH && c.pieces == n),
        "{cached:?}"
    );
    let again = a.fetch(&url, PATH, Duration::from_secs(60)).await;
    assert_eq!(again.already_held, n, "nothing fetched again: {again:?}");
}
