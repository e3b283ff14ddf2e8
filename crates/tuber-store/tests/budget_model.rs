//! Random sequences of operations against a simple model of the eviction
//! policy: the store must agree with the model after every step, stay within
//! its budget, keep its totals equal to a recount, and verify every read.

mod common;

use std::collections::BTreeMap;

use common::{assert_consistent, open, owner, piece};
use proptest::prelude::*;
use tuber_store::{PieceHash, StoreError};

const POOL: usize = 12;

#[derive(Debug, Clone)]
enum Op {
    Put { idx: usize, pinned: bool },
    Get { idx: usize },
    Delete { idx: usize },
    Pin { idx: usize, pinned: bool },
    SetBudget { budget: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..POOL, proptest::bool::weighted(0.25)).prop_map(|(idx, pinned)| Op::Put { idx, pinned }),
        3 => (0..POOL).prop_map(|idx| Op::Get { idx }),
        1 => (0..POOL).prop_map(|idx| Op::Delete { idx }),
        1 => (0..POOL, any::<bool>()).prop_map(|(idx, pinned)| Op::Pin { idx, pinned }),
        1 => (0u64..16_000).prop_map(|budget| Op::SetBudget { budget }),
    ]
}

#[derive(Clone, Copy)]
struct Entry {
    size: u64,
    pinned: bool,
    access: u64,
}

/// The eviction policy, stated as plainly as possible.
struct Model {
    budget: u64,
    clock: u64,
    pieces: BTreeMap<PieceHash, Entry>,
}

impl Model {
    fn bytes(&self, pinned_only: bool) -> u64 {
        self.pieces
            .values()
            .filter(|e| e.pinned || !pinned_only)
            .map(|e| e.size)
            .sum()
    }

    /// Victims in eviction order among the pieces a put may evict.
    fn order(&self, allow_pinned: bool) -> Vec<PieceHash> {
        let mut v: Vec<_> = self
            .pieces
            .iter()
            .filter(|(_, e)| allow_pinned || !e.pinned)
            .collect();
        v.sort_by_key(|(_, e)| (e.pinned, e.access));
        v.into_iter().map(|(h, _)| *h).collect()
    }

    fn put(&mut self, h: PieceHash, size: u64, pinned: bool) -> Option<Vec<PieceHash>> {
        if let Some(e) = self.pieces.get_mut(&h) {
            self.clock += 1;
            e.access = self.clock;
            e.pinned |= pinned;
            return Some(vec![]);
        }
        let bytes = self.bytes(false);
        let free = self.budget.saturating_sub(bytes);
        let evictable = if pinned {
            bytes
        } else {
            bytes - self.bytes(true)
        };
        if size > (free + evictable).min(self.budget) {
            return None;
        }
        let mut freed = free;
        let mut evicted = vec![];
        for v in self.order(pinned) {
            if freed >= size {
                break;
            }
            freed += self.pieces.remove(&v).unwrap().size;
            evicted.push(v);
        }
        self.clock += 1;
        self.pieces.insert(
            h,
            Entry {
                size,
                pinned,
                access: self.clock,
            },
        );
        Some(evicted)
    }

    fn shrink(&mut self) -> Vec<PieceHash> {
        let mut evicted = vec![];
        for v in self.order(true) {
            if self.bytes(false) <= self.budget {
                break;
            }
            self.pieces.remove(&v);
            evicted.push(v);
        }
        evicted
    }
}

fn pool() -> Vec<(PieceHash, Vec<u8>)> {
    (0..POOL).map(|i| piece(i as u64, 500 + 300 * i)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_the_model(budget in 2000u64..16_000, ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), budget);
        let mut model = Model { budget, clock: 0, pieces: BTreeMap::new() };
        let pool = pool();
        for op in ops {
            match op {
                Op::Put { idx, pinned } => {
                    let (h, b) = &pool[idx];
                    let got = store.put(h, b, &owner("/r"), pinned);
                    match (got, model.put(*h, b.len() as u64, pinned)) {
                        (Ok(out), Some(evicted)) => prop_assert_eq!(out.evicted, evicted),
                        (Err(StoreError::Full { .. }), None) => {}
                        (got, want) => prop_assert!(false, "store {:?}, model {:?}", got, want),
                    }
                }
                Op::Get { idx } => {
                    let (h, b) = &pool[idx];
                    let got = store.get(h).unwrap();
                    if let Some(e) = model.pieces.get_mut(h) {
                        model.clock += 1;
                        e.access = model.clock;
                        prop_assert_eq!(got.as_deref(), Some(&b[..]));
                    } else {
                        prop_assert_eq!(got, None);
                    }
                }
                Op::Delete { idx } => {
                    let h = &pool[idx].0;
                    prop_assert_eq!(store.delete(h).unwrap(), model.pieces.remove(h).is_some());
                }
                Op::Pin { idx, pinned } => {
                    let h = &pool[idx].0;
                    match (store.set_pinned(h, pinned), model.pieces.get_mut(h)) {
                        (Ok(()), Some(e)) => e.pinned = pinned,
                        (Err(StoreError::NotFound { .. }), None) => {}
                        (got, _) => prop_assert!(false, "set_pinned: {:?}", got),
                    }
                }
                Op::SetBudget { budget } => {
                    model.budget = budget;
                    prop_assert_eq!(store.set_budget(budget).unwrap(), model.shrink());
                }
            }
            assert_consistent(&store);
            let t = store.totals();
            prop_assert_eq!(t.pieces, model.pieces.len() as u64);
            prop_assert_eq!(t.bytes, model.bytes(false));
            prop_assert_eq!(t.pinned_bytes, model.bytes(true));
            for (h, _) in &pool {
                prop_assert_eq!(store.has(h).unwrap(), model.pieces.contains_key(h));
            }
        }
        prop_assert!(store.scrub().unwrap().is_clean());
    }
}
