//! Liveness: pings out, silence in, eviction.
//!
//! The planner runs one sweep per `ping_interval` (a tick, due at
//! [`Planner::poll_timeout`]). At each tick, a peer silent for longer than
//! [`MISSED_PINGS`] × `ping_interval` (nothing heard since: no `pong`, no
//! message at all) is evicted with `Disconnect(peer, MissedPings)` and
//! forgotten as on leave; every other peer is sent `ping` with a fresh nonce.
//! Any input about a peer (`pong`, `have`, `want`, `report`, or
//! [`Planner::handle_activity`] for relayed messages) counts as hearing from
//! it. Since a tick only comes every interval, a silent peer is evicted
//! between 3 and 4 intervals after it was last heard from: after it missed
//! three pings. The same tick forgets expired blames and introductions; bans
//! end at their own time (`poll_timeout` is the earlier of the two).

use std::time::{Duration, Instant};

use tuber_proto::signal::HubToClient;
use tuber_proto::PeerId;

use super::{DisconnectReason, Output, Planner};

/// Pings a peer may miss before it is evicted.
pub const MISSED_PINGS: u32 = 3;

impl Planner {
    /// The peer answered a `ping`.
    pub fn handle_pong(&mut self, now: Instant, peer: PeerId) {
        self.handle_activity(now, peer);
    }

    /// Something else was heard from the peer (e.g. a relayed offer).
    pub fn handle_activity(&mut self, now: Instant, peer: PeerId) {
        self.touch(now, &peer);
    }

    /// When to call [`Planner::handle_timeout`] next (None: nothing to do
    /// until the next input).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.next_tick,
            self.bans.next_expiry(),
            self.seeding.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Ends the bans that are due, answers the wants held for seeders whose
    /// time is up, then runs the sweep if it is due:
    /// evictions, pings, expiry of blames and introductions. Calling it
    /// early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_bans(now);
        self.answer_held(now);
        let Some(due) = self.next_tick else {
            return;
        };
        if now < due {
            return;
        }
        let silent_max = self
            .config
            .ping_interval
            .checked_mul(MISSED_PINGS)
            .unwrap_or(Duration::MAX);
        let silent: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.last_seen) > silent_max)
            .map(|(id, _)| *id)
            .collect();
        for peer in silent {
            tracing::info!(?peer, "evicted: missed pings");
            self.outputs
                .push_back(Output::Disconnect(peer, DisconnectReason::MissedPings));
            self.forget(now, peer);
        }
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.ping_nonce = self.ping_nonce.wrapping_add(1);
            let nonce = self.ping_nonce;
            self.send(peer, HubToClient::Ping { nonce });
        }
        self.blames.prune(now, self.config.blame_memory);
        let memory = self.config.introduction_memory;
        for p in self.peers.values_mut() {
            p.intros.prune(now, memory);
        }
        self.next_tick = None;
        self.schedule(now);
    }

    /// Makes sure a tick is scheduled while there is anyone to ping or any
    /// blame to expire.
    pub(super) fn schedule(&mut self, now: Instant) {
        if self.peers.is_empty() && self.blames.len() == 0 {
            self.next_tick = None;
        } else if self.next_tick.is_none() {
            // None on overflow: an interval beyond the end of time never ticks.
            self.next_tick = now.checked_add(self.config.ping_interval);
        }
    }
}
