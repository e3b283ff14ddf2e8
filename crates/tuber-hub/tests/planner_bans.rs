//! Bad pieces: a ban needs `ban_threshold` distinct reporters; a ban
//! disconnects, refuses the rejoin, moves the assignments, drops holdings.

mod planner_support;

use std::time::Duration;

use planner_support::*;
use tuber_hub::planner::{DisconnectReason, Output, PlannerConfig, Refused};
use tuber_proto::signal::{BadPiece, ErrorCode, Role};
use tuber_proto::PeerId;

const SIZE: u32 = 8;

fn blame(liar: PeerId, n: u64) -> BadPiece {
    BadPiece {
        peer: liar,
        piece: piece(n),
    }
}

#[test]
fn threshold_distinct_reporters_ban_and_everything_follows() {
    let (mut p, now) = planner(PlannerConfig {
        partition_pieces: SIZE,
        ..PlannerConfig::default()
    });
    assert_eq!(p.config().ban_threshold, 3);
    let liar = peer(0);
    for k in 0..4 {
        join_trusted(&mut p, now, peer(k), 1);
    }
    let reporters: Vec<PeerId> = (10..14).map(peer).collect();
    for r in &reporters {
        p.handle_join(now, *r, Role::Browser, false, None).unwrap();
    }
    p.handle_content(now, "/big.bin".into(), manifest(1), 800)
        .unwrap();
    p.handle_have(now, liar, &[piece(1), piece(2)]);
    let mut told = Told::default();
    told.apply(&drain(&mut p), SIZE);
    let liar_parts = assigned(&p, &liar);
    assert!(!liar_parts.is_empty());

    // One reporter, many times, many pieces: counts once.
    for n in 0..10 {
        p.handle_report(now, reporters[0], &[], &[blame(liar, n), blame(liar, n)]);
    }
    // Self-blame is ignored; so are reports from strangers.
    p.handle_report(now, liar, &[], &[blame(liar, 1)]);
    p.handle_report(now, peer(99), &[], &[blame(liar, 1)]);
    // threshold − 1 distinct reporters: no ban.
    p.handle_report(now, reporters[1], &[], &[blame(liar, 3)]);
    assert_eq!(p.blame_count(&liar), 2);
    assert!(drain(&mut p).is_empty());
    assert!(!p.is_banned(&liar) && p.is_connected(&liar));

    // The third distinct reporter: ban.
    p.handle_report(now, reporters[2], &[], &[blame(liar, 4)]);
    let out = drain(&mut p);
    assert_eq!(out[0], Output::Banned(liar));
    assert_eq!(out[1], Output::Disconnect(liar, DisconnectReason::Banned));
    assert_eq!(DisconnectReason::Banned.code(), Some(ErrorCode::Banned));
    assert!(p.is_banned(&liar) && !p.is_connected(&liar));
    assert_eq!(p.bans(), vec![liar]);
    assert_eq!(p.holdings_count(&liar), 0);
    assert!(!p.holds(&liar, &piece(1)));
    assert!(assigned(&p, &liar).is_empty());
    // Its partitions went to the others, with `assign` messages.
    told.apply(&out, SIZE);
    told.held.remove(&liar);
    for k in 1..4 {
        assert_eq!(told.of(&peer(k)), assigned(&p, &peer(k)));
    }
    for (_, i) in &liar_parts {
        let owners = p.owners(&manifest(1), *i);
        assert_eq!(owners.len(), 2);
        assert!(!owners.contains(&liar));
    }

    // Refused on return, whatever it claims to be.
    let again = p.handle_join(now, liar, Role::Browser, false, None);
    assert_eq!(again, Err(Refused::Banned));
    assert_eq!(Refused::Banned.code(), ErrorCode::Banned);
    assert!(drain(&mut p).is_empty());
    // A late blame changes nothing.
    p.handle_report(now, reporters[3], &[], &[blame(liar, 5)]);
    assert!(drain(&mut p).is_empty());
    assert_eq!(p.ban_count(), 1);
}

#[test]
fn bans_persist_through_restore_and_can_be_lifted() {
    let (mut p, now) = planner(PlannerConfig::default());
    let [a, b] = [peer(1), peer(2)];
    p.handle_join(now, b, Role::Browser, false, None).unwrap();
    p.restore_bans(now, [a, b]);
    assert_eq!(p.bans(), vec![a, b]);
    // A restored ban of a connected peer disconnects it.
    assert_eq!(
        drain(&mut p),
        vec![Output::Disconnect(b, DisconnectReason::Banned)]
    );
    assert_eq!(
        p.handle_join(now, a, Role::Permanent, true, None),
        Err(Refused::Banned)
    );
    assert!(p.unban(&a));
    assert!(p.handle_join(now, a, Role::Permanent, true, None).is_ok());
}

#[test]
fn a_banned_peer_that_already_left_is_still_banned_and_blames_expire() {
    let (mut p, now) = planner(PlannerConfig {
        ban_threshold: 2,
        blame_memory: Duration::from_secs(60),
        ping_interval: Duration::from_secs(30),
        ..PlannerConfig::default()
    });
    let liar = peer(0);
    let [r1, r2, r3] = [peer(1), peer(2), peer(3)];
    for r in [r1, r2, r3] {
        p.handle_join(now, r, Role::Browser, false, None).unwrap();
    }
    // One blame, then it expires (the reporters keep answering pings).
    p.handle_report(now, r1, &[], &[blame(liar, 1)]);
    assert_eq!(p.blame_count(&liar), 1);
    for tick in 1..=3 {
        let t = now + Duration::from_secs(30) * tick;
        for r in [r1, r2, r3] {
            p.handle_pong(t, r);
        }
        p.handle_timeout(t);
    }
    assert_eq!(p.blame_count(&liar), 0);
    drain(&mut p);
    // Two fresh blames against a peer that is not connected: banned, no
    // disconnect needed.
    let t = now + Duration::from_secs(100);
    p.handle_report(t, r2, &[], &[blame(liar, 2)]);
    p.handle_report(t, r3, &[], &[blame(liar, 3)]);
    assert_eq!(drain(&mut p), vec![Output::Banned(liar)]);
    assert_eq!(
        p.handle_join(t, liar, Role::Browser, false, None),
        Err(Refused::Banned)
    );
}
