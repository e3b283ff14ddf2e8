//! Injects the page script into HTML as it streams: lol_html is fed the
//! upstream's chunks one by one and whatever it emits goes straight on to the
//! client, so a page is never held whole. Backpressure is the client's: a
//! chunk is only pulled from upstream when the client took the last output.
//!
//! Where the tag goes, exactly once: at the end of `<head>` (before its end
//! tag); if `<head>` has no explicit end tag or there is no head, at the start
//! of `<body>`; if neither, at the end of the document.
//!
//! First visits: a `<video>`/`<audio>` in the HTML starts loading while the
//! page is parsed, before a first-time visitor's Service Worker controls
//! the page, so its bytes would all come from the origin. With a
//! [`MediaDefer`], the `src` of such elements (and of their `<source>`
//! children) that is same-origin and looks distributable by its path moves
//! to `data-tuber-src`; the page script (`web/tuber.js`) puts it back as
//! soon as the Service Worker controls the page, or after a deadline, or at
//! once when there is no Service Worker. Without `src` the element fetches
//! nothing, so `autoplay` and `preload` need no change: they take effect
//! when `src` is back. Nothing is deferred inside `<template>`, after a
//! `<base href>`, or when a Content-Security-Policy might block the page
//! script (the media would then never load).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::{header, HeaderMap, StatusCode};
use lol_html::errors::RewritingError;
use lol_html::html_content::ContentType;
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{element, end, end_tag, MemorySettings, OutputSink};

use super::decode::{decode, ByteStream, Coding};
use super::distributable::{mime_essence, Rules};
use super::playlist;

/// lol_html only buffers a tag split across chunks; a tag larger than this
/// is hostile, and the rest of the page then passes through unmodified.
const REWRITER_MEMORY_LIMIT: usize = 4 * 1024 * 1024;

/// Whether the response is a page to inject into: a 200 `text/html` answer
/// in a coding the proxy can undo. (A HEAD answer gets the same headers as
/// the GET would, without a body.)
pub(crate) fn wants_injection(status: StatusCode, headers: &HeaderMap) -> bool {
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| mime_essence(ct) == "text/html");
    html && status == StatusCode::OK && Coding::of(headers).is_some()
}

/// Fixes the headers of a page whose bytes change: sent decoded, without a
/// length, and without the validators and digests of the upstream's bytes.
pub(crate) fn rewrite_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONTENT_ENCODING,
        header::CONTENT_LENGTH,
        header::ETAG,
        header::ACCEPT_RANGES,
    ] {
        headers.remove(name);
    }
    headers.remove("content-md5");
}

/// The page's bytes, decoded and with `tag` injected (and its media
/// deferred, with `media`), as a stream.
pub(crate) fn inject(
    coding: Coding,
    body: ByteStream,
    tag: Arc<str>,
    media: Option<MediaDefer>,
) -> ByteStream {
    Box::pin(Injector::new(decode(coding, body), tag, media))
}

/// The attribute that holds a deferred media URL (the page script's
/// `DEFERRED_ATTR`).
pub(crate) const DEFERRED_ATTR: &str = "data-tuber-src";

/// Which media URLs of one page are deferred until the Service Worker
/// controls it: same-origin (relative, or absolute to one of the hub's own
/// origins) and distributable by path ([`Rules::path_looks_distributable`]).
#[derive(Clone)]
pub(crate) struct MediaDefer {
    rules: Arc<Rules>,
    /// The page's own path and query, the base of relative URLs.
    page_path: String,
    /// Origins that are this page's (as made by `origin_key`).
    own_origins: Arc<[String]>,
}

impl MediaDefer {
    /// The deferral for a page at `page_path` answered with `headers`;
    /// `None` when its Content-Security-Policy might block the page script
    /// (deferred media would then never load).
    pub(crate) fn for_page(
        rules: Arc<Rules>,
        page_path: &str,
        own_origins: Arc<[String]>,
        headers: &HeaderMap,
    ) -> Option<Self> {
        let blocked = headers
            .get_all(header::CONTENT_SECURITY_POLICY)
            .iter()
            .any(|v| v.to_str().map_or(true, |p| !csp_allows_own_scripts(p)));
        (!blocked).then(|| Self {
            rules,
            page_path: page_path.to_string(),
            own_origins,
        })
    }

