//! A reader's fallback answered from the hub's pieces. The page runtime
//! reads what no peer has with Range requests of the resource's own URL,
//! marked with `x-tuber-origin` (`web/fetcher.js`), and verifies every piece
//! against the manifest it holds. When the hub has that manifest, the
//! request is answered from the manifest's pieces (the piece cache, else a
//! Range read of each missing piece, which the cache then keeps) instead of
//! being forwarded: the hub already read those bytes to hash them, and
//! forwarding would make the origin send them again. A request the hub has
//! no manifest for, or any other Range request, is forwarded as before.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use futures_util::stream;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use tuber_proto::Manifest;

use crate::manifests::Manifests;
use crate::range::{self, RangeAnswer};

/// The header the page runtime marks its own origin reads with
/// (`BYPASS_HEADER` in `web/rules.js`).
pub(crate) const BYPASS_HEADER: &str = "x-tuber-origin";

/// Whether a request is a page runtime's fallback read.
pub(crate) fn is_fallback_read(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::GET
        && headers.contains_key(BYPASS_HEADER)
        && headers.contains_key(header::RANGE)
}

/// The answer to a fallback read of `path` from the hub's pieces, or `None`
/// when the hub has no manifest for it (or the range is not one it can
/// serve): then the request is forwarded.
pub(crate) async fn answer(
    manifests: &Manifests,
    path: &str,
    headers: &HeaderMap,
    client: IpAddr,
) -> Option<Response> {
    let m = manifests.current_manifest(path).await?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let RangeAnswer::Partial { start, end } = range::parse(range, m.length) else {
        return None;
    };
    let first = usize::try_from(start / u64::from(m.piece_size)).ok()?;
    let last = usize::try_from(end / u64::from(m.piece_size)).ok()?;
    // The first piece before any byte is sent, so an upstream failure is
    // still an error status the reader understands.
    let head = manifests
        .fetch_piece_for(m.pieces.get(first)?, Some(client))
        .await
        .ok()?;
    let body = body(
        manifests.clone(),
        Arc::clone(&m),
        head,
        first,
        last,
        start,
        end,
        client,
    );
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
    if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", m.length)) {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&m.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if m.version.starts_with('"') {
        if let Ok(v) = HeaderValue::from_str(&m.version) {
            h.insert(header::ETAG, v);
        }
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(resp)
}

/// Pieces `first..=last` of `m`, cut to `start..=end`, one at a time.
#[allow(clippy::too_many_arguments)]
fn body(
    manifests: Manifests,
    m: Arc<Manifest>,
    head: bytes::Bytes,
    first: usize,
    last: usize,
    start: u64,
    end: u64,
    client: IpAddr,
) -> Body {
    let piece_size = u64::from(m.piece_size);
    let cut = move |index: usize, bytes: bytes::Bytes| {
        let at = index as u64 * piece_size;
        let from = start.saturating_sub(at).min(bytes.len() as u64) as usize;
        let to = (end + 1).saturating_sub(at).min(bytes.len() as u64) as usize;
        bytes.slice(from..to.max(from))
    };
    let state = (first, Some(head));
    let pieces = stream::unfold(state, move |(index, head)| {
        let (manifests, m) = (manifests.clone(), Arc::clone(&m));
        async move {
            if index > last {
                return None;
            }
            let bytes = match head {
                Some(b) => Ok(b),
                None => match m.pieces.get(index) {
                    Some(hash) => manifests
                        .fetch_piece_for(hash, Some(client))
                        .await
                        .map_err(std::io::Error::other),
                    None => Err(std::io::Error::other("piece out of range")),
                },
            };
            let item = bytes.map(|b| cut(index, b));
            let next = if item.is_ok() { index + 1 } else { last + 1 };
            Some((item, (next, None)))
        }
    });
    Body::from_stream(pieces)
}
