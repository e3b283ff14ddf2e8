//! A lying peer (the test-only `corrupt_uploads` switch: every piece it
//! serves has a byte flipped) is caught: its requesters verify, discard and
//! report what it sends and still end with correct bytes from elsewhere;
//! two distinct reporters get it banned by the hub (its swarm shows the
//! `banned` error, its reconnects are refused); no honest peer ever
//! stored a corrupt piece; and the operator lists the ban and lifts it
//! with `tuber-hub bans` while the hub runs, after which the liar's key
//! may join again.

use std::sync::Arc;
use std::time::Duration;

use tuber_hub::config::BanReporters;
use tuber_peer::engine::types::SwarmPhase;
use tuber_peer::{EngineEvent, Identity, SwarmClient, SwarmState};
use tuber_proto::ErrorCode;
use tuber_tests::swarm::{
    init_tracing, sha256_hex, wait_provider, wait_until, Hub, Origin, Peer, PeerOptions,
};

const PATH: &str = "/files/lied-about-8MiB.bin";
const LEN: usize = 8 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lying_peer_is_detected_reported_and_banned() {
    init_tracing();
    let origin = Origin::start(&[(PATH, LEN, 0x11e_0001)]).await;
    let hub = Hub::start(&origin.url(), |c| {
        // Every reporter is on 127.0.0.1: count connections, not networks.
        c.planner.ban_reporters = BanReporters::DistinctPeers;
        c.planner.ban_threshold = 2;
    })
    .await;
    let url = hub.url();
    let manifest = hub.manifest(PATH).await;
    let n = manifest.pieces.len() as u64;

    let liar = Peer::start_with(PeerOptions {
        corrupt_uploads: true,
        ..PeerOptions::default()
    })
    .await;
    liar.join(&url, None).await;
    liar.wait_joined(&url, WAIT).await;
    // Its own download is honest (from the hub, verified); it lies uploading.
    let s = liar.fetch(&url, PATH, Duration::from_secs(60)).await;
    assert_eq!(s.failed, 0, "{s:?}");
    wait_provider(&url, &liar.id(), &manifest.pieces, WAIT).await;

    let mut honest = Vec::new();
    for _ in 0..2 {
        let p = Peer::start().await;
        p.join(&url, None).await;
        p.wait_joined(&url, WAIT).await;
        honest.push(p);
    }
    for p in &honest {
        let mut events = p.engine().subscribe();
        let got = p.fetch(&url, PATH, Duration::from_secs(60)).await;
        println!("{} fetched: {got:?}", p.id());
        assert_eq!(got.failed, 0, "{got:?}");
        // From the hub, or from the first honest peer once it holds them.
        assert_eq!(got.from_peers + got.from_hub, n, "{got:?}");
        let mut blamed = false;
        while let Ok(ev) = events.try_recv() {
            if let EngineEvent::BadPiece { peer, .. } = ev {
                assert_eq!(peer, liar.id(), "only the liar is blamed");
                blamed = true;
            }
        }
        assert!(blamed, "{} saw a bad piece from the liar", p.id());
        assert_eq!(
            sha256_hex(&p.reassemble(&manifest).await),
            origin.sha256(PATH)
        );
    }

    let l = &liar;
    let u = url.as_str();
    let took = wait_until(WAIT, "the liar is banned", move || async move {
        matches!(l.phase(u).await, Some(SwarmPhase::Error { code, .. }) if code == "banned")
    })
    .await;
    println!(
        "liar banned {took:.2?} after the second requester finished: {:?}",
        liar.phase(&url).await
    );
    assert_eq!(hub.metric("tuber_bans").await, 1);

    // Its reconnects are refused too: the ban is on its key.
    let key = Arc::new(Identity::load_or_create(liar.dir()).expect("the liar's key"));
    let (client, _inbound) = SwarmClient::builder(url.clone(), Arc::clone(&key))
        .join()
        .expect("join");
    let mut state = client.state();
    let refused = tokio::time::timeout(
        WAIT,
        state.wait_for(|s| matches!(s, SwarmState::Refused { .. } | SwarmState::Joined { .. })),
    )
    .await
    .expect("an answer in time")
    .expect("client")
    .clone();
    assert!(
        matches!(
            refused,
            SwarmState::Refused {
                code: ErrorCode::Banned,
                ..
            }
        ),
        "reconnecting with the liar's key: {refused:?}"
    );

    // No honest peer holds a corrupt piece: every stored piece verifies,
    // and their stores never found (and deleted) a corrupt one.
    for p in &honest {
        assert_eq!(p.verify_store(&url).await, n as usize);
    }
    client.leave().await;

    // The operator's CLI, while the hub runs (through its admin API):
    // the ban is listed, lifted, and the liar's key is welcomed again.
    let addr = hub.addr.to_string();
    let data = hub.data_dir().display().to_string();
    let config = tuber_hub::config::HubConfig {
        listen: hub.addr,
        data_dir: Some(hub.data_dir().to_path_buf()),
        ..tuber_hub::config::HubConfig::default()
    };
    let bans = tuber_hub::cli::bans::list(&config)
        .await
        .expect("bans list");
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(bans[0].peer, liar.id());
    let week = 7 * 24 * 3600;
    assert_eq!(
        bans[0].until,
        bans[0].since + week,
        "bans last a week by default"
    );
    let args = [
        "tuber-hub",
        "bans",
        "lift",
        &liar.id(),
        "--listen",
        &addr,
        "--data",
        &data,
    ];
    let cli = tuber_hub::cli::Cli::from_args(args).expect("arguments");
    tuber_hub::cli::main(cli).await.expect("bans lift");
    assert_eq!(hub.metric("tuber_bans").await, 0);
    assert!(tuber_hub::cli::bans::list(&config)
        .await
        .expect("list")
        .is_empty());
    let (client, _inbound) = SwarmClient::builder(url.clone(), key).join().expect("join");
    let mut state = client.state();
    let back = tokio::time::timeout(
        WAIT,
        state.wait_for(|s| matches!(s, SwarmState::Refused { .. } | SwarmState::Joined { .. })),
    )
    .await
    .expect("an answer in time")
    .expect("client")
    .clone();
    assert!(
        matches!(back, SwarmState::Joined { .. }),
        "after the lift: {back:?}"
    );
    client.leave().await;
}