    /// Whether a media `src` attribute, as written in the HTML (`raw`,
    /// entities and all), is deferred.
    pub(crate) fn defers(&self, raw: &str) -> bool {
        let Some(value) = decode_simple_entities(raw) else {
            return false;
        };
        let value = value.trim();
        if value.is_empty() || value.starts_with('#') {
            return false;
        }
        let Some(path) = playlist::resolve(&self.page_path, value, &self.own_origins) else {
            return false;
        };
        !path.starts_with("/.tuber/")
            && !path.starts_with("/.well-known/")
            && self.rules.path_looks_distributable(&path)
    }
}

/// `raw` with `&amp;` decoded; `None` when any other character reference is
/// in it (such a URL is left alone rather than guessed at).
fn decode_simple_entities(raw: &str) -> Option<String> {
    if !raw.contains('&') {
        return Some(raw.to_string());
    }
    let decoded = raw.replace("&amp;", "\u{1}");
    if decoded.contains('&') || raw.contains('\u{1}') {
        return None;
    }
    Some(decoded.replace('\u{1}', "&"))
}

/// Whether a Content-Security-Policy (one header value, or a `<meta>`'s
/// content) lets the hub's same-origin page script and its module run: every
/// policy in it names `'self'` or `*` for scripts (`script-src-elem`, else
/// `script-src`, else `default-src`; none: allowed) and not
/// `'strict-dynamic'` (which ignores `'self'`). Anything not understood
/// counts as blocking.
pub(crate) fn csp_allows_own_scripts(policy: &str) -> bool {
    policy.split(',').all(|one| {
        let mut directives: Vec<(String, Vec<String>)> = Vec::new();
        for directive in one.split(';') {
            let mut tokens = directive.split_ascii_whitespace();
            let Some(name) = tokens.next() else { continue };
            let name = name.to_ascii_lowercase();
            // Only the first of a repeated directive counts.
            if directives.iter().all(|(n, _)| *n != name) {
                directives.push((name, tokens.map(str::to_ascii_lowercase).collect()));
            }
        }
        let sources = ["script-src-elem", "script-src", "default-src"]
            .iter()
            .find_map(|want| directives.iter().find(|(n, _)| n == want));
        match sources {
            None => true,
            Some((_, list)) => {
                !list.iter().any(|s| s == "'strict-dynamic'")
                    && list.iter().any(|s| s == "'self'" || s == "*")
            }
        }
    })
}

/// Where the rewriter's output collects between two polls.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<BytesMut>>);

impl Sink {
    fn take(&self) -> Bytes {
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        out.split().freeze()
    }
}

impl OutputSink for Sink {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(chunk);
    }
}

enum State {
    Rewriting(Box<HtmlRewriter<'static, Sink>>),
    /// The rewriter gave up gracefully after flushing its input raw: the
    /// rest of the page passes as is.
    PassThrough,
    Done,
}

struct Injector {
    input: ByteStream,
    state: State,
    out: Sink,
}

impl Injector {
    fn new(input: ByteStream, tag: Arc<str>, media: Option<MediaDefer>) -> Self {
        let out = Sink::default();
        let rewriter = HtmlRewriter::new(settings(tag, media), out.clone());
        Self {
            input,
            state: State::Rewriting(Box::new(rewriter)),
            out,
        }
    }

    /// Handles a rewriter error: after a memory bail-out the input so far has
    /// been flushed raw and the page can go on unmodified; anything else ends
    /// the response with an error.
    fn on_error(&mut self, e: RewritingError) -> Option<io::Error> {
        if matches!(e, RewritingError::MemoryLimitExceeded(_)) {
            tracing::warn!("html rewriter bailed out ({e}); the rest of the page is not rewritten");
            self.state = State::PassThrough;
            None
        } else {
            tracing::warn!("html rewriter failed: {e}");
            self.state = State::Done;
            Some(io::Error::other(e.to_string()))
        }
    }
}

impl Stream for Injector {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if matches!(this.state, State::Done) {
                let rest = this.out.take();
                return Poll::Ready((!rest.is_empty()).then_some(Ok(rest)));
            }
            let next = ready!(this.input.as_mut().poll_next(cx));
            match (&mut this.state, next) {
                (_, Some(Err(e))) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(e)));
                }
                (State::PassThrough, Some(Ok(chunk))) => {
                    let before = this.out.take();
                    if before.is_empty() {
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                    let mut joined = BytesMut::from(&before[..]);
                    joined.extend_from_slice(&chunk);
                    return Poll::Ready(Some(Ok(joined.freeze())));
                }
                (State::Rewriting(rewriter), Some(Ok(chunk))) => {
                    if let Err(e) = rewriter.write(&chunk) {
                        if let Some(err) = this.on_error(e) {
                            return Poll::Ready(Some(Err(err)));
                        }
                    }
                }
                (State::Rewriting(_), None) => {
                    if let State::Rewriting(rewriter) =
                        std::mem::replace(&mut this.state, State::Done)
                    {
                        if let Err(e) = rewriter.end() {
                            if let Some(err) = this.on_error(e) {
                                return Poll::Ready(Some(Err(err)));
                            }
                            this.state = State::Done;
                        }
                    }
                }
                (_, None) => this.state = State::Done,
                (State::Done, Some(Ok(_))) => {}
            }
            let out = this.out.take();
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(out)));
            }
        }
    }
}

