//! Hashing a resource's bytes into a manifest's piece hashes, on a blocking
//! thread (SHA-256 of a 256 KiB piece is about a millisecond: too long for
//! an async worker), keeping each finished piece's bytes in the piece cache
//! so the hub never asks the origin for them again.
//!
//! The async side hands the body's chunks to [`HashJob::feed`] as they
//! arrive (from the hub's own upstream read, or teed from a response the
//! proxy is streaming to a viewer) and [`HashJob::finish`]es; dropping the
//! job abandons it.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tuber_proto::PieceHash;

use super::cache::PieceCache;

/// Chunks queued for the hashing thread at most (each a body frame, a few
/// to some tens of KiB).
pub(super) const QUEUE: usize = 256;

/// What hashing a whole body gave.
#[derive(Debug)]
pub(super) struct Hashed {
    pub length: u64,
    pub pieces: Vec<PieceHash>,
    /// SHA-256 of the whole body (the version of a resource without one).
    pub whole: [u8; 32],
}

/// A body being hashed on a blocking thread.
pub(super) struct HashJob {
    tx: mpsc::Sender<Bytes>,
    done: tokio::task::JoinHandle<Hashed>,
    fed: u64,
}

impl HashJob {
    /// Starts the thread: pieces of `piece_size` bytes, kept in `cache`.
    pub fn start(piece_size: usize, cache: Arc<PieceCache>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        let done = tokio::task::spawn_blocking(move || {
            let mut h = PieceHasher::new(piece_size, Some(cache));
            while let Some(chunk) = rx.blocking_recv() {
                h.update(&chunk);
            }
            h.finish()
        });
        Self { tx, done, fed: 0 }
    }

    /// Bytes handed over so far.
    pub fn fed(&self) -> u64 {
        self.fed
    }

    /// Hands over a chunk, waiting while the thread is behind.
    pub async fn feed(&mut self, chunk: Bytes) -> bool {
        self.fed += chunk.len() as u64;
        self.tx.send(chunk).await.is_ok()
    }

    /// Hands over a chunk without waiting; false (and the job is spoilt)
    /// when the thread is behind: a viewer's stream never waits for it.
    pub fn try_feed(&mut self, chunk: Bytes) -> bool {
        self.fed += chunk.len() as u64;
        self.tx.try_send(chunk).is_ok()
    }

    /// The hashes of everything fed.
    pub async fn finish(self) -> Option<Hashed> {
        drop(self.tx);
        self.done.await.ok()
    }
}

/// Hashes a stream piece by piece, and whole; optionally keeps each
/// finished piece in a cache.
pub(super) struct PieceHasher {
    piece_size: usize,
    current: Sha256,
    bytes: BytesMut,
    in_current: usize,
    whole: Sha256,
    pieces: Vec<PieceHash>,
    length: u64,
    cache: Option<Arc<PieceCache>>,
}

impl PieceHasher {
    pub fn new(piece_size: usize, cache: Option<Arc<PieceCache>>) -> Self {
        Self {
            piece_size,
            current: Sha256::new(),
            bytes: BytesMut::new(),
            in_current: 0,
            whole: Sha256::new(),
            pieces: Vec::new(),
            length: 0,
            cache,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.whole.update(data);
        self.length += data.len() as u64;
        while !data.is_empty() {
            let take = (self.piece_size - self.in_current).min(data.len());
            self.current.update(&data[..take]);
            if self.cache.is_some() {
                self.bytes.extend_from_slice(&data[..take]);
            }
            self.in_current += take;
            data = &data[take..];
            if self.in_current == self.piece_size {
                self.end_piece();
            }
        }
    }

    fn end_piece(&mut self) {
        let done = std::mem::take(&mut self.current);
        let hash = PieceHash::from_bytes(done.finalize().into());
        if let Some(cache) = &self.cache {
            cache.insert(hash, self.bytes.split().freeze());
        }
        self.pieces.push(hash);
        self.in_current = 0;
    }

    pub fn finish(mut self) -> Hashed {
        if self.in_current > 0 {
            self.end_piece();
        }
        Hashed {
            length: self.length,
            pieces: self.pieces,
            whole: self.whole.finalize().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuber_proto::Manifest;

    #[test]
    fn piece_hasher_matches_manifest_build_for_any_chunking() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let expected = Manifest::build("/x", "a/b", "1", 16384, &data);
        for chunk in [1usize, 1000, 16384, 16385, 99_999, 200_000] {
            let cache = Arc::new(PieceCache::new(1 << 20));
            let mut h = PieceHasher::new(16384, Some(Arc::clone(&cache)));
            for c in data.chunks(chunk) {
                h.update(c);
            }
            let Hashed {
                length,
                pieces,
                whole,
            } = h.finish();
            assert_eq!(length, data.len() as u64);
            assert_eq!(pieces, expected.pieces, "chunk {chunk}");
            assert_eq!(whole, <[u8; 32]>::from(Sha256::digest(&data)));
            // Every piece is kept, and is the bytes it is named by.
            for (i, p) in pieces.iter().enumerate() {
                let kept = cache.get(p).expect("kept");
                assert_eq!(
                    &kept[..],
                    &data[i * 16384..((i + 1) * 16384).min(data.len())]
                );
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_hashes_on_its_thread_what_it_is_fed() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let cache = Arc::new(PieceCache::new(1 << 20));
        let mut job = HashJob::start(16384, Arc::clone(&cache));
        for c in data.chunks(5000) {
            assert!(job.feed(Bytes::copy_from_slice(c)).await);
        }
        assert_eq!(job.fed(), data.len() as u64);
        let hashed = job.finish().await.expect("hashed");
        let expected = Manifest::build("/x", "a/b", "1", 16384, &data);
        assert_eq!(hashed.pieces, expected.pieces);
        assert_eq!(cache.bytes(), data.len() as u64);
    }
}
