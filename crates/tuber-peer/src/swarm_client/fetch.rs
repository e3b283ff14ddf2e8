//! `GET /.well-known/tuber` (protocol §3) over HTTP or HTTPS, the body read
//! no further than [`MAX_DESCRIPTOR_BYTES`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tuber_proto::descriptor::DescriptorError;
use tuber_proto::limits::MAX_DESCRIPTOR_BYTES;
use tuber_proto::SwarmDescriptor;

use crate::http_body::BodyError;
use crate::tls::{certificate_problem, error_chain, TlsTrust};

/// Longest the whole descriptor request may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the descriptor could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed (connect, protocol).
    #[error("fetching {url}: {why}")]
    Http { url: String, why: String },
    /// The hub's certificate was refused: `words` says why.
    #[error("fetching {url}: {words}")]
    Certificate { url: String, words: String },
    /// Not `200 OK`.
    #[error("fetching {url}: status {status}")]
    Status { url: String, status: u16 },
    /// Larger than [`MAX_DESCRIPTOR_BYTES`].
    #[error("fetching {url}: the descriptor is larger than {MAX_DESCRIPTOR_BYTES} bytes")]
    TooLarge { url: String },
    /// No answer within [`FETCH_TIMEOUT`].
    #[error("fetching {url}: no answer within {FETCH_TIMEOUT:?}")]
    Timeout { url: String },
    /// The document is not a valid descriptor.
    #[error("the descriptor at {url} is refused: {source}")]
    Descriptor {
        url: String,
        source: DescriptorError,
    },
}

/// An HTTP client for descriptors. No pooling: one request per join
/// attempt, and a pooled connection to a restarted hub would only be stale.
pub struct DescriptorClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl DescriptorClient {
    pub fn new(tls: &TlsTrust) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(tls.https_connector(connector));
        Self { client }
    }

    /// Fetches and decodes the descriptor at `url`.
    pub async fn fetch(&self, url: &http::Uri) -> Result<SwarmDescriptor, FetchError> {
        let shown = url.to_string();
        match tokio::time::timeout(FETCH_TIMEOUT, self.fetch_inner(url, &shown)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout { url: shown }),
        }
    }

    async fn fetch_inner(
        &self,
        url: &http::Uri,
        shown: &str,
    ) -> Result<SwarmDescriptor, FetchError> {
        let http_err = |e: &dyn std::fmt::Display| FetchError::Http {
            url: shown.to_string(),
            why: e.to_string(),
        };
        let req = http::Request::get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| http_err(&e))?;
        let resp = self.client.request(req).await.map_err(|e| {
            match certificate_problem(&e, url.host().unwrap_or_default()) {
                Some(words) => FetchError::Certificate {
                    url: shown.to_string(),
                    words,
                },
                None => http_err(&error_chain(&e)),
            }
        })?;
        if resp.status() != http::StatusCode::OK {
            return Err(FetchError::Status {
                url: shown.to_string(),
                status: resp.status().as_u16(),
            });
        }
        let body = crate::http_body::read_limited(resp, MAX_DESCRIPTOR_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => FetchError::TooLarge {
                    url: shown.to_string(),
                },
                BodyError::Http(why) => http_err(&why),
            })?;
        SwarmDescriptor::decode(&body).map_err(|source| FetchError::Descriptor {
            url: shown.to_string(),
            source,
        })
    }
}

/// `{scheme}://{authority}/.well-known/tuber` for a swarm URL: the
/// well-known path is at the origin's root (RFC 8615), whatever path the
/// swarm URL has.
pub fn well_known_url(swarm: &http::Uri) -> Result<http::Uri, http::Error> {
    let scheme = swarm.scheme_str().unwrap_or("http");
    let authority = swarm.authority().map(|a| a.as_str()).unwrap_or_default();
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query("/.well-known/tuber")
        .build()?;
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_url_is_at_the_origin_root() {
        let u: http::Uri = "http://example.org:8080/videos/?x=1".parse().unwrap();
        assert_eq!(
            well_known_url(&u).unwrap().to_string(),
            "http://example.org:8080/.well-known/tuber"
        );
    }

    #[tokio::test]
    async fn an_oversized_or_bad_descriptor_is_refused() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let bodies = [
                vec![b' '; MAX_DESCRIPTOR_BYTES + 1],
                b"{\"version\":3}".to_vec(),
            ];
            for (i, body) in bodies.iter().enumerate() {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await.unwrap();
                // The first answer names no length (it runs to the close),
                // so only the reader's limit can stop it.
                let head = if i == 0 {
                    "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_string()
                } else {
                    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len())
                };
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            }
        });
        let client = DescriptorClient::new(&TlsTrust::bundled());
        let url: http::Uri = format!("http://{addr}/.well-known/tuber").parse().unwrap();
        let err = client.fetch(&url).await.unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
        let err = client.fetch(&url).await.unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::Descriptor {
                    source: DescriptorError::UnsupportedVersion(3),
                    ..
                }
            ),
            "{err}"
        );
        server.await.unwrap();
    }
}
