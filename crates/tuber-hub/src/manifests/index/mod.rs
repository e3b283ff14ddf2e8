//! The manifest index: which manifests the hub keeps, bounded in count and
//! bytes, what each was last asked for and by which client networks, when a
//! signed URL's manifest expires, and which manifests the planner assigns
//! to trusted peers. Sans-IO: Unix seconds come in, what to forget and what
//! to (un)publish comes out ([`ManifestIndex::poll_forgotten`],
//! [`ManifestIndex::poll_change`]); the manifest service deletes from the
//! database and its maps, the publication task talks to the planner.
//!
//! **Demand.** Each entry remembers the last [`MAX_ASKERS`] client networks
//! (IPv4 /24, IPv6 /48) that asked for it (a manifest or a piece request)
//! and when. Its demand is the sum, over those networks, of
//! `decay(age) / (entries that network asked for)`, with `decay` halving
//! every [`DEMAND_HALF_LIFE`]: a network's asks are one vote shared among
//! everything it asks for, so a crawler asking for 100,000 paths gives each
//! a hundred-thousandth of a vote while a viewer's one video gets a whole
//! one, and a resource counts as many votes as networks want it. The hub's
//! own pushes (the admin content API, live segments) count as one vote of
//! their own.
//!
//! **Forgetting.** An entry nobody asked for within `retention` is
//! forgotten; past `max_count` or `max_bytes` the least wanted entries go
//! (lowest demand, then least recently asked) until the index is 1/16 under
//! its bounds, so eviction work is paid once per many insertions; an entry
//! whose signed URL expired goes at its expiry.
//!
//! **Publication.** The planner assigns what is published, and the index
//! publishes at most what the trusted peers can hold: their declared disk
//! divided by the copies the planner keeps ([`ManifestIndex::handle_capacity`]).
//! A resource is published when asked for if it fits; otherwise, and
//! whenever demand or capacity changed, [`ManifestIndex::rank`] publishes
//! the most wanted entries that fit (already published ones counting
//! [`INCUMBENT_BONUS`] times their demand, so near-ties do not make donors
//! fetch and drop content back and forth) and unpublishes the rest.

mod entries;
mod rank;
mod record;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tuber_proto::ManifestId;

pub use record::IndexRecord;

use crate::proxy::distributable::strip_query;

/// A client network, as [`crate::network::network_key`] names it.
pub type NetKey = u128;

/// Client networks remembered per entry (the oldest ask is replaced).
pub const MAX_ASKERS: usize = 8;
/// An ask counts half as much after this long (seconds).
pub const DEMAND_HALF_LIFE: u64 = 24 * 3600;
/// Published entries rank with this factor on their demand.
pub const INCUMBENT_BONUS: f64 = 1.25;
/// How often entries are checked against `retention` (seconds).
const AGE_SCAN_EVERY: u64 = 60;

/// The `[manifests]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Manifests kept at most (in the database and indexed). Default 100,000.
    pub max_count: usize,
    /// Bytes of encoded manifests kept at most (about 70 bytes per piece).
    /// Default 256 MiB.
    pub max_bytes: u64,
    /// A manifest nobody asked for this long is forgotten. Default 7 days.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Whether a signed URL's expiry in its query string (AWS SigV4, Google
    /// Cloud Storage, CloudFront `Expires`, `exp`/`e`, Akamai tokens, Azure
    /// SAS; see `tuber_proto::expiry`) ends the distribution of its
    /// resource at that moment. Default true.
    pub expire_signed_urls: bool,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            max_count: 100_000,
            max_bytes: 256 << 20,
            retention: Duration::from_secs(7 * 24 * 3600),
            expire_signed_urls: true,
        }
    }
}

/// Why an entry was forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForgetReason {
    /// Nobody asked for it within `retention`.
    Age,
    /// The least wanted when the index was over its bounds.
    Bound,
    /// Its signed URL expired.
    Expired,
    /// The hub retired it (a live segment no playlist lists any more).
    Retired,
}

