//! The Central Planner of one swarm, as a pure state machine.
//!
//! It knows who is connected (role, trust, declared capacity), who holds
//! which piece, which content exists and which trusted peer must hold which
//! partition of it; it answers `want` with ranked providers, collates reports
//! and bans peers that send bad pieces, and evicts silent peers.
//!
//! ## Contract (sans-IO, as str0m and quinn-proto)
//!
//! The planner never reads the clock, sleeps, spawns or touches a socket, and
//! has no randomness: the same inputs give the same outputs. The signaling
//! server owns one [`Planner`] per swarm (behind a mutex or in an actor) and:
//! 1. calls a `handle_*` method for every event, with `now` from its clock;
//! 2. after **every** call, drains [`Planner::poll_output`] until `None` and
//!    acts on each [`Output`] in order: `Send` → encode and send on that
//!    peer's WebSocket; `Disconnect` → send `error` with
//!    [`DisconnectReason::code`] (if any) and close that connection;
//!    `Banned` → persist the ban; `BanExpired` → forget the persisted ban;
//! 3. arms a timer for [`Planner::poll_timeout`] and calls
//!    [`Planner::handle_timeout`] when it fires (the planner's pings come
//!    out of that, as `Send(peer, ping)`).
//!
//! One connection per peer id: the server calls [`Planner::handle_join`] (or
//! [`Planner::handle_join_with_group`]) after `welcome` and
//! [`Planner::handle_leave`] when that connection ends. A peer the planner
//! disconnected (`Disconnect`) is already forgotten; the server must not
//! call `handle_leave` for that connection afterwards (it would forget a
//! newer connection of the same id). Inputs about unknown peers are ignored;
//! a second join for a connected peer updates its role, trust, capacity and
//! reporter group and keeps the rest. No input panics, and memory is bounded
//! per peer and in total (see [`PlannerConfig`]).
//!
//! ## Policies (details in each file's docs)
//!
//! - **Providers** (`rank.rs`): rank key = (trusted permanent first; upload
//!   bucket `floor(log2(1 + U))` descending, `U` = bytes other peers reported
//!   receiving from it, half-life `upload_half_life`; earlier join first;
//!   peer id). Selection: first a coverage pass (most wanted pieces held
//!   first; take a peer if it holds a piece no chosen peer holds), then fill
//!   by rank key; at most 32 and at most one 64 KiB frame; never the asker.
//! - **Partitions** (`assign.rs`): `partition_pieces` consecutive pieces,
//!   each held by the top `replication` members (connected trusted permanent
//!   peers of weight > 0) by [`hrw_score`]; weight = [`capacity_weight`].
//!   Joins and leaves move only what the newcomer wins or the leaver held.
//! - **Credit and bans** (`reports.rs`): only the receiver's `down` credits
//!   the sender; a blame counts only for a provider the planner named to
//!   that reporter for that piece (`introductions.rs`); blames from
//!   `ban_threshold` distinct [`ReporterGroup`]s (a trusted peer alone,
//!   anyone else per network) ban for `ban_duration` (`bans.rs`); blames
//!   age out and are capped per group (`blames.rs`).
//! - **Seeding** (`seeding.rs`): a `want` (not a trusted permanent peer's)
//!   for a piece just assigned to a connected trusted peer that nobody holds
//!   yet waits for that peer's `have`, at most `seed_wait`.
//! - **Liveness** (`liveness.rs`): a sweep every `ping_interval` pings
//!   everyone and evicts peers silent for more than [`MISSED_PINGS`]
//!   intervals.
//!
//! ## Layout
//! - `config.rs` — [`PlannerConfig`] and the capacity weight ([`capacity_weight`]).
//! - `holdings.rs` — piece ↔ holder index.
//! - `rank.rs` — `want` → `providers`: the ranking, documented there.
//! - `assign.rs` — partitions, weighted rendezvous hashing, `assign`/`unassign`.
//! - `reports.rs` — upload credit, counting blames.
//! - `introductions.rs` — whom each peer was sent to, for which pieces.
//! - `relay.rs` — which offers, answers and candidates the hub passes on.
//! - `blames.rs` — blame records: ageing, per-group caps.
//! - `bans.rs` — bans, their expiry, restore and lift.
//! - `seeding.rs` — pieces being seeded, the wants held for them, and the
//!   planner's marking and answering of them.
//! - `withdrawn.rs` — pieces of content the hub withdrew: never introduced.
//! - `capacity.rs` — what the trusted peers can hold together.
//! - `liveness.rs` — pings, eviction, the timer.
//! - `output.rs` — [`Output`] and the reasons for refusing or disconnecting.
//! - `changes.rs` — assignment changes → `assign`/`unassign` messages.

