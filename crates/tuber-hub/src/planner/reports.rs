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
//! **Only what the planner arranged counts.** The reporter must be
//! connected, and a blame counts only for a (provider, piece) pair the
//! planner named to that reporter in answer to its `want` within
//! `introduction_memory` (`introductions.rs`): the hub cannot see the
//! transfer, but it knows whom it sent the reporter to, so a client that
//! was never sent to a peer cannot blame it. The blamed peer need not be
//! connected any more (the bad piece may be noticed after its sender left).
//! Each group's blame ages out `blame_memory` after it was made; blame
//! records are bounded by refusing new ones, never by evicting old ones
//! (`blames.rs`). Bans last `ban_duration` (`bans.rs`).

use std::time::{Duration, Instant};

use tuber_proto::limits::{MAX_BAD_PIECES, MAX_JSON_INT, MAX_REPORT_ENTRIES};
use tuber_proto::signal::{BadPiece, TransferReport};
use tuber_proto::PeerId;

use super::blames::BlameLimits;
use super::{BanReporters, Planner};

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
        let limits = BlameLimits {
            threshold: self.config.ban_threshold as usize,
            max_records: self.config.max_blame_records,
            max_per_group: self.config.max_blames_per_group,
        };
        let memory = self.config.introduction_memory;
        // Connected (touched above), so it has a group; it stays connected
        // below, as a reporter never blames itself.
        let Some(group) = self.reporter_group(&reporter) else {
            return;
        };
        for b in bad.iter().take(MAX_BAD_PIECES) {
            if b.peer == reporter || self.bans.contains(&b.peer) {
                continue;
            }
            let introduced = self
                .peers
                .get(&reporter)
                .is_some_and(|r| r.intros.contains(now, &b.peer, &b.piece, memory));
            if !introduced {
                tracing::debug!(?reporter, blamed = ?b.peer, piece = %b.piece,
                    "blame for a piece the planner never sent this reporter to that peer for; ignored");
                continue;
            }
            let accused = self.reporter_group(&b.peer);
            if self.blames.add(now, b.peer, accused, group, limits) {
                self.ban(now, b.peer);
            }
        }
        self.schedule(now);
    }

    /// Distinct reporter groups currently blaming `peer` (0 once banned).
    pub fn blame_count(&self, peer: &PeerId) -> usize {
        self.blames.groups(peer)
    }

    /// Live blames made by reporters of `group`.
    pub fn blames_by_group(&self, group: &ReporterGroup) -> usize {
        self.blames.by_group(group)
    }

    /// Peers with live blames against them.
    pub fn blamed_count(&self) -> usize {
        self.blames.len()
    }

    /// (provider, piece) introductions remembered for a connected peer.
    pub fn introduction_count(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.intros.len())
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
}
