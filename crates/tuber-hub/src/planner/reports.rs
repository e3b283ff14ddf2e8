//! Reports: upload credit, blames for bad pieces, bans.
//!
//! **Whom to believe about bytes.** A `report` says, per remote peer, bytes
//! sent (`up`) and bytes received and verified (`down`). The planner credits
//! only `down`, to the remote peer: the receiver vouches for what it got. A
//! peer's own `up` is a claim about itself and is ignored (anyone could
//! claim to upload a lot to rank higher). Credit to oneself, to a peer that
//! is not connected, and more than 2^53 − 1 bytes in one entry are ignored.
//! Credit decays with a half-life of `upload_half_life`. It lives only while
//! the peer is connected, so memory stays bounded by the connected peers.
//!
//! **Bans.** A `bad` entry blames a peer for a piece that failed
//! verification. Blames are counted per [`ReporterGroup`], not per reporter:
//! browser ids are random per connection, so one person with three tabs is
//! three reporters but one group. The server gives each connection its group
//! at join (`handle_join_with_group`): a trusted permanent peer is its own
//! group (the operator vouched for it), anyone else shares the group of its
//! network; with [`BanReporters::DistinctPeers`] every peer is its own group.
//! Each group counts once per blamed peer, however often and by however many
//! of its members it blames. Ignored: a reporter blaming itself, and blames
//! from the blamed peer's own group (known while it is connected, and
//! remembered in its blame record after it left). A peer blamed by
//! `ban_threshold` groups is banned: `Banned` (persist it), `Disconnect` if
//! connected, its holdings dropped and its partitions moved. So with
//! `ban_threshold` ≥ 2 anonymous peers of one network never ban anyone, a
//! trusted peer included: it takes that many networks, trusted reporters
//! counting as one each.
//!
//! The reporter must be connected; the blamed peer need not be (the bad piece
//! may be noticed after its sender left), and we cannot check that the two
//! ever talked. Blame records are kept for `blame_memory` after the last
//! blame, at most `max_blame_records` of them (the oldest goes first); each
//! holds at most `ban_threshold` groups.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use tuber_proto::limits::{MAX_BAD_PIECES, MAX_JSON_INT, MAX_REPORT_ENTRIES};
use tuber_proto::signal::{BadPiece, TransferReport};
use tuber_proto::PeerId;

use super::{BanReporters, DisconnectReason, Output, Planner};

/// Whom a reporter's blames count as: blames for bad pieces are counted once
/// per group (see the module docs). The server chooses the groups; the
/// planner only compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReporterGroup {
    /// The peer alone: a trusted peer, or one whose network is unknown.
    /// What [`Planner::handle_join`] assigns.
    Peer(PeerId),
    /// A group that many connections may share, named by an opaque key (the
    /// server derives it from the client's network).
    Shared(u128),
}

/// An exponentially decayed byte count.
#[derive(Debug, Clone, Copy)]
pub(super) struct Decayed {
    value: f64,
    at: Instant,
}

impl Decayed {
    pub fn new(now: Instant) -> Self {
        Self {
            value: 0.0,
            at: now,
        }
    }

    /// The value at `now` (never grows by waiting; time running backwards
    /// counts as no time).
    pub fn value(&self, now: Instant, half_life: Duration) -> f64 {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.value * 0.5f64.powf(dt / half_life.as_secs_f64())
    }

    pub fn add(&mut self, now: Instant, half_life: Duration, bytes: u64) {
        let now = now.max(self.at);
        self.value = self.value(now, half_life) + bytes as f64;
        self.at = now;
    }
}

#[derive(Debug)]
struct Blame {
    /// Distinct groups that blamed, in order.
    groups: Vec<ReporterGroup>,
    /// The blamed peer's own group, last seen while it was connected.
    accused: Option<ReporterGroup>,
    updated: Instant,
}

impl Blame {
    /// Groups that count: all but the blamed peer's own.
    fn count(&self) -> usize {
        let own = |g: &&ReporterGroup| Some(**g) == self.accused;
        self.groups.iter().filter(|g| !own(g)).count()
    }
}

/// Blame records, with an age index for expiry and eviction.
#[derive(Debug, Default)]
pub(super) struct Blames {
    records: HashMap<PeerId, Blame>,
    by_age: BTreeSet<(Instant, PeerId)>,
}

