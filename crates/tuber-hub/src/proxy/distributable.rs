//! Which responses are distributable peer to peer: pure rules built from
//! [`DistributeConfig`], fed a path, a content type and a length. No I/O, so
//! they are tested as plain functions.
//!
//! A `GET` response with status 200 or 206 is distributable when it matches an
//! `include` pattern, or when its full length is at least `min_size` and its
//! content type starts with one of `content_types` or its path's extension is
//! one of `extensions`. A stream segment (see [`SEGMENT_EXTENSIONS`])
//! qualifies by its extension from `segment_min_size`. A match of an `exclude` pattern wins over
//! everything.

use http::{header, HeaderMap, Method, StatusCode};
use serde::Serialize;

use super::playlist::PlaylistKind;
use crate::config::DistributeConfig;

/// Content types of HLS playlists (RFC 8216 §4 and the legacy aliases).
const HLS_CONTENT_TYPES: [&str; 3] = [
    "application/vnd.apple.mpegurl",
    "application/x-mpegurl",
    "audio/mpegurl",
];

/// Content type of DASH manifests (ISO/IEC 23009-1 Annex C).
const DASH_CONTENT_TYPE: &str = "application/dash+xml";

/// Extensions of HLS and DASH media segments: short by design, so they
/// qualify from `segment_min_size` rather than `min_size`.
pub const SEGMENT_EXTENSIONS: [&str; 5] = ["ts", "m4s", "cmfv", "cmfa", "aac"];

/// The distributable rules, normalised once from the config.
#[derive(Debug, Clone)]
pub struct Rules {
    min_size: u64,
    segment_min_size: u64,
    /// Lowercased prefixes.
    content_types: Vec<String>,
    /// Lowercased, without a leading dot.
    extensions: Vec<String>,
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
    playlists: bool,
}

/// A path pattern where `*` matches any run of characters (also none, also
/// `/`). A pattern that contains `?` is matched against the path with its
/// query, any other against the path alone, so `*.mp4` still matches
/// `/a.mp4?token=1` while `*?token=*` can exclude by query.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    with_query: bool,
}

impl Pattern {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            with_query: text.contains('?'),
        }
    }

    fn matches(&self, path_and_query: &str) -> bool {
        let subject = if self.with_query {
            path_and_query
        } else {
            strip_query(path_and_query)
        };
        glob_match(&self.text, subject)
    }
}

/// The rules as browsers see them (`GET /.tuber/rules`): normalised as
/// [`Rules::new`] normalises them, patterns as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RulesView {
    /// Smallest distributable response, bytes.
    pub min_size: u64,
    /// Lowercased content-type prefixes.
    pub content_types: Vec<String>,
    /// Lowercased extensions, without a leading dot.
    pub extensions: Vec<String>,
    /// Patterns always distributable (unless excluded).
    pub include: Vec<String>,
    /// Patterns never distributable.
    pub exclude: Vec<String>,
    /// Whether HLS and DASH playlists are read for their segments.
    pub playlists: bool,
}

impl Rules {
    /// The rules as a serializable view, for the Service Worker.
    pub fn view(&self) -> RulesView {
        RulesView {
            min_size: self.min_size,
            content_types: self.content_types.clone(),
            extensions: self.extensions.clone(),
            include: self.include.iter().map(|p| p.text.clone()).collect(),
            exclude: self.exclude.iter().map(|p| p.text.clone()).collect(),
            playlists: self.playlists,
        }
    }

    /// Builds the rules from the config's `[distribute]` table.
    pub fn new(config: &DistributeConfig) -> Self {
        Self {
            min_size: config.min_size,
            segment_min_size: config.segment_min_size,
            content_types: config
                .content_types
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
            extensions: config
                .extensions
                .iter()
                .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
            include: config.include.iter().map(|p| Pattern::new(p)).collect(),
            exclude: config.exclude.iter().map(|p| Pattern::new(p)).collect(),
            playlists: config.playlists,
        }
    }

    /// Whether a response for `path_and_query` with this content type and
    /// full length (the whole resource's, not a range's) is distributable.
    pub fn is_distributable(
        &self,
        path_and_query: &str,
        content_type: &str,
        full_length: Option<u64>,
    ) -> bool {
        if self.is_excluded(path_and_query) {
            return false;
        }
        if self.include.iter().any(|p| p.matches(path_and_query)) {
            return true;
        }
        let segment =
            extension(path_and_query).is_some_and(|e| SEGMENT_EXTENSIONS.contains(&e.as_str()));
        let min_size = if segment {
            self.segment_min_size.min(self.min_size)
        } else {
            self.min_size
        };
        let big_enough = full_length.is_some_and(|n| n >= min_size);
        big_enough
            && (segment
                || self.type_qualifies(content_type)
                || self.extension_qualifies(path_and_query))
    }

