//! Content being seeded: pieces the hub just published and assigned to a
//! connected trusted permanent peer, which is fetching them now, and pieces
//! a client was just told nobody holds (so it is fetching them from the
//! hub now). A `want` for such a piece that nobody holds yet is answered
//! when a holder announces it, or at the latest after `seed_wait`, instead
//! of at once with "nobody": at a live stream's edge, viewers ask for a new
//! segment within a few hundred milliseconds of it appearing, and answering
//! "nobody" sends each of them to the hub for it. Waiting a moment lets the
//! first holder (the donor, or the first viewer) seed the others, so a new
//! segment propagates outward from its first holder. Trusted permanent
//! peers' own wants are never held (they are the seeders), nor a client's
//! for pieces it is itself fetching; the number of held wants is bounded
//! per asker and in total, and a client marks at most [`MARKS_PER_WANT`]
//! pieces per `want`; past the bounds a want is answered at once.

use std::collections::HashMap;
use std::time::Instant;

use tuber_proto::limits::MAX_HASHES_PER_MESSAGE;
use tuber_proto::signal::Provider;
use tuber_proto::{ManifestId, PeerId, PieceHash};

use super::{ContentError, Peer, Planner};

/// Pieces marked as being seeded, at most.
pub const MAX_SEEDING: usize = 262_144;
/// Pieces one `want` may mark as being fetched by its asker.
pub const MARKS_PER_WANT: usize = 64;
/// Wants held at once per asker, and in total.
pub const MAX_HELD_PER_ASKER: usize = 4;
pub const MAX_HELD: usize = 8192;

/// A want waiting for a seeder.
#[derive(Debug, Clone)]
pub(super) struct HeldWant {
    pub asker: PeerId,
    pub req: u32,
    pub pieces: Vec<PieceHash>,
    pub deadline: Instant,
}

/// The seeding pieces and the wants held for them.
#[derive(Debug, Default)]
pub(super) struct Seeding {
    /// Piece → until when it counts as being seeded, and by whom (None: the
    /// trusted peers it was assigned to).
    pieces: HashMap<PieceHash, (Instant, Option<PeerId>)>,
    held: Vec<HeldWant>,
}

impl Seeding {
    /// Marks `pieces` as being seeded until `until`.
    pub fn mark(
        &mut self,
        now: Instant,
        pieces: impl IntoIterator<Item = PieceHash>,
        until: Instant,
    ) {
        self.mark_by(now, pieces, until, None);
    }

    /// Marks `pieces` as being fetched by `by` (None: assigned trusted
    /// peers) until `until`; a piece already marked by a client keeps its
    /// mark.
    pub fn mark_by(
        &mut self,
        now: Instant,
        pieces: impl IntoIterator<Item = PieceHash>,
        until: Instant,
        by: Option<PeerId>,
    ) {
        if self.pieces.len() >= MAX_SEEDING {
            self.pieces.retain(|_, (t, _)| *t > now);
        }
        for p in pieces {
            if self.pieces.len() >= MAX_SEEDING {
                break;
            }
            let live = self.pieces.get(&p).is_some_and(|(t, _)| *t > now);
            if by.is_none() || !live {
                self.pieces.insert(p, (until, by));
            }
        }
    }

    /// When `piece` stops counting as being seeded for `asker`, if it does
    /// now (a piece the asker itself is fetching does not).
    pub fn seeding_until(
        &self,
        now: Instant,
        piece: &PieceHash,
        asker: &PeerId,
    ) -> Option<Instant> {
        self.pieces
            .get(piece)
            .filter(|(t, by)| *t > now && *by != Some(*asker))
            .map(|(t, _)| *t)
    }

    /// A holder announced `pieces`: they are seeded.
    pub fn seeded(&mut self, pieces: &[PieceHash]) {
        if self.pieces.is_empty() {
            return;
        }
        for p in pieces {
            self.pieces.remove(p);
        }
    }

    /// Holds a want, unless the bounds say answer it now (false).
    pub fn hold(&mut self, want: HeldWant) -> bool {
        let mine = self.held.iter().filter(|w| w.asker == want.asker).count();
        if mine >= MAX_HELD_PER_ASKER || self.held.len() >= MAX_HELD {
            return false;
        }
        self.held.push(want);
        true
    }

