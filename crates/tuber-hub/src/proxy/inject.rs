//! Injects the page script into HTML as it streams: lol_html is fed the
//! upstream's chunks one by one and whatever it emits goes straight on to the
//! client, so a page is never held whole. Backpressure is the client's: a
//! chunk is only pulled from upstream when the client took the last output.
//!
//! Where the tag goes, exactly once: at the end of `<head>` (before its end
//! tag); if `<head>` has no explicit end tag or there is no head, at the start
//! of `<body>`; if neither, at the end of the document.

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
use super::distributable::mime_essence;

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

/// The page's bytes, decoded and with `tag` injected, as a stream.
pub(crate) fn inject(coding: Coding, body: ByteStream, tag: Arc<str>) -> ByteStream {
    Box::pin(Injector::new(decode(coding, body), tag))
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
    fn new(input: ByteStream, tag: Arc<str>) -> Self {
        let out = Sink::default();
        let rewriter = HtmlRewriter::new(settings(tag), out.clone());
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

/// The rewriter's handlers; `injected` makes the tag appear exactly once.
fn settings(tag: Arc<str>) -> Settings<'static, 'static> {
    let injected = Arc::new(AtomicBool::new(false));
    let (head_flag, head_tag) = (injected.clone(), tag.clone());
    let (body_flag, body_tag) = (injected.clone(), tag.clone());
    let end_flag = injected;
    Settings::new_send()
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
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    async fn run(chunks: &[&str]) -> String {
        let input: Vec<io::Result<Bytes>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c.as_bytes())))
            .collect();
        let tag: Arc<str> = Arc::from("<script src=\"/t.js\"></script>");
        let mut s = inject(
            Coding::Identity,
            Box::pin(futures_util::stream::iter(input)),
            tag,
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
}
