//! The hub stops and starts again on the same port with the same data: the
//! peer notices, backs off, and joins again by itself, still trusted.

mod support;

use support::{identity, joined, wait_for, TestHub};
use tuber_peer::{Invite, SwarmClient, SwarmState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_rejoins_a_restarted_hub_by_itself() {
    let mut hub = TestHub::start().await;
    let token = hub.invite().await;
    let (_keys, id) = identity();
    let (client, _inbound) = SwarmClient::builder(hub.url(), id)
        .invite(Invite::new(&token))
        .join()
        .expect("join");
    let mut state = client.state();
    let s = wait_for(&mut state, "Joined", joined).await;
    assert!(
        matches!(
            s,
            SwarmState::Joined {
                trusted: true,
                session: 1,
                ..
            }
        ),
        "{s:?}"
    );

    hub.stop().await;
    wait_for(&mut state, "the loss noticed", |s| !joined(s)).await;
    // While the hub is down, attempts fail and back off with a reason.
    let s = wait_for(&mut state, "Backoff", |s| {
        matches!(s, SwarmState::Backoff { .. })
    })
    .await;
    let SwarmState::Backoff { last_error, .. } = s else {
        unreachable!()
    };
    assert!(!last_error.is_empty());

    hub.restart().await;
    let s = wait_for(&mut state, "Joined again", |s| {
        matches!(
            s,
            SwarmState::Joined { session: 2, .. } | SwarmState::Refused { .. }
        )
    })
    .await;
    assert!(
        matches!(s, SwarmState::Joined { trusted: true, .. }),
        "{s:?}"
    );
    client.leave().await;
}
