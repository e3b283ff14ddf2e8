//! Weighted rendezvous hashing spreads partitions by capacity weight.
//!
//! R = 1: each peer's share of the partitions is within ±10 % (relative) of
//! weight / Σ weights. R = 2: top-2 HRW is an exponential race without
//! replacement (Plackett–Luce), so a peer's chance of holding a partition is
//! `p_i + Σ_{j≠i} p_j · p_i / (1 − p_j)` with `p = w / Σw`: shares are
//! compressed toward uniform (a peer cannot hold two replicas). The test
//! checks the shares against that expectation, and the primary replicas
//! (best score) against the raw weights.

mod planner_support;

use std::collections::BTreeMap;

use planner_support::*;
use tuber_hub::planner::PlannerConfig;
use tuber_proto::PeerId;

const MANIFESTS: u64 = 8;
/// Partitions per manifest: 8 × 2048 = 16384 in all.
const PARTS: u32 = 2048;
const SIZE: u32 = 64;

struct Run {
    weights: Vec<(PeerId, f64)>,
    /// Replica counts per peer, and primary-replica counts.
    held: BTreeMap<PeerId, usize>,
    primary: BTreeMap<PeerId, usize>,
}

fn run(weights: &[u64], replication: u32) -> Run {
    let (mut p, now) = planner(PlannerConfig {
        replication,
        partition_pieces: SIZE,
        ..PlannerConfig::default()
    });
    let peers: Vec<(PeerId, f64)> = weights
        .iter()
        .enumerate()
        .map(|(k, &w)| (peer(k as u64), w as f64))
        .collect();
    for (k, &w) in weights.iter().enumerate() {
        join_trusted(&mut p, now, peer(k as u64), w);
    }
    let mut told = Told::default();
    for m in 0..MANIFESTS {
        p.handle_content(now, format!("/v/{m}.mp4"), manifest(m), PARTS * SIZE)
            .unwrap();
        told.apply(&drain(&mut p), SIZE);
    }
    let mut primary = BTreeMap::new();
    for m in 0..MANIFESTS {
        for i in 0..PARTS {
            let owners = p.owners(&manifest(m), i);
            assert_eq!(owners.len(), replication as usize);
            *primary.entry(owners[0]).or_insert(0) += 1;
        }
    }
    let mut held = BTreeMap::new();
    for (who, _) in &peers {
        // The messages and the planner agree.
        assert_eq!(told.of(who), assigned(&p, who));
        held.insert(*who, p.assignment_count(who));
    }
    Run {
        weights: peers,
        held,
        primary,
    }
}

/// Max relative deviation of `counts` shares from `expected` shares.
fn max_dev(label: &str, counts: &BTreeMap<PeerId, usize>, expected: &[(PeerId, f64)]) -> f64 {
    let total: usize = counts.values().sum();
    let mut worst: f64 = 0.0;
    for (who, want) in expected {
        let got = *counts.get(who).unwrap_or(&0) as f64 / total as f64;
        let dev = (got - want).abs() / want;
        println!("{label}: {who:?} share {got:.4} expected {want:.4} dev {dev:.4}");
        worst = worst.max(dev);
    }
    println!("{label}: max relative deviation {worst:.4}");
    worst
}

fn weight_shares(w: &[(PeerId, f64)]) -> Vec<(PeerId, f64)> {
    let sum: f64 = w.iter().map(|x| x.1).sum();
    w.iter().map(|&(p, x)| (p, x / sum)).collect()
}

/// Expected share of replicas for top-2 HRW (see the file docs).
fn top2_shares(w: &[(PeerId, f64)]) -> Vec<(PeerId, f64)> {
    let p = weight_shares(w);
    p.iter()
        .map(|&(who, pi)| {
            let second: f64 = p
                .iter()
                .filter(|x| x.0 != who)
                .map(|&(_, pj)| pj * pi / (1.0 - pj))
                .sum();
            (who, (pi + second) / 2.0)
        })
        .collect()
}

#[test]
fn replication_1_follows_weights_within_10_percent() {
    for weights in [&[1, 2, 3][..], &[1, 2, 3, 4], &[1, 2, 3, 4, 5]] {
        let r = run(weights, 1);
        let dev = max_dev(
            &format!("R=1 {weights:?}"),
            &r.held,
            &weight_shares(&r.weights),
        );
        assert!(dev <= 0.10, "R=1 {weights:?}: deviation {dev}");
    }
}

#[test]
fn replication_2_follows_the_hrw_expectation_and_primaries_follow_weights() {
    for weights in [&[1, 2, 3, 4][..], &[1, 2, 3, 4, 5]] {
        let r = run(weights, 2);
        let label = format!("R=2 {weights:?}");
        let dev = max_dev(&label, &r.held, &top2_shares(&r.weights));
        assert!(
            dev <= 0.10,
            "{label}: deviation from top-2 expectation {dev}"
        );
        let dev = max_dev(
            &format!("{label} primary"),
            &r.primary,
            &weight_shares(&r.weights),
        );
        assert!(dev <= 0.10, "{label}: primaries deviate {dev}");
        // For the record: replicas against the raw weights (compressed).
        max_dev(
            &format!("{label} vs raw weights"),
            &r.held,
            &weight_shares(&r.weights),
        );
    }
}

#[test]
fn equal_weights_with_replication_2_are_even() {
    let r = run(&[1, 1, 1, 1, 1], 2);
    let dev = max_dev("R=2 equal", &r.held, &weight_shares(&r.weights));
    assert!(dev <= 0.10, "deviation {dev}");
}
