//! `want` → `providers`: trusted permanent first, then upload, then
//! longevity; never the asker; capped; indices right; the only holder of a
//! piece is not starved; always one frame.

mod planner_support;

use std::time::Duration;

use planner_support::*;
use tuber_hub::planner::PlannerConfig;
use tuber_proto::limits::{MAX_HASHES_PER_MESSAGE, MAX_PROVIDERS};
use tuber_proto::signal::{Role, TransferReport};
use tuber_proto::{PeerId, PieceHash};

const S: Duration = Duration::from_secs(1);

fn credit(
    p: &mut tuber_hub::planner::Planner,
    now: std::time::Instant,
    reporter: PeerId,
    to: PeerId,
    bytes: u64,
) {
    let t = TransferReport {
        peer: to,
        up: 0,
        down: bytes,
    };
    p.handle_report(now, reporter, &[t], &[]);
}

#[test]
fn order_is_trusted_then_upload_then_longevity() {
    let (mut p, t0) = planner(PlannerConfig::default());
    let [asker, t_old, t_new, u, b1, b2, b3, reporter] = [1, 2, 3, 4, 5, 6, 7, 8].map(peer);
    p.handle_join(t0, b3, Role::Browser, false, None).unwrap();
    join_trusted(&mut p, t0, t_old, 1);
    p.handle_join(t0 + S, b1, Role::Browser, false, None)
        .unwrap();
    p.handle_join(t0 + 2 * S, b2, Role::Browser, false, None)
        .unwrap();
    p.handle_join(t0 + 3 * S, u, Role::Permanent, false, None)
        .unwrap();
    join_trusted(&mut p, t0 + 4 * S, t_new, 1);
    p.handle_join(t0 + 5 * S, asker, Role::Browser, false, None)
        .unwrap();
    p.handle_join(t0 + 5 * S, reporter, Role::Browser, false, None)
        .unwrap();
    let now = t0 + 6 * S;
    credit(&mut p, now, reporter, t_new, 1 << 20);
    credit(&mut p, now, reporter, u, 10 << 20);
    credit(&mut p, now, reporter, b1, 1100); // bucket 10
    credit(&mut p, now, reporter, b2, 1500); // bucket 10 too: longevity decides
                                             // Self-reports and self-credit are ignored.
    let brag = TransferReport {
        peer: b1,
        up: 1 << 40,
        down: 0,
    };
    p.handle_report(now, b3, &[brag], &[]);
    credit(&mut p, now, b3, b3, 1 << 40);
    assert_eq!(p.upload_credit(now, &b3), Some(0.0));

    let q: Vec<PieceHash> = (0..4).map(piece).collect();
    p.handle_have(now, t_new, &[q[0], q[1]]);
    p.handle_have(now, t_old, &[q[2]]);
    p.handle_have(now, u, &q);
    p.handle_have(now, b1, &[q[1]]);
    p.handle_have(now, b2, &[q[3]]);
    p.handle_have(now, b3, &[q[0]]);
    p.handle_have(now, asker, &q);
    drain(&mut p);

    p.handle_want(now, asker, 7, &q);
    let got = providers_for(&drain(&mut p), asker, 7);
    let order: Vec<PeerId> = got.iter().map(|x| x.peer).collect();
    assert_eq!(order, vec![t_new, t_old, u, b1, b2, b3]);
    let pieces: Vec<Vec<u32>> = got.iter().map(|x| x.pieces.clone()).collect();
    assert_eq!(
        pieces,
        vec![
            vec![0, 1],
            vec![2],
            vec![0, 1, 2, 3],
            vec![1],
            vec![3],
            vec![0]
        ]
    );
    assert!(got[0].trusted && got[0].role == Role::Permanent);
    assert!(!got[2].trusted && got[2].role == Role::Permanent);
    assert_eq!(got[3].role, Role::Browser);

    // A repeated hash is answered at both indices; a piece nobody has, nowhere.
    p.handle_want(now, b1, 8, &[q[2], piece(99), q[2]]);
    let got = providers_for(&drain(&mut p), b1, 8);
    let order: Vec<(PeerId, Vec<u32>)> = got.into_iter().map(|x| (x.peer, x.pieces)).collect();
    assert_eq!(
        order,
        vec![(t_old, vec![0, 2]), (u, vec![0, 2]), (asker, vec![0, 2])]
    );

    // Decay: after many half-lives the uploads are gone, longevity rules.
    let later = now + Duration::from_secs(600 * 60);
    p.handle_want(later, asker, 9, &q);
    let got = providers_for(&drain(&mut p), asker, 9);
    let order: Vec<PeerId> = got.iter().map(|x| x.peer).collect();
    assert_eq!(order, vec![t_old, t_new, b3, b1, b2, u]);
}

