//! The holdings index: which connected peer holds which piece.
//!
//! Two maps kept in step: piece → holders, and peer → pieces. Holders are
//! split in two sets, trusted permanent peers ("pinned") and everyone else,
//! so that a `want` always sees every trusted holder even when it only
//! samples the other holders of a very popular piece (see `rank.rs`).
//! Bounded per peer: `have` beyond the peer's cap is ignored (one warning
//! per peer). Hash maps use std's randomly keyed hasher (hash flooding);
//! nothing that leaves the planner depends on their iteration order.

use std::collections::{HashMap, HashSet};

use tuber_proto::{PeerId, PieceHash};

/// Holders of one piece.
#[derive(Debug, Default)]
pub(super) struct Holders {
    /// Trusted permanent peers.
    pub pinned: HashSet<PeerId>,
    /// Everyone else.
    pub others: HashSet<PeerId>,
}

impl Holders {
    fn set(&mut self, pinned: bool) -> &mut HashSet<PeerId> {
        if pinned {
            &mut self.pinned
        } else {
            &mut self.others
        }
    }

    fn is_empty(&self) -> bool {
        self.pinned.is_empty() && self.others.is_empty()
    }
}

#[derive(Debug, Default)]
struct PeerPieces {
    pieces: HashSet<PieceHash>,
    pinned: bool,
    warned: bool,
}

/// The index.
#[derive(Debug, Default)]
pub(super) struct Holdings {
    by_piece: HashMap<PieceHash, Holders>,
    by_peer: HashMap<PeerId, PeerPieces>,
}

impl Holdings {
    /// Records that `peer` holds `pieces`, up to `cap` pieces in all. Returns
    /// how many were ignored because of the cap.
    pub fn add(&mut self, peer: PeerId, pinned: bool, pieces: &[PieceHash], cap: usize) -> usize {
        self.set_pinned(peer, pinned);
        let own = self.by_peer.entry(peer).or_default();
        own.pinned = pinned;
        let mut ignored = 0;
        for piece in pieces {
            if own.pieces.contains(piece) {
                continue;
            }
            if own.pieces.len() >= cap {
                ignored += 1;
                continue;
            }
            own.pieces.insert(*piece);
            self.by_piece
                .entry(*piece)
                .or_default()
                .set(pinned)
                .insert(peer);
        }
        if ignored > 0 && !own.warned {
            own.warned = true;
            tracing::warn!(
                ?peer,
                cap,
                "peer holds more pieces than the planner indexes; ignoring the rest"
            );
        }
        if own.pieces.is_empty() {
            self.by_peer.remove(&peer);
        }
        ignored
    }

    /// Records that `peer` no longer holds `pieces`.
    pub fn remove(&mut self, peer: PeerId, pieces: &[PieceHash]) {
        let Some(own) = self.by_peer.get_mut(&peer) else {
            return;
        };
        let pinned = own.pinned;
        for piece in pieces {
            if own.pieces.remove(piece) {
                Self::unindex(&mut self.by_piece, piece, peer, pinned);
            }
        }
        if own.pieces.is_empty() {
            self.by_peer.remove(&peer);
        }
    }

    /// Forgets everything `peer` holds.
    pub fn drop_peer(&mut self, peer: PeerId) {
        if let Some(own) = self.by_peer.remove(&peer) {
            for piece in &own.pieces {
                Self::unindex(&mut self.by_piece, piece, peer, own.pinned);
            }
        }
    }

    /// Moves `peer`'s entries to the pinned or the other holder sets (its
    /// trust or role changed).
    pub fn set_pinned(&mut self, peer: PeerId, pinned: bool) {
        let Some(own) = self.by_peer.get_mut(&peer) else {
            return;
        };
        if own.pinned == pinned {
            return;
        }
        for piece in &own.pieces {
            if let Some(h) = self.by_piece.get_mut(piece) {
                h.set(own.pinned).remove(&peer);
                h.set(pinned).insert(peer);
            }
        }
        own.pinned = pinned;
    }

    fn unindex(
        by_piece: &mut HashMap<PieceHash, Holders>,
        piece: &PieceHash,
        peer: PeerId,
        pinned: bool,
    ) {
        if let Some(h) = by_piece.get_mut(piece) {
            h.set(pinned).remove(&peer);
            if h.is_empty() {
                by_piece.remove(piece);
            }
        }
    }

    /// Who holds `piece`.
    pub fn holders(&self, piece: &PieceHash) -> Option<&Holders> {
        self.by_piece.get(piece)
    }

    /// How many pieces `peer` holds (as indexed).
    pub fn count(&self, peer: &PeerId) -> usize {
        self.by_peer.get(peer).map_or(0, |p| p.pieces.len())
    }

    /// Whether `peer` holds `piece`.
    pub fn holds(&self, peer: &PeerId, piece: &PieceHash) -> bool {
        self.by_peer
            .get(peer)
            .is_some_and(|p| p.pieces.contains(piece))
    }

    /// Distinct pieces held by anyone.
    pub fn piece_count(&self) -> usize {
        self.by_piece.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }
    fn h(n: u8) -> PieceHash {
        PieceHash::from_bytes([n; 32])
    }

    #[test]
    fn add_remove_cap_and_retier() {
        let mut x = Holdings::default();
        assert_eq!(x.add(p(1), false, &[h(1), h(2), h(3)], 2), 1);
        assert_eq!(x.count(&p(1)), 2);
        assert_eq!(x.add(p(2), true, &[h(1)], 10), 0);
        let hs = x.holders(&h(1)).map(|h| (h.pinned.len(), h.others.len()));
        assert_eq!(hs, Some((1, 1)));
        x.set_pinned(p(1), true);
        assert_eq!(x.holders(&h(1)).map(|h| h.pinned.len()), Some(2));
        x.remove(p(1), &[h(1), h(9)]);
        assert!(!x.holds(&p(1), &h(1)));
        x.drop_peer(p(1));
        x.drop_peer(p(2));
        assert_eq!(x.piece_count(), 0);
        x.remove(p(3), &[h(1)]);
        x.drop_peer(p(3));
    }
}
