//! Demand, and the two decisions made from it: what to forget when the
//! index is over its bounds, and what to publish within the capacity.

use std::collections::HashSet;

use super::{Change, Entry, ForgetReason, ManifestIndex, DEMAND_HALF_LIFE, INCUMBENT_BONUS};

/// What an ask (or a push) of `age` seconds counts for.
fn decay(age: u64) -> f64 {
    0.5f64.powf(age as f64 / DEMAND_HALF_LIFE as f64)
}

impl ManifestIndex {
    /// An entry's demand at `now` (see the module docs).
    fn demand(&self, now: u64, e: &Entry) -> f64 {
        let asked: f64 = e
            .askers
            .iter()
            .map(|(net, at)| {
                let share = f64::from(self.nets.get(net).copied().unwrap_or(1).max(1));
                decay(now.saturating_sub(*at)) / share
            })
            .sum();
        let pushed = e.pushed.map_or(0.0, |t| decay(now.saturating_sub(t)));
        asked + pushed
    }

    /// `path`'s demand at `now`, if indexed.
    pub fn demand_of(&self, now: u64, path: &str) -> Option<f64> {
        self.entries.get(path).map(|e| self.demand(now, e))
    }

    /// Over `max_count` or `max_bytes`: forgets the least wanted entries
    /// (then the least recently asked) until 1/16 under both bounds.
    pub(super) fn enforce_bounds(&mut self, now: u64) {
        let (max_n, max_b) = (self.config.max_count, self.config.max_bytes);
        if self.entries.len() <= max_n && self.bytes <= max_b {
            return;
        }
        let (low_n, low_b) = (max_n - max_n / 16, max_b - max_b / 16);
        let mut order: Vec<(f64, u64, String)> = self
            .entries
            .iter()
            .map(|(p, e)| (self.demand(now, e), e.last_asked, p.clone()))
            .collect();
        order.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then_with(|| a.2.cmp(&b.2))
        });
        for (_, _, path) in order {
            if self.entries.len() <= low_n && self.bytes <= low_b {
                break;
            }
            self.forget(&path, ForgetReason::Bound);
        }
    }

    /// Publishes the most wanted entries that fit in the capacity and
    /// unpublishes the others, if anything changed since the last call.
    /// Unpublications come out first, so trusted peers free room before
    /// they fetch.
    pub fn rank(&mut self, now: u64) {
        if !self.rank_due {
            return;
        }
        self.rank_due = false;
        let mut order: Vec<(f64, u64, &String)> = self
            .entries
            .iter()
            .map(|(p, e)| {
                let bonus = if e.published { INCUMBENT_BONUS } else { 1.0 };
                (self.demand(now, e) * bonus, e.last_asked, p)
            })
            .collect();
        order.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(b.1.cmp(&a.1))
                .then_with(|| a.2.cmp(b.2))
        });
        let mut room = self.capacity;
        let mut wanted: HashSet<String> = HashSet::new();
        for (_, _, path) in order {
            let len = self.entries[path].length;
            if len <= room {
                room -= len;
                wanted.insert(path.clone());
            }
        }
        let mut publish = Vec::new();
        let mut unpublish = Vec::new();
        for (path, e) in &mut self.entries {
            match (wanted.contains(path), e.published) {
                (true, false) => {
                    e.published = true;
                    self.published += 1;
                    self.published_bytes += e.length;
                    publish.push((path.clone(), e.version.clone()));
                }
                (false, true) => {
                    e.published = false;
                    self.published -= 1;
                    self.published_bytes -= e.length;
                    unpublish.push(e.id);
                }
                _ => {}
            }
        }
        // Deterministic order (the maps' is not).
        unpublish.sort();
        publish.sort();
        self.changes
            .extend(unpublish.into_iter().map(|id| Change::Unpublish { id }));
        self.changes.extend(
            publish
                .into_iter()
                .map(|(path, version)| Change::Publish { path, version }),
        );
    }
}
