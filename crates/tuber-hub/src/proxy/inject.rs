//! Injects the page script into HTML as it streams: lol_html is fed the
//! upstream's chunks one by one and whatever it emits goes straight on to the
//! client, so a page is never held whole. Backpressure is the client's: a
//! chunk is only pulled from upstream when the client took the last output.
//!
//! Where the tag goes, exactly once: before the page's first `<script>`
//! (outside `<template>`, `<noscript>`, `<svg>` and `<math>`, where a script
//! would not run as one), so the page script runs before any of the page's
//! own and can hold what an MSE player requests before the Service Worker
//! controls a first visit; with no script before it, at the end of `<head>`
//! (before its end tag); if `<head>` has no explicit end tag or there is no
//! head, at the start of `<body>`; if neither, at the end of the document.
//! The tag is a plain (parser-blocking) script for that reason: a `defer`
//! script runs after every other script of the page.
//!
//! Media deferral (the `src` of `<video>`/`<audio>` held until the Service
//! Worker controls the page) is [`super::media_defer`]'s.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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
use super::media_defer::{media_handlers, MediaDefer};

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

/// The page script's tag: a plain script (see the module doc), carrying
/// the extensions that make a path distributable, so the page script can
/// tell which of the page's early requests to hold without waiting for the
/// hub's rules.
pub(crate) fn page_script_tag(rules: &Rules) -> String {
    let ext: Vec<String> = rules
        .view()
        .extensions
        .iter()
        .map(|e| {
            e.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect()
        })
        .filter(|e: &String| !e.is_empty())
        .collect();
    format!(
        r#"<script src="/.tuber/client/tuber.js" data-tuber-ext="{}"></script>"#,
        ext.join(" ")
    )
}

/// Elements whose content does not run as the page's scripts.
const INERT: &str = "template, noscript, svg, math";

/// The rewriter's handlers; `injected` makes the tag appear exactly once.
fn settings(tag: Arc<str>, media: Option<MediaDefer>) -> Settings<'static, 'static> {
    let injected = Arc::new(AtomicBool::new(false));
    let inert = Arc::new(AtomicU32::new(0));
    let (script_flag, script_tag, script_inert) = (injected.clone(), tag.clone(), inert.clone());
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
        .append_element_content_handler(element!(INERT, move |el| {
            if el.can_have_content() && !el.is_self_closing() {
                inert.fetch_add(1, Ordering::Relaxed);
                let inert = inert.clone();
                el.on_end_tag(end_tag!(move |_end| {
                    let _ = inert.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        Some(n.saturating_sub(1))
                    });
                    Ok(())
                }))?;
            }
            Ok(())
        }))
        .append_element_content_handler(element!("script", move |el| {
            if script_inert.load(Ordering::Relaxed) == 0
                && !script_flag.swap(true, Ordering::Relaxed)
            {
                el.before(&script_tag, ContentType::Html);
            }
            Ok(())
        }))
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
    use super::super::media_defer::defer_at;
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
        // Before the page's first script, wherever it is; a "<head>"
        // inside a script is text, not an element.
        assert_eq!(
            run(&["<script>var s='<head></head>';</script><p>x"]).await,
            format!("{T}<script>var s='<head></head>';</script><p>x")
        );
        assert_eq!(
            run(&[
                "<html><head><meta charset=utf-8><scr",
                "ipt src=/hls.js></script><script>x()</script></head><body></body>"
            ])
            .await,
            format!(
                "<html><head><meta charset=utf-8>{T}<script src=/hls.js></script>\
                 <script>x()</script></head><body></body>"
            )
        );
        assert_eq!(
            run(&["<html><head></head><body><p>a</p><script>go()</script></body>"]).await,
            format!("<html><head>{T}</head><body><p>a</p><script>go()</script></body>")
        );
        // A script that would not run as the page's does not count.
        for inert in [
            "<template><script>a()</script></template>",
            "<noscript><script>a()</script></noscript>",
            "<svg><script>a()</script></svg>",
            "<math><script>a()</script></math>",
        ] {
            assert_eq!(
                run(&[inert, "<script>b()</script>"]).await,
                format!("{inert}{T}<script>b()</script>"),
                "{inert}"
            );
        }
        assert_eq!(
            run(&["<svg/><script>b()</script>"]).await,
            format!("<svg/>{T}<script>b()</script>")
        );
    }

    #[test]
    fn the_tag_carries_the_extensions_escaped() {
        let config = crate::config::DistributeConfig {
            extensions: vec!["ts".into(), ".M4S".into(), "a\"><b".into()],
            ..Default::default()
        };
        assert_eq!(
            page_script_tag(&Rules::new(&config)),
            r#"<script src="/.tuber/client/tuber.js" data-tuber-ext="ts m4s ab"></script>"#
        );
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
        ] {
            assert_eq!(run_with(&[page], d()).await, format!("{page}{T}"), "{page}");
        }
        let page = "<script>document.write('<video src=\"/a.mp4\"></video>')</script>";
        assert_eq!(run_with(&[page], d()).await, format!("{T}{page}"));
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