#[test]
fn capped_never_the_asker_and_the_only_holder_is_not_starved() {
    let (mut p, t0) = planner(PlannerConfig::default());
    let asker = peer(0);
    let reporter = peer(1);
    let rare = peer(2);
    p.handle_join(t0, asker, Role::Browser, false, None)
        .unwrap();
    p.handle_join(t0, reporter, Role::Browser, false, None)
        .unwrap();
    let common = piece(1);
    let only = piece(2);
    for k in 10..60 {
        p.handle_join(t0, peer(k), Role::Browser, false, None)
            .unwrap();
        p.handle_have(t0, peer(k), &[common]);
        credit(&mut p, t0, reporter, peer(k), 1 << (k - 8));
    }
    // The newest peer, no upload, holds the only copy of `only`.
    p.handle_join(t0 + S, rare, Role::Browser, false, None)
        .unwrap();
    p.handle_have(t0 + S, rare, &[only]);
    p.handle_have(t0, asker, &[common, only]);
    drain(&mut p);

    p.handle_want(t0 + S, asker, 1, &[common, only]);
    let got = providers_for(&drain(&mut p), asker, 1);
    assert_eq!(got.len(), MAX_PROVIDERS);
    assert!(got.iter().all(|x| x.peer != asker));
    let last = got.last().unwrap();
    assert_eq!((last.peer, last.pieces.clone()), (rare, vec![1]));
    // The rest are the best uploaders of `common`, best first.
    let expect: Vec<PeerId> = (29..60).rev().map(peer).collect();
    let firsts: Vec<PeerId> = got[..MAX_PROVIDERS - 1].iter().map(|x| x.peer).collect();
    assert_eq!(firsts, expect);
}

#[test]
fn large_answers_fit_one_frame() {
    let (mut p, t0) = planner(PlannerConfig::default());
    let asker = peer(0);
    p.handle_join(t0, asker, Role::Browser, false, None)
        .unwrap();
    let wanted: Vec<PieceHash> = (0..MAX_HASHES_PER_MESSAGE as u64 + 100)
        .map(piece)
        .collect();
    for k in 1..=40 {
        let role = if k % 2 == 0 {
            Role::Permanent
        } else {
            Role::Browser
        };
        p.handle_join(t0, peer(k), role, k % 4 == 0, None).unwrap();
        p.handle_have(t0, peer(k), &wanted);
    }
    drain(&mut p);
    p.handle_want(t0, asker, u32::MAX, &wanted);
    // drain() checks that the answer encodes (≤ 64 KiB).
    let got = providers_for(&drain(&mut p), asker, u32::MAX);
    println!("providers that fit: {}", got.len());
    assert!(
        got.len() >= 28 && got.len() < MAX_PROVIDERS,
        "{}",
        got.len()
    );
    assert!(got.iter().all(|x| x.pieces.len() == MAX_HASHES_PER_MESSAGE));
    // Trusted permanent peers (k % 4 == 0) come first.
    assert!(got[..10]
        .iter()
        .all(|x| x.trusted && x.role == Role::Permanent));
    assert!(got[10..]
        .iter()
        .all(|x| !(x.trusted && x.role == Role::Permanent)));
}

#[test]
fn unknown_asker_gets_nothing_and_unheld_pieces_get_an_empty_answer() {
    let (mut p, t0) = planner(PlannerConfig::default());
    p.handle_want(t0, peer(5), 1, &[piece(1)]);
    assert!(drain(&mut p).is_empty());
    p.handle_join(t0, peer(5), Role::Browser, false, None)
        .unwrap();
    p.handle_want(t0, peer(5), 2, &[piece(1)]);
    assert!(providers_for(&drain(&mut p), peer(5), 2).is_empty());
}
