//! The CLI's HTTP client to a running daemon, found through `api.json` and
//! `api.token` in the data dir.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::files::{self, ApiToken};
use super::DaemonError;

/// Longest one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest answer read (the history is the largest, well under this).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// A connection to the daemon that owns a data dir.
pub struct DaemonClient {
    base: String,
    token: ApiToken,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for DaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl DaemonClient {
    /// Reads `api.json` and `api.token` in `dir`. [`DaemonError::NotRunning`]
    /// when there is no `api.json`.
    pub fn for_data_dir(dir: &Path) -> Result<Self, DaemonError> {
        let info = files::read_api_info(dir)
            .map_err(|e| DaemonError::io(&files::api_file(dir), e))?
            .ok_or_else(|| {
                DaemonError::NotRunning(format!(
                    "no tuber-peer daemon is running for {} (no {} there); start one with \
                     `tuber-peer run`",
                    dir.display(),
                    files::API_FILE
                ))
            })?;
        let token = files::read_token(dir).map_err(|e| DaemonError::io(dir, e))?;
        Self::new(&info.url, token)
    }

    /// A client for the API at `base` (`http://127.0.0.1:PORT`, loopback
    /// only: the token is never sent anywhere else).
    pub fn new(base: &str, token: ApiToken) -> Result<Self, DaemonError> {
        let base = base.trim_end_matches('/').to_string();
        let loopback = base
            .strip_prefix("http://")
            .and_then(|hp| hp.parse::<std::net::SocketAddr>().ok())
            .is_some_and(|a| a.ip().is_loopback());
        if !loopback {
            return Err(DaemonError::Usage(format!(
                "{} names {base}, which is not an http://loopback:port address",
                files::API_FILE
            )));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(connector);
        Ok(Self {
            base,
            token,
            client,
        })
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The API token (for the event stream's `?token=`).
    pub fn token(&self) -> &ApiToken {
        &self.token
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, DaemonError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// `method path` with `body` as JSON.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, DaemonError> {
        self.call(method, path, body).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, DaemonError> {
        let url = format!("{}{path}", self.base);
        match tokio::time::timeout(TIMEOUT, self.call_inner(method, &url, body)).await {
            Ok(r) => r,
            Err(_) => Err(DaemonError::Http {
                url,
                why: format!("no answer within {TIMEOUT:?}"),
            }),
        }
    }

    async fn call_inner<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&B>,
    ) -> Result<T, DaemonError> {
        let http_err = |why: String| DaemonError::Http {
            url: url.to_string(),
            why,
        };
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| http_err(e.to_string()))?,
            None => Vec::new(),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(url)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.token.as_str()),
            )
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| http_err(e.to_string()))?;
        let resp = self.client.request(req).await.map_err(|e| {
            if e.is_connect() {
                DaemonError::NotRunning(format!(
                    "no tuber-peer daemon answers at {} (it stopped without removing {}?); \
                     start one with `tuber-peer run`",
                    self.base,
                    files::API_FILE
                ))
            } else {
                http_err(e.to_string())
            }
        })?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| http_err(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(api_error(status, message));
        }
        serde_json::from_slice(&body).map_err(|e| http_err(format!("unexpected answer: {e}")))
    }
}

fn api_error(status: StatusCode, message: String) -> DaemonError {
    DaemonError::Api {
        status: status.as_u16(),
        message,
    }
}