/// Where the media deferral is in the document.
#[derive(Default)]
struct DeferState {
    /// A `<base href>` or a blocking `<meta>` CSP was seen: nothing more is
    /// deferred.
    off: bool,
    /// Open `<template>` elements (their content is not in the document).
    templates: u32,
    /// Inside a media element whose `src` or an earlier `<source>` was
    /// deferred: every further `<source>` is deferred too, so the browser
    /// never tries them in another order than the page's.
    media_deferring: bool,
}

type Shared = Arc<Mutex<DeferState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, DeferState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Moves `src` to `data-tuber-src`.
fn defer_src(el: &mut lol_html::send::Element<'_, '_>, src: &str) {
    if el.set_attribute(DEFERRED_ATTR, src).is_ok() {
        el.remove_attribute("src");
    }
}

/// The handlers that defer media (none without `media`).
fn media_handlers(
    media: Option<MediaDefer>,
) -> Vec<(
    std::borrow::Cow<'static, lol_html::Selector>,
    lol_html::send::ElementContentHandlers<'static>,
)> {
    let Some(media) = media else {
        return Vec::new();
    };
    let media = Arc::new(media);
    let state: Shared = Arc::default();
    let (s_base, s_meta, s_tpl, s_media, s_source) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state,
    );
    let m_media = media.clone();
    let m_source = media;
    vec![
        element!("base[href]", move |_el| {
            lock(&s_base).off = true;
            Ok(())
        }),
        element!("meta[http-equiv]", move |el| {
            let csp = el
                .get_attribute("http-equiv")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("content-security-policy"));
            if csp && !csp_allows_own_scripts(&el.get_attribute("content").unwrap_or_default()) {
                lock(&s_meta).off = true;
            }
            Ok(())
        }),
        element!("template", move |el| {
            lock(&s_tpl).templates += 1;
            let state = s_tpl.clone();
            if el.can_have_content() {
                el.on_end_tag(end_tag!(move |_end| {
                    let mut st = lock(&state);
                    st.templates = st.templates.saturating_sub(1);
                    Ok(())
                }))?;
            }
            Ok(())
        }),
        element!("video, audio", move |el| {
            {
                let mut st = lock(&s_media);
                let active = !st.off && st.templates == 0;
                let src = el.get_attribute("src");
                let deferred = match &src {
                    Some(src) if active && m_media.defers(src) => {
                        defer_src(el, src);
                        true
                    }
                    _ => false,
                };
                st.media_deferring = deferred;
            }
            if el.can_have_content() {
                let state = s_media.clone();
                el.on_end_tag(end_tag!(move |_end| {
                    lock(&state).media_deferring = false;
                    Ok(())
                }))?;
            }
            Ok(())
        }),
        element!("video > source[src], audio > source[src]", move |el| {
            let mut st = lock(&s_source);
            if st.off || st.templates > 0 {
                return Ok(());
            }
            let src = el.get_attribute("src").unwrap_or_default();
            if st.media_deferring || m_source.defers(&src) {
                defer_src(el, &src);
                st.media_deferring = true;
            }
            Ok(())
        }),
    ]
}

