//! The engine end to end in one process, small: peer A seeds the demo
//! download from the hub, peer B gets it from A over WebRTC, verified.

mod support;

use std::time::{Duration, Instant};

use tuber_peer::transport::RtcConfig;
use tuber_peer::{Engine, EngineConfig};

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.rtc = RtcConfig {
        udp_addrs: vec!["127.0.0.1:0".into()],
        ..RtcConfig::default()
    };
    c
}

async fn joined(e: &Engine) {
    let deadline = Instant::now() + support::WAIT;
    loop {
        let s = e.swarms().await;
        if s.iter()
            .all(|s| matches!(s.phase, tuber_peer::engine::SwarmPhase::Joined { .. }))
        {
            return;
        }
        assert!(Instant::now() < deadline, "not joined: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_gets_the_demo_download_from_a() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let hub = support::TestHub::start().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Engine::start(config(da.path())).await.unwrap();
    let b = Engine::start(config(db.path())).await.unwrap();
    a.join(&hub.url(), None).await.unwrap();
    b.join(&hub.url(), None).await.unwrap();
    joined(&a).await;
    joined(&b).await;
    let path = tuber_hub::demo::DOWNLOAD_PATH;
    let sa = a.fetch_resource(&hub.url(), path).await.unwrap();
    assert_eq!(sa.failed, 0, "{sa:?}");
    assert_eq!(sa.from_hub, sa.pieces, "{sa:?}");
    // A's `have` goes out within 250 ms.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let t = Instant::now();
    let sb = b.fetch_resource(&hub.url(), path).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "B: {sb:?} in {secs:.2} s = {:.1} MB/s",
        sb.bytes_from_peers as f64 / secs / 1e6
    );
    assert_eq!(sb.failed, 0, "{sb:?}");
    assert_eq!(sb.from_peers, sb.pieces, "{sb:?}");
    let status = b.status().await;
    assert_eq!(status.peers.len(), 1, "{status:?}");
    assert!(
        status.total.down >= tuber_hub::demo::DOWNLOAD_LEN,
        "{status:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}
