//! Bad pieces: a ban needs `ban_threshold` distinct reporter groups (one per
//! network, a trusted peer alone); a ban disconnects, refuses the rejoin,
//! moves the assignments, drops holdings.

mod planner_support;

use std::time::Duration;

use planner_support::*;
use tuber_hub::planner::{
    BanReporters, DisconnectReason, Output, Planner, PlannerConfig, Refused, ReporterGroup,
};
use tuber_proto::signal::{BadPiece, ErrorCode, Role};
use tuber_proto::PeerId;

const SIZE: u32 = 8;

/// A network the server saw clients come from.
fn net(n: u128) -> ReporterGroup {
    ReporterGroup::Shared(n)
}

/// Joins an anonymous browser from `group`.
fn join_browser(p: &mut Planner, now: std::time::Instant, who: PeerId, group: ReporterGroup) {
    let joined = p.handle_join_with_group(now, who, Role::Browser, false, None, group);
    assert_eq!(joined, Ok(()));
}

/// `liar` holds pieces 0..64, and each of `reporters` asks for them: the
/// planner names `liar` to each, for each piece (what makes a blame count).
fn introduce(p: &mut Planner, now: std::time::Instant, liar: PeerId, reporters: &[PeerId]) {
    let pieces: Vec<_> = (0..64).map(piece).collect();
    p.handle_have(now, liar, &pieces);
    for r in reporters {
        p.handle_want(now, *r, 0, &pieces);
        let named = providers_for(&drain(p), *r, 0);
        assert!(
            named.iter().any(|x| x.peer == liar),
            "{r:?} was sent to {liar:?}"
        );
    }
}

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
    let mut told = Told::default();
    told.apply(&drain(&mut p), SIZE);
    introduce(&mut p, now, liar, &reporters);
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
    let week = Duration::from_secs(7 * 24 * 3600);
    p.restore_bans(now, [(a, week), (b, week)]);
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
    for r in [liar, r1, r2, r3] {
        p.handle_join(now, r, Role::Browser, false, None).unwrap();
    }
    introduce(&mut p, now, liar, &[r1, r2, r3]);
    p.handle_leave(now, liar);
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

#[test]
fn many_reporters_of_one_network_count_once() {
    let (mut p, now) = planner(PlannerConfig::default());
    let liar = peer(0);
    join_browser(&mut p, now, liar, net(1));
    // One person, five tabs: five ids, one network.
    for k in 10..15 {
        join_browser(&mut p, now, peer(k), net(2));
    }
    join_browser(&mut p, now, peer(20), net(3));
    join_browser(&mut p, now, peer(21), net(4));
    let reporters: Vec<PeerId> = [10, 11, 12, 13, 14, 20, 21].map(peer).to_vec();
    introduce(&mut p, now, liar, &reporters);
    for k in 10..15 {
        p.handle_report(now, peer(k), &[], &[blame(liar, k)]);
    }
    assert_eq!(p.reporter_group(&peer(10)), Some(net(2)));
    assert_eq!(p.blame_count(&liar), 1);
    assert!(drain(&mut p).is_empty());
    assert!(p.is_connected(&liar));
    // Two more networks make three groups: banned.
    p.handle_report(now, peer(20), &[], &[blame(liar, 1)]);
    assert_eq!(p.blame_count(&liar), 2);
    p.handle_report(now, peer(21), &[], &[blame(liar, 1)]);
    assert_eq!(
        drain(&mut p),
        vec![
            Output::Banned(liar),
            Output::Disconnect(liar, DisconnectReason::Banned)
        ]
    );
}

#[test]
fn one_network_cannot_ban_a_trusted_peer_but_trusted_reporters_count_alone() {
    let (mut p, now) = planner(PlannerConfig::default());
    let volunteer = peer(0);
    join_trusted(&mut p, now, volunteer, 1);
    assert_eq!(
        p.reporter_group(&volunteer),
        Some(ReporterGroup::Peer(volunteer))
    );
    for k in 10..20 {
        join_browser(&mut p, now, peer(k), net(7));
    }
    let tabs: Vec<PeerId> = (10..20).map(peer).collect();
    introduce(&mut p, now, volunteer, &tabs);
    for k in 10..20 {
        p.handle_report(now, peer(k), &[], &[blame(volunteer, k)]);
    }
    assert_eq!(p.blame_count(&volunteer), 1);
    assert!(!p.is_banned(&volunteer));
    // Two trusted peers on that same network: each counts on its own.
    for k in [1, 2] {
        p.handle_join_with_group(
            now,
            peer(k),
            Role::Permanent,
            true,
            Some(cap(1)),
            ReporterGroup::Peer(peer(k)),
        )
        .unwrap();
    }
    introduce(&mut p, now, volunteer, &[peer(1), peer(2)]);
    p.handle_report(now, peer(1), &[], &[blame(volunteer, 1)]);
    assert_eq!(p.blame_count(&volunteer), 2);
    assert!(!p.is_banned(&volunteer));
    p.handle_report(now, peer(2), &[], &[blame(volunteer, 1)]);
    assert!(p.is_banned(&volunteer) && !p.is_connected(&volunteer));
}

#[test]
fn blames_from_the_blamed_peers_own_network_are_ignored() {
    let (mut p, now) = planner(PlannerConfig {
        ban_threshold: 2,
        ..PlannerConfig::default()
    });
    let liar = peer(0);
    for (k, g) in [(0, 1), (1, 1), (2, 2), (3, 3)] {
        join_browser(&mut p, now, peer(k), net(g));
    }
    introduce(&mut p, now, liar, &[peer(1), peer(2), peer(3)]);
    p.handle_report(now, peer(1), &[], &[blame(liar, 1)]);
    assert_eq!(p.blame_count(&liar), 0);
    p.handle_report(now, peer(2), &[], &[blame(liar, 1)]);
    assert_eq!(p.blame_count(&liar), 1);
    // Still ignored after it left: the record remembers its network.
    p.handle_leave(now, liar);
    p.handle_report(now, peer(1), &[], &[blame(liar, 2)]);
    assert_eq!(p.blame_count(&liar), 1);
    assert!(!p.is_banned(&liar));
    p.handle_report(now, peer(3), &[], &[blame(liar, 2)]);
    assert_eq!(drain(&mut p), vec![Output::Banned(liar)]);
}

#[test]
fn distinct_peers_mode_counts_every_connection() {
    let (mut p, now) = planner(PlannerConfig {
        ban_reporters: BanReporters::DistinctPeers,
        ..PlannerConfig::default()
    });
    let volunteer = peer(0);
    join_trusted(&mut p, now, volunteer, 1);
    for k in 10..13 {
        join_browser(&mut p, now, peer(k), net(7));
        assert_eq!(
            p.reporter_group(&peer(k)),
            Some(ReporterGroup::Peer(peer(k)))
        );
    }
    introduce(&mut p, now, volunteer, &[peer(10), peer(11), peer(12)]);
    p.handle_report(now, peer(10), &[], &[blame(volunteer, 1)]);
    p.handle_report(now, peer(11), &[], &[blame(volunteer, 1)]);
    assert_eq!(p.blame_count(&volunteer), 2);
    p.handle_report(now, peer(12), &[], &[blame(volunteer, 1)]);
    assert!(p.is_banned(&volunteer));
}
