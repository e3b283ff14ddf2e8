//! Issue #14, "ban anyone, forever": a blame counts only for a piece the
//! planner sent that reporter to that provider for; blames age out and are
//! capped per reporter group, so junk cannot flush a liar's; bans expire
//! (`BanExpired`) and can be lifted.

mod planner_support;

use std::time::{Duration, Instant};

use planner_support::*;
use tuber_hub::planner::{Output, Planner, PlannerConfig, Refused, ReporterGroup};
use tuber_proto::signal::{BadPiece, Role};
use tuber_proto::PeerId;

fn join_browser(p: &mut Planner, now: Instant, who: PeerId, net: u128) {
    let g = ReporterGroup::Shared(net);
    assert_eq!(
        p.handle_join_with_group(now, who, Role::Browser, false, None, g),
        Ok(())
    );
}

fn blame(who: PeerId, n: u64) -> BadPiece {
    BadPiece {
        peer: who,
        piece: piece(n),
    }
}

/// `asker` wants pieces `ns`; the planner's answer is drained.
fn want(p: &mut Planner, now: Instant, asker: PeerId, ns: &[u64]) {
    let ps: Vec<_> = ns.iter().map(|&n| piece(n)).collect();
    p.handle_want(now, asker, 7, &ps);
    providers_for(&drain(p), asker, 7);
}

#[test]
fn reporters_never_sent_to_a_peer_cannot_blame_it_from_any_number_of_networks() {
    let (mut p, now) = planner(PlannerConfig::default());
    let honest = peer(0);
    join_trusted(&mut p, now, honest, 1);
    p.handle_have(now, honest, &[piece(1), piece(2)]);
    // Ten networks, none of them ever asked for anything.
    for k in 1..=10 {
        join_browser(&mut p, now, peer(k), u128::from(k as u8));
        p.handle_report(now, peer(k), &[], &[blame(honest, 1), blame(honest, 2)]);
    }
    assert_eq!(p.blame_count(&honest), 0);
    assert_eq!(p.blamed_count(), 0, "not even recorded");
    // Asking for piece 1 lets a reporter blame the provider for piece 1
    // only, not for another piece, and not another provider.
    want(&mut p, now, peer(1), &[1]);
    assert_eq!(p.introduction_count(&peer(1)), 1);
    p.handle_report(now, peer(1), &[], &[blame(honest, 2), blame(peer(5), 1)]);
    assert_eq!(p.blame_count(&honest), 0);
    assert_eq!(p.blame_count(&peer(5)), 0);
    p.handle_report(now, peer(1), &[], &[blame(honest, 1)]);
    assert_eq!(p.blame_count(&honest), 1);
    assert!(!p.is_banned(&honest) && p.is_connected(&honest));
    assert!(drain(&mut p).is_empty());
}

#[test]
fn introductions_expire_and_leave_with_the_peer() {
    let (mut p, now) = planner(PlannerConfig {
        introduction_memory: Duration::from_secs(60),
        ..PlannerConfig::default()
    });
    let x = peer(0);
    join_browser(&mut p, now, x, 1);
    p.handle_have(now, x, &[piece(1)]);
    join_browser(&mut p, now, peer(1), 2);
    want(&mut p, now, peer(1), &[1]);
    let late = now + Duration::from_secs(61);
    p.handle_pong(late, peer(1));
    p.handle_report(late, peer(1), &[], &[blame(x, 1)]);
    assert_eq!(p.blame_count(&x), 0, "introduced too long ago");
    want(&mut p, late, peer(1), &[1]);
    p.handle_leave(late, peer(1));
    join_browser(&mut p, late, peer(1), 2);
    assert_eq!(
        p.introduction_count(&peer(1)),
        0,
        "a new connection starts clean"
    );
    // Bounded per peer, whatever it asks for.
    let all: Vec<u64> = (0..512).collect();
    let many: Vec<_> = all.iter().map(|&n| piece(n)).collect();
    for k in 10..42 {
        join_browser(&mut p, late, peer(k), 100 + u128::from(k as u8));
        p.handle_have(late, peer(k), &many);
    }
    want(&mut p, late, peer(1), &all);
    assert!(p.introduction_count(&peer(1)) <= p.config().max_introductions_per_peer);
}

