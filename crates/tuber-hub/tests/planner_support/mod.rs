//! Helpers shared by the `planner_*` scenario tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tuber_hub::planner::{Output, Planner, PlannerConfig};
use tuber_proto::signal::{encode, Capacity, HubToClient, Provider, Role};
use tuber_proto::{ManifestId, PeerId, PieceHash};

fn id(tag: &str, n: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag.as_bytes());
    h.update(n.to_be_bytes());
    h.finalize().into()
}

/// A peer id that looks random.
pub fn peer(n: u64) -> PeerId {
    PeerId::from_bytes(id("peer", n))
}

/// A manifest id that looks random.
pub fn manifest(n: u64) -> ManifestId {
    ManifestId::from_bytes(id("manifest", n))
}

/// A piece hash that looks random.
pub fn piece(n: u64) -> PieceHash {
    PieceHash::from_bytes(id("piece", n))
}

/// A capacity of weight `w` (w GiB of disk, w MB/s of upload).
pub fn cap(w: u64) -> Capacity {
    Capacity {
        disk_bytes: w << 30,
        upload_bps: w * 1_000_000,
    }
}

/// A fresh planner and a starting instant.
pub fn planner(config: PlannerConfig) -> (Planner, Instant) {
    (Planner::new(config), Instant::now())
}

/// Joins a trusted permanent peer of weight `w`.
pub fn join_trusted(p: &mut Planner, now: Instant, who: PeerId, w: u64) {
    assert_eq!(
        p.handle_join(now, who, Role::Permanent, true, Some(cap(w))),
        Ok(())
    );
}

/// Drains every output; each `Send` must pass the protocol encoder.
pub fn drain(p: &mut Planner) -> Vec<Output> {
    let mut out = Vec::new();
    while let Some(o) = p.poll_output() {
        if let Output::Send(to, msg) = &o {
            if let Err(e) = encode(msg) {
                panic!("message to {to:?} does not encode: {e}: {msg:?}");
            }
        }
        out.push(o);
    }
    out
}

/// The `providers` answer to `asker` among outputs.
pub fn providers_for(out: &[Output], asker: PeerId, req: u32) -> Vec<Provider> {
    out.iter()
        .find_map(|o| match o {
            Output::Send(to, HubToClient::Providers { req: r, providers })
                if *to == asker && *r == req =>
            {
                Some(providers.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no providers answer in {out:?}"))
}

/// What peers were told to hold, rebuilt from `assign`/`unassign` messages
/// alone: peer → (manifest, partition).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Told {
    pub held: BTreeMap<PeerId, BTreeSet<(ManifestId, u32)>>,
    /// Assign and unassign message counts seen.
    pub assigns: usize,
    pub unassigns: usize,
}

impl Told {
    /// Applies the assignment messages among `out` (partition size `size`).
    /// Assigning a held partition or unassigning one not held fails.
    pub fn apply(&mut self, out: &[Output], size: u32) {
        for o in out {
            let Output::Send(to, msg) = o else { continue };
            let (assign, m, ranges) = match msg {
                HubToClient::Assign {
                    manifest, ranges, ..
                } => (true, *manifest, ranges),
                HubToClient::Unassign {
                    manifest, ranges, ..
                } => (false, *manifest, ranges),
                _ => continue,
            };
            if assign {
                self.assigns += 1;
            } else {
                self.unassigns += 1;
            }
            let set = self.held.entry(*to).or_default();
            for r in ranges {
                for part in r.start / size..r.end.div_ceil(size) {
                    if assign {
                        assert!(set.insert((m, part)), "{to:?} assigned twice {part}");
                    } else {
                        assert!(set.remove(&(m, part)), "{to:?} unassigned {part} not held");
                    }
                }
            }
        }
        self.held.retain(|_, s| !s.is_empty());
    }

    /// Partitions told to `who`.
    pub fn of(&self, who: &PeerId) -> BTreeSet<(ManifestId, u32)> {
        self.held.get(who).cloned().unwrap_or_default()
    }
}

/// The planner's own view of `who`'s assignments.
pub fn assigned(p: &Planner, who: &PeerId) -> BTreeSet<(ManifestId, u32)> {
    p.assignments(who).into_iter().collect()
}

/// `start + n × step`.
pub fn at(start: Instant, n: u32, step: Duration) -> Instant {
    start + step * n
}
