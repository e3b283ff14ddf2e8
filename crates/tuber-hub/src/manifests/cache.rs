//! The hub's piece cache: the bytes of pieces it hashed, kept so that the
//! piece endpoint serves them without asking the origin again. Bounded in
//! bytes; the least recently used piece goes first. Its job is the pieces
//! no peer has yet (a first viewer's), not to be a second CDN: peers serve
//! everyone after that.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use tuber_proto::PieceHash;

/// A bounded LRU of piece bytes by hash. Cheap to share behind an `Arc`.
pub struct PieceCache {
    capacity: u64,
    inner: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Lru {
    /// hash → (bytes, tick of the last use).
    map: HashMap<PieceHash, (Bytes, u64)>,
    /// tick → hash, oldest first.
    order: BTreeMap<u64, PieceHash>,
    bytes: u64,
    tick: u64,
}

impl PieceCache {
    /// A cache of at most `capacity` bytes (0: keeps nothing).
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Lru::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The bytes of `hash`, if kept; counts a hit or a miss.
    pub fn get(&self, hash: &PieceHash) -> Option<Bytes> {
        let mut lru = lock(&self.inner);
        let lru = &mut *lru;
        lru.tick += 1;
        let tick = lru.tick;
        let Some((bytes, last)) = lru.map.get_mut(hash) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        lru.order.remove(last);
        *last = tick;
        lru.order.insert(tick, *hash);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(bytes.clone())
    }

    /// Keeps `bytes` as piece `hash` (the caller verified they hash to it),
    /// evicting the least recently used pieces to make room.
    pub fn insert(&self, hash: PieceHash, bytes: Bytes) {
        let len = bytes.len() as u64;
        if len > self.capacity {
            return;
        }
        let mut lru = lock(&self.inner);
        let lru = &mut *lru;
        lru.tick += 1;
        let tick = lru.tick;
        if let Some((old, last)) = lru.map.insert(hash, (bytes, tick)) {
            lru.order.remove(&last);
            lru.bytes -= old.len() as u64;
        }
        lru.order.insert(tick, hash);
        lru.bytes += len;
        while lru.bytes > self.capacity {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some((gone, _)) = lru.map.remove(&oldest) {
                lru.bytes -= gone.len() as u64;
            }
        }
    }

    /// Drops piece `hash` (its manifest was forgotten).
    pub fn remove(&self, hash: &PieceHash) {
        let mut lru = lock(&self.inner);
        if let Some((gone, tick)) = lru.map.remove(hash) {
            lru.order.remove(&tick);
            lru.bytes -= gone.len() as u64;
        }
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> u64 {
        lock(&self.inner).bytes
    }

    /// Lookups answered from the cache, and not, since start.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update keeps map, order and bytes consistent before it can
    // panic (it cannot), so a poisoned lock is still a good cache.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(n: u8, len: usize) -> (PieceHash, Bytes) {
        let bytes = Bytes::from(vec![n; len]);
        (PieceHash::of(&bytes), bytes)
    }

    #[test]
    fn the_least_recently_used_piece_goes_first_and_the_bound_holds() {
        let cache = PieceCache::new(300);
        let (a, b, c, d) = (piece(1, 100), piece(2, 100), piece(3, 100), piece(4, 100));
        cache.insert(a.0, a.1.clone());
        cache.insert(b.0, b.1.clone());
        cache.insert(c.0, c.1.clone());
        assert_eq!(cache.get(&a.0), Some(a.1.clone()), "a is used again");
        cache.insert(d.0, d.1.clone());
        assert_eq!(cache.bytes(), 300);
        assert_eq!(cache.get(&b.0), None, "b was the least recently used");
        for p in [&a, &c, &d] {
            assert_eq!(cache.get(&p.0).as_ref(), Some(&p.1));
        }
        assert_eq!(cache.hits_and_misses(), (4, 1));
        // Re-inserting replaces, never double-counts.
        cache.insert(d.0, d.1.clone());
        assert_eq!(cache.bytes(), 300);
        // Larger than the whole cache: not kept, nothing evicted.
        let big = piece(5, 301);
        cache.insert(big.0, big.1);
        assert_eq!(cache.bytes(), 300);
        assert_eq!(cache.get(&big.0), None);
    }

    #[test]
    fn a_zero_capacity_cache_keeps_nothing() {
        let cache = PieceCache::new(0);
        let a = piece(1, 10);
        cache.insert(a.0, a.1);
        assert_eq!(cache.get(&a.0), None);
        assert_eq!(cache.bytes(), 0);
    }
}
