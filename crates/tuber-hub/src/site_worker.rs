//! A site's own Service Worker, hosted by Tuber's (`web/site-worker.js`).
//!
//! One registration per scope runs one script, so the page script registers,
//! in place of the site's worker `/sw.js`, the *host* URL `/sw.js?tuber-host=classic`
//! (`=module` for a module worker): the site script's own URL with one more
//! query parameter, always the last. The hub answers such a URL itself,
//! before the proxy, with Tuber's worker:
//! - `classic`: `web/sw-classic.js` (Tuber's worker as one classic script),
//!   which ends with `importScripts` of its own URL without the parameter;
//! - `module`: `import "/.tuber/client/sw.js"; import "./sw.js";`, the site's
//!   script by a URL relative to the host's own (so always same-origin).
//!
//! The site's script itself is then fetched through the proxy like any
//! other: unmodified. The host lives at the site script's path, so the
//! site's relative URLs resolve as without Tuber, and no
//! `Service-Worker-Allowed` is sent: its scope is at most the script's
//! directory, as the browser allows the site's own script.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::routes::client_file_text;

/// The query parameter (the last one) that makes a script URL a host.
pub const HOST_PARAM: &str = "tuber-host";

/// Which kind of worker the site registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// A classic script (`importScripts` works).
    Classic,
    /// An ES module (`type: 'module'`).
    Module,
}

/// The site's worker that a request for `path?query` stands for: its kind
/// and the site script's path with the rest of its query; `None` when it is
/// no host URL, or one the hub will not answer (the hub's own paths, a path
/// that is not plainly same-origin).
pub fn site_script(path: &str, query: Option<&str>) -> Option<(HostKind, String)> {
    let query = query?;
    let (rest, value) = match query.rfind('&') {
        Some(i) => (Some(&query[..i]), &query[i + 1..]),
        None => (None, query),
    };
    let kind = match value.strip_prefix(HOST_PARAM)?.strip_prefix('=')? {
        "classic" => HostKind::Classic,
        "module" => HostKind::Module,
        _ => return None,
    };
    if !path.starts_with('/')
        || path.starts_with("//")
        || path.contains('\\')
        || path.starts_with("/.tuber/")
        || path.starts_with("/.well-known/")
    {
        return None;
    }
    let site = match rest {
        Some(r) if !r.is_empty() => format!("{path}?{r}"),
        _ => path.to_string(),
    };
    Some((kind, site))
}

/// The module host for the site's module script at `site` (path and query):
/// Tuber's worker first, then the site's, by a URL relative to the host's.
fn module_host(site: &str) -> String {
    let (path, query) = site
        .split_once('?')
        .map_or((site, None), |(p, q)| (p, Some(q)));
    let last = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    let relative = match query {
        Some(q) => format!("./{last}?{q}"),
        None => format!("./{last}"),
    };
    let spec = serde_json::to_string(&relative).unwrap_or_else(|_| "\"./\"".into());
    format!(
        "// Tuber's Service Worker hosting this site's own module worker (see /.tuber/client/site-worker.js).\n\
         import \"/.tuber/client/sw.js\";\nimport {spec};\n"
    )
}

/// The hub's answer to a host URL (`GET`/`HEAD`), or `None` to proxy the
/// request as any other.
pub fn host_response(method: &Method, uri: &Uri, request: &HeaderMap) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let (kind, site) = site_script(uri.path(), uri.query())?;
    let body = match kind {
        HostKind::Classic => client_file_text("sw-classic.js")?.to_string(),
        HostKind::Module => module_host(&site),
    };
    Some(javascript(body, request))
}

/// `body` as JavaScript revalidated on every use (a strong ETag, `no-cache`).
fn javascript(body: String, request: &HeaderMap) -> Response {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body.as_bytes());
    let tag = format!("\"{}\"", hex::encode(&digest[..16]));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.trim_start_matches("W/") == tag)
        });
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            )],
            body,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_urls_name_the_site_script() {
        let s = |p: &str, q: Option<&str>| site_script(p, q);
        assert_eq!(
            s("/sw.js", Some("tuber-host=classic")),
            Some((HostKind::Classic, "/sw.js".into()))
        );
        assert_eq!(
            s("/app/sw.js", Some("v=3&tuber-host=module")),
            Some((HostKind::Module, "/app/sw.js?v=3".into()))
        );
        assert_eq!(
            s("/sw.js", Some("&tuber-host=classic")),
            Some((HostKind::Classic, "/sw.js".into()))
        );
        // Not hosts: other values, not last, other names, no query.
        for (p, q) in [
            ("/sw.js", Some("tuber-host=other")),
            ("/sw.js", Some("tuber-host=classic&v=1")),
            ("/sw.js", Some("xtuber-host=classic")),
            ("/sw.js", Some("tuber-host")),
            ("/sw.js", None),
            // The hub's own URLs, and paths that are not plainly this origin's.
            ("/.tuber/client/sw.js", Some("tuber-host=classic")),
            ("/.well-known/tuber", Some("tuber-host=classic")),
            ("//evil.example/sw.js", Some("tuber-host=module")),
            ("/\\evil.example/sw.js", Some("tuber-host=module")),
        ] {
            assert_eq!(s(p, q), None, "{p}?{q:?}");
        }
    }

    #[test]
    fn a_module_host_imports_tuber_then_the_site_relative_to_itself() {
        assert_eq!(
            module_host("/app/sw.js?v=3"),
            "// Tuber's Service Worker hosting this site's own module worker (see /.tuber/client/site-worker.js).\n\
             import \"/.tuber/client/sw.js\";\nimport \"./sw.js?v=3\";\n"
        );
        assert!(module_host("/sw.mjs").ends_with("import \"./sw.mjs\";\n"));
        assert!(module_host("/dir/").ends_with("import \"./\";\n"));
        // Quotes cannot end the specifier.
        assert!(module_host("/a\"b.js").ends_with("import \"./a\\\"b.js\";\n"));
    }

    #[test]
    fn the_hub_answers_host_urls_with_its_worker() {
        let get = |uri: &str, h: HeaderMap| host_response(&Method::GET, &uri.parse().unwrap(), &h);
        let resp = get("/sw.js?tuber-host=classic", HeaderMap::new()).expect("a host");
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        // The browser's own scope rule: at most the script's directory.
        assert!(h.get("service-worker-allowed").is_none());
        let etag = h[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            get("/sw.js?tuber-host=classic", again)
                .expect("a host")
                .status(),
            StatusCode::NOT_MODIFIED
        );
        assert!(get("/sw.js?tuber-host=module", HeaderMap::new()).is_some());
        assert!(get("/sw.js", HeaderMap::new()).is_none());
        assert!(get("/sw.js?v=1", HeaderMap::new()).is_none());
        let post = host_response(
            &Method::POST,
            &"/sw.js?tuber-host=classic".parse().unwrap(),
            &HeaderMap::new(),
        );
        assert!(post.is_none());
    }

    #[test]
    fn the_classic_host_is_the_bundle_that_imports_the_site_script() {
        let text = client_file_text("sw-classic.js").expect("built in");
        assert!(text.contains("importScripts(hosted.url)"));
        assert!(!text
            .lines()
            .any(|l| l.starts_with("import ") || l.starts_with("export ")));
    }
}
