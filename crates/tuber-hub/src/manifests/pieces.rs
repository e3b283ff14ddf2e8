//! The piece endpoint's side of the service: a piece from the cache, else
//! read from the upstream with a Range request and verified.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use tuber_proto::{Manifest, PieceHash};

use super::{lock, ManifestServiceError, Manifests};

impl Manifests {
    /// The manifest of `path` the hub made or loaded last (the version it
    /// saw current then), if it has one: what a reader falling back from
    /// peers verifies against, so its pieces can be served without asking
    /// whether the upstream changed.
    pub async fn current_manifest(&self, path: &str) -> Option<Arc<Manifest>> {
        // An expired signed URL goes to the origin, which judges it.
        self.check_expired(path).ok()?;
        let version = lock(&self.inner.current).get(path).cloned()?;
        if let Some((_, m)) = lock(&self.inner.unvalidated).get(path) {
            if m.version == version {
                return Some(Arc::clone(m));
            }
        }
        let db = self.inner.db.clone();
        let p = path.to_string();
        let found = tokio::task::spawn_blocking(move || db.cached_manifest(&p, &version));
        found.await.ok()?.ok()?.map(Arc::new)
    }

    /// The bytes of piece `hash`, read from the upstream with a Range
    /// request and verified before they are returned.
    pub async fn fetch_piece(&self, hash: &PieceHash) -> Result<Bytes, ManifestServiceError> {
        self.fetch_piece_for(hash, None).await
    }

    /// As [`fetch_piece`](Self::fetch_piece), on behalf of `client` (named
    /// to the upstream in `X-Forwarded-For`, so its IP rules apply).
    pub async fn fetch_piece_for(
        &self,
        hash: &PieceHash,
        client: Option<IpAddr>,
    ) -> Result<Bytes, ManifestServiceError> {
        let loc = self
            .locate(hash)
            .ok_or(ManifestServiceError::UnknownPiece)?;
        self.check_expired(&loc.path)?;
        self.asked(&loc.path, client);
        if let Some(bytes) = self.inner.cache.get(hash) {
            return Ok(bytes);
        }
        self.charge(client, u64::from(loc.length))?;
        let last = loc.offset + u64::from(loc.length) - 1;
        let range = format!("bytes={}-{last}", loc.offset);
        let resp = self
            .upstream(Method::GET, &loc.path, Some(&range), client)
            .await?;
        let status = resp.status();
        // 206 is the answer to the range; 200 means the upstream ignored
        // Range, and the piece is the slice at `offset`.
        let skip = match status {
            StatusCode::PARTIAL_CONTENT => 0,
            StatusCode::OK => {
                self.charge_more(client, loc.offset);
                loc.offset
            }
            other => return Err(ManifestServiceError::Upstream(other)),
        };
        let want = loc.length as usize;
        let mut out = Vec::with_capacity(want);
        let mut skipped = 0u64;
        let mut body = resp.into_body();
        while out.len() < want {
            let Some(frame) = body.frame().await else {
                break;
            };
            let frame = frame.map_err(|e| ManifestServiceError::Unreachable(e.to_string()))?;
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            if skipped < skip {
                let drop_n = (skip - skipped).min(data.len() as u64) as usize;
                skipped += drop_n as u64;
                data = data.slice(drop_n..);
            }
            let take = (want - out.len()).min(data.len());
            out.extend_from_slice(&data[..take]);
        }
        if !hash.verifies(&out) {
            lock(&self.inner.pieces).remove(hash);
            return Err(ManifestServiceError::Changed);
        }
        let out = Bytes::from(out);
        self.inner.cache.insert(*hash, out.clone());
        Ok(out)
    }
}