impl Blames {
    /// Counts a blame of `blamed` (whose own group is `accused`, if known)
    /// by a reporter of `group`; true when `threshold` groups other than
    /// the blamed peer's own have blamed it. A blame from the blamed peer's
    /// own group is ignored.
    fn add(
        &mut self,
        now: Instant,
        blamed: PeerId,
        accused: Option<ReporterGroup>,
        group: ReporterGroup,
        threshold: usize,
        max: usize,
    ) -> bool {
        let remembered = self.records.get(&blamed).and_then(|r| r.accused);
        if Some(group) == accused.or(remembered) {
            return false;
        }
        if !self.records.contains_key(&blamed) && self.records.len() >= max {
            if let Some((_, oldest)) = self.by_age.pop_first() {
                self.records.remove(&oldest);
            }
        }
        let rec = self.records.entry(blamed).or_insert_with(|| Blame {
            groups: Vec::new(),
            accused: None,
            updated: now,
        });
        self.by_age.remove(&(rec.updated, blamed));
        rec.updated = now;
        self.by_age.insert((now, blamed));
        if accused.is_some() {
            rec.accused = accused;
        }
        if !rec.groups.contains(&group) {
            rec.groups.push(group);
        }
        rec.count() >= threshold
    }

    fn remove(&mut self, blamed: &PeerId) {
        if let Some(rec) = self.records.remove(blamed) {
            self.by_age.remove(&(rec.updated, *blamed));
        }
    }

