//! Key layouts of the index trees and the rules for names that go into them.
//!
//! Index keys are built so that a plain sled range or prefix scan answers each
//! question the store asks: the first `lru` key is the next victim, and an
//! `owners` prefix lists a swarm or one resource.

use tuber_proto::PieceHash;

use crate::error::{Result, StoreError};
use crate::{MAX_PATH_BYTES, MAX_RESOURCE_BYTES, MAX_SWARM_BYTES};

/// Length of an `lru` key: pinned flag, access counter, hash.
pub(crate) const LRU_KEY_LEN: usize = 1 + 8 + 32;

/// A 32-byte tree key back to a hash.
pub(crate) fn hash_from_key(key: &[u8]) -> Option<PieceHash> {
    <[u8; 32]>::try_from(key).ok().map(PieceHash::from_bytes)
}

/// The `lru` key of a piece. Big-endian access so that byte order is age
/// order; the pinned flag first so that every unpinned piece sorts before
/// every pinned one.
pub(crate) fn lru_key(pinned: bool, last_access: u64, hash: &PieceHash) -> [u8; LRU_KEY_LEN] {
    let mut key = [0u8; LRU_KEY_LEN];
    key[0] = u8::from(pinned);
    key[1..9].copy_from_slice(&last_access.to_be_bytes());
    key[9..].copy_from_slice(hash.as_bytes());
    key
}

/// The hash at the end of an `lru` or `owners` key.
pub(crate) fn trailing_hash(key: &[u8]) -> Option<PieceHash> {
    let start = key.len().checked_sub(32)?;
    hash_from_key(&key[start..])
}

/// The `owners` index key: `swarm 0x00 resource 0x00 hash`.
pub(crate) fn owner_key(swarm: &str, resource: &str, hash: &PieceHash) -> Vec<u8> {
    let mut key = resource_prefix(swarm, resource);
    key.extend_from_slice(hash.as_bytes());
    key
}

/// Prefix of every `owners` (and `manifests`) key of one swarm. Names hold no
/// NUL, so `a\0` never matches swarm `ab`.
pub(crate) fn swarm_prefix(swarm: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(swarm.len() + 1);
    key.extend_from_slice(swarm.as_bytes());
    key.push(0);
    key
}

/// Prefix of every `owners` key of one resource.
pub(crate) fn resource_prefix(swarm: &str, resource: &str) -> Vec<u8> {
    let mut key = swarm_prefix(swarm);
    key.extend_from_slice(resource.as_bytes());
    key.push(0);
    key
}

/// The `manifests` key: `swarm 0x00 path`.
pub(crate) fn manifest_key(swarm: &str, path: &str) -> Vec<u8> {
    let mut key = swarm_prefix(swarm);
    key.extend_from_slice(path.as_bytes());
    key
}

fn check_name(what: &'static str, name: &str, max: usize) -> Result<()> {
    let reason = if name.is_empty() {
        "empty".to_owned()
    } else if name.len() > max {
        format!("{} bytes, the limit is {max}", name.len())
    } else if name.contains('\0') {
        "contains a NUL byte".to_owned()
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidName { what, reason })
}

/// A swarm name: 1..=[`MAX_SWARM_BYTES`] bytes, no NUL.
pub(crate) fn check_swarm(swarm: &str) -> Result<()> {
    check_name("swarm", swarm, MAX_SWARM_BYTES)
}

/// A resource name: 1..=[`MAX_RESOURCE_BYTES`] bytes, no NUL.
pub(crate) fn check_resource(resource: &str) -> Result<()> {
    check_name("resource", resource, MAX_RESOURCE_BYTES)
}

/// A manifest path: 1..=[`MAX_PATH_BYTES`] bytes, no NUL.
pub(crate) fn check_path(path: &str) -> Result<()> {
    check_name("manifest path", path, MAX_PATH_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_keys_sort_unpinned_then_by_age() {
        let h = PieceHash::of(b"a");
        let old_pinned = lru_key(true, 1, &h);
        let new_unpinned = lru_key(false, u64::MAX - 1, &h);
        let old_unpinned = lru_key(false, 256, &h);
        assert!(old_unpinned < new_unpinned);
        assert!(new_unpinned < old_pinned);
        assert_eq!(trailing_hash(&old_pinned), Some(h));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_swarm("https://video.example.org/").is_ok());
        assert!(check_swarm("").is_err());
        assert!(check_swarm("a\0b").is_err());
        assert!(check_resource(&"r".repeat(MAX_RESOURCE_BYTES)).is_ok());
        assert!(check_resource(&"r".repeat(MAX_RESOURCE_BYTES + 1)).is_err());
        assert!(check_path("/v/seg1.ts").is_ok());
    }

    #[test]
    fn swarm_prefix_does_not_match_a_longer_swarm() {
        let h = PieceHash::of(b"x");
        assert!(!owner_key("ab", "r", &h).starts_with(&swarm_prefix("a")));
        assert!(owner_key("a", "r", &h).starts_with(&resource_prefix("a", "r")));
    }
}
