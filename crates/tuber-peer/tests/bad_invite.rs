//! An invite the hub does not know is a refusal for good: the client says
//! why and stops, instead of retrying in a loop.

mod support;

use std::time::Duration;

use support::{identity, wait_for, TestHub};
use tuber_peer::{Invite, SwarmClient, SwarmState};
use tuber_proto::signal::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_invite_is_refused_without_retrying() {
    let hub = TestHub::start().await;
    let (_keys, id) = identity();
    let (client, mut inbound) = SwarmClient::builder(hub.url(), id)
        .invite(Invite::new("inv_not_a_real_invite"))
        .join()
        .expect("join");
    let mut state = client.state();
    let s = wait_for(&mut state, "Refused", |s| {
        matches!(s, SwarmState::Refused { .. } | SwarmState::Joined { .. })
    })
    .await;
    let SwarmState::Refused { code, message } = s else {
        panic!("expected a refusal, got {s:?}")
    };
    assert_eq!(code, ErrorCode::InviteInvalid);
    assert!(!message.is_empty());

    // The client has stopped: its channel ends and its state stays put.
    let end = tokio::time::timeout(Duration::from_secs(5), inbound.recv()).await;
    assert!(matches!(end, Ok(None)), "the client stopped");
    // The task drops its channel just before it ends: wait, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !client.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client task ends"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(matches!(client.current(), SwarmState::Refused { .. }));
}
