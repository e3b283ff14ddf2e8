//! A peer silent for more than three ping intervals is evicted (after three
//! missed pings); a peer that answers is not. Time is driven by hand.

mod planner_support;

use std::time::Duration;

use planner_support::*;
use tuber_hub::planner::{DisconnectReason, Output, PlannerConfig};
use tuber_proto::signal::{HubToClient, Role};

const I: Duration = Duration::from_secs(15);

#[test]
fn silent_peer_is_evicted_after_three_missed_pings_active_one_is_not() {
    let (mut p, t0) = planner(PlannerConfig {
        ping_interval: I,
        partition_pieces: 4,
        ..PlannerConfig::default()
    });
    assert_eq!(p.poll_timeout(), None);
    let [alive, silent, other] = [peer(1), peer(2), peer(3)];
    p.handle_join(t0, alive, Role::Browser, false, None)
        .unwrap();
    join_trusted(&mut p, t0, silent, 1);
    join_trusted(&mut p, t0, other, 1);
    p.handle_content(t0, "/x".into(), manifest(1), 64).unwrap();
    p.handle_have(t0, silent, &[piece(1)]);
    drain(&mut p);
    assert_eq!(p.poll_timeout(), Some(t0 + I));

    // Early calls do nothing.
    p.handle_timeout(t0 + I / 2);
    assert!(drain(&mut p).is_empty());

    let mut pings_to_silent = 0;
    for tick in 1..=3 {
        let now = at(t0, tick, I);
        assert_eq!(p.poll_timeout(), Some(now));
        p.handle_timeout(now);
        let out = drain(&mut p);
        // Everyone connected is pinged, nobody is evicted yet.
        assert!(out
            .iter()
            .all(|o| matches!(o, Output::Send(_, HubToClient::Ping { .. }))));
        assert_eq!(out.len(), 3, "{out:?}");
        pings_to_silent += out
            .iter()
            .filter(|o| matches!(o, Output::Send(to, _) if *to == silent))
            .count();
        p.handle_pong(now + Duration::from_millis(50), alive);
        // `other` is heard from through other traffic.
        p.handle_activity(now + Duration::from_millis(80), other);
    }
    assert_eq!(pings_to_silent, 3);
    assert!(p.is_connected(&silent));

    let now = at(t0, 4, I);
    p.handle_timeout(now);
    let out = drain(&mut p);
    assert_eq!(
        out[0],
        Output::Disconnect(silent, DisconnectReason::MissedPings)
    );
    assert_eq!(DisconnectReason::MissedPings.to_string(), "missed pings");
    // Its partitions moved to `other` only, which held all of them already
    // (2 members, R = 2): so only pings follow.
    assert!(out[1..]
        .iter()
        .all(|o| matches!(o, Output::Send(to, HubToClient::Ping { .. }) if *to != silent)));
    assert!(!p.is_connected(&silent));
    assert!(p.is_connected(&alive) && p.is_connected(&other));
    assert_eq!(p.holdings_count(&silent), 0);
    assert!(p.assignments(&silent).is_empty());
    assert_eq!(p.owners(&manifest(1), 0), vec![other]);
    // Nonces differ between pings.
    let nonces: Vec<u32> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send(_, HubToClient::Ping { nonce }) => Some(*nonce),
            _ => None,
        })
        .collect();
    assert_eq!(nonces.len(), 2);
    assert_ne!(nonces[0], nonces[1]);
    // A late leave for the evicted peer is harmless.
    p.handle_leave(now, silent);
    assert!(drain(&mut p).is_empty());

    // Everyone gone: no timer.
    p.handle_leave(now, alive);
    p.handle_leave(now, other);
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn any_message_counts_as_life() {
    let (mut p, t0) = planner(PlannerConfig {
        ping_interval: I,
        ..PlannerConfig::default()
    });
    let a = peer(1);
    p.handle_join(t0, a, Role::Browser, false, None).unwrap();
    for tick in 1..=10 {
        let now = at(t0, tick, I);
        p.handle_timeout(now);
        // No pong, but a `want` now and then (every other tick).
        if tick % 2 == 0 {
            p.handle_want(now, a, tick, &[piece(1)]);
        }
        drain(&mut p);
    }
    assert!(p.is_connected(&a));
}
