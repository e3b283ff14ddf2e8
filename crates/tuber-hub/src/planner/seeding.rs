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

use tuber_proto::{PeerId, PieceHash};

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
