//! What a browser sees when the site behind the hub cannot be reached: a
//! small page (or a line of text for non-browser clients) that says so,
//! with the kind of failure and the operator's upstream URL, and a status
//! that tells caches and monitors the truth (502, or 504 on a timeout).
//! An `https://` upstream whose certificate is refused says so, and says
//! where a private CA is configured.

use std::error::Error as StdError;
use std::io;

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};

/// Why the upstream did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// Nothing listens at the upstream address.
    Refused,
    /// The TCP connect (and TLS handshake) did not finish within
    /// `connect_timeout`.
    ConnectTimeout,
    /// The `https://` upstream's certificate was refused: not signed by a
    /// trusted CA, expired, or not for the upstream's host name.
    Certificate,
    /// The TLS handshake with an `https://` upstream failed otherwise (no
    /// common protocol, not TLS at all).
    Tls,
    /// The upstream's name did not resolve, or another connect failure.
    Unreachable,
    /// Connected, then the connection broke or the answer was not HTTP.
    BadResponse,
}

impl UpstreamFailure {
    /// Classifies a client error by walking its source chain.
    pub(crate) fn classify(err: &hyper_util::client::legacy::Error) -> Self {
        let mut source: Option<&(dyn StdError + 'static)> = err.source();
        while let Some(e) = source {
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                return match tls {
                    rustls::Error::InvalidCertificate(_)
                    | rustls::Error::InvalidCertRevocationList(_) => Self::Certificate,
                    _ => Self::Tls,
                };
            }
            if let Some(io) = e.downcast_ref::<io::Error>() {
                match io.kind() {
                    io::ErrorKind::ConnectionRefused => return Self::Refused,
                    io::ErrorKind::TimedOut if err.is_connect() => return Self::ConnectTimeout,
                    _ => {}
                }
                // `io::Error::source` skips the error it wraps (where the
                // TLS layer puts rustls's): step into it instead.
                if let Some(inner) = io.get_ref() {
                    source = Some(inner as &(dyn StdError + 'static));
                    continue;
                }
            }
            source = e.source();
        }
        if err.is_connect() {
            Self::Unreachable
        } else {
            Self::BadResponse
        }
    }

    /// The status the client gets.
    pub fn status(self) -> StatusCode {
        match self {
            Self::ConnectTimeout => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// A short, lowercase description for pages and logs.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Refused => "connection refused",
            Self::ConnectTimeout => "connection timed out",
            Self::Unreachable => "could not connect",
            Self::Certificate => {
                "its TLS certificate was refused (not from a trusted CA, expired, \
                 or not for this host name; a private CA goes in upstream_ca_file)"
            }
            Self::Tls => "TLS handshake failed",
            Self::BadResponse => "connection broken or invalid response",
        }
    }
}

/// The headline of every error page.
pub const HEADLINE: &str = "The site behind this Tuber hub is not answering";

/// Renders the failure as HTML when the client accepts it, else as text.
/// `upstream` is the operator's own configured URL: showing it helps the
/// operator and reveals nothing they did not choose.
pub(crate) fn render(failure: UpstreamFailure, upstream: &str, html: bool) -> Response {
    let status = failure.status();
    let what = failure.describe();
    let (content_type, body) = if html {
        let upstream = escape(upstream);
        (
            "text/html; charset=utf-8",
            format!(
                "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
                 <title>{code} {HEADLINE}</title></head>\n<body>\
                 <h1>{HEADLINE}</h1>\n<p>The hub could not reach <code>{upstream}</code>: \
                 {what}.</p>\n<p>Try again in a moment.</p>\n</body></html>\n",
                code = status.as_u16(),
            ),
        )
    } else {
        (
            "text/plain; charset=utf-8",
            format!("{HEADLINE}: {upstream}: {what}\n"),
        )
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // An outage must not be cached as if it were the page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A response for a request the proxy could not even build (a malformed
/// head that hyper accepted but `http` refuses to rebuild).
pub(crate) fn bad_request(reason: &str) -> Response {
    let mut response = Response::new(Body::from(format!("bad request: {reason}\n")));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
