//! Blame records: which reporter groups blamed which peer for bad pieces.
//!
//! Each group's blame of a peer counts for `blame_memory` from when it was
//! made, then ages out; nothing is evicted by volume. Volume is bounded by
//! refusing instead: a group holds at most `max_blames_per_group` live
//! blames (against distinct peers), and at most `max_blame_records` peers
//! are blamed at once. So a reporter flooding junk only uses up its own
//! group's allowance, and can never push out the blames other groups made
//! against a real liar. (Junk is rare anyway: a blame reaches this file
//! only for a provider the planner introduced the reporter to.)

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use tuber_proto::PeerId;

use super::ReporterGroup;

/// The bounds a blame must fit in.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlameLimits {
    /// Groups (other than the blamed peer's own) that ban.
    pub threshold: usize,
    pub max_records: usize,
    pub max_per_group: usize,
}

#[derive(Debug)]
struct Blame {
    /// Distinct groups that blamed, with when; in the order they blamed.
    groups: Vec<(ReporterGroup, Instant)>,
    /// The blamed peer's own group, last seen while it was connected.
    accused: Option<ReporterGroup>,
}

impl Blame {
    /// Groups that count: all but the blamed peer's own.
    fn count(&self) -> usize {
        let own = |g: &&(ReporterGroup, Instant)| Some(g.0) == self.accused;
        self.groups.iter().filter(|g| !own(g)).count()
    }

    /// When its oldest live blame was made (its key in the age index).
    fn oldest(&self) -> Option<Instant> {
        self.groups.iter().map(|(_, at)| *at).min()
    }
}

/// Blame records, with an age index (by each record's oldest blame) and
/// the live blames per group.
#[derive(Debug, Default)]
pub(super) struct Blames {
    records: HashMap<PeerId, Blame>,
    by_age: BTreeSet<(Instant, PeerId)>,
    per_group: HashMap<ReporterGroup, usize>,
}

impl Blames {
    /// Counts a blame of `blamed` (whose own group is `accused`, if known)
    /// by a reporter of `group`; true when `threshold` groups other than
    /// the blamed peer's own have blamed it. Ignored: a blame from the
    /// blamed peer's own group, and a new blame that does not fit the
    /// limits (see the module docs).
    pub fn add(
        &mut self,
        now: Instant,
        blamed: PeerId,
        accused: Option<ReporterGroup>,
        group: ReporterGroup,
        limits: BlameLimits,
    ) -> bool {
        let remembered = self.records.get(&blamed).and_then(|r| r.accused);
        if Some(group) == accused.or(remembered) {
            return false;
        }
        let known = self.records.get(&blamed);
        let repeat = known.is_some_and(|r| r.groups.iter().any(|(g, _)| *g == group));
        if !repeat {
            if self.per_group.get(&group).copied().unwrap_or(0) >= limits.max_per_group {
                tracing::debug!(?group, "reporter group holds its most blames; ignored");
                return false;
            }
            if known.is_none() && self.records.len() >= limits.max_records {
                tracing::warn!("blame records full; a new blame is ignored");
                return false;
            }
        }
        let rec = self.records.entry(blamed).or_insert_with(|| Blame {
            groups: Vec::new(),
            accused: None,
        });
        if accused.is_some() {
            rec.accused = accused;
        }
        if !repeat {
            if let Some(old) = rec.oldest() {
                self.by_age.remove(&(old, blamed));
            }
            rec.groups.push((group, now));
            *self.per_group.entry(group).or_default() += 1;
            if let Some(old) = rec.oldest() {
                self.by_age.insert((old, blamed));
            }
        }
        rec.count() >= limits.threshold
    }

    /// Forgets every blame of `blamed` (it was banned).
    pub fn remove(&mut self, blamed: &PeerId) {
        if let Some(rec) = self.records.remove(blamed) {
            if let Some(old) = rec.oldest() {
                self.by_age.remove(&(old, *blamed));
            }
            for (g, _) in rec.groups {
                self.release(g);
            }
        }
    }

    fn release(&mut self, group: ReporterGroup) {
        if let Some(n) = self.per_group.get_mut(&group) {
            *n -= 1;
            if *n == 0 {
                self.per_group.remove(&group);
            }
        }
    }