impl ForgetReason {
    /// Every reason, in the order of [`ManifestIndex::forgotten_counts`].
    pub const ALL: [ForgetReason; 4] = [Self::Age, Self::Bound, Self::Expired, Self::Retired];

    /// The `reason` label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Age => "age",
            Self::Bound => "bound",
            Self::Expired => "expired",
            Self::Retired => "retired",
        }
    }
}

/// An entry the index dropped: the service deletes it from the database
/// (when `persisted`) and its maps, the publication task unpublishes it
/// (when `published`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forgotten {
    pub path: String,
    pub version: String,
    pub id: ManifestId,
    pub persisted: bool,
    pub published: bool,
    pub reason: ForgetReason,
    /// Another entry with the same bytes (same path without query, same
    /// version): its pieces are still distributed under that path.
    pub alias: Option<String>,
}

/// A publication decision for the planner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Make this manifest known to the planner (assigned to trusted peers).
    Publish { path: String, version: String },
    /// The planner stops assigning it (trusted peers unpin it).
    Unpublish { id: ManifestId },
}

/// A manifest being indexed.
#[derive(Debug, Clone)]
pub struct Stored<'a> {
    pub path: &'a str,
    pub version: &'a str,
    pub id: ManifestId,
    /// The resource's length (what a trusted peer stores).
    pub length: u64,
    /// The encoded manifest's length (what the database stores).
    pub bytes: u64,
    /// Kept in the database (false: a resource without validator, kept
    /// in memory only).
    pub persisted: bool,
    /// The network of the client whose request made it, if any: counted
    /// as an ask before the bounds apply, so a new resource is not the
    /// least wanted for want of asks.
    pub asker: Option<NetKey>,
}

#[derive(Debug, Clone)]
struct Entry {
    version: String,
    id: ManifestId,
    length: u64,
    bytes: u64,
    persisted: bool,
    added: u64,
    last_asked: u64,
    askers: Vec<(NetKey, u64)>,
    pushed: Option<u64>,
    expires: Option<u64>,
    published: bool,
}

/// The index. See the module docs.
#[derive(Debug, Default)]
pub struct ManifestIndex {
    config: IndexConfig,
    entries: HashMap<String, Entry>,
    by_id: HashMap<ManifestId, String>,
    /// (path without query, version) → the paths with those bytes.
    by_content: HashMap<(String, String), Vec<String>>,
    /// Per network, how many entries list it among their askers.
    nets: HashMap<NetKey, u32>,
    expiring: BTreeSet<(u64, String)>,
    bytes: u64,
    published_bytes: u64,
    published: usize,
    capacity: u64,
    dirty: HashSet<String>,
    forgotten: VecDeque<Forgotten>,
    changes: VecDeque<Change>,
    rank_due: bool,
    next_age_scan: u64,
    forgotten_counts: [u64; 4],
}

