//! Content being seeded: pieces the hub just published and assigned to a
//! connected trusted permanent peer, which is fetching them now. A `want`
//! for such a piece that nobody holds yet is answered when a trusted peer
//! announces it, or at the latest after `seed_wait`, instead of at once
//! with "nobody": at a live stream's edge, viewers ask for a new segment
//! within a few hundred milliseconds of it appearing, and answering
//! "nobody" sends each of them to the hub for it, so the hub serves the
//! segment once to the donor and again to the viewers. Waiting a moment
//! lets the donor seed the edge. Trusted permanent peers' own wants are never
//! held (they are the seeders), and the number of held wants is bounded per
//! asker and in total; past the bounds a want is answered at once.

use std::collections::HashMap;
use std::time::Instant;

use tuber_proto::{PeerId, PieceHash};

/// Pieces marked as being seeded, at most.
pub const MAX_SEEDING: usize = 262_144;
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
    /// Piece → until when it counts as being seeded.
    pieces: HashMap<PieceHash, Instant>,
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
        if self.pieces.len() >= MAX_SEEDING {
            self.pieces.retain(|_, t| *t > now);
        }
        for p in pieces {
            if self.pieces.len() >= MAX_SEEDING {
                break;
            }
            self.pieces.insert(p, until);
        }
    }

    /// When `piece` stops counting as being seeded, if it does now.
    pub fn seeding_until(&self, now: Instant, piece: &PieceHash) -> Option<Instant> {
        self.pieces.get(piece).copied().filter(|t| *t > now)
    }

    /// A trusted peer holds `pieces`: they are seeded.
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
        self.pieces.retain(|_, t| *t > now);
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
