//! Playlists: a tee that copies a playlist while it streams to the client
//! (bounded, so a huge "playlist" costs nothing), the pure HLS parser that
//! turns its text into the same-origin URIs of its segments, and the URI
//! resolution that the DASH parser ([`super::dash`]) shares.

use std::collections::HashSet;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::Uri;
use hyper::body::{Body, Frame, SizeHint};

use super::distributable::strip_query;
use super::forward::origin_key;

/// Playlists larger than this are streamed but not read.
pub const PLAYLIST_LIMIT: usize = 1024 * 1024;

/// Which kind of playlist a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistKind {
    /// An HLS playlist (`.m3u8`), media or master.
    Hls,
    /// A DASH manifest (MPD, `.mpd`).
    Dash,
}

impl PlaylistKind {
    /// The same-origin media URIs `text` lists, resolved against
    /// `base_path`: [`hls_segment_uris`] or
    /// [`dash_segment_uris`](super::dash::dash_segment_uris).
    pub fn segment_uris(self, base_path: &str, text: &str, own_origins: &[String]) -> Vec<String> {
        match self {
            Self::Hls => hls_segment_uris(base_path, text, own_origins),
            Self::Dash => super::dash::dash_segment_uris(base_path, text, own_origins),
        }
    }
}

/// At most this many URIs are taken from one playlist.
pub(crate) const MAX_URIS: usize = 20_000;

/// The URIs of the media a playlist lists, as same-origin `path?query`
/// strings resolved against `base_path` (the playlist's own path, query
/// allowed): every URI line (segments, or variant playlists in a master
/// playlist) and the `URI` of `#EXT-X-MAP` (an init segment). Key URIs and
/// other tags are not media. An absolute URI counts only when its origin is
/// one of `own_origins` (as made by [`origin_key`], e.g.
/// `http://example.org:8080`); others are dropped. Duplicates are dropped.
pub fn hls_segment_uris(base_path: &str, text: &str, own_origins: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let reference = if let Some(attrs) = line.strip_prefix("#EXT-X-MAP:") {
            attribute(attrs, "URI")
        } else if line.is_empty() || line.starts_with('#') {
            None
        } else {
            Some(line.to_string())
        };
        let Some(path) = reference.and_then(|r| resolve(base_path, &r, own_origins)) else {
            continue;
        };
        if seen.insert(path.clone()) {
            out.push(path);
            if out.len() >= MAX_URIS {
                break;
            }
        }
    }
    out
}

/// Whether an HLS playlist is a live one (RFC 8216 §6.2.1: the server
/// still adds segments): a media playlist (it has `#EXTINF`) with no
/// `#EXT-X-ENDLIST` and not of type `VOD`. A master playlist is not.
pub fn is_live_hls(text: &str) -> bool {
    let mut media = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("#EXT-X-ENDLIST") {
            return false;
        }
        if let Some(kind) = line.strip_prefix("#EXT-X-PLAYLIST-TYPE:") {
            if kind.trim().eq_ignore_ascii_case("VOD") {
                return false;
            }
        }
        media |= line.starts_with("#EXTINF");
    }
    media
}

/// The value of `name` in an HLS attribute list (`A=1,URI="x,y",B=2`).
fn attribute(list: &str, name: &str) -> Option<String> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let (value, tail) = quoted.split_once('"')?;
            (value, tail.strip_prefix(',').unwrap_or(tail))
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        if key.trim().eq_ignore_ascii_case(name) {
            return Some(value.to_string());
        }
        rest = next;
    }
    None
}