impl ManifestIndex {
    /// An empty index with these bounds (zeros raised to 1).
    pub fn new(mut config: IndexConfig) -> Self {
        config.max_count = config.max_count.max(1);
        config.max_bytes = config.max_bytes.max(1);
        Self {
            config,
            ..Self::default()
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// When `path`'s signed URL expires, if it does and the hub honours it.
    pub fn expiry_of(&self, path: &str) -> Option<u64> {
        self.config
            .expire_signed_urls
            .then(|| tuber_proto::expiry::signed_url_expiry(path))
            .flatten()
    }

    /// Whether `path` is a signed URL that expired at `now`.
    pub fn is_expired(&self, now: u64, path: &str) -> bool {
        self.expiry_of(path).is_some_and(|t| t <= now)
    }

    /// Indexes a manifest just stored (or loaded), replacing the entry of
    /// an older version of its path; then applies the bounds. False when it
    /// is not indexed: its signed URL expired, or it was the least wanted.
    pub fn handle_stored(&mut self, now: u64, m: Stored<'_>) -> bool {
        let expires = self.expiry_of(m.path);
        if expires.is_some_and(|t| t <= now) {
            return false;
        }
        let kept = match self.entries.get(m.path) {
            Some(old) if old.version == m.version => return true,
            Some(_) => self.remove(m.path),
            None => None,
        };
        let published = kept.as_ref().filter(|e| e.published).map(|e| e.id);
        let entry = Entry {
            version: m.version.to_string(),
            id: m.id,
            length: m.length,
            bytes: m.bytes,
            persisted: m.persisted,
            added: kept.as_ref().map_or(now, |e| e.added),
            last_asked: kept.as_ref().map_or(now, |e| e.last_asked),
            askers: Vec::new(),
            pushed: kept.as_ref().and_then(|e| e.pushed),
            expires,
            published: false,
        };
        self.insert(m.path, entry);
        if let Some(old) = &kept {
            for (net, at) in &old.askers {
                self.add_asker(m.path, *net, *at);
            }
        }
        if let Some(net) = m.asker {
            self.add_asker(m.path, net, now);
        }
        if let Some(old_id) = published {
            if self.try_publish(m.path) {
                // The planner replaces the old version's assignment.
                self.changes.push_back(Change::Publish {
                    path: m.path.to_string(),
                    version: m.version.to_string(),
                });
            } else {
                self.changes.push_back(Change::Unpublish { id: old_id });
            }
        }
        self.dirty.insert(m.path.to_string());
        self.rank_due = true;
        self.enforce_bounds(now);
        self.contains(m.path, m.version)
    }

    /// Whether `path` is indexed at `version`.
    pub fn contains(&self, path: &str, version: &str) -> bool {
        self.entries.get(path).is_some_and(|e| e.version == version)
    }

    /// `path` was asked for at `now` by a client of network `net` (None:
    /// the hub itself or an unknown client: recency only).
    pub fn handle_asked(&mut self, now: u64, path: &str, net: Option<NetKey>) {
        let Some(e) = self.entries.get_mut(path) else {
            return;
        };
        e.last_asked = e.last_asked.max(now);
        if let Some(net) = net {
            self.add_asker(path, net, now);
        }
        self.dirty.insert(path.to_string());
        self.rank_due = true;
    }

    /// The hub itself wants `path` distributed (the admin content API, a
    /// live segment): one vote of its own, decaying like the others.
    pub fn handle_pushed(&mut self, now: u64, path: &str) {
        if let Some(e) = self.entries.get_mut(path) {
            e.pushed = Some(now);
            e.last_asked = e.last_asked.max(now);
            self.dirty.insert(path.to_string());
            self.rank_due = true;
        }
    }

    /// Whether `path` at `version` is (now) published: it was, or it fits
    /// in what the trusted peers can hold. Otherwise the next
    /// [`rank`](Self::rank) decides.
    pub fn offer(&mut self, path: &str, version: &str) -> bool {
        if !self.contains(path, version) {
            return false;
        }
        if self.try_publish(path) {
            return true;
        }
        self.rank_due = true;
        false
    }

    /// What the trusted peers can hold, bytes of resources (their declared
    /// disk over the copies kept of each piece).
    pub fn handle_capacity(&mut self, bytes: u64) {
        if bytes != self.capacity {
            self.capacity = bytes;
            self.rank_due = true;
        }
    }

    /// The hub no longer distributes manifest `id` (a retired live segment).
    pub fn forget_id(&mut self, id: &ManifestId, reason: ForgetReason) {
        if let Some(path) = self.by_id.get(id).cloned() {
            self.forget(&path, reason);
        }
    }

    /// Forgets `path` (an in-memory manifest the service dropped).
    pub fn forget_path(&mut self, path: &str, reason: ForgetReason) {
        self.forget(path, reason);
    }

    /// Forgets what expired by `now` and, every minute, what nobody asked
    /// for within `retention` (and asks older than that).
    pub fn handle_sweep(&mut self, now: u64) {
        while let Some((t, path)) = self.expiring.first().cloned() {
            if t > now {
                break;
            }
            self.forget(&path, ForgetReason::Expired);
        }
        if now < self.next_age_scan {
            return;
        }
        self.next_age_scan = now + AGE_SCAN_EVERY;
        let cutoff = now.saturating_sub(self.config.retention.as_secs());
        let old: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.last_asked < cutoff)
            .map(|(p, _)| p.clone())
            .collect();
        for path in old {
            self.forget(&path, ForgetReason::Age);
        }
        let stale: Vec<(String, NetKey)> = self
            .entries
            .iter()
            .flat_map(|(p, e)| {
                e.askers
                    .iter()
                    .filter(|(_, at)| *at < cutoff)
                    .map(move |(n, _)| (p.clone(), *n))
            })
            .collect();
        for (path, net) in stale {
            self.drop_asker(&path, net);
        }
    }

    /// The next entry to delete, if any.
    #[must_use]
    pub fn poll_forgotten(&mut self) -> Option<Forgotten> {
        self.forgotten.pop_front()
    }

    /// The next publication change for the planner, if any.
    #[must_use]
    pub fn poll_change(&mut self) -> Option<Change> {
        self.changes.pop_front()
    }

    /// Whether demand, capacity or entries changed since the last rank.
    pub fn rank_due(&self) -> bool {
        self.rank_due
    }

    /// The records to write for entries whose ask times changed since the
    /// last call (the service writes them in one batch).
    pub fn take_dirty(&mut self) -> Vec<(String, IndexRecord)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter_map(|p| Some((p.clone(), self.record(&p)?)))
            .collect()
    }

