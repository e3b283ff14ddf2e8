//! Random sequences of inputs never panic, every message encodes, and the
//! invariants hold after every step:
//! - partitions are owned only by connected, trusted, permanent, unbanned
//!   peers of positive weight: exactly the top `min(R, members)` by HRW score;
//! - what the `assign`/`unassign` messages told each connected peer is what
//!   the planner thinks it holds;
//! - providers never include the asker, at most 32;
//! - banned peers are not connected, absent peers hold nothing;
//! - a ban needs blames from `ban_threshold` reporter groups other than the
//!   banned peer's own (one group can never ban alone).

mod planner_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use planner_support::*;
use proptest::prelude::*;
use tuber_hub::planner::{
    capacity_weight, hrw_score, Output, Planner, PlannerConfig, ReporterGroup,
};
use tuber_proto::signal::{BadPiece, Capacity, HubToClient, Role, TransferReport};
use tuber_proto::PeerId;

const PEERS: u64 = 12;
const SIZE: u32 = 16;

#[derive(Debug, Clone)]
enum Op {
    /// Peer, permanent, trusted, capacity, network (0: its own group).
    Join(u64, bool, bool, Option<(u64, u64)>, u128),
    Leave(u64),
    Have(u64, Vec<u64>),
    Lost(u64, Vec<u64>),
    Want(u64, u32, Vec<u64>),
    Report(u64, Vec<(u64, u64, u64)>, Vec<(u64, u64)>),
    Content(u64, u64, u32),
    Removed(u64),
    Pong(u64),
    Tick(u64),
    Restore(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..PEERS;
    let pieces = prop::collection::vec(0u64..40, 0..50);
    let cap = prop::option::of((0u64..4 << 30, 0u64..3_000_000));
    prop_oneof![
        4 => (who.clone(), any::<bool>(), any::<bool>(), cap, 0u128..3)
            .prop_map(|(a, b, c, d, e)| Op::Join(a, b, c, d, e)),
        1 => who.clone().prop_map(Op::Leave),
        3 => (who.clone(), pieces.clone()).prop_map(|(a, b)| Op::Have(a, b)),
        1 => (who.clone(), pieces.clone()).prop_map(|(a, b)| Op::Lost(a, b)),
        3 => (who.clone(), any::<u32>(), pieces).prop_map(|(a, b, c)| Op::Want(a, b, c)),
        2 => (
            who.clone(),
            prop::collection::vec((0..PEERS, 0u64..1 << 53, 0u64..1 << 53), 0..4),
            prop::collection::vec((0..PEERS + 3, 0u64..40), 0..3),
        )
            .prop_map(|(a, b, c)| Op::Report(a, b, c)),
        2 => (0u64..4, 0u64..6, 0u32..3000).prop_map(|(a, b, c)| Op::Content(a, b, c)),
        1 => (0u64..6).prop_map(Op::Removed),
        2 => who.clone().prop_map(Op::Pong),
        2 => (0u64..40).prop_map(Op::Tick),
        1 => (0..PEERS + 3).prop_map(Op::Restore),
    ]
}

struct World {
    p: Planner,
    now: std::time::Instant,
    /// Connected peers as the server sees them: role, trusted, capacity.
    peers: BTreeMap<PeerId, (Role, bool, Option<Capacity>)>,
    /// Their reporter groups.
    groups: BTreeMap<PeerId, ReporterGroup>,
    /// Every group that ever blamed each peer (a superset of what the
    /// planner remembers).
    blamers: BTreeMap<PeerId, BTreeSet<ReporterGroup>>,
    banned: BTreeSet<PeerId>,
    told: Told,
}

impl World {
    fn step(&mut self, op: Op) {
        let now = self.now;
        let ps = |v: &[u64]| v.iter().map(|&n| piece(n)).collect::<Vec<_>>();
        match op {
            Op::Join(k, permanent, trusted, cap, net) => {
                let role = if permanent {
                    Role::Permanent
                } else {
                    Role::Browser
                };
                let cap = cap.map(|(d, u)| Capacity {
                    disk_bytes: d,
                    upload_bps: u,
                });
                let group = match net {
                    0 => ReporterGroup::Peer(peer(k)),
                    n => ReporterGroup::Shared(n),
                };
                let joined = match net {
                    0 => self.p.handle_join(now, peer(k), role, trusted, cap),
                    _ => self
                        .p
                        .handle_join_with_group(now, peer(k), role, trusted, cap, group),
                };
                if joined.is_ok() {
                    self.peers.insert(peer(k), (role, trusted, cap));
                    self.groups.insert(peer(k), group);
                } else {
                    assert!(self.p.is_banned(&peer(k)) || self.peers.len() >= 10);
                }
            }
            Op::Leave(k) => {
                self.p.handle_leave(now, peer(k));
                self.gone(peer(k));
            }
            Op::Have(k, v) => self.p.handle_have(now, peer(k), &ps(&v)),
            Op::Lost(k, v) => self.p.handle_lost(now, peer(k), &ps(&v)),
            Op::Want(k, req, v) => self.p.handle_want(now, peer(k), req, &ps(&v)),
            Op::Report(k, t, b) => {
                let t: Vec<TransferReport> = t
                    .into_iter()
                    .map(|(to, up, down)| TransferReport {
                        peer: peer(to),
                        up,
                        down,
                    })
                    .collect();
                let b: Vec<BadPiece> = b
                    .into_iter()
                    .map(|(who, n)| BadPiece {
                        peer: peer(who),
                        piece: piece(n),
                    })
                    .collect();
                if let Some(g) = self.groups.get(&peer(k)) {
                    for x in b.iter().filter(|x| x.peer != peer(k)) {
                        self.blamers.entry(x.peer).or_default().insert(*g);
                    }
                }
                self.p.handle_report(now, peer(k), &t, &b);
            }
            Op::Content(r, m, n) => {
                let res = self
                    .p
                    .handle_content(now, format!("/r/{r}"), manifest(m), n);
                if res.is_err() {
                    assert!(self.p.total_partitions() + n.div_ceil(SIZE) as usize > 500);
                }
            }
            Op::Removed(m) => {
                self.p.handle_content_removed(now, manifest(m));
            }
            Op::Pong(k) => self.p.handle_pong(now, peer(k)),
            Op::Tick(secs) => {
                self.now += Duration::from_secs(secs);
                self.p.handle_timeout(self.now);
            }
            Op::Restore(k) => self
                .p
                .restore_bans(now, [(peer(k), Duration::from_secs(3600))]),
        }
        let out = drain(&mut self.p);
        // In order: a peer may be assigned something, then evicted.
        for o in &out {
            self.told.apply(std::slice::from_ref(o), SIZE);
            match o {
                Output::Disconnect(who, _) => self.gone(*who),
                Output::Banned(who) => {
                    let own = self.groups.get(who);
                    let counted = self
                        .blamers
                        .get(who)
                        .map_or(0, |gs| gs.iter().filter(|g| Some(*g) != own).count());
                    let threshold = self.p.config().ban_threshold as usize;
                    assert!(counted >= threshold, "banned by {counted} groups");
                    self.banned.insert(*who);
                }
                Output::BanExpired(who) => {
                    assert!(!self.p.is_banned(who));
                    self.banned.remove(who);
                }
                Output::Send(to, HubToClient::Providers { providers, .. }) => {
                    assert!(providers.len() <= 32);
                    assert!(providers.iter().all(|x| x.peer != *to), "asker offered");
                }
                Output::Send(to, HubToClient::Assign { .. }) => {
                    assert!(self.member_weight(to).is_some(), "assign to non-member");
                }
                Output::Send(to, _) => assert!(self.peers.contains_key(to)),
            }
        }
        self.check();
    }