    /// Ages out blames made more than `memory` before `now`.
    pub fn prune(&mut self, now: Instant, memory: Duration) {
        let expired = |at: Instant| now.saturating_duration_since(at) > memory;
        while let Some(&(at, peer)) = self.by_age.first() {
            if !expired(at) {
                break;
            }
            self.by_age.pop_first();
            let Some(rec) = self.records.get_mut(&peer) else {
                continue;
            };
            let mut gone = Vec::new();
            rec.groups.retain(|&(g, at)| {
                let keep = !expired(at);
                if !keep {
                    gone.push(g);
                }
                keep
            });
            match rec.oldest() {
                Some(old) => {
                    self.by_age.insert((old, peer));
                }
                None => {
                    self.records.remove(&peer);
                }
            }
            for g in gone {
                self.release(g);
            }
        }
    }

    /// Peers with live blames.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Distinct groups blaming `peer` so far (its own group not counted).
    pub fn groups(&self, peer: &PeerId) -> usize {
        self.records.get(peer).map_or(0, Blame::count)
    }

    /// Live blames made by `group`.
    pub fn by_group(&self, group: &ReporterGroup) -> usize {
        self.per_group.get(group).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn g(n: u8) -> ReporterGroup {
        ReporterGroup::Peer(p(n))
    }

    const LIMITS: BlameLimits = BlameLimits {
        threshold: 2,
        max_records: 10,
        max_per_group: 3,
    };

    #[test]
    fn blames_count_per_group_and_age_out_one_by_one() {
        let t0 = Instant::now();
        let mem = Duration::from_secs(100);
        let mut b = Blames::default();
        assert!(!b.add(t0, p(1), None, g(9), LIMITS));
        assert!(!b.add(t0, p(1), None, g(9), LIMITS), "a repeat counts once");
        assert_eq!(b.groups(&p(1)), 1);
        let t1 = t0 + Duration::from_secs(60);
        // The first blame ages out before the second.
        b.prune(t0 + Duration::from_secs(101), mem);
        assert_eq!(b.groups(&p(1)), 0);
        assert!(!b.add(t1, p(1), None, g(8), LIMITS));
        assert!(b.add(t1, p(1), None, g(7), LIMITS));
        b.prune(t1 + Duration::from_secs(101), mem);
        assert_eq!(b.len(), 0);
        assert_eq!(b.by_group(&g(8)), 0);
    }

    #[test]
    fn junk_cannot_flush_other_groups_blames() {
        let t0 = Instant::now();
        let mut b = Blames::default();
        assert!(!b.add(t0, p(1), None, g(1), LIMITS), "an honest blame");
        // One group's flood stops at its allowance; the records never
        // evict the honest blame.
        for n in 10..100 {
            b.add(t0, p(n), None, g(2), LIMITS);
        }
        assert_eq!(b.by_group(&g(2)), 3);
        assert_eq!(b.groups(&p(1)), 1);
        // Many groups' flood fills the records, which then refuse new ones.
        for n in 3..30 {
            b.add(t0, p(100 + n), None, g(n), LIMITS);
        }
        assert_eq!(b.len(), 10);
        assert_eq!(b.groups(&p(1)), 1);
        // The honest blame can still be joined by a second group: a ban.
        assert!(b.add(t0, p(1), None, g(50), LIMITS));
        b.remove(&p(1));
        assert_eq!(b.by_group(&g(1)), 0);
    }

    #[test]
    fn the_blamed_peers_own_group_never_counts() {
        let t0 = Instant::now();
        let mut b = Blames::default();
        let x = p(1);
        let [home, a, c] = [7, 8, 9].map(ReporterGroup::Shared);
        let l = BlameLimits {
            threshold: 2,
            max_records: 10,
            max_per_group: 10,
        };
        // Before its group is known, its network's blame is recorded...
        assert!(!b.add(t0, x, None, home, l));
        assert_eq!(b.groups(&x), 1);
        // ...and stops counting once it is (and stays so after it left).
        assert!(!b.add(t0, x, Some(home), a, l));
        assert_eq!(b.groups(&x), 1);
        assert!(!b.add(t0, x, None, home, l));
        assert!(b.add(t0, x, None, c, l));
    }
}
