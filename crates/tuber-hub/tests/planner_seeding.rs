//! Live edges seeded by trusted peers (issue #12, part 3): a `want` for a
//! piece just assigned to a connected trusted permanent peer, which nobody
//! holds yet, is answered when that peer announces it (naming it), or after
//! `seed_wait` at the latest; never for the trusted peer's own wants, not
//! for content no trusted peer was assigned, and within bounds.

mod planner_support;

use std::time::Duration;

use planner_support::*;
use tuber_hub::planner::{Output, Planner, PlannerConfig};
use tuber_proto::signal::{HubToClient, Role};
use tuber_proto::PeerId;

fn answered(out: &[Output], asker: PeerId) -> bool {
    out.iter()
        .any(|o| matches!(o, Output::Send(to, HubToClient::Providers { .. }) if *to == asker))
}

fn browser(p: &mut Planner, now: std::time::Instant, who: PeerId) {
    assert_eq!(p.handle_join(now, who, Role::Browser, false, None), Ok(()));
}

#[test]
fn a_want_waits_for_the_seeder_and_names_it() {
    let (mut p, t0) = planner(PlannerConfig::default());
    let (donor, viewer) = (peer(1), peer(2));
    join_trusted(&mut p, t0, donor, 1);
    browser(&mut p, t0, viewer);
    drain(&mut p);
    let pieces: Vec<_> = (10..14).map(piece).collect();
    p.handle_content_pieces(t0, "/live/s1.ts".into(), manifest(1), &pieces)
        .expect("content");
    drain(&mut p);

    let t1 = t0 + Duration::from_millis(100);
    p.handle_want(t1, viewer, 7, &pieces);
    assert!(!answered(&drain(&mut p), viewer), "held for the seeder");
    assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(1500)));
    // The donor's own want is never held.
    p.handle_want(t1, donor, 8, &pieces);
    assert!(answered(&drain(&mut p), donor));

    let t2 = t0 + Duration::from_millis(400);
    p.handle_have(t2, donor, &pieces);
    let out = drain(&mut p);
    let providers = providers_for(&out, viewer, 7);
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].peer, donor);
    assert_eq!(providers[0].pieces, [0, 1, 2, 3]);
    // Seeded: a later want is answered at once.
    p.handle_want(t2, viewer, 9, &pieces);
    assert_eq!(providers_for(&drain(&mut p), viewer, 9)[0].peer, donor);
}

#[test]
fn without_the_seeders_have_the_want_is_answered_at_the_deadline() {
    let (mut p, t0) = planner(PlannerConfig::default());
    let (donor, viewer) = (peer(1), peer(2));
    join_trusted(&mut p, t0, donor, 1);
    browser(&mut p, t0, viewer);
    let pieces: Vec<_> = (20..22).map(piece).collect();
    p.handle_content_pieces(t0, "/live/s2.ts".into(), manifest(2), &pieces)
        .expect("content");
    drain(&mut p);
    p.handle_want(t0, viewer, 1, &pieces);
    let due = p.poll_timeout().expect("a deadline");
    assert_eq!(due, t0 + Duration::from_millis(1500));
    p.handle_timeout(due - Duration::from_millis(1));
    assert!(!answered(&drain(&mut p), viewer), "not early");
    p.handle_timeout(due);
    assert!(
        providers_for(&drain(&mut p), viewer, 1).is_empty(),
        "nobody: the hub then"
    );
    // The mark is gone: a new want is answered at once.
    p.handle_want(due, viewer, 2, &pieces);
    assert!(answered(&drain(&mut p), viewer));
}

#[test]
fn no_trusted_peer_no_wait_and_the_waits_are_bounded() {
    let (mut p, t0) = planner(PlannerConfig::default());
    let viewer = peer(2);
    browser(&mut p, t0, viewer);
    let a: Vec<_> = (30..32).map(piece).collect();
    p.handle_content_pieces(t0, "/v/a.ts".into(), manifest(3), &a)
        .expect("content");
    drain(&mut p);
    p.handle_want(t0, viewer, 1, &a);
    assert!(answered(&drain(&mut p), viewer), "no seeder: at once");

    let donor = peer(1);
    join_trusted(&mut p, t0, donor, 1);
    let b: Vec<_> = (40..42).map(piece).collect();
    p.handle_content_pieces(t0, "/v/b.ts".into(), manifest(4), &b)
        .expect("content");
    drain(&mut p);
    for req in 0..4 {
        p.handle_want(t0, viewer, 10 + req, &b);
    }
    assert!(!answered(&drain(&mut p), viewer), "four held");
    p.handle_want(t0, viewer, 20, &b);
    let out = drain(&mut p);
    assert!(
        providers_for(&out, viewer, 20).is_empty(),
        "the fifth at once"
    );
    // A viewer that leaves takes its held wants with it.
    p.handle_leave(t0, viewer);
    p.handle_have(t0, donor, &b);
    assert!(!answered(&drain(&mut p), viewer));
    // Turned off: nothing is held.
    let (mut q, t0) = planner(PlannerConfig {
        seed_wait: Duration::ZERO,
        ..PlannerConfig::default()
    });
    join_trusted(&mut q, t0, donor, 1);
    browser(&mut q, t0, viewer);
    q.handle_content_pieces(t0, "/v/c.ts".into(), manifest(5), &b)
        .expect("content");
    drain(&mut q);
    q.handle_want(t0, viewer, 1, &b);
    assert!(answered(&drain(&mut q), viewer));
}

#[test]
fn without_a_donor_the_first_viewer_seeds_the_others() {
    let (mut p, t0) = planner(PlannerConfig::default());
    let (first, second) = (peer(2), peer(3));
    browser(&mut p, t0, first);
    browser(&mut p, t0, second);
    let pieces: Vec<_> = (50..54).map(piece).collect();
    // The first asks: nobody holds them, it goes to the hub (at once).
    p.handle_want(t0, first, 1, &pieces);
    assert!(providers_for(&drain(&mut p), first, 1).is_empty());
    // The second, a moment later, waits for the first's have.
    let t1 = t0 + Duration::from_millis(50);
    p.handle_want(t1, second, 2, &pieces);
    assert!(!answered(&drain(&mut p), second));
    // The first asking again (a retry) is not held by its own marks.
    p.handle_want(t1, first, 3, &pieces);
    assert!(answered(&drain(&mut p), first));
    p.handle_have(t0 + Duration::from_millis(200), first, &pieces);
    let providers = providers_for(&drain(&mut p), second, 2);
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].peer, first);
}
