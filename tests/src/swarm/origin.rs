//! The upstream site: deterministic resources of chosen sizes. A query
//! string does not change what a path serves, but a signed URL whose expiry
//! (`tuber_proto::expiry`) has passed is refused with 403, as a site behind
//! signed URLs refuses it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::task::JoinHandle;
use tuber_hub::range::{self, RangeAnswer};

use crate::Rng;

#[derive(Clone)]
struct Resource {
    bytes: Bytes,
    etag: HeaderValue,
    content_type: &'static str,
}

struct Inner {
    /// Fixed at start but for texts replaced by [`Origin::set_text`].
    resources: RwLock<HashMap<String, Resource>>,
    refuse_ranges: AtomicBool,
    ignore_ranges: AtomicBool,
    bytes_served: AtomicU64,
}

/// An origin on 127.0.0.1:0. Dropping it stops it.
pub struct Origin {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl Origin {
    /// Serves one resource per `(path, length, seed)`: `length` bytes from
    /// [`Rng::new(seed)`](crate::Rng), `application/octet-stream`, a strong
    /// ETag. Paths should end in `.bin` (distributable by default).
    pub async fn start(resources: &[(&str, usize, u64)]) -> Self {
        Self::start_with_texts(resources, &[]).await
    }

    /// As [`start`](Self::start), plus text documents `(path, text)`
    /// (`.m3u8` as an HLS playlist, anything else as text/plain).
    pub async fn start_with_texts(
        resources: &[(&str, usize, u64)],
        texts: &[(&str, &str)],
    ) -> Self {
        let mut all: HashMap<String, Resource> = resources
            .iter()
            .map(|&(path, len, seed)| {
                let etag = HeaderValue::from_str(&format!("\"{seed:x}-{len}\"")).expect("etag");
                let bytes = Bytes::from(Rng::new(seed).bytes(len));
                let content_type = "application/octet-stream";
                (
                    path.to_string(),
                    Resource {
                        bytes,
                        etag,
                        content_type,
                    },
                )
            })
            .collect();
        for (i, &(path, text)) in texts.iter().enumerate() {
            let etag =
                HeaderValue::from_str(&format!("\"text-{i}-{}\"", text.len())).expect("etag");
            let content_type = if path.ends_with(".m3u8") {
                "application/vnd.apple.mpegurl"
            } else {
                "text/plain"
            };
            let bytes = Bytes::copy_from_slice(text.as_bytes());
            all.insert(
                path.to_string(),
                Resource {
                    bytes,
                    etag,
                    content_type,
                },
            );
        }
        let inner = Arc::new(Inner {
            resources: RwLock::new(all),
            refuse_ranges: AtomicBool::new(false),
            ignore_ranges: AtomicBool::new(false),
            bytes_served: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the origin");
        let addr = listener.local_addr().expect("origin addr");
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&inner));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner, task }
    }

    /// `http://127.0.0.1:PORT`, the hub's upstream.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bytes of `path`.
    pub fn bytes(&self, path: &str) -> Bytes {
        self.resources()[path].bytes.clone()
    }

    /// Replaces (or adds) the text document at `path`, with a new ETag: a
    /// live playlist moving on.
    pub fn set_text(&self, path: &str, text: &str) {
        let mut all = self
            .inner
            .resources
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let n = all.len();
        all.insert(
            path.to_string(),
            Resource {
                etag: HeaderValue::from_str(&format!("\"text-{n}-{}-{}\"", text.len(), sha(text)))
                    .expect("etag"),
                bytes: Bytes::copy_from_slice(text.as_bytes()),
                content_type: if path.ends_with(".m3u8") {
                    "application/vnd.apple.mpegurl"
                } else {
                    "text/plain"
                },
            },
        );
    }

    fn resources(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Resource>> {
        self.inner
            .resources
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// SHA-256 of `path`'s bytes, hex.
    pub fn sha256(&self, path: &str) -> String {
        super::sha256_hex(&self.resources()[path].bytes)
    }

    /// While on, every `Range` request (how the hub's piece endpoint reads
    /// pieces) is answered 503, so the hub cannot give pieces; `HEAD` and
    /// whole-body `GET`s (manifests) still work.
    pub fn refuse_ranges(&self, on: bool) {
        self.inner.refuse_ranges.store(on, Ordering::SeqCst);
    }

    /// While on, `Range` is ignored: every `GET` is answered 200 with the
    /// whole body (as some servers and dynamic endpoints do).
    pub fn ignore_ranges(&self, on: bool) {
        self.inner.ignore_ranges.store(on, Ordering::SeqCst);
    }

    /// Body bytes sent so far (every `GET`).
    pub fn bytes_served(&self) -> u64 {
        self.inner.bytes_served.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let found = inner
        .resources
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(uri.path())
        .cloned();
    let Some(r) = found else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signed = uri.path_and_query().map_or("", |pq| pq.as_str());
    if tuber_proto::expiry::has_expired(signed, now) {
        return (StatusCode::FORBIDDEN, "the signature expired").into_response();
    }
    let r = &r;
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| !inner.ignore_ranges.load(Ordering::SeqCst));
    if range_header.is_some() && inner.refuse_ranges.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let len = r.bytes.len() as u64;
    let (status, body) = match range::parse(range_header, len) {
        RangeAnswer::Full => (StatusCode::OK, r.bytes.clone()),
        RangeAnswer::Partial { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            r.bytes.slice(start as usize..=end as usize),
        ),
        RangeAnswer::Unsatisfiable => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response()
        }
    };
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, r.content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::ETAG, r.etag.clone())
        .header(header::ACCEPT_RANGES, "bytes");
    if let RangeAnswer::Partial { start, end } = range::parse(range_header, len) {
        resp = resp.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    if method == Method::GET {
        inner
            .bytes_served
            .fetch_add(body.len() as u64, Ordering::SeqCst);
        resp.body(Body::from(body)).expect("response")
    } else {
        resp.body(Body::empty()).expect("response")
    }
}

fn sha(text: &str) -> String {
    super::sha256_hex(text.as_bytes())[..12].to_string()
}