mod assign;
mod bans;
mod blames;
mod capacity;
mod changes;
mod config;
mod holdings;
mod introductions;
mod liveness;
mod output;
mod rank;
mod relay;
mod reports;
mod seeding;
mod withdrawn;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use tuber_proto::limits::MAX_HASHES_PER_MESSAGE;
use tuber_proto::signal::{Capacity, HubToClient, Provider, Role, Validate};
use tuber_proto::{ManifestId, PeerId, PieceHash};

use assign::Content;
use bans::Bans;
use blames::Blames;
use changes::Changes;
use holdings::Holdings;
use introductions::Introductions;
use reports::Decayed;
use seeding::{HeldWant, Seeding};
use withdrawn::Withdrawn;

pub use assign::{hrw_score, ContentError};
pub use config::{capacity_weight, BanReporters, PlannerConfig, UNLIMITED_UPLOAD_BPS};
pub use liveness::MISSED_PINGS;
pub use output::{DisconnectReason, Output, Refused};
pub use rank::MAX_SCANNED_PER_PIECE;
pub use relay::{Relay, RelayRefused, OFFERS_PER_GROUP_TARGET, OFFER_WINDOW};
pub use reports::ReporterGroup;

/// A connected peer.
#[derive(Debug)]
struct Peer {
    role: Role,
    trusted: bool,
    joined_at: Instant,
    last_seen: Instant,
    /// Bytes others reported receiving from it, decayed.
    upload: Decayed,
    /// Whom its blames count as.
    group: ReporterGroup,
    /// Whom the planner sent it to, for which pieces: what it may blame.
    intros: Introductions,
    /// The disk it declared (or the default), for [`Planner::donor_capacity`].
    disk_bytes: u64,
}

impl Peer {
    /// Trusted permanent: offered first, eligible for partitions.
    fn is_pinned(&self) -> bool {
        self.trusted && self.role == Role::Permanent
    }
}

/// The Central Planner of one swarm. See the module docs for the contract.
#[derive(Debug)]
pub struct Planner {
    config: PlannerConfig,
    peers: BTreeMap<PeerId, Peer>,
    holdings: Holdings,
    content: Content,
    blames: Blames,
    bans: Bans,
    seeding: Seeding,
    /// Pieces of content the hub withdrew (an expired signed URL).
    withdrawn: Withdrawn,
    /// Recent offers per (group, target): see `relay.rs`.
    offers: relay::OfferWindows,
    /// Pieces indexed per shared reporter group (a network's browsers and
    /// untrusted peers together), bounded by `max_network_holdings`.
    group_holdings: HashMap<ReporterGroup, usize>,
    outputs: VecDeque<Output>,
    next_tick: Option<Instant>,
    ping_nonce: u32,
}

impl Planner {
    /// A planner with no peers, content or bans.
    pub fn new(config: PlannerConfig) -> Self {
        Self {
            config: config.sanitized(),
            peers: BTreeMap::new(),
            holdings: Holdings::default(),
            content: Content::default(),
            blames: Blames::default(),
            bans: Bans::default(),
            seeding: Seeding::default(),
            withdrawn: Withdrawn::default(),
            offers: relay::OfferWindows::default(),
            group_holdings: HashMap::new(),
            outputs: VecDeque::new(),
            next_tick: None,
            ping_nonce: 0,
        }
    }

    /// The settings in use (after clamping).
    pub fn config(&self) -> &PlannerConfig {
        &self.config
    }

