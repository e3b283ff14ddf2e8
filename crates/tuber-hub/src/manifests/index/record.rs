//! An index entry as the database keeps it (JSON in the `manifest_index`
//! tree, by path), written with its manifest and, for ask times, in
//! batches. Whether it is published is not kept: after a restart the
//! planner knows nothing, and the first rank publishes again.

use serde::{Deserialize, Serialize};
use tuber_proto::ManifestId;

use super::{Entry, NetKey};

/// One persisted entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRecord {
    /// The manifest's version (its key in the `manifests` tree).
    pub version: String,
    /// The manifest id.
    pub id: ManifestId,
    /// The resource's length.
    pub length: u64,
    /// The encoded manifest's length.
    pub bytes: u64,
    /// When it was first indexed, Unix seconds.
    pub added: u64,
    /// When it was last asked for, Unix seconds.
    pub last_asked: u64,
    /// Client networks (hex keys) and when each last asked.
    #[serde(default)]
    pub askers: Vec<(String, u64)>,
    /// When the hub itself last pushed it.
    #[serde(default)]
    pub pushed: Option<u64>,
}

impl IndexRecord {
    pub(super) fn of(e: &Entry) -> Self {
        Self {
            version: e.version.clone(),
            id: e.id,
            length: e.length,
            bytes: e.bytes,
            added: e.added,
            last_asked: e.last_asked,
            askers: e
                .askers
                .iter()
                .map(|(n, at)| (format!("{n:x}"), *at))
                .collect(),
            pushed: e.pushed,
        }
    }

    /// The entry, unpublished; askers whose key does not parse are dropped.
    pub(super) fn into_entry(self, expires: Option<u64>) -> Entry {
        Entry {
            version: self.version,
            id: self.id,
            length: self.length,
            bytes: self.bytes,
            persisted: true,
            added: self.added,
            last_asked: self.last_asked,
            askers: self
                .askers
                .into_iter()
                .filter_map(|(k, at)| Some((NetKey::from_str_radix(&k, 16).ok()?, at)))
                .collect(),
            pushed: self.pushed,
            expires,
            published: false,
        }
    }
}