    fn gone(&mut self, who: PeerId) {
        self.peers.remove(&who);
        self.groups.remove(&who);
        self.told.held.remove(&who);
    }

    fn member_weight(&self, who: &PeerId) -> Option<f64> {
        let (role, trusted, cap) = self.peers.get(who)?;
        if *role != Role::Permanent || !trusted || self.p.is_banned(who) {
            return None;
        }
        let w = capacity_weight(cap.unwrap_or(self.p.config().default_capacity));
        (w > 0.0).then_some(w)
    }

    fn check(&self) {
        // Restored bans are not announced: ask the planner.
        for who in self.p.bans() {
            assert!(!self.p.is_connected(&who));
        }
        let members: Vec<(PeerId, f64)> = self
            .peers
            .keys()
            .filter(|who| !self.p.is_banned(who))
            .filter_map(|who| self.member_weight(who).map(|w| (*who, w)))
            .collect();
        for m in (0..6).map(manifest) {
            let Some(n) = self.p.partition_count(&m) else {
                continue;
            };
            for i in 0..n {
                let mut best: Vec<(f64, PeerId)> = members
                    .iter()
                    .map(|(who, w)| (hrw_score(who, &m, i, *w), *who))
                    .collect();
                best.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
                best.truncate(2);
                let want: Vec<PeerId> = best.into_iter().map(|x| x.1).collect();
                assert_eq!(self.p.owners(&m, i), want, "partition {i}");
            }
        }
        for k in 0..PEERS + 3 {
            let who = peer(k);
            assert_eq!(self.p.is_connected(&who), self.peers.contains_key(&who));
            if self.peers.contains_key(&who) {
                assert_eq!(self.told.of(&who), assigned(&self.p, &who), "told {k}");
            } else {
                assert_eq!(self.p.holdings_count(&who), 0);
                assert!(self.p.assignments(&who).is_empty());
            }
        }
        if !self.peers.is_empty() {
            assert!(self.p.poll_timeout().is_some());
        }
    }
}

fn config() -> PlannerConfig {
    PlannerConfig {
        partition_pieces: SIZE,
        replication: 2,
        ban_threshold: 2,
        max_peers: 10,
        max_holdings_per_peer: 30,
        max_browser_holdings: 20,
        max_partitions: 500,
        max_blame_records: 4,
        max_bans: 3,
        ..PlannerConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_inputs_keep_the_invariants(ops in prop::collection::vec(op(), 1..80)) {
        let (p, now) = planner(config());
        let mut w = World {
            p,
            now,
            peers: BTreeMap::new(),
            groups: BTreeMap::new(),
            blamers: BTreeMap::new(),
            banned: BTreeSet::new(),
            told: Told::default(),
        };
        for op in ops {
            w.step(op);
        }
    }
}

#[test]
fn hostile_sizes_do_not_panic() {
    let (mut p, now) = planner(PlannerConfig::default());
    let a = peer(1);
    let huge: Vec<_> = (0..5000).map(piece).collect();
    p.handle_have(now, a, &huge);
    p.handle_want(now, a, 1, &huge);
    assert!(drain(&mut p).is_empty(), "unknown peer: nothing");
    p.handle_join(now, a, Role::Browser, false, None).unwrap();
    p.handle_join(now, a, Role::Browser, false, None).unwrap();
    p.handle_have(now, a, &huge);
    p.handle_want(now, a, 1, &huge);
    let t: Vec<TransferReport> = (0..1000)
        .map(|k| TransferReport {
            peer: peer(k),
            up: u64::MAX,
            down: u64::MAX,
        })
        .collect();
    p.handle_report(now, a, &t, &[]);
    drain(&mut p);
    assert!(p
        .handle_content(now, "no-slash".into(), manifest(1), 10)
        .is_err());
    assert!(p
        .handle_content(now, "/a\n".into(), manifest(1), 10)
        .is_err());
    assert!(p
        .handle_content(now, "/a".into(), manifest(1), u32::MAX)
        .is_err());
    assert!(p
        .handle_content(now, "/".repeat(5000), manifest(1), 10)
        .is_err());
    assert!(p
        .handle_content(now, "/empty".into(), manifest(2), 0)
        .is_ok());
    let (mut q, now) = planner(PlannerConfig {
        partition_pieces: u32::MAX,
        replication: u32::MAX,
        ping_interval: Duration::MAX,
        ban_threshold: 0,
        ..PlannerConfig::default()
    });
    join_trusted(&mut q, now, peer(1), 1);
    q.handle_content(now, "/x".into(), manifest(3), 131_072)
        .unwrap();
    q.handle_timeout(now + Duration::from_secs(1 << 30));
    assert_eq!(q.poll_timeout(), None);
    drain(&mut q);
}