    /// The next thing to do, or None once drained.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// A client was welcomed. A trusted permanent peer with a positive
    /// weight ([`capacity_weight`] of `capacity`, or of `default_capacity`
    /// when it declared none) takes its share of the partitions (`assign` to
    /// it, `unassign` to those it displaces). Its blames for bad pieces count
    /// as its own ([`ReporterGroup::Peer`]); a server that knows the
    /// client's network calls [`Planner::handle_join_with_group`] instead.
    pub fn handle_join(
        &mut self,
        now: Instant,
        peer: PeerId,
        role: Role,
        trusted: bool,
        capacity: Option<Capacity>,
    ) -> Result<(), Refused> {
        let group = ReporterGroup::Peer(peer);
        self.handle_join_with_group(now, peer, role, trusted, capacity, group)
    }

    /// [`Planner::handle_join`], with the group the peer's blames for bad
    /// pieces count as (see `reports.rs`): the server passes
    /// [`ReporterGroup::Peer`] for a trusted permanent peer and a
    /// [`ReporterGroup::Shared`] key of the client's network for anyone else.
    pub fn handle_join_with_group(
        &mut self,
        now: Instant,
        peer: PeerId,
        role: Role,
        trusted: bool,
        capacity: Option<Capacity>,
        group: ReporterGroup,
    ) -> Result<(), Refused> {
        self.expire_bans(now);
        if self.bans.contains(&peer) {
            return Err(Refused::Banned);
        }
        let disk_bytes = capacity.unwrap_or(self.config.default_capacity).disk_bytes;
        match self.peers.get_mut(&peer) {
            Some(p) => {
                let old = p.group;
                p.disk_bytes = disk_bytes;
                p.role = role;
                p.trusted = trusted;
                p.group = group;
                p.last_seen = p.last_seen.max(now);
                if old != group {
                    let n = self.holdings.count(&peer);
                    Self::count_group(&mut self.group_holdings, old, -(n as i64));
                    Self::count_group(&mut self.group_holdings, group, n as i64);
                }
            }
            None => {
                if self.peers.len() >= self.config.max_peers {
                    return Err(Refused::Full);
                }
                let p = Peer {
                    role,
                    trusted,
                    joined_at: now,
                    last_seen: now,
                    upload: Decayed::new(now),
                    group,
                    intros: Introductions::default(),
                    disk_bytes,
                };
                self.peers.insert(peer, p);
            }
        }
        let pinned = trusted && role == Role::Permanent;
        self.holdings.set_pinned(peer, pinned);
        let weight = match pinned {
            true => capacity_weight(capacity.unwrap_or(self.config.default_capacity)),
            false => 0.0,
        };
        let mut changes = Changes::default();
        if weight > 0.0 {
            let r = self.config.replication;
            self.content.add_member(peer, weight, r, &mut changes);
        } else {
            self.content.remove_member(peer, &mut changes);
        }
        self.emit(changes);
        self.schedule(now);
        Ok(())
    }

    /// A client disconnected: its holdings are dropped and its partitions
    /// go to other trusted peers at once. Unknown peers are ignored.
    pub fn handle_leave(&mut self, now: Instant, peer: PeerId) {
        self.forget(now, peer);
    }

