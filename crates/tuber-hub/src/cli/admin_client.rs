//! The CLI's client of a running hub's admin API: used when the hub holds
//! the database (sled's lock), so the CLI asks the hub instead.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::HubConfig;
use crate::server::HubError;

/// Sends `method path` (with a JSON `body`, if any) to the hub described
/// by `config` with the admin token, and returns the answer's body; a
/// non-2xx answer is an error naming the status and the hub's words.
pub(super) async fn call(
    config: &HubConfig,
    data_dir: &std::path::Path,
    token: &str,
    method: http::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<bytes::Bytes, HubError> {
    use http_body_util::{BodyExt, Full};
    let listen = config.listen;
    let host = if listen.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    // A hub serving HTTPS is spoken to over TLS, trusting exactly the
    // certificate it serves (tls/pinned.rs): the token never goes in
    // cleartext, nor to anything else on that port.
    let pinned = match &config.tls {
        Some(tls) => {
            let file = crate::tls::pinned::served_cert_file(tls, data_dir).ok_or_else(|| {
                HubError::Config("no certificate file of the running hub to trust".into())
            })?;
            Some(
                crate::tls::pinned::client_config(&file)
                    .map_err(|e| HubError::Config(format!("the running hub's certificate: {e}")))?,
            )
        }
        None => None,
    };
    let scheme = if pinned.is_some() { "https" } else { "http" };
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("{scheme}://{host}{path}"))
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        request = request.header(http::header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))
        .map_err(|e| HubError::Config(e.to_string()))?;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let connector = match pinned {
        Some(tls) => hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http),
        None => hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(
                crate::upstream_client::UpstreamTls::bundled()
                    .map_err(|e| HubError::Config(e.to_string()))?
                    .client_config(),
            )
            .https_or_http()
            .enable_http1()
            .wrap_connector(http),
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector);
    let unreachable = |e: String| {
        HubError::Config(format!(
            "the hub database is in use, but the hub at {host} did not answer ({e}); pass --listen or --config of the running hub"
        ))
    };
    // A hub that just started may not serve its certificate yet (it loads
    // it after binding): a failed connect is tried again, a few times.
    let (parts, body) = request.into_parts();
    let mut attempt = 0;
    let resp = loop {
        let request = http::Request::from_parts(parts.clone(), body.clone());
        let sent = tokio::time::timeout(Duration::from_secs(10), client.request(request)).await;
        match sent {
            Err(_) => return Err(unreachable("timed out".into())),
            Ok(Ok(resp)) => break resp,
            Ok(Err(e)) if e.is_connect() && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Ok(Err(e)) => return Err(unreachable(crate::upstream_client::error_chain(&e))),
        }
    };
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(HubError::Config(format!(
            "the running hub refused: {status} {}",
            String::from_utf8_lossy(&bytes).trim()
        )));
    }
    Ok(bytes)
}
