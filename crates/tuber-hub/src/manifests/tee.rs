//! Hashing a distributable response as the proxy streams it to a viewer, so
//! that the bytes the origin sends for that viewer also make the manifest
//! (and fill the piece cache): the hub does not download the resource a
//! second time to hash it.
//!
//! [`Manifests::tee`] starts one when nothing is known or in flight for the
//! path and version and a hashing slot is free; [`TeeBody`] wraps the
//! response body and hands every chunk to the hashing thread without ever
//! making the viewer wait (a thread that falls behind spoils the tee). When
//! the body ends with exactly the announced length, the manifest is built,
//! stored and indexed; if the viewer leaves early the tee is abandoned and a
//! later request hashes the resource the ordinary way.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::FutureExt;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use tuber_proto::limits::{MAX_CONTENT_TYPE_LEN, MAX_PIECES};
use tuber_proto::Manifest;

use super::hasher::HashJob;
use super::{lock, Computation, ManifestServiceError, Manifests};

/// The hashing side of one teed response.
pub struct Tee {
    job: Option<HashJob>,
    done: Option<oneshot::Sender<HashJob>>,
    expected: u64,
}

impl Tee {
    fn data(&mut self, data: &Bytes) {
        let Some(job) = &mut self.job else { return };
        if job.fed() + data.len() as u64 > self.expected || !job.try_feed(data.clone()) {
            // Longer than announced, or the thread is behind: give up.
            self.job = None;
            self.done = None;
        } else if job.fed() == self.expected {
            // All announced bytes are here: a body of known length may never
            // be polled for its end.
            self.end();
        }
    }

    fn end(&mut self) {
        if let (Some(job), Some(done)) = (self.job.take(), self.done.take()) {
            if job.fed() == self.expected {
                let _ = done.send(job);
            }
        }
    }
}

impl Manifests {
    /// A tee for the response to `path` about to be streamed: its
    /// `version` (validator), `content_type` and full `length`. None when
    /// the manifest of that version is known, being made, or teed already,
    /// or every hashing slot is taken.
    pub fn tee(&self, path: &str, version: &str, content_type: &str, length: u64) -> Option<Tee> {
        let inner = &self.inner;
        let piece_size = inner.piece_size;
        if length == 0 || length > MAX_PIECES as u64 * u64::from(piece_size) {
            return None;
        }
        if super::check_path(path).is_err() || version.len() > tuber_proto::limits::MAX_VERSION_LEN
        {
            return None;
        }
        if lock(&inner.current).get(path).is_some_and(|v| v == version) {
            return None;
        }
        if self.check_expired(path).is_err() {
            return None;
        }
        let key = (path.to_string(), version.to_string());
        if lock(&inner.inflight).contains_key(&key) {
            return None;
        }
        let mut teeing = lock(&inner.teeing);
        if teeing.contains_key(&key) {
            return None;
        }
        let permit = Arc::clone(&inner.computing).try_acquire_owned().ok()?;
        let job = HashJob::start(piece_size as usize, Arc::clone(&inner.cache));
        let (done, finished) = oneshot::channel::<HashJob>();
        let this = self.clone();
        let content_type: String = content_type
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_CONTENT_TYPE_LEN)
            .collect();
        let content_type = if content_type.is_empty() {
            "application/octet-stream".to_string()
        } else {
            content_type
        };
        let (p, v) = key.clone();
        let computation: Computation = async move {
            let result = async {
                let job = finished
                    .await
                    .map_err(|_| ManifestServiceError::Abandoned)?;
                let hashed = job.finish().await.ok_or(ManifestServiceError::Abandoned)?;
                let m = Arc::new(Manifest {
                    path: p.clone(),
                    length: hashed.length,
                    content_type,
                    version: v.clone(),
                    piece_size,
                    pieces: hashed.pieces,
                });
                this.store(&m, None).await?;
                this.inner
                    .computed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                this.inner
                    .teed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(m)
            }
            .await;
            drop(permit);
            lock(&this.inner.teeing).remove(&(p, v));
            result
        }
        .boxed()
        .shared();
        teeing.insert(key, computation.clone());
        drop(teeing);
        // Driven to its end whoever waits (the publisher may not).
        tokio::spawn(computation);
        Some(Tee {
            job: Some(job),
            done: Some(done),
            expected: length,
        })
    }
}

/// A response body whose data is also handed to a [`Tee`].
pub struct TeeBody<B> {
    inner: B,
    tee: Tee,
}

impl<B> TeeBody<B> {
    pub fn new(inner: B, tee: Tee) -> Self {
        Self { inner, tee }
    }
}

impl<B> Body for TeeBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.tee.data(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.tee.end();
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