    /// Forgets records last updated more than `memory` before `now`.
    pub fn prune(&mut self, now: Instant, memory: Duration) {
        while let Some(&(at, peer)) = self.by_age.first() {
            if now.saturating_duration_since(at) <= memory {
                break;
            }
            self.by_age.pop_first();
            self.records.remove(&peer);
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Distinct groups blaming `peer` so far (its own group not counted).
    pub fn groups(&self, peer: &PeerId) -> usize {
        self.records.get(peer).map_or(0, Blame::count)
    }
}

/// Banned peers, oldest first.
#[derive(Debug, Default)]
pub(super) struct Bans {
    seq_of: HashMap<PeerId, u64>,
    order: BTreeMap<u64, PeerId>,
    next: u64,
}

impl Bans {
    /// Adds a ban (evicting the oldest beyond `max`); false if already banned.
    pub fn insert(&mut self, peer: PeerId, max: usize) -> bool {
        if self.seq_of.contains_key(&peer) || max == 0 {
            return false;
        }
        while self.order.len() >= max {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            self.seq_of.remove(&old);
        }
        self.seq_of.insert(peer, self.next);
        self.order.insert(self.next, peer);
        self.next += 1;
        true
    }

    pub fn remove(&mut self, peer: &PeerId) -> bool {
        match self.seq_of.remove(peer) {
            Some(seq) => self.order.remove(&seq).is_some(),
            None => false,
        }
    }

    pub fn contains(&self, peer: &PeerId) -> bool {
        self.seq_of.contains_key(peer)
    }

    pub fn iter(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.order.values().copied()
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }
}

impl Planner {
    /// A client's `report`: credits uploads, counts blames, bans liars (see
    /// the module docs of `reports.rs`). From an unknown reporter: ignored.
    pub fn handle_report(
        &mut self,
        now: Instant,
        reporter: PeerId,
        transfers: &[TransferReport],
        bad: &[BadPiece],
    ) {
        if !self.touch(now, &reporter) {
            tracing::debug!(?reporter, "report from a peer that is not connected");
            return;
        }
        let half_life = self.config.upload_half_life;
        for t in transfers.iter().take(MAX_REPORT_ENTRIES) {
            if t.peer == reporter || t.down == 0 || t.down > MAX_JSON_INT {
                continue;
            }
            if let Some(p) = self.peers.get_mut(&t.peer) {
                p.upload.add(now, half_life, t.down);
            }
        }
        let threshold = self.config.ban_threshold as usize;
        let max = self.config.max_blame_records;
        // Connected (touched above), so it has a group; it stays connected
        // below, as a reporter never blames itself.
        let Some(group) = self.reporter_group(&reporter) else {
            return;
        };
        for b in bad.iter().take(MAX_BAD_PIECES) {
            if b.peer == reporter || self.bans.contains(&b.peer) {
                continue;
            }
            let accused = self.reporter_group(&b.peer);
            if self.blames.add(now, b.peer, accused, group, threshold, max) {
                self.ban(now, b.peer);
            }
        }
        self.schedule(now);
    }

    /// Bans `peer`: remembered, announced, disconnected, forgotten.
    fn ban(&mut self, now: Instant, peer: PeerId) {
        self.blames.remove(&peer);
        if !self.bans.insert(peer, self.config.max_bans) {
            return;
        }
        tracing::warn!(?peer, "banned for bad pieces");
        self.outputs.push_back(Output::Banned(peer));
        if self.peers.contains_key(&peer) {
            self.outputs
                .push_back(Output::Disconnect(peer, DisconnectReason::Banned));
            self.forget(now, peer);
        }
    }

    /// Re-installs bans saved from an earlier run (at startup, before joins).
    /// A restored peer that is connected is disconnected.
    pub fn restore_bans(&mut self, now: Instant, bans: impl IntoIterator<Item = PeerId>) {
        for peer in bans {
            if self.bans.insert(peer, self.config.max_bans) && self.peers.contains_key(&peer) {
                self.outputs
                    .push_back(Output::Disconnect(peer, DisconnectReason::Banned));
                self.forget(now, peer);
            }
        }
    }

    /// Lifts a ban (operator action); true if `peer` was banned.
    pub fn unban(&mut self, peer: &PeerId) -> bool {
        self.bans.remove(peer)
    }

    /// Banned peers, oldest ban first (to persist them).
    pub fn bans(&self) -> Vec<PeerId> {
        self.bans.iter().collect()
    }

    /// How many peers are banned.
    pub fn ban_count(&self) -> usize {
        self.bans.len()
    }

    /// Whether `peer` is banned.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.contains(peer)
    }

    /// Distinct reporter groups currently blaming `peer` (0 once banned).
    pub fn blame_count(&self, peer: &PeerId) -> usize {
        self.blames.groups(peer)
    }

    /// The group a connected peer's blames count as, under the configured
    /// [`BanReporters`]; None if it is not connected.
    pub fn reporter_group(&self, peer: &PeerId) -> Option<ReporterGroup> {
        let p = self.peers.get(peer)?;
        Some(match self.config.ban_reporters {
            BanReporters::DistinctNetworks => p.group,
            BanReporters::DistinctPeers => ReporterGroup::Peer(*peer),
        })
    }

    /// The decayed upload credit of a connected peer, in bytes.
    pub fn upload_credit(&self, now: Instant, peer: &PeerId) -> Option<f64> {
        let p = self.peers.get(peer)?;
        Some(p.upload.value(now, self.config.upload_half_life))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_halves_per_half_life() {
        let t0 = Instant::now();
        let hl = Duration::from_secs(10);
        let mut d = Decayed::new(t0);
        d.add(t0, hl, 1000);
        assert!((d.value(t0 + hl, hl) - 500.0).abs() < 1e-6);
        assert_eq!(d.value(t0, hl), 1000.0);
        d.add(t0 + hl, hl, 500);
        assert!((d.value(t0 + hl, hl) - 1000.0).abs() < 1e-6);
    }

    #[test]
    fn bans_evict_oldest() {
        let mut b = Bans::default();
        let p = |n: u8| PeerId::from_bytes([n; 32]);
        assert!(b.insert(p(1), 2));
        assert!(!b.insert(p(1), 2));
        assert!(b.insert(p(2), 2));
        assert!(b.insert(p(3), 2));
        assert_eq!(b.iter().collect::<Vec<_>>(), [p(2), p(3)]);
        assert!(b.remove(&p(2)));
        assert!(!b.contains(&p(2)));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn blames_evict_and_expire() {
        let t0 = Instant::now();
        let mut b = Blames::default();
        let p = |n: u8| PeerId::from_bytes([n; 32]);
        let g = |n: u8| ReporterGroup::Peer(p(n));
        assert!(!b.add(t0, p(1), None, g(9), 2, 2));
        assert!(!b.add(t0, p(1), None, g(9), 2, 2));
        assert!(b.add(t0, p(1), None, g(8), 2, 2));
        b.add(t0 + Duration::from_secs(1), p(2), None, g(9), 2, 2);
        b.add(t0 + Duration::from_secs(2), p(3), None, g(9), 2, 2);
        assert_eq!(b.len(), 2);
        assert_eq!(b.groups(&p(1)), 0);
        b.prune(t0 + Duration::from_secs(10), Duration::from_secs(8));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn the_blamed_peers_own_group_never_counts() {
        let t0 = Instant::now();
        let mut b = Blames::default();
        let p = PeerId::from_bytes([1; 32]);
        let [home, a, c] = [7, 8, 9].map(ReporterGroup::Shared);
        // Before its group is known, its network's blame is recorded...
        assert!(!b.add(t0, p, None, home, 2, 10));
        assert_eq!(b.groups(&p), 1);
        // ...and stops counting once it is (and stays so after it left).
        assert!(!b.add(t0, p, Some(home), a, 2, 10));
        assert_eq!(b.groups(&p), 1);
        assert!(!b.add(t0, p, None, home, 2, 10));
        assert!(b.add(t0, p, None, c, 2, 10));
    }
}