/// Resolves `reference` against the path `base` (RFC 3986 §5.2, for the
/// same-origin case), returning `path?query` or `None` when it is empty,
/// cross-origin or not HTTP.
pub(crate) fn resolve(base: &str, reference: &str, own_origins: &[String]) -> Option<String> {
    let reference = reference.trim();
    let reference = &reference[..reference.find('#').unwrap_or(reference.len())];
    if reference.is_empty() {
        return None;
    }
    let joined = if let Some(after) = reference.strip_prefix("//") {
        // Scheme-relative: same origin when its authority is one of ours
        // under either scheme.
        let own = |scheme: &str| {
            let uri: Uri = format!("{scheme}://{after}").parse().ok()?;
            let key = origin_key(&uri)?;
            own_origins.contains(&key).then(|| path_of(&uri))
        };
        own("http").or_else(|| own("https"))?
    } else if has_scheme(reference) {
        let uri: Uri = reference.parse().ok()?;
        let key = origin_key(&uri)?;
        if !own_origins.contains(&key) {
            return None;
        }
        path_of(&uri)
    } else if reference.starts_with('/') {
        reference.to_string()
    } else if reference.starts_with('?') {
        format!("{}{reference}", strip_query(base))
    } else {
        let base_path = strip_query(base);
        let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        if dir.is_empty() {
            format!("/{reference}")
        } else {
            format!("{dir}{reference}")
        }
    };
    let (path, query) = match joined.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (joined.as_str(), None),
    };
    let path = remove_dot_segments(path);
    Some(match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    })
}

fn path_of(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string())
}

/// `scheme:` per RFC 3986: a letter, then letters, digits, `+`, `-`, `.`.
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// RFC 3986 §5.2.4 for an absolute path: `.` and `..` segments go.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        // A trailing `.` or `..` leaves the path ending in a slash.
        if last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

/// Called once with the collected bytes when the body ended normally and
/// was within the limit.
pub(crate) type OnComplete = Box<dyn FnOnce(Vec<u8>) + Send>;

/// A body that passes every frame through and keeps a copy of the first
/// `limit` bytes; past the limit it stops copying (the client still gets
/// everything). On a normal end the copy goes to `on_complete`.
pub(crate) struct Tee<B> {
    inner: B,
    copy: Option<Vec<u8>>,
    limit: usize,
    on_complete: Option<OnComplete>,
}

impl<B> Tee<B> {
    pub(crate) fn new(inner: B, limit: usize, on_complete: OnComplete) -> Self {
        Self {
            inner,
            copy: Some(Vec::new()),
            limit,
            on_complete: Some(on_complete),
        }
    }

    fn complete(&mut self) {
        if let (Some(copy), Some(f)) = (self.copy.take(), self.on_complete.take()) {
            f(copy);
        }
    }
}

impl<B> Body for Tee<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(data), Some(copy)) = (f.data_ref(), this.copy.as_mut()) {
                    if copy.len() + data.len() > this.limit {
                        tracing::debug!("playlist over {} bytes: not read", this.limit);
                        this.copy = None;
                    } else {
                        copy.extend_from_slice(data);
                    }
                }
                // The server may stop polling once the body says it ended.
                if this.inner.is_end_stream() {
                    this.complete();
                }
            }
            Some(Err(_)) => this.copy = None,
            None => this.complete(),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_playlists() {
        let live =
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2.0,\ns7.ts\n";
        assert!(is_live_hls(live));
        assert!(is_live_hls(&format!("{live}#EXT-X-PLAYLIST-TYPE:EVENT\n")));
        assert!(!is_live_hls(&format!("{live}#EXT-X-ENDLIST\n")));
        assert!(!is_live_hls(&format!("#EXT-X-PLAYLIST-TYPE:vod\n{live}")));
        assert!(!is_live_hls(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow.m3u8\n"
        ));
        assert!(!is_live_hls(""));
    }

    #[test]
    fn dot_segments() {
        assert_eq!(remove_dot_segments("/a/b/../c"), "/a/c");
        assert_eq!(remove_dot_segments("/a/b/.."), "/a/");
        assert_eq!(remove_dot_segments("/../x"), "/x");
        assert_eq!(remove_dot_segments("/a/./b/."), "/a/b/");
        assert_eq!(remove_dot_segments("/a//b"), "/a//b");
    }

    #[test]
    fn attributes() {
        assert_eq!(
            attribute(r#"BYTERANGE="1@0",URI="init,1.mp4""#, "URI").as_deref(),
            Some("init,1.mp4")
        );
        assert_eq!(attribute("METHOD=NONE", "URI"), None);
    }

    #[test]
    fn schemes() {
        assert!(has_scheme("http://x/y"));
        assert!(has_scheme("data:abc"));
        assert!(!has_scheme("/a:b"));
        assert!(!has_scheme("1a:b"));
    }
}
