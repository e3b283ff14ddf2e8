//! The hub's sled database: invites, trusted keys, bans, the manifest
//! cache and its index (`manifest_index.rs`). One process may open it at a time (sled holds a file lock), so a
//! second process (`tuber-hub invite create` while the hub runs) gets
//! [`DbError::Locked`] and talks to the running hub's admin API instead.
//!
//! sled calls block: async callers go through `spawn_blocking`.

mod manifest_index;

use std::path::Path;

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Another process (a running hub) holds the database.
    #[error("the hub database at {0} is in use by another process (is the hub running?)")]
    Locked(String),
    /// sled failed.
    #[error("hub database: {0}")]
    Sled(#[from] sled::Error),
    /// A record did not decode: the database is damaged or from a newer hub.
    #[error("hub database record {0} is damaged")]
    Corrupt(&'static str),
}

/// How long [`HubDb::open`] waits for a lock to be released.
pub const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Handles to the hub's trees. Cheap to clone.
#[derive(Clone)]
pub struct HubDb {
    db: sled::Db,
    pub(crate) invites: sled::Tree,
    pub(crate) trusted: sled::Tree,
    pub(crate) bans: sled::Tree,
    pub(crate) manifests: sled::Tree,
    /// Path → its manifest's index record (`manifests::index`).
    pub(crate) manifest_index: sled::Tree,
}

impl HubDb {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, DbError> {
        Self::open_waiting(dir, LOCK_PATIENCE)
    }

    /// [`HubDb::open`], waiting up to `patience` for a lock to be released.
    pub fn open_waiting(dir: &Path, patience: std::time::Duration) -> Result<Self, DbError> {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Sled(sled::Error::Io(e)))?;
        let path = dir.join("hub.sled");
        // sled's flusher thread keeps the lock for a moment after the last
        // handle of a previous open is dropped; only a lock that persists
        // means another process.
        let deadline = std::time::Instant::now() + patience;
        let db = loop {
            match sled::Config::new().path(&path).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if is_lock_error(&e) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(DbError::Locked(path.display().to_string()));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Self {
            invites: db.open_tree("invites")?,
            trusted: db.open_tree("trusted")?,
            bans: db.open_tree("bans")?,
            manifests: db.open_tree("manifests")?,
            manifest_index: db.open_tree("manifest_index")?,
            db,
        })
    }

    /// Flushes to disk.
    pub fn flush(&self) -> Result<(), DbError> {
        self.db.flush()?;
        Ok(())
    }
}

fn is_lock_error(e: &std::io::Error) -> bool {
    // sled reports a held lock as WouldBlock, with "could not acquire lock".
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock")
}

/// Seconds since the Unix epoch; the only clock the database uses.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A persisted ban.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BanRecord {
    /// Why (e.g. "bad pieces reported by 3 peers").
    pub reason: String,
    /// Unix seconds.
    pub since: u64,
}

impl HubDb {
    /// Records a ban; a banned peer is refused when it returns, across restarts.
    pub fn record_ban(
        &self,
        peer: &tuber_proto::PeerId,
        reason: &str,
        now: u64,
    ) -> Result<(), DbError> {
        let rec = BanRecord {
            reason: reason.to_string(),
            since: now,
        };
        let value = serde_json::to_vec(&rec).map_err(|_| DbError::Corrupt("ban"))?;
        self.bans.insert(peer.as_bytes(), value)?;
        self.bans.flush()?;
        Ok(())
    }

    /// Every ban.
    pub fn bans(&self) -> Result<Vec<(tuber_proto::PeerId, BanRecord)>, DbError> {
        let mut out = Vec::new();
        for item in self.bans.iter() {
            let (k, v) = item?;
            let id: [u8; 32] = k.as_ref().try_into().map_err(|_| DbError::Corrupt("ban"))?;
            let rec = serde_json::from_slice(&v).map_err(|_| DbError::Corrupt("ban"))?;
            out.push((tuber_proto::PeerId::from_bytes(id), rec));
        }
        Ok(out)
    }

    /// Lifts a ban.
    pub fn unban(&self, peer: &tuber_proto::PeerId) -> Result<bool, DbError> {
        Ok(self.bans.remove(peer.as_bytes())?.is_some())
    }

    /// The cached manifest of `path` at upstream `version`, if computed before.
    /// A damaged entry reads as absent (it is recomputed), never as an error.
    pub fn cached_manifest(
        &self,
        path: &str,
        version: &str,
    ) -> Result<Option<tuber_proto::Manifest>, DbError> {
        let Some(raw) = self.manifests.get(manifest_key(path, version))? else {
            return Ok(None);
        };
        Ok(tuber_proto::Manifest::decode(&raw)
            .ok()
            .filter(|m| m.path == path && m.version == version))
    }

    /// Caches a manifest under its path and version, replacing older versions
    /// of the same path. (The hub itself stores through the index:
    /// `store_indexed`.)
    pub fn store_manifest(&self, manifest: &tuber_proto::Manifest) -> Result<(), DbError> {
        let mut batch = sled::Batch::default();
        self.replace_manifest(&mut batch, manifest)?;
        self.manifests.apply_batch(batch)?;
        Ok(())
    }

    /// Adds to `batch` the removal of `manifest.path`'s other versions and
    /// the insertion of `manifest`.
    fn replace_manifest(
        &self,
        batch: &mut sled::Batch,
        manifest: &tuber_proto::Manifest,
    ) -> Result<(), DbError> {
        let mut prefix = manifest.path.as_bytes().to_vec();
        prefix.push(0);
        for k in self.manifests.scan_prefix(&prefix).keys() {
            batch.remove(k?);
        }
        batch.insert(
            manifest_key(&manifest.path, &manifest.version),
            manifest.encode(),
        );
        Ok(())
    }

    /// Manifests stored (one per path and version).
    pub fn manifest_count(&self) -> usize {
        self.manifests.len()
    }
}

fn manifest_key(path: &str, version: &str) -> Vec<u8> {
    // Paths hold no NUL (the protocol refuses control characters).
    let mut k = Vec::with_capacity(path.len() + version.len() + 1);
    k.extend_from_slice(path.as_bytes());
    k.push(0);
    k.extend_from_slice(version.as_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuber_proto::{Manifest, PeerId};

    #[test]
    fn bans_and_manifests_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m1 = Manifest::build("/v.mp4", "video/mp4", "\"1\"", 16384, &[1u8; 40_000]);
        let m2 = Manifest::build("/v.mp4", "video/mp4", "\"2\"", 16384, &[2u8; 40_000]);
        {
            let db = HubDb::open(dir.path()).expect("open");
            db.record_ban(&PeerId::from_bytes([9; 32]), "liar", 5)
                .expect("ban");
            db.store_manifest(&m1).expect("store");
            db.store_manifest(&m2).expect("store");
            db.flush().expect("flush");
        }
        let db = HubDb::open(dir.path()).expect("reopen");
        let bans = db.bans().expect("bans");
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].1.reason, "liar");
        assert_eq!(
            db.cached_manifest("/v.mp4", "\"2\"").expect("get"),
            Some(m2)
        );
        assert_eq!(
            db.cached_manifest("/v.mp4", "\"1\"").expect("get"),
            None,
            "old version replaced"
        );
        assert!(db.unban(&PeerId::from_bytes([9; 32])).expect("unban"));
        assert!(db.bans().expect("bans").is_empty());
    }
}
