//! Pending assignment changes, and the `assign`/`unassign` messages that
//! announce them.
//!
//! A change is recorded per (peer, manifest, partition); an assignment and
//! an unassignment of the same partition cancel out, so that a remove then an
//! add within one input emits nothing. Messages are batched per peer and
//! manifest: partitions become piece ranges (adjacent ones merged), at most
//! [`MAX_RANGES`] per message; the message's `partition` field is the first
//! partition it covers, and the ranges say exactly which pieces. The largest
//! such message (1024 ranges of 6-digit indices, a 2048-byte resource with
//! every byte escaped) is about 35 KiB: always one frame.

use std::collections::{BTreeMap, HashMap};

use tuber_proto::limits::MAX_RANGES;
use tuber_proto::signal::{HubToClient, PieceRange};
use tuber_proto::{ManifestId, PeerId};

/// Pending assignment changes: per (peer, manifest), partition → assigned
/// (`true`) or unassigned (`false`).
#[derive(Debug, Default)]
pub(super) struct Changes {
    parts: BTreeMap<(PeerId, ManifestId), BTreeMap<u32, bool>>,
    meta: HashMap<ManifestId, (String, u32)>,
}

impl Changes {
    pub fn record(
        &mut self,
        peer: PeerId,
        m: ManifestId,
        meta: (&str, u32),
        partition: u32,
        assign: bool,
    ) {
        self.meta
            .entry(m)
            .or_insert_with(|| (meta.0.to_string(), meta.1));
        let parts = self.parts.entry((peer, m)).or_default();
        match parts.get(&partition) {
            Some(&prev) if prev != assign => {
                parts.remove(&partition);
            }
            _ => {
                parts.insert(partition, assign);
            }
        }
    }

    /// The `assign`/`unassign` messages, batched per peer and manifest into
    /// merged piece ranges, at most [`MAX_RANGES`] a message; `partition` is
    /// the first partition a message covers. `Unassign` comes before `Assign`.
    pub fn into_messages(self, partition_pieces: u32) -> Vec<(PeerId, HubToClient)> {
        let mut out = Vec::new();
        for ((peer, m), parts) in self.parts {
            let Some((resource, n)) = self.meta.get(&m) else {
                continue;
            };
            for assign in [false, true] {
                let list: Vec<u32> = parts
                    .iter()
                    .filter(|(_, &a)| a == assign)
                    .map(|(&p, _)| p)
                    .collect();
                for (partition, ranges) in batch(&list, partition_pieces, *n) {
                    let (resource, manifest) = (resource.clone(), m);
                    let msg = if assign {
                        HubToClient::Assign {
                            partition,
                            resource,
                            manifest,
                            ranges,
                        }
                    } else {
                        HubToClient::Unassign {
                            partition,
                            resource,
                            manifest,
                            ranges,
                        }
                    };
                    out.push((peer, msg));
                }
            }
        }
        out
    }
}

/// Sorted partitions → (first partition, ≤ MAX_RANGES merged ranges) chunks.
fn batch(partitions: &[u32], size: u32, piece_count: u32) -> Vec<(u32, Vec<PieceRange>)> {
    let mut out: Vec<(u32, Vec<PieceRange>)> = Vec::new();
    for &p in partitions {
        let start = u64::from(p) * u64::from(size);
        let end = (start + u64::from(size)).min(u64::from(piece_count));
        if start >= end {
            continue;
        }
        // Both are ≤ piece_count, a u32.
        let (start, end) = (start as u32, end as u32);
        if let Some((_, ranges)) = out.last_mut() {
            if let Some(last) = ranges.last_mut() {
                if last.end == start {
                    last.end = end;
                    continue;
                }
            }
            if ranges.len() < MAX_RANGES {
                ranges.push(PieceRange { start, end });
                continue;
            }
        }
        out.push((p, vec![PieceRange { start, end }]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_merges_and_splits() {
        let b = batch(&[0, 1, 3], 4, 14);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].0, 0);
        assert_eq!(
            b[0].1,
            vec![
                PieceRange { start: 0, end: 8 },
                PieceRange { start: 12, end: 14 }
            ]
        );
        let every_other: Vec<u32> = (0..3000).map(|i| i * 2).collect();
        let b = batch(&every_other, 1, 6000);
        assert_eq!(
            b.iter().map(|c| c.1.len()).collect::<Vec<_>>(),
            [1024, 1024, 952]
        );
        assert_eq!(b[1].0, 2048);
    }
}
