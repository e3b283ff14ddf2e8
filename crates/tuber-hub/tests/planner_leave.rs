//! A trusted peer leaves: only its partitions move, every partition keeps
//! `replication` holders, the messages say exactly that; a rejoin moves
//! them back.

mod planner_support;

use std::collections::BTreeSet;

use planner_support::*;
use tuber_hub::planner::{Output, Planner, PlannerConfig};
use tuber_proto::signal::HubToClient;
use tuber_proto::{ManifestId, PeerId};

const SIZE: u32 = 16;

fn setup(peers: u64) -> (Planner, std::time::Instant, Told) {
    let (mut p, now) = planner(PlannerConfig {
        partition_pieces: SIZE,
        ..PlannerConfig::default()
    });
    for k in 0..peers {
        join_trusted(&mut p, now, peer(k), 1 + k % 3);
    }
    // A browser and an untrusted permanent peer never get partitions.
    p.handle_join(
        now,
        peer(100),
        tuber_proto::signal::Role::Browser,
        false,
        None,
    )
    .unwrap();
    p.handle_join(
        now,
        peer(101),
        tuber_proto::signal::Role::Permanent,
        false,
        None,
    )
    .unwrap();
    let mut told = Told::default();
    told.apply(&drain(&mut p), SIZE);
    for m in 0..3 {
        // 300 pieces → 19 partitions, the last one short.
        p.handle_content(now, format!("/f/{m}"), manifest(m), 300 + m as u32 * 1000)
            .unwrap();
        told.apply(&drain(&mut p), SIZE);
    }
    (p, now, told)
}

fn all_partitions(p: &Planner) -> Vec<(ManifestId, u32)> {
    (0..3)
        .flat_map(|m| {
            let n = p.partition_count(&manifest(m)).unwrap();
            (0..n).map(move |i| (manifest(m), i))
        })
        .collect()
}

fn snapshot(p: &Planner, n: u64) -> Vec<BTreeSet<(ManifestId, u32)>> {
    (0..n).map(|k| assigned(p, &peer(k))).collect()
}

#[test]
fn leave_moves_only_the_leavers_partitions_and_rejoin_moves_them_back() {
    let (mut p, now, mut told) = setup(5);
    let total = all_partitions(&p).len();
    assert_eq!(p.total_partitions(), total);
    let before = snapshot(&p, 5);
    let held: usize = before.iter().map(BTreeSet::len).sum();
    assert_eq!(held, 2 * total);
    assert!(assigned(&p, &peer(100)).is_empty() && assigned(&p, &peer(101)).is_empty());
    for k in 0..5 {
        assert_eq!(told.of(&peer(k)), before[k as usize]);
    }

    let leaver = peer(2);
    p.handle_leave(now, leaver);
    let out = drain(&mut p);
    // Nobody else loses anything: no unassign at all, and nothing to the leaver.
    assert!(out
        .iter()
        .all(|o| matches!(o, Output::Send(to, HubToClient::Assign { .. }) if *to != leaver)));
    told.apply(&out, SIZE);
    told.held.remove(&leaver);
    let after = snapshot(&p, 5);
    assert!(after[2].is_empty());
    let mut moved = BTreeSet::new();
    for k in [0, 1, 3, 4] {
        assert!(before[k].is_subset(&after[k]), "peer {k} lost partitions");
        moved.extend(after[k].difference(&before[k]).copied());
        assert_eq!(told.of(&peer(k as u64)), after[k]);
    }
    assert_eq!(moved, before[2], "exactly the leaver's partitions moved");
    for (m, i) in all_partitions(&p) {
        let owners = p.owners(&m, i);
        assert_eq!(owners.len(), 2);
        assert!(!owners.contains(&leaver));
    }

    join_trusted(&mut p, now, leaver, 3); // as in setup: 1 + 2 % 3
    let out = drain(&mut p);
    told.apply(&out, SIZE);
    assert_eq!(snapshot(&p, 5), before, "rejoin restores the assignment");
    for k in 0..5 {
        assert_eq!(told.of(&peer(k)), before[k as usize]);
    }
}

#[test]
fn too_few_peers_leave_partitions_under_replicated_until_a_rejoin() {
    let (mut p, now, _) = setup(2);
    for (m, i) in all_partitions(&p) {
        assert_eq!(p.owners(&m, i).len(), 2);
    }
    p.handle_leave(now, peer(0));
    let out = drain(&mut p);
    assert!(
        out.is_empty(),
        "the other peer holds everything already: {out:?}"
    );
    for (m, i) in all_partitions(&p) {
        assert_eq!(p.owners(&m, i), vec![peer(1)]);
    }
    p.handle_leave(now, peer(1));
    assert!(drain(&mut p).is_empty());
    assert!(all_partitions(&p)
        .iter()
        .all(|(m, i)| p.owners(m, *i).is_empty()));
    join_trusted(&mut p, now, peer(0), 1);
    let out = drain(&mut p);
    let mut told = Told::default();
    told.apply(&out, SIZE);
    assert_eq!(told.of(&peer(0)).len(), all_partitions(&p).len());
}

#[test]
fn join_takes_only_what_the_newcomer_wins() {
    let (mut p, now, mut told) = setup(4);
    let before = snapshot(&p, 4);
    let newcomer: PeerId = peer(4);
    join_trusted(&mut p, now, newcomer, 2);
    let out = drain(&mut p);
    told.apply(&out, SIZE);
    let after = snapshot(&p, 5);
    let mut lost = BTreeSet::new();
    for k in 0..4 {
        assert!(after[k].is_subset(&before[k]), "peer {k} gained on a join");
        lost.extend(before[k].difference(&after[k]).copied());
        assert_eq!(told.of(&peer(k as u64)), after[k]);
    }
    assert_eq!(lost, after[4], "the newcomer took exactly what others lost");
    assert_eq!(told.of(&newcomer), after[4]);
    assert!(!after[4].is_empty());
}

#[test]
fn replacing_a_resource_manifest_unassigns_the_old_one() {
    let (mut p, now, mut told) = setup(3);
    p.handle_content(now, "/f/0".into(), manifest(50), 40)
        .unwrap();
    let out = drain(&mut p);
    told.apply(&out, SIZE);
    assert_eq!(p.partition_count(&manifest(0)), None);
    for k in 0..3 {
        assert_eq!(told.of(&peer(k)), assigned(&p, &peer(k)));
        assert!(told.of(&peer(k)).iter().all(|(m, _)| *m != manifest(0)));
    }
    assert!(p.handle_content_removed(now, manifest(50)));
    told.apply(&drain(&mut p), SIZE);
    assert!(all_partitions_of(&told, manifest(50)).is_empty());
}

fn all_partitions_of(told: &Told, m: ManifestId) -> Vec<u32> {
    told.held
        .values()
        .flat_map(|s| s.iter().filter(|x| x.0 == m).map(|x| x.1))
        .collect()
}