    /// The peer now holds `pieces` (indexed up to its cap).
    pub fn handle_have(&mut self, now: Instant, peer: PeerId, pieces: &[PieceHash]) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let cap = match p.role {
            Role::Browser => self.config.max_browser_holdings,
            Role::Permanent => self.config.max_holdings_per_peer,
        };
        let pinned = p.is_pinned();
        let group = p.group;
        // A network's connections share one cap (only trusted peers and
        // peers of unknown address have groups of their own), so one host
        // cannot index 65,536 pieces per connection it opens.
        let cap = match group {
            ReporterGroup::Shared(_) => {
                let used = self.group_holdings.get(&group).copied().unwrap_or(0);
                let mine = self.holdings.count(&peer);
                cap.min(mine + self.config.max_network_holdings.saturating_sub(used))
            }
            ReporterGroup::Peer(_) => cap,
        };
        self.touch(now, &peer);
        let kept;
        let pieces = if self.withdrawn.is_empty() {
            pieces
        } else {
            kept = self.withdrawn.filter(now, pieces);
            &kept[..]
        };
        let before = self.holdings.count(&peer);
        self.holdings.add(peer, pinned, pieces, cap);
        let delta = self.holdings.count(&peer) as i64 - before as i64;
        Self::count_group(&mut self.group_holdings, group, delta);
        self.seeding.seeded(pieces);
        self.answer_held(now);
    }

    /// The peer no longer holds `pieces`.
    pub fn handle_lost(&mut self, now: Instant, peer: PeerId, pieces: &[PieceHash]) {
        if self.touch(now, &peer) {
            let before = self.holdings.count(&peer);
            self.holdings.remove(peer, pieces);
            let delta = self.holdings.count(&peer) as i64 - before as i64;
            if let Some(group) = self.peers.get(&peer).map(|p| p.group) {
                Self::count_group(&mut self.group_holdings, group, delta);
            }
        }
    }

    /// The peer asks who holds `pieces`: answers `Send(asker, providers)`
    /// with the same `req` (see `rank.rs` for the ranking). Only the first
    /// 512 pieces are considered. Unknown askers get nothing.
    pub fn handle_want(&mut self, now: Instant, asker: PeerId, req: u32, pieces: &[PieceHash]) {
        if !self.touch(now, &asker) {
            return;
        }
        if pieces.len() > MAX_HASHES_PER_MESSAGE {
            tracing::debug!(?asker, len = pieces.len(), "want list truncated");
        }
        let providers = self.rank_providers(now, &asker, pieces);
        if let Some(deadline) = self.seeding_deadline(now, &asker, pieces, &providers) {
            let held = self.seeding.hold(HeldWant {
                asker,
                req,
                pieces: pieces
                    .iter()
                    .take(MAX_HASHES_PER_MESSAGE)
                    .copied()
                    .collect(),
                deadline,
            });
            if held {
                return;
            }
        }
        self.mark_fetching(now, asker, pieces, &providers);
        self.answer(now, asker, req, pieces, providers);
    }

    fn answer(
        &mut self,
        now: Instant,
        asker: PeerId,
        req: u32,
        pieces: &[PieceHash],
        providers: Vec<Provider>,
    ) {
        self.remember_introductions(now, asker, pieces, &providers);
        self.send(asker, HubToClient::Providers { req, providers });
    }

    /// The hub publishes `manifest` of `piece_count` pieces for `resource`:
    /// its partitions are assigned at once. A new manifest for a known
    /// resource replaces the old one (`unassign` of the old, `assign` of the
    /// new); a manifest already known is a no-op.
    pub fn handle_content(
        &mut self,
        now: Instant,
        resource: String,
        manifest: ManifestId,
        piece_count: u32,
    ) -> Result<(), ContentError> {
        let cfg = (
            self.config.partition_pieces,
            self.config.replication,
            self.config.max_partitions,
        );
        let mut changes = Changes::default();
        let result = self
            .content
            .insert(resource, manifest, piece_count, cfg, &mut changes);
        self.emit(changes);
        self.schedule(now);
        result
    }

    /// The hub stopped distributing `manifest`: its holders are told to
    /// unassign it. False if it was unknown.
    pub fn handle_content_removed(&mut self, _now: Instant, manifest: ManifestId) -> bool {
        let mut changes = Changes::default();
        let known = self.content.remove(&manifest, &mut changes);
        self.emit(changes);
        known
    }

    /// Records whom `providers` named to `asker` for which of `pieces`:
    /// the only blames `asker` may make (see `introductions.rs`).
    fn remember_introductions(
        &mut self,
        now: Instant,
        asker: PeerId,
        pieces: &[PieceHash],
        providers: &[Provider],
    ) {
        let max = self.config.max_introductions_per_peer;
        let Some(p) = self.peers.get_mut(&asker) else {
            return;
        };
        let mut named: BTreeMap<u32, Vec<PeerId>> = BTreeMap::new();
        for prov in providers {
            for &i in &prov.pieces {
                named.entry(i).or_default().push(prov.peer);
            }
        }
        for (i, peers) in named {
            if let Some(piece) = pieces.get(i as usize) {
                p.intros.record(now, *piece, peers, max);
            }
        }
    }

    /// Adds `delta` to a shared group's indexed pieces (groups of one peer
    /// are not counted: the per-peer cap bounds them).
    fn count_group(counts: &mut HashMap<ReporterGroup, usize>, group: ReporterGroup, delta: i64) {
        if delta == 0 || matches!(group, ReporterGroup::Peer(_)) {
            return;
        }
        let n = counts.entry(group).or_insert(0);
        *n = (*n as i64 + delta).max(0) as usize;
        if *n == 0 {
            counts.remove(&group);
        }
    }

    /// Pieces indexed for a shared reporter group (a network), for tests.
    pub fn network_holdings(&self, group: ReporterGroup) -> usize {
        self.group_holdings.get(&group).copied().unwrap_or(0)
    }

    /// Marks `peer` as heard from; false if it is not connected.
    fn touch(&mut self, now: Instant, peer: &PeerId) -> bool {
        match self.peers.get_mut(peer) {
            Some(p) => {
                p.last_seen = p.last_seen.max(now);
                true
            }
            None => false,
        }
    }

    /// Forgets a connected peer: holdings, partitions (moved), stats.
    fn forget(&mut self, now: Instant, peer: PeerId) -> bool {
        let Some(gone) = self.peers.remove(&peer) else {
            return false;
        };
        let n = self.holdings.count(&peer);
        Self::count_group(&mut self.group_holdings, gone.group, -(n as i64));
        self.holdings.drop_peer(peer);
        self.seeding.drop_asker(&peer);
        let mut changes = Changes::default();
        self.content.remove_member(peer, &mut changes);
        self.emit(changes);
        self.schedule(now);
        true
    }

    /// Queues assignment changes for the peers still connected.
    fn emit(&mut self, changes: Changes) {
        for (peer, msg) in changes.into_messages(self.config.partition_pieces) {
            if self.peers.contains_key(&peer) {
                self.send(peer, msg);
            }
        }
    }

    fn send(&mut self, peer: PeerId, msg: HubToClient) {
        // Built within the limits by construction; checked so that a bug
        // drops one message instead of sending what the peer must refuse.
        match msg.validate() {
            Ok(()) => self.outputs.push_back(Output::Send(peer, msg)),
            Err(e) => tracing::error!(?peer, error = %e, "planner built an invalid message"),
        }
    }

    // ---- getters ----------------------------------------------------------

    /// Whether `peer` is connected.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// Connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Connected peers of `role`.
    pub fn peer_count_by_role(&self, role: Role) -> usize {
        self.peers.values().filter(|p| p.role == role).count()
    }

    /// Connected trusted peers.
    pub fn trusted_count(&self) -> usize {
        self.peers.values().filter(|p| p.trusted).count()
    }

    /// Whether `peer` is a member of the assignment (trusted, permanent,
    /// weight > 0, connected).
    pub fn is_assignable(&self, peer: &PeerId) -> bool {
        self.content.is_member(peer)
    }

    /// The partitions `peer` must hold, as (manifest, partition).
    pub fn assignments(&self, peer: &PeerId) -> Vec<(ManifestId, u32)> {
        self.content.assignments(peer)
    }

    /// How many partitions `peer` must hold.
    pub fn assignment_count(&self, peer: &PeerId) -> usize {
        self.content.assignment_count(peer)
    }

    /// The holders of one partition, best HRW score first.
    pub fn owners(&self, manifest: &ManifestId, partition: u32) -> Vec<PeerId> {
        self.content.owners(manifest, partition)
    }

    /// Partitions of `manifest` (None: unknown manifest).
    pub fn partition_count(&self, manifest: &ManifestId) -> Option<u32> {
        self.content.partition_count(manifest)
    }

    /// Partitions over all content.
    pub fn total_partitions(&self) -> usize {
        self.content.total_partitions()
    }

    /// Manifests known.
    pub fn manifest_count(&self) -> usize {
        self.content.manifest_count()
    }

    /// Pieces indexed for `peer`.
    pub fn holdings_count(&self, peer: &PeerId) -> usize {
        self.holdings.count(peer)
    }

    /// Whether `peer` is indexed as holding `piece`.
    pub fn holds(&self, peer: &PeerId, piece: &PieceHash) -> bool {
        self.holdings.holds(peer, piece)
    }

    /// Distinct pieces held by any connected peer.
    pub fn indexed_pieces(&self) -> usize {
        self.holdings.piece_count()
    }
}
