//! A permanent peer without an invite joins a real hub by its URL: it fetches
//! the descriptor, proves its key, is welcomed untrusted, and its session
//! carries messages both ways (the hub's pings are answered for it).

mod support;

use std::time::Duration;

use support::{identity, joined, wait_for, TestHub};
use tuber_peer::{SwarmClient, SwarmState};
use tuber_proto::signal::{ClientToHub, HubToClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_without_an_invite_is_untrusted() {
    let hub = TestHub::start().await;
    let (_keys, id) = identity();
    let (client, mut inbound) = SwarmClient::builder(hub.url(), id.clone())
        .join()
        .expect("join");
    let mut state = client.state();

    let s = wait_for(&mut state, "Joined", joined).await;
    let SwarmState::Joined {
        peer_id,
        trusted,
        session,
        descriptor,
    } = s
    else {
        unreachable!()
    };
    assert_eq!(peer_id, id.peer_id());
    assert!(!trusted);
    assert_eq!(session, 1);
    assert_eq!(descriptor.signaling, format!("ws://{}/.tuber/ws", hub.addr));

    // A request reaches the hub and its answer comes back to the engine.
    client
        .send(&ClientToHub::Want {
            req: 7,
            pieces: vec![tuber_proto::PieceHash::of(b"nobody has this")],
        })
        .await
        .expect("send");
    let answer = tokio::time::timeout(Duration::from_secs(10), inbound.recv())
        .await
        .expect("an answer in time")
        .expect("client running");
    assert!(
        matches!(answer, HubToClient::Providers { req: 7, ref providers } if providers.is_empty()),
        "{answer:?}"
    );

    client.leave().await;
    assert!(inbound.recv().await.is_none(), "the client stopped");
}
