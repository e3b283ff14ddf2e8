//! Making a manifest from the upstream's bytes: one GET, its body hashed
//! piece by piece on the hashing thread (at most
//! [`MAX_COMPUTING`](super::MAX_COMPUTING) at once,
//! given up after [`BODY_IDLE`] of silence), and the manifests of
//! resources without validator, made again after [`UNVALIDATED_TTL`].

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{header, Method, StatusCode};
use http_body_util::BodyExt;
use tuber_proto::limits::MAX_PIECES;
use tuber_proto::Manifest;

use super::hasher::HashJob;
use super::upstream::validator;
use super::{
    lock, ManifestServiceError, Manifests, BODY_IDLE, UNKNOWN_LENGTH_CHARGE, UNVALIDATED_TTL,
};

impl Manifests {
    pub(super) async fn unvalidated(
        &self,
        path: &str,
        client: Option<IpAddr>,
        length: Option<u64>,
    ) -> Result<Arc<Manifest>, ManifestServiceError> {
        if let Some((at, m)) = lock(&self.inner.unvalidated).get(path) {
            if at.elapsed() < UNVALIDATED_TTL {
                return Ok(Arc::clone(m));
            }
        }
        self.charge(client, length.unwrap_or(UNKNOWN_LENGTH_CHARGE))?;
        let m = self.compute(path, client).await?;
        // Indexed in memory (not in the database: it has no version to
        // look it up by); an attacker requesting many paths only churns
        // the bounded map.
        self.keep(&m, false, client).await?;
        Ok(m)
    }

    /// Streams the body once, hashing piece by piece. The version is the
    /// validator of this very response (the resource may have changed since
    /// the HEAD), else the SHA-256 of the bytes.
    pub(super) async fn compute(
        &self,
        path: &str,
        client: Option<IpAddr>,
    ) -> Result<Arc<Manifest>, ManifestServiceError> {
        let resp = self.upstream(Method::GET, path, None, client).await?;
        if resp.status() != StatusCode::OK {
            return Err(ManifestServiceError::Upstream(resp.status()));
        }
        // Again on this very response: it may differ from the HEAD's.
        self.check_distributable(path, resp.headers())?;
        let version = validator(resp.headers());
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .chars()
            .filter(|c| !c.is_control())
            .take(tuber_proto::limits::MAX_CONTENT_TYPE_LEN)
            .collect::<String>();
        let piece_size = self.inner.piece_size as usize;
        let max_len = MAX_PIECES as u64 * piece_size as u64;
        let _permit = Arc::clone(&self.inner.computing)
            .acquire_owned()
            .await
            .map_err(|_| ManifestServiceError::Unreachable("shutting down".into()))?;
        let mut job = HashJob::start(piece_size, Arc::clone(&self.inner.cache));
        let mut body = resp.into_body();
        loop {
            let frame = match tokio::time::timeout(BODY_IDLE, body.frame()).await {
                Err(_) => {
                    return Err(ManifestServiceError::Unreachable(format!(
                        "the upstream sent nothing for {BODY_IDLE:?}"
                    )))
                }
                Ok(None) => break,
                Ok(Some(frame)) => {
                    frame.map_err(|e| ManifestServiceError::Unreachable(e.to_string()))?
                }
            };
            if let Ok(data) = frame.into_data() {
                if job.fed() + data.len() as u64 > max_len {
                    return Err(ManifestServiceError::TooLarge(
                        job.fed() + data.len() as u64,
                    ));
                }
                if !job.feed(data).await {
                    return Err(ManifestServiceError::Unreachable("hashing stopped".into()));
                }
            }
        }
        let hashed = job
            .finish()
            .await
            .ok_or_else(|| ManifestServiceError::Unreachable("hashing failed".into()))?;
        let (length, pieces, whole) = (hashed.length, hashed.pieces, hashed.whole);
        let version = version.unwrap_or_else(|| format!("sha256:{}", hex::encode(whole)));
        self.inner.computed.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Manifest {
            path: path.to_string(),
            length,
            content_type,
            version,
            piece_size: self.inner.piece_size,
            pieces,
        }))
    }
}