    /// Whether `path_and_query` looks distributable from its path alone,
    /// before any response is seen (content type and length unknown): not
    /// excluded, and matched by an `include` pattern or of one of the
    /// `extensions`. The hub uses it to defer media elements in the pages it
    /// proxies (see `inject`), as `web/rules.js` asks about such paths.
    pub fn path_looks_distributable(&self, path_and_query: &str) -> bool {
        !self.is_excluded(path_and_query)
            && (self.include.iter().any(|p| p.matches(path_and_query))
                || self.extension_qualifies(path_and_query))
    }

    /// Whether an `exclude` pattern matches; playlist segments are checked
    /// against it too.
    pub fn is_excluded(&self, path_and_query: &str) -> bool {
        // A path in any but its one plain spelling could name, at the
        // upstream, what an exclude pattern names (`/./private/a.bin`,
        // `/a/../private/a.bin`, `//private`, `%2e`): never distributed.
        !is_canonical(path_and_query) || self.exclude.iter().any(|p| p.matches(path_and_query))
    }

    /// Whether this response is an HLS playlist or a DASH manifest whose
    /// segments should be reported (only when `playlists = true`).
    pub fn is_playlist(&self, path_and_query: &str, content_type: &str) -> bool {
        self.playlist_kind(path_and_query, content_type).is_some()
    }

    /// Which kind of playlist this response is, if it is one to read: by
    /// content type, else by extension (`.m3u8`, `.mpd`).
    pub fn playlist_kind(&self, path_and_query: &str, content_type: &str) -> Option<PlaylistKind> {
        if !self.playlists || self.is_excluded(path_and_query) {
            return None;
        }
        let mime = mime_essence(content_type);
        if HLS_CONTENT_TYPES.contains(&mime.as_str()) {
            return Some(PlaylistKind::Hls);
        }
        if mime == DASH_CONTENT_TYPE {
            return Some(PlaylistKind::Dash);
        }
        match extension(path_and_query)?.as_str() {
            "m3u8" => Some(PlaylistKind::Hls),
            "mpd" => Some(PlaylistKind::Dash),
            _ => None,
        }
    }

    fn type_qualifies(&self, content_type: &str) -> bool {
        let ct = content_type.trim().to_ascii_lowercase();
        !ct.is_empty()
            && self
                .content_types
                .iter()
                .any(|p| ct.starts_with(p.as_str()))
    }

    fn extension_qualifies(&self, path_and_query: &str) -> bool {
        extension(path_and_query).is_some_and(|e| self.extensions.contains(&e))
    }
}

/// Whether a response is for one person only, so never distributable,
/// whatever the rules say: it sets a cookie, or says `Cache-Control:
/// private` or `no-store`. (A response to a request that carried cookies
/// or `Authorization` is the caller's to judge: see `Proxy::handle`.)
pub fn is_private_response(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::SET_COOKIE) {
        return true;
    }
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.split('=').next().unwrap_or("").trim())
        .any(|d| d.eq_ignore_ascii_case("private") || d.eq_ignore_ascii_case("no-store"))
}

/// Whether a response may be distributable at all: a `GET` answered 200 or 206.
pub fn eligible(method: &Method, status: StatusCode) -> bool {
    method == Method::GET && (status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT)
}

