//! The hub's HTTP side for a peer: manifests (`GET {manifest}?path=`) and,
//! when no peer has a piece, the piece itself (`GET {pieces}{hash}`). Every
//! body is read no further than its limit and every piece is verified.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

use crate::http_body::BodyError;
use crate::tls::{error_chain, TlsTrust};
use tuber_proto::limits::{MAX_MANIFEST_BYTES, MAX_PIECE_SIZE};
use tuber_proto::{Manifest, ManifestId, PieceHash, SwarmDescriptor};

/// Longest one manifest or piece request may take.
pub const HUB_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the hub did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum HubHttpError {
    /// Connect or protocol failure, or a timeout.
    #[error("{url}: {why}")]
    Http { url: String, why: String },
    /// Not 200.
    #[error("{url}: status {status}")]
    Status { url: String, status: u16 },
    /// The body is larger than allowed.
    #[error("{url}: answer larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    /// A manifest that does not decode, or is not the one assigned.
    #[error("{url}: {why}")]
    BadManifest { url: String, why: String },
    /// The piece's bytes do not hash to its name.
    #[error("{url}: the piece's bytes do not match its hash")]
    Corrupt { url: String },
}

/// A pooled HTTP client for one engine (all swarms).
#[derive(Clone)]
pub struct HubHttp {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HubHttp {
    /// A client with a 5 s connect timeout and a small idle pool, trusting
    /// what `tls` trusts for `https://` hubs.
    pub fn new(tls: &TlsTrust) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(8)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(tls.https_connector(connector));
        Self { client }
    }

    /// The manifest of `path`, checked to be `expected` when given.
    pub async fn manifest(
        &self,
        desc: &SwarmDescriptor,
        path: &str,
        expected: Option<ManifestId>,
    ) -> Result<(Manifest, Bytes), HubHttpError> {
        let url = format!("{}?path={}", desc.manifest, encode_query(path));
        let body = self.get(&url, MAX_MANIFEST_BYTES).await?;
        let bad = |why: String| HubHttpError::BadManifest {
            url: url.clone(),
            why,
        };
        let manifest = Manifest::decode(&body).map_err(|e| bad(e.to_string()))?;
        if manifest.path != path {
            return Err(bad(format!("it is the manifest of {}", manifest.path)));
        }
        if let Some(want) = expected {
            if manifest.id() != want {
                return Err(bad(format!(
                    "its id is {}, the assignment names {want}",
                    manifest.id()
                )));
            }
        }
        Ok((manifest, body))
    }

    /// One piece from the hub, verified.
    pub async fn piece(
        &self,
        desc: &SwarmDescriptor,
        hash: PieceHash,
    ) -> Result<Bytes, HubHttpError> {
        let url = format!("{}{}", desc.pieces, hash);
        let body = self.get(&url, MAX_PIECE_SIZE as usize).await?;
        if PieceHash::from_bytes(Sha256::digest(&body).into()) != hash {
            return Err(HubHttpError::Corrupt { url });
        }
        Ok(body)
    }

    async fn get(&self, url: &str, limit: usize) -> Result<Bytes, HubHttpError> {
        match tokio::time::timeout(HUB_TIMEOUT, self.get_inner(url, limit)).await {
            Ok(r) => r,
            Err(_) => Err(HubHttpError::Http {
                url: url.to_string(),
                why: format!("no answer within {HUB_TIMEOUT:?}"),
            }),
        }
    }

    async fn get_inner(&self, url: &str, limit: usize) -> Result<Bytes, HubHttpError> {
        let http_err = |e: &dyn std::fmt::Display| HubHttpError::Http {
            url: url.to_string(),
            why: e.to_string(),
        };
        let uri: http::Uri = url.parse().map_err(|e| http_err(&e))?;
        // The descriptor's URLs were checked to be on the joined origin.
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(http_err(&"not an http(s) URL"));
        }
        let req = http::Request::get(uri)
            .body(Empty::new())
            .map_err(|e| http_err(&e))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| http_err(&error_chain(&e)))?;
        if resp.status() != http::StatusCode::OK {
            return Err(HubHttpError::Status {
                url: url.to_string(),
                status: resp.status().as_u16(),
            });
        }
        crate::http_body::read_limited(resp, limit)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => HubHttpError::TooLarge {
                    url: url.to_string(),
                    limit,
                },
                BodyError::Http(why) => http_err(&why),
            })
    }
}

/// Percent-encodes a query value (everything but unreserved characters and
/// `/`, which paths are full of and queries allow).
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query("/a b/c?d=e&f"), "/a%20b/c%3Fd%3De%26f");
        assert_eq!(encode_query("/ü"), "/%C3%BC");
    }
}
