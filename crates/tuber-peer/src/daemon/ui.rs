//! The dashboard's static files (`ui/` at the repository root), embedded at
//! build time so a release depends on nothing beside the binary.
//!
//! Every file is listed here by hand with its MIME type; a test fails when
//! a file in `ui/` (which holds only served files; its npm tooling is in `web/`) is
//! missing from [`FILES`]. Each is served at `/ui/NAME` and at `/NAME`
//! (so `index.html`'s relative links work both here and in the desktop
//! window), `index.html` also at `/`. No token is needed for them; the
//! Host/Origin checks still apply, and every answer carries [`CSP`].

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of every dashboard file.
pub const CSP: &str =
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'";

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct UiFile {
    /// Its path inside `ui/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub mime: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! ui_file {
    ($name:literal, $mime:literal) => {
        UiFile {
            name: $name,
            mime: $mime,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/", $name)),
        }
    };
}

/// Every file of the dashboard.
pub const FILES: &[UiFile] = &[
    ui_file!("index.html", "text/html; charset=utf-8"),
    ui_file!("app.js", "text/javascript; charset=utf-8"),
    ui_file!("api.js", "text/javascript; charset=utf-8"),
    ui_file!("api-http.js", "text/javascript; charset=utf-8"),
    ui_file!("api-tauri.js", "text/javascript; charset=utf-8"),
    ui_file!("api-error.js", "text/javascript; charset=utf-8"),
    ui_file!("desktop.js", "text/javascript; charset=utf-8"),
    ui_file!("format.js", "text/javascript; charset=utf-8"),
    ui_file!("style.css", "text/css; charset=utf-8"),
    ui_file!("favicon.svg", "image/svg+xml"),
    ui_file!("vendor/uPlot.esm.js", "text/javascript; charset=utf-8"),
    ui_file!("vendor/uPlot.min.css", "text/css; charset=utf-8"),
    ui_file!("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
];

/// The file a request path names: `/`, `/NAME` or `/ui/NAME` (and `/ui/`).
pub fn lookup(path: &str) -> Option<&'static UiFile> {
    let name = match path {
        "/" | "/ui" | "/ui/" => "index.html",
        p => p.strip_prefix("/ui/").or_else(|| p.strip_prefix('/'))?,
    };
    FILES.iter().find(|f| f.name == name)
}

/// The answer for `file`.
pub fn response(file: &UiFile) -> Response {
    let mut r = (StatusCode::OK, file.body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.mime));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read ui/") {
            let path: PathBuf = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("inside ui/")
                .to_string_lossy()
                .replace('\\', "/");
            // Everything in ui/ counts: the desktop app embeds the whole
            // folder, so the daemon must serve the same set (npm tooling
            // lives in web/).
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }

    #[test]
    fn every_ui_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
        let mut found = Vec::new();
        walk(&root, &root, &mut found);
        assert!(found.iter().any(|f| f == "index.html"), "{found:?}");
        for name in &found {
            assert!(
                FILES.iter().any(|f| f.name == name),
                "ui/{name} is not listed in daemon/ui.rs FILES: add it there"
            );
        }
        assert_eq!(found.len(), FILES.len(), "{found:?}");
    }

    #[test]
    fn lookup_finds_files_by_both_paths() {
        assert_eq!(lookup("/").map(|f| f.name), Some("index.html"));
        assert_eq!(lookup("/ui/").map(|f| f.name), Some("index.html"));
        assert_eq!(lookup("/ui/app.js").map(|f| f.name), Some("app.js"));
        assert_eq!(lookup("/app.js").map(|f| f.name), Some("app.js"));
        assert_eq!(
            lookup("/ui/vendor/uPlot.esm.js").map(|f| f.mime),
            Some("text/javascript; charset=utf-8")
        );
        assert!(lookup("/api/status").is_none());
        assert!(lookup("/ui/../Cargo.toml").is_none());
        assert!(lookup("/nothing.js").is_none());
    }
}