/// The whole resource's length: `Content-Length` of a 200, the `/total` of
/// `Content-Range` of a 206. `None` when unknown (chunked, `/*`).
pub fn full_length(status: StatusCode, headers: &HeaderMap) -> Option<u64> {
    if status == StatusCode::PARTIAL_CONTENT {
        let range = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
        let (_, total) = range.rsplit_once('/')?;
        total.trim().parse().ok()
    } else {
        headers
            .get(header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// The resource's version for manifests: a strong ETag, else Last-Modified.
/// A weak ETag does not promise identical bytes, so it is not a version.
pub fn version(headers: &HeaderMap) -> Option<String> {
    let etag = headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.starts_with("W/"));
    etag.or_else(|| {
        headers
            .get(header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    })
    .map(str::to_string)
}

/// `*` matches any run of characters; everything else matches itself.
/// Iterative with single-star backtracking, so it is linear on typical
/// patterns and never recurses on hostile ones.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position of the last `*` seen and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the last star swallow one more character and retry.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The path without `?query` (and without a `#fragment`, should one slip in).
/// Whether the path part is in its one plain spelling: absolute, no empty,
/// `.` or `..` segments, no backslash, and no percent-encoded `.`, `/` or
/// `\` (which an upstream may decode into one of those).
pub fn is_canonical(path_and_query: &str) -> bool {
    let path = strip_query(path_and_query);
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if path.contains('\\') {
        return false;
    }
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e)) {
        return false;
    }
    // The root, or segments that are neither empty nor dots (a trailing
    // slash is a directory, as common as it is harmless).
    rest.is_empty()
        || rest
            .strip_suffix('/')
            .unwrap_or(rest)
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

pub fn strip_query(path_and_query: &str) -> &str {
    let end = path_and_query
        .find(['?', '#'])
        .unwrap_or(path_and_query.len());
    &path_and_query[..end]
}

/// The lowercased extension of the path's last segment, if it has one.
fn extension(path_and_query: &str) -> Option<String> {
    let path = strip_query(path_and_query);
    let last = path.rsplit('/').next().unwrap_or(path);
    let (stem, ext) = last.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

/// `type/subtype` without parameters, lowercased.
pub(crate) fn mime_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_spellings_of_a_path_are_distributable() {
        let rules = Rules::new(&DistributeConfig {
            exclude: vec!["/private/*".into()],
            ..DistributeConfig::default()
        });
        let mb = Some(4 << 20);
        assert!(rules.is_distributable("/public/a.bin?x=1", "", mb));
        assert!(rules.is_distributable("/dir/", "video/mp4", mb));
        for sneaky in [
            "/private/a.bin",
            "/./private/a.bin",
            "/x/../private/a.bin",
            "//private/a.bin",
            "/%2e/private/a.bin",
            "/%2Fprivate/a.bin",
            "/x\\..\\private/a.bin",
            "/public/%2e%2e/private/a.bin",
            "relative/a.bin",
        ] {
            assert!(rules.is_excluded(sneaky), "{sneaky}");
            assert!(!rules.is_distributable(sneaky, "video/mp4", mb), "{sneaky}");
        }
    }

    #[test]
    fn stream_segments_qualify_from_segment_min_size() {
        let rules = Rules::new(&DistributeConfig::default());
        let seg = Some(500_000);
        for path in [
            "/live/seg12.ts",
            "/v/chunk-3.m4s?t=1",
            "/a/x.CMFA",
            "/a/b.aac",
        ] {
            assert!(rules.is_distributable(path, "", seg), "{path}");
            assert!(!rules.is_distributable(path, "", Some(60_000)), "{path}");
        }
        // Other media keep min_size.
        assert!(!rules.is_distributable("/clip.mp4", "video/mp4", seg));
        assert!(!rules.is_distributable("/a.bin", "", seg));
        // A segment_min_size above min_size does not raise it.
        let rules = Rules::new(&DistributeConfig {
            min_size: 1000,
            segment_min_size: 1 << 20,
            ..DistributeConfig::default()
        });
        assert!(rules.is_distributable("/s.ts", "", Some(2000)));
    }

    #[test]
    fn globs() {
        assert!(glob_match("/videos/*", "/videos/a/b.mp4"));
        assert!(glob_match("*.mp4", "/x.mp4"));
        assert!(glob_match("*", ""));
        assert!(glob_match("/a*b*c", "/a--b--c"));
        assert!(!glob_match("/a*b*c", "/a--b--"));
        assert!(!glob_match("/videos/*", "/video/a"));
        assert!(glob_match("/exact", "/exact"));
        assert!(!glob_match("/exact", "/exact2"));
    }

    #[test]
    fn extension_ignores_query_and_case() {
        assert_eq!(extension("/a/B.MP4?x=y.txt").as_deref(), Some("mp4"));
        assert_eq!(extension("/a.b/c"), None);
        assert_eq!(extension("/.hidden"), None);
    }

    #[test]
    fn paths_that_look_distributable() {
        let config = DistributeConfig {
            include: vec!["/live/*".into()],
            exclude: vec!["/private/*".into(), "*?token=*".into()],
            ..DistributeConfig::default()
        };
        let rules = Rules::new(&config);
        assert!(rules.path_looks_distributable("/media/clip.mp4"));
        assert!(rules.path_looks_distributable("/media/CLIP.MP4?v=2"));
        assert!(rules.path_looks_distributable("/live/stream"));
        assert!(rules.path_looks_distributable("/files/pkg.zip"));
        assert!(!rules.path_looks_distributable("/page.html"));
        assert!(!rules.path_looks_distributable("/watch?id=3"));
        assert!(!rules.path_looks_distributable("/private/clip.mp4"));
        assert!(!rules.path_looks_distributable("/clip.mp4?token=abc"));
    }

    #[test]
    fn the_view_is_normalised() {
        let config = DistributeConfig {
            min_size: 42,
            content_types: vec![" Video/ ".into(), "".into()],
            extensions: vec![".MP4".into(), "bin".into(), " ".into()],
            include: vec!["/always/*".into()],
            exclude: vec!["*?token=*".into()],
            playlists: false,
            ..DistributeConfig::default()
        };
        let v = Rules::new(&config).view();
        assert_eq!(v.min_size, 42);
        assert_eq!(v.content_types, ["video/"]);
        assert_eq!(v.extensions, ["mp4", "bin"]);
        assert_eq!(v.include, ["/always/*"]);
        assert_eq!(v.exclude, ["*?token=*"]);
        assert!(!v.playlists);
    }
}