    /// The held wants that can be answered now: none of their pieces is
    /// still being seeded, or their deadline passed. Expired marks go.
    pub fn take_ready(&mut self, now: Instant) -> Vec<HeldWant> {
        self.pieces.retain(|_, (t, _)| *t > now);
        let (ready, held): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.held).into_iter().partition(|w| {
                w.deadline <= now || !w.pieces.iter().any(|p| self.pieces.contains_key(p))
            });
        self.held = held;
        ready
    }

    /// Forgets the wants of a peer that left.
    pub fn drop_asker(&mut self, peer: &PeerId) {
        self.held.retain(|w| w.asker != *peer);
    }

    /// The earliest deadline of a held want.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.held.iter().map(|w| w.deadline).min()
    }

    /// Wants held now.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }
}

/// Which of `pieces` (the first [`MAX_HASHES_PER_MESSAGE`]) some provider
/// named in `providers` holds.
fn covered(pieces: &[PieceHash], providers: &[Provider]) -> Vec<bool> {
    let mut covered = vec![false; pieces.len().min(MAX_HASHES_PER_MESSAGE)];
    for prov in providers {
        for &i in &prov.pieces {
            if let Some(c) = covered.get_mut(i as usize) {
                *c = true;
            }
        }
    }
    covered
}

/// The planner's side of seeding: marking, holding and answering.
impl Planner {
    /// The pieces of `pieces` that nobody holds are now being fetched by
    /// `asker` (from the hub): others asking for them meanwhile wait for its
    /// `have` (see `seeding.rs`). A trusted permanent peer's fetches are not
    /// marked (its assigned pieces already are).
    pub(super) fn mark_fetching(
        &mut self,
        now: Instant,
        asker: PeerId,
        pieces: &[PieceHash],
        providers: &[Provider],
    ) {
        if self.config.seed_wait.is_zero() || self.peers.get(&asker).is_none_or(Peer::is_pinned) {
            return;
        }
        let covered = covered(pieces, providers);
        let uncovered: Vec<PieceHash> = pieces
            .iter()
            .zip(&covered)
            .filter(|(_, c)| !**c)
            .map(|(p, _)| *p)
            .take(MARKS_PER_WANT)
            .collect();
        let until = now + self.config.seed_wait;
        self.seeding.mark_by(now, uncovered, until, Some(asker));
    }

    /// When a want should be answered at the latest, if it waits for a
    /// seeder: a piece nobody named holds is being seeded, and the asker is
    /// not itself a trusted permanent peer.
    pub(super) fn seeding_deadline(
        &self,
        now: Instant,
        asker: &PeerId,
        pieces: &[PieceHash],
        providers: &[Provider],
    ) -> Option<Instant> {
        if self.config.seed_wait.is_zero() || self.peers.get(asker).is_none_or(Peer::is_pinned) {
            return None;
        }
        let covered = covered(pieces, providers);
        let until = pieces
            .iter()
            .zip(&covered)
            .filter(|(_, c)| !**c)
            .filter_map(|(p, _)| self.seeding.seeding_until(now, p, asker))
            .min()?;
        Some(until.min(now + self.config.seed_wait))
    }

    /// Answers the held wants whose pieces are seeded or whose time is up.
    pub(super) fn answer_held(&mut self, now: Instant) {
        if self.seeding.held_count() == 0 {
            return;
        }
        for w in self.seeding.take_ready(now) {
            if self.peers.contains_key(&w.asker) {
                let providers = self.rank_providers(now, &w.asker, &w.pieces);
                self.answer(now, w.asker, w.req, &w.pieces, providers);
            }
        }
    }

    /// As [`Planner::handle_content`], with the manifest's piece hashes: the
    /// pieces of new content whose partition a connected trusted permanent
    /// peer was assigned count as being seeded for `seed_wait` (see
    /// `seeding.rs`).
    pub fn handle_content_pieces(
        &mut self,
        now: Instant,
        resource: String,
        manifest: ManifestId,
        pieces: &[PieceHash],
    ) -> Result<(), ContentError> {
        let new = self.content.partition_count(&manifest).is_none();
        let count = u32::try_from(pieces.len()).unwrap_or(u32::MAX);
        self.handle_content(now, resource, manifest, count)?;
        if !new || self.config.seed_wait.is_zero() {
            return Ok(());
        }
        let per = self.config.partition_pieces.max(1) as usize;
        let until = now + self.config.seed_wait;
        let mut seeded = Vec::new();
        for (part, chunk) in pieces.chunks(per).enumerate() {
            let owned = self
                .content
                .owners(&manifest, part as u32)
                .iter()
                .any(|o| self.peers.get(o).is_some_and(Peer::is_pinned));
            if owned {
                seeded.extend_from_slice(chunk);
            }
        }
        self.seeding.mark(now, seeded, until);
        Ok(())
    }
}
