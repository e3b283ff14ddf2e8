//! First visits: media deferred until the Service Worker controls the page.
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

use std::sync::{Arc, Mutex};

use http::{header, HeaderMap};
use lol_html::{element, end_tag};

use super::distributable::Rules;
use super::playlist;

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
pub(crate) fn media_handlers(
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

/// A deferral at `page` for the tests of this module and of `inject`: an
/// include pattern, an exclude pattern and one own origin.
#[cfg(test)]
pub(crate) fn defer_at(page: &str, headers: &HeaderMap) -> Option<MediaDefer> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
