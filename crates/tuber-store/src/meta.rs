//! Per-piece metadata and its compact binary encoding.
//!
//! Hand-written rather than serde: the record is small and fixed in shape, and
//! a strict decoder (exact length, known version, valid names) is what turns
//! a damaged record into a clean "corrupt" verdict instead of a panic or a
//! plausible-looking wrong value.
//!
//! Encoding, version 1 (all integers big-endian):
//!
//! ```text
//! u8  version = 1
//! u32 size
//! u64 last_access
//! u64 hits
//! u64 bytes_served
//! u8  pinned (0 or 1)
//! u8  owner count (1..=MAX_OWNERS)
//! per owner: u16 swarm length, swarm, u16 resource length, resource
//! ```

use crate::keys::{check_resource, check_swarm};
use crate::MAX_OWNERS;

const VERSION: u8 = 1;

/// One (swarm, resource) pair that a piece belongs to. A piece is addressed
/// by its content, so the same bytes can belong to several resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    /// The swarm, named by its site URL.
    pub swarm: String,
    /// The resource (a URL path on the origin).
    pub resource: String,
}

impl Owner {
    /// An owner from its two names. They are checked when used.
    pub fn new(swarm: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            swarm: swarm.into(),
            resource: resource.into(),
        }
    }
}

/// What the store knows about one piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceMeta {
    /// Length of the piece in bytes.
    pub size: u64,
    /// Who the piece belongs to, first put first; at most [`MAX_OWNERS`].
    pub owners: Vec<Owner>,
    /// The store's logical clock at the last put or get of this piece. A
    /// counter rather than wall time, so eviction order is exact.
    pub last_access: u64,
    /// How many times the piece was read.
    pub hits: u64,
    /// Total bytes returned by reads of this piece.
    pub bytes_served: u64,
    /// A pinned piece is evicted only by a pinned put or a budget cut.
    pub pinned: bool,
}

/// Why a metadata record did not decode. Only ever logged: to the caller a
/// bad record is a corrupt piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl PieceMeta {
    /// The record as stored in the `meta` tree.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let names: usize = self
            .owners
            .iter()
            .map(|o| 4 + o.swarm.len() + o.resource.len())
            .sum();
        let mut out = Vec::with_capacity(31 + names);
        out.push(VERSION);
        // `put` bounds sizes by MAX_PIECE_BYTES, far below u32::MAX.
        out.extend_from_slice(&u32::try_from(self.size).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&self.last_access.to_be_bytes());
        out.extend_from_slice(&self.hits.to_be_bytes());
        out.extend_from_slice(&self.bytes_served.to_be_bytes());
        out.push(u8::from(self.pinned));
        // Owner lists and name lengths are bounded by the checks in `put`.
        out.push(u8::try_from(self.owners.len()).unwrap_or(u8::MAX));
        for owner in &self.owners {
            for name in [&owner.swarm, &owner.resource] {
                out.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
                out.extend_from_slice(name.as_bytes());
            }
        }
        out
    }

    /// Parses a record; anything but an exact, valid record is an error.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (mut meta, names) = Self::parse(bytes)?;
        meta.owners = names
            .iter()
            .map(|(swarm, resource)| Owner::new(*swarm, *resource))
            .collect();
        Ok(meta)
    }

    /// The size of the piece a record describes, after the same checks as
    /// [`PieceMeta::decode`] but without copying the names out: what a read
    /// needs, on every read.
    pub(crate) fn checked_size(bytes: &[u8]) -> Result<u64, DecodeError> {
        Ok(Self::parse(bytes)?.0.size)
    }

    /// The record with no owners, and the owners' names as they lie in
    /// `bytes`.
    fn parse(bytes: &[u8]) -> Result<(Self, OwnerNames<'_>), DecodeError> {
        let mut r = Reader(bytes);
        if r.u8()? != VERSION {
            return Err(DecodeError("unknown metadata version"));
        }
        let size = u64::from(r.u32()?);
        let last_access = r.u64()?;
        let hits = r.u64()?;
        let bytes_served = r.u64()?;
        let pinned = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError("pinned flag is not 0 or 1")),
        };
        let count = usize::from(r.u8()?);
        if count == 0 || count > MAX_OWNERS {
            return Err(DecodeError("owner count out of range"));
        }
        let mut names = OwnerNames::default();
        for _ in 0..count {
            let swarm = r.name()?;
            let resource = r.name()?;
            check_swarm(swarm).map_err(|_| DecodeError("invalid swarm name"))?;
            check_resource(resource).map_err(|_| DecodeError("invalid resource name"))?;
            names.push((swarm, resource));
        }
        if !r.0.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        let meta = Self {
            size,
            owners: Vec::new(),
            last_access,
            hits,
            bytes_served,
            pinned,
        };
        Ok((meta, names))
    }
}

/// Owner names borrowed from a record; on the stack for the usual few.
#[derive(Default)]
struct OwnerNames<'a> {
    inline: [(&'a str, &'a str); 2],
    len: usize,
    more: Vec<(&'a str, &'a str)>,
}

impl<'a> OwnerNames<'a> {
    fn push(&mut self, name: (&'a str, &'a str)) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = name,
            None => self.more.push(name),
        }
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &(&'a str, &'a str)> {
        self.inline[..self.len.min(2)].iter().chain(&self.more)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(DecodeError("truncated record"))?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take()?))
    }
    fn name(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(u16::from_be_bytes(self.take()?));
        if self.0.len() < len {
            return Err(DecodeError("truncated name"));
        }
        let (name, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(name).map_err(|_| DecodeError("name is not utf-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> PieceMeta {
        PieceMeta {
            size: 262_144,
            owners: vec![
                Owner::new("https://video.example.org/", "/v/seg1.ts"),
                Owner::new("https://other.example/", "/big.iso"),
            ],
            last_access: 42,
            hits: 7,
            bytes_served: 7 * 262_144,
            pinned: true,
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(PieceMeta::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn rejects_damage_without_panicking() {
        let good = sample().encode();
        for cut in 0..good.len() {
            assert!(PieceMeta::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(PieceMeta::decode(&long).is_err());
        let mut bad_flag = good.clone();
        bad_flag[29] = 2;
        assert!(PieceMeta::decode(&bad_flag).is_err());
        let mut no_owner = good;
        no_owner[30] = 0;
        assert!(PieceMeta::decode(&no_owner).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PieceMeta::decode(&bytes);
        }

        #[test]
        fn flipped_bytes_never_decode_to_the_same_record(at in 0usize..60, bit in 0u8..8) {
            let good = sample().encode();
            let at = at % good.len();
            let mut bad = good.clone();
            bad[at] ^= 1 << bit;
            prop_assert_ne!(PieceMeta::decode(&bad).ok(), Some(sample()));
        }
    }
}