#[test]
fn junk_blames_cannot_flush_the_blames_against_a_real_liar() {
    let (mut p, now) = planner(PlannerConfig {
        ban_threshold: 3,
        max_blames_per_group: 4,
        max_blame_records: 50,
        ..PlannerConfig::default()
    });
    let liar = peer(0);
    join_browser(&mut p, now, liar, 1);
    p.handle_have(now, liar, &[piece(1)]);
    // Honest victims on two networks were sent to the liar and blame it.
    for (k, net) in [(1, 2), (2, 3)] {
        join_browser(&mut p, now, peer(k), net);
        want(&mut p, now, peer(k), &[1]);
        p.handle_report(now, peer(k), &[], &[blame(liar, 1)]);
    }
    assert_eq!(p.blame_count(&liar), 2);
    // A hostile network introduced to a hundred real providers blames
    // them all: only its allowance counts, and nothing is evicted.
    let junk = peer(500);
    join_browser(&mut p, now, junk, 9);
    for k in 100..200 {
        join_browser(&mut p, now, peer(k), 1000 + u128::from(k as u16));
        p.handle_have(now, peer(k), &[piece(k)]);
    }
    let ns: Vec<u64> = (100..200).collect();
    want(&mut p, now, junk, &ns);
    let bad: Vec<BadPiece> = (100..164).map(|k| blame(peer(k), k)).collect();
    p.handle_report(now, junk, &[], &bad);
    assert_eq!(p.blames_by_group(&ReporterGroup::Shared(9)), 4);
    assert_eq!(p.blame_count(&liar), 2, "the liar's blames stay");
    // A third honest network bans it.
    join_browser(&mut p, now, peer(3), 4);
    want(&mut p, now, peer(3), &[1]);
    p.handle_report(now, peer(3), &[], &[blame(liar, 1)]);
    assert!(p.is_banned(&liar));
}

#[test]
fn blames_age_out_each_from_when_it_was_made() {
    let (mut p, now) = planner(PlannerConfig {
        ban_threshold: 2,
        blame_memory: Duration::from_secs(100),
        introduction_memory: Duration::from_secs(1000),
        ping_interval: Duration::from_secs(10),
        ..PlannerConfig::default()
    });
    let liar = peer(0);
    join_browser(&mut p, now, liar, 1);
    p.handle_have(now, liar, &[piece(1)]);
    for (k, net) in [(1, 2), (2, 3)] {
        join_browser(&mut p, now, peer(k), net);
        want(&mut p, now, peer(k), &[1]);
    }
    p.handle_report(now, peer(1), &[], &[blame(liar, 1)]);
    // Keep everyone alive while time passes; the first blame ages out.
    let mut t = now;
    for _ in 0..11 {
        t += Duration::from_secs(10);
        for k in 0..3 {
            p.handle_pong(t, peer(k));
        }
        p.handle_timeout(t);
    }
    drain(&mut p);
    assert_eq!(p.blame_count(&liar), 0);
    p.handle_report(t, peer(2), &[], &[blame(liar, 1)]);
    assert_eq!(p.blame_count(&liar), 1, "one fresh blame is not two");
    assert!(!p.is_banned(&liar));
}

#[test]
fn bans_expire_after_ban_duration_and_can_be_lifted() {
    let day = Duration::from_secs(24 * 3600);
    let (mut p, now) = planner(PlannerConfig {
        ban_threshold: 1,
        ban_duration: day,
        ..PlannerConfig::default()
    });
    let liar = peer(0);
    join_browser(&mut p, now, liar, 1);
    p.handle_have(now, liar, &[piece(1)]);
    join_browser(&mut p, now, peer(1), 2);
    want(&mut p, now, peer(1), &[1]);
    p.handle_report(now, peer(1), &[], &[blame(liar, 1)]);
    assert!(p.is_banned(&liar));
    assert_eq!(p.ban_expiry(&liar), Some(now + day));
    drain(&mut p);
    p.handle_leave(now, peer(1));
    // Nobody connected: the planner still wakes for the expiry.
    assert_eq!(p.poll_timeout(), Some(now + day));
    let almost = now + day - Duration::from_secs(1);
    assert_eq!(
        p.handle_join(almost, liar, Role::Browser, false, None),
        Err(Refused::Banned)
    );
    p.handle_timeout(now + day);
    assert_eq!(drain(&mut p), vec![Output::BanExpired(liar)]);
    assert!(!p.is_banned(&liar));
    assert_eq!(p.ban_count(), 0);
    assert!(p
        .handle_join(now + day, liar, Role::Browser, false, None)
        .is_ok());

    // Lifted by the operator before it ends: no output (the operator's
    // path forgets the persisted ban itself).
    let other = peer(7);
    p.restore_bans(now + day, [(other, day)]);
    assert!(p.unban(&other));
    assert!(!p.unban(&other));
    assert!(drain(&mut p).is_empty());
    assert!(p
        .handle_join(now + day, other, Role::Browser, false, None)
        .is_ok());
}