/// The rewriter's handlers; `injected` makes the tag appear exactly once.
fn settings(tag: Arc<str>, media: Option<MediaDefer>) -> Settings<'static, 'static> {
    let injected = Arc::new(AtomicBool::new(false));
    let (head_flag, head_tag) = (injected.clone(), tag.clone());
    let (body_flag, body_tag) = (injected.clone(), tag.clone());
    let end_flag = injected;
    let mut settings = Settings::new_send()
        // Not strict: an ambiguous parser state must not cost a site its page.
        .with_strict(false)
        .with_memory_settings(
            MemorySettings::new()
                .with_max_allowed_memory_usage(REWRITER_MEMORY_LIMIT)
                .with_graceful_bail_out_on_memory_limit_exceeded(true),
        )
        .append_element_content_handler(element!("head", move |el| {
            // lol_html runs end-tag handlers only for explicit end tags; an
            // implicitly closed head falls through to the body handler.
            let (flag, tag) = (head_flag.clone(), head_tag.clone());
            if el.can_have_content() {
                el.on_end_tag(end_tag!(move |end| {
                    if !flag.swap(true, Ordering::Relaxed) {
                        end.before(&tag, ContentType::Html);
                    }
                    Ok(())
                }))?;
            }
            Ok(())
        }))
        .append_element_content_handler(element!("body", move |el| {
            if !body_flag.swap(true, Ordering::Relaxed) {
                el.prepend(&body_tag, ContentType::Html);
            }
            Ok(())
        }))
        .append_document_content_handler(end!(move |end| {
            if !end_flag.swap(true, Ordering::Relaxed) {
                end.append(&tag, ContentType::Html);
            }
            Ok(())
        }));
    for handler in media_handlers(media) {
        settings = settings.append_element_content_handler(handler);
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    async fn run(chunks: &[&str]) -> String {
        run_with(chunks, None).await
    }

    async fn run_with(chunks: &[&str], media: Option<MediaDefer>) -> String {
        let input: Vec<io::Result<Bytes>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c.as_bytes())))
            .collect();
        let tag: Arc<str> = Arc::from("<script src=\"/t.js\"></script>");
        let mut s = inject(
            Coding::Identity,
            Box::pin(futures_util::stream::iter(input)),
            tag,
            media,
        );
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn placement_is_exactly_once() {
        const T: &str = "<script src=\"/t.js\"></script>";
        assert_eq!(
            run(&[
                "<html><he",
                "ad><title>x</title></he",
                "ad><body>b</body></html>"
            ])
            .await,
            format!("<html><head><title>x</title>{T}</head><body>b</body></html>")
        );
        assert_eq!(
            run(&["<html><head><title>x</title><body>b</body>"]).await,
            format!("<html><head><title>x</title><body>{T}b</body>")
        );
        assert_eq!(run(&["<p>hi</p>"]).await, format!("<p>hi</p>{T}"));
        assert_eq!(run(&[]).await, T.to_string());
        // A "<head>" inside a script is text, not an element.
        assert_eq!(
            run(&["<script>var s='<head></head>';</script><p>x"]).await,
            format!("<script>var s='<head></head>';</script><p>x{T}")
        );
    }

    fn defer_at(page: &str, headers: &HeaderMap) -> Option<MediaDefer> {
        let config = crate::config::DistributeConfig {
            include: vec!["/live/*".into()],
            exclude: vec!["/private/*".into()],
            ..Default::default()
        };
        MediaDefer::for_page(
            Arc::new(Rules::new(&config)),
            page,
            Arc::from(vec!["https://video.example.org".to_string()]),
            headers,
        )
    }

    #[test]
    fn which_media_urls_are_deferred() {
        let d = defer_at("/videos/page.html?x=1", &HeaderMap::new()).unwrap();
        for yes in [
            "/media/clip.mp4",
            "clip.mp4",
            "../media/clip.webm?v=2&amp;t=1",
            " /a/b.MP3 ",
            "https://video.example.org/media/clip.mp4",
            "//video.example.org/clip.mp4",
            "/live/channel",
        ] {
            assert!(d.defers(yes), "{yes}");
        }
        for no in [
            "",
            "#t=10",
            "https://cdn.example.net/clip.mp4",
            "http://video.example.org:8080/clip.mp4",
            "data:video/mp4;base64,AAAA",
            "blob:https://video.example.org/1234",
            "/watch?id=3",
            "/private/clip.mp4",
            "/.tuber/client/x.mp4",
            "/clip&#46;mp4",
        ] {
            assert!(!d.defers(no), "{no}");
        }
    }

    #[test]
    fn csp_that_might_block_the_script_turns_deferral_off() {
        assert!(csp_allows_own_scripts("img-src *"));
        assert!(csp_allows_own_scripts("default-src 'self'; img-src *"));
        assert!(csp_allows_own_scripts(
            "script-src 'SELF' https://cdn.example"
        ));
        assert!(csp_allows_own_scripts(
            "default-src 'none'; script-src 'self'"
        ));
        assert!(!csp_allows_own_scripts("default-src 'none'"));
        assert!(!csp_allows_own_scripts(
            "script-src 'nonce-abc' 'strict-dynamic' 'self'"
        ));
        assert!(!csp_allows_own_scripts(
            "script-src 'self', script-src 'nonce-x'"
        ));
        assert!(!csp_allows_own_scripts(
            "script-src-elem 'nonce-x'; script-src 'self'"
        ));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            "script-src 'nonce-1'".parse().unwrap(),
        );
        assert!(defer_at("/", &headers).is_none());
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            "script-src 'self'".parse().unwrap(),
        );
        assert!(defer_at("/", &headers).is_some());
    }

    #[tokio::test]
    async fn media_src_moves_to_data_tuber_src() {
        const T: &str = "<script src=\"/t.js\"></script>";
        let d = || defer_at("/index.html", &HeaderMap::new());
        // Split inside the tag and the attribute: lol_html buffers the tag.
        assert_eq!(
            run_with(
                &[
                    "<html><head></head><body><video src=\"/media/cl",
                    "ip.mp4\" controls preload=\"auto\" autoplay></video>",
                    "<audio src='song.mp3'></audio><img src=\"/x.mp4\">",
                    "<video src=\"https://cdn.example.net/a.mp4\"></video></body></html>",
                ],
                d()
            )
            .await,
            format!(
                "<html><head>{T}</head><body><video controls preload=\"auto\" autoplay \
                 data-tuber-src=\"/media/clip.mp4\"></video><audio data-tuber-src=\"song.mp3\"></audio>\
                 <img src=\"/x.mp4\"><video src=\"https://cdn.example.net/a.mp4\"></video></body></html>"
            )
        );
        // <source> children: from the first deferred one on, all are deferred.
        assert_eq!(
            run_with(
                &["<video controls><source src=\"https://cdn.example.net/a.webm\">\
                   <source src=\"/a.mp4\" type=\"video/mp4\"><source src=\"https://cdn.example.net/a.ogv\">\
                   </video><video><source src=\"https://cdn.example.net/b.mp4\"></video>"],
                d()
            )
            .await,
            format!(
                "<video controls><source src=\"https://cdn.example.net/a.webm\">\
                 <source type=\"video/mp4\" data-tuber-src=\"/a.mp4\">\
                 <source data-tuber-src=\"https://cdn.example.net/a.ogv\"></video>\
                 <video><source src=\"https://cdn.example.net/b.mp4\"></video>{T}"
            )
        );
        // A deferred src defers the element's sources too.
        assert_eq!(
            run_with(
                &["<video src=\"/a.mp4\"><source src=\"https://cdn.example.net/b.mp4\"></video>"],
                d()
            )
            .await,
            format!(
                "<video data-tuber-src=\"/a.mp4\"><source data-tuber-src=\"https://cdn.example.net/b.mp4\"></video>{T}"
            )
        );
        // Not in templates, not after <base href>, not under a blocking meta CSP,
        // not in script text; and without a MediaDefer, nothing.
        for page in [
            "<template><video src=\"/a.mp4\"></video></template>",
            "<base href=\"/other/\"><video src=\"a.mp4\"></video>",
            "<meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'nonce-1'\"><video src=\"/a.mp4\"></video>",
            "<script>document.write('<video src=\"/a.mp4\"></video>')</script>",
        ] {
            assert_eq!(run_with(&[page], d()).await, format!("{page}{T}"), "{page}");
        }
        assert_eq!(
            run_with(
                &["<template></template><video src=\"/a.mp4\"></video>"],
                d()
            )
            .await,
            format!("<template></template><video data-tuber-src=\"/a.mp4\"></video>{T}")
        );
        assert_eq!(
            run(&["<video src=\"/a.mp4\"></video>"]).await,
            format!("<video src=\"/a.mp4\"></video>{T}")
        );
    }
}
