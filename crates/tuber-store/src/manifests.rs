//! Manifests: opaque bytes per (swarm, path), kept beside the pieces.
//!
//! The proto crate defines the manifest encoding; the store only keeps the
//! bytes, so a peer can serve and resume resources after a restart without
//! asking the hub again.

use tracing::warn;

use crate::core::StoreCore;
use crate::error::{Result, StoreError};
use crate::keys::{check_path, check_swarm, manifest_key, swarm_prefix};
use crate::MAX_MANIFEST_BYTES;

impl StoreCore {
    /// Stores a manifest (opaque bytes) under `(swarm, path)`, replacing any
    /// previous one. Manifests do not count against the piece budget.
    pub fn put_manifest(&mut self, swarm: &str, path: &str, bytes: &[u8]) -> Result<()> {
        check_swarm(swarm)?;
        check_path(path)?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(StoreError::ManifestTooLarge {
                size: bytes.len() as u64,
                max: MAX_MANIFEST_BYTES,
            });
        }
        let key = manifest_key(swarm, path);
        self.guarded(|s| {
            s.t.manifests.insert(&key, bytes)?;
            Ok(())
        })
    }

    /// The manifest stored under `(swarm, path)`.
    pub fn get_manifest(&mut self, swarm: &str, path: &str) -> Result<Option<Vec<u8>>> {
        check_swarm(swarm)?;
        check_path(path)?;
        let key = manifest_key(swarm, path);
        self.guarded(|s| Ok(s.t.manifests.get(&key)?.map(|v| v.to_vec())))
    }

    /// Every manifest of `swarm` as `(path, bytes)`, in path byte order.
    pub fn list_manifests(&mut self, swarm: &str) -> Result<Vec<(String, Vec<u8>)>> {
        check_swarm(swarm)?;
        let prefix = swarm_prefix(swarm);
        self.guarded(|s| {
            let mut out = Vec::new();
            for item in s.t.manifests.scan_prefix(&prefix) {
                let (key, value) = item?;
                match std::str::from_utf8(&key[prefix.len()..]) {
                    Ok(path) => out.push((path.to_owned(), value.to_vec())),
                    Err(_) => warn!(swarm, "skipping a manifest key that is not utf-8"),
                }
            }
            Ok(out)
        })
    }

    /// Deletes a manifest; whether there was one.
    pub fn delete_manifest(&mut self, swarm: &str, path: &str) -> Result<bool> {
        check_swarm(swarm)?;
        check_path(path)?;
        let key = manifest_key(swarm, path);
        self.guarded(|s| Ok(s.t.manifests.remove(&key)?.is_some()))
    }
}
