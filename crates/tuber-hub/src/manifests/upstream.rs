//! The service's requests to the upstream: the version check (a HEAD, where
//! the distribute rules are applied) and single requests with a timeout.

use std::net::IpAddr;

use http::{header, Method, Request, Uri};
use http_body_util::Empty;

use super::{ManifestServiceError, Manifests, UPSTREAM_TIMEOUT};
use crate::upstream_client;

impl Manifests {
    pub(super) fn uri(&self, path: &str) -> Result<Uri, ManifestServiceError> {
        let base = &self.inner.upstream;
        let scheme = base.scheme_str().unwrap_or("http");
        let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
        format!("{scheme}://{authority}{path}")
            .parse()
            .map_err(|_| ManifestServiceError::BadPath("not a valid URL path"))
    }

    /// One request to the upstream, with a timeout. Always asks for the
    /// bytes as stored (`identity`): manifests describe those, never a
    /// compressed rendition.
    pub(super) async fn upstream(
        &self,
        method: Method,
        path: &str,
        range: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<http::Response<hyper::body::Incoming>, ManifestServiceError> {
        let mut req = Request::builder()
            .method(method)
            .uri(self.uri(path)?)
            .header(header::ACCEPT_ENCODING, "identity");
        if let Some(range) = range {
            req = req.header(header::RANGE, range);
        }
        // Whom the hub asks for: the upstream's IP rules see the client, as
        // they do for what the proxy forwards.
        if let Some(ip) = client {
            req = req.header("x-forwarded-for", ip.to_string());
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| ManifestServiceError::Unreachable(e.to_string()))?;
        tokio::time::timeout(UPSTREAM_TIMEOUT, self.inner.client.request(req))
            .await
            .map_err(|_| ManifestServiceError::Unreachable("timed out".into()))?
            .map_err(|e| ManifestServiceError::Unreachable(upstream_client::error_chain(&e)))
    }

    /// The upstream's validator for `path` (strong ETag, else
    /// Last-Modified) and its length, when it says.
    ///
    /// Also where the rules are applied: a manifest is made only of what the
    /// proxy itself would distribute (an HTML page, an API answer or a small
    /// file asked for by name is not), and never of a private response.
    pub(super) async fn upstream_version(
        &self,
        path: &str,
        client: Option<IpAddr>,
    ) -> Result<(Option<String>, Option<u64>), ManifestServiceError> {
        let resp = self.upstream(Method::HEAD, path, None, client).await?;
        if !resp.status().is_success() {
            return Err(ManifestServiceError::Upstream(resp.status()));
        }
        self.check_distributable(path, resp.headers())?;
        let length = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok());
        Ok((validator(resp.headers()), length))
    }

    /// The rules' verdict on a response's headers.
    pub(super) fn check_distributable(
        &self,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<(), ManifestServiceError> {
        if crate::proxy::distributable::is_private_response(headers) {
            return Err(ManifestServiceError::Private);
        }
        let Some(rules) = &self.inner.rules else {
            return Ok(());
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok());
        if rules.is_distributable(path, content_type, length) {
            Ok(())
        } else {
            Err(ManifestServiceError::NotDistributable)
        }
    }
}

/// A strong ETag, else Last-Modified: what identifies these bytes.
pub(super) fn validator(h: &http::HeaderMap) -> Option<String> {
    let etag = h
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|e| !e.starts_with("W/"));
    let modified = h.get(header::LAST_MODIFIED).and_then(|v| v.to_str().ok());
    etag.or(modified)
        .filter(|v| v.len() <= tuber_proto::limits::MAX_VERSION_LEN)
        .map(str::to_string)
}
