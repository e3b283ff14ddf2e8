//! The index's maps kept in step: entries, ids, aliases, per-network
//! counts, expiries, byte totals and the publication tally.

use super::{Entry, ForgetReason, Forgotten, ManifestIndex, NetKey, MAX_ASKERS};
use crate::proxy::distributable::strip_query;

impl ManifestIndex {
    pub(super) fn insert(&mut self, path: &str, e: Entry) {
        self.bytes += e.bytes;
        if let Some(t) = e.expires {
            self.expiring.insert((t, path.to_string()));
        }
        self.by_id.insert(e.id, path.to_string());
        self.by_content
            .entry((strip_query(path).to_string(), e.version.clone()))
            .or_default()
            .push(path.to_string());
        self.entries.insert(path.to_string(), e);
    }

    /// Removes an entry from every map (its askers' counts too).
    pub(super) fn remove(&mut self, path: &str) -> Option<Entry> {
        let e = self.entries.remove(path)?;
        self.bytes -= e.bytes;
        if e.published {
            self.published -= 1;
            self.published_bytes -= e.length;
        }
        if let Some(t) = e.expires {
            self.expiring.remove(&(t, path.to_string()));
        }
        if self.by_id.get(&e.id).is_some_and(|p| p == path) {
            self.by_id.remove(&e.id);
        }
        let key = (strip_query(path).to_string(), e.version.clone());
        if let Some(paths) = self.by_content.get_mut(&key) {
            paths.retain(|p| p != path);
            if paths.is_empty() {
                self.by_content.remove(&key);
            }
        }
        for (net, _) in &e.askers {
            self.uncount(*net);
        }
        self.dirty.remove(path);
        Some(e)
    }

    pub(super) fn forget(&mut self, path: &str, reason: ForgetReason) {
        let Some(e) = self.remove(path) else { return };
        let alias = self.alias_of(path, &e.version).map(str::to_string);
        if let Some(i) = ForgetReason::ALL.iter().position(|r| *r == reason) {
            self.forgotten_counts[i] += 1;
        }
        if e.published {
            self.rank_due = true;
        }
        self.forgotten.push_back(Forgotten {
            path: path.to_string(),
            version: e.version,
            id: e.id,
            persisted: e.persisted,
            published: e.published,
            reason,
            alias,
        });
    }

    pub(super) fn add_asker(&mut self, path: &str, net: NetKey, at: u64) {
        let Some(e) = self.entries.get_mut(path) else {
            return;
        };
        if let Some(a) = e.askers.iter_mut().find(|(n, _)| *n == net) {
            a.1 = a.1.max(at);
            return;
        }
        let mut replaced = None;
        if e.askers.len() >= MAX_ASKERS {
            if let Some(k) = (0..e.askers.len()).min_by_key(|&k| e.askers[k].1) {
                replaced = Some(e.askers.swap_remove(k).0);
            }
        }
        e.askers.push((net, at));
        *self.nets.entry(net).or_insert(0) += 1;
        if let Some(old) = replaced {
            self.uncount(old);
        }
    }

    pub(super) fn drop_asker(&mut self, path: &str, net: NetKey) {
        if let Some(e) = self.entries.get_mut(path) {
            let before = e.askers.len();
            e.askers.retain(|(n, _)| *n != net);
            if e.askers.len() < before {
                self.uncount(net);
                self.dirty.insert(path.to_string());
            }
        }
    }

    pub(super) fn uncount(&mut self, net: NetKey) {
        if let Some(n) = self.nets.get_mut(&net) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.nets.remove(&net);
            }
        }
    }

    /// Marks `path` published if it is or fits in the capacity.
    pub(super) fn try_publish(&mut self, path: &str) -> bool {
        let Some(e) = self.entries.get_mut(path) else {
            return false;
        };
        if e.published {
            return true;
        }
        if self.published_bytes.saturating_add(e.length) > self.capacity {
            return false;
        }
        e.published = true;
        self.published += 1;
        self.published_bytes += e.length;
        true
    }
}