    /// The record of a persisted entry.
    pub fn record(&self, path: &str) -> Option<IndexRecord> {
        let e = self.entries.get(path).filter(|e| e.persisted)?;
        Some(IndexRecord::of(e))
    }

    /// Indexes persisted entries read at start (each as a stored manifest
    /// of `bytes` encoded bytes), then forgets what expired or aged out
    /// meanwhile and what the bounds do not allow.
    pub fn restore(&mut self, now: u64, records: Vec<(String, IndexRecord)>) {
        for (path, rec) in records {
            if self.entries.contains_key(&path) {
                continue;
            }
            let expires = self.expiry_of(&path);
            let entry = rec.into_entry(expires);
            let askers = entry.askers.clone();
            let mut entry = entry;
            entry.askers.clear();
            self.insert(&path, entry);
            for (net, at) in askers.into_iter().take(MAX_ASKERS) {
                self.add_asker(&path, net, at);
            }
        }
        self.next_age_scan = 0;
        self.handle_sweep(now);
        self.enforce_bounds(now);
        self.dirty.clear();
        self.rank_due = true;
    }

    // ---- getters ----------------------------------------------------------

    /// Entries indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Encoded bytes of the entries indexed.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Entries published to the planner, and their resources' bytes.
    pub fn published(&self) -> (usize, u64) {
        (self.published, self.published_bytes)
    }

    /// Whether `path` is published.
    pub fn is_published(&self, path: &str) -> bool {
        self.entries.get(path).is_some_and(|e| e.published)
    }

    /// Entries forgotten since start, by [`ForgetReason::ALL`].
    pub fn forgotten_counts(&self) -> [u64; 4] {
        self.forgotten_counts
    }

    /// Another indexed path with the same bytes as `path` at `version`.
    pub fn alias_of(&self, path: &str, version: &str) -> Option<&str> {
        let key = (strip_query(path).to_string(), version.to_string());
        self.by_content
            .get(&key)?
            .iter()
            .find(|p| *p != path)
            .map(String::as_str)
    }
}
