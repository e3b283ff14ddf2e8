//! The one place that builds the HTTP client the hub speaks to its upstream
//! with, for the proxy and the manifest service alike: connection pool,
//! connect timeout (TCP and TLS handshake together), and TLS for `https://`
//! upstreams (rustls on `ring`).
//!
//! Trust: the Mozilla roots bundled in the binary (`webpki-roots`, nothing
//! read at run time), plus, for a running hub, the operating system's roots
//! and the certificates of `upstream_ca_file` (a private CA). The name
//! checked against the certificate (and sent as SNI) is the upstream URL's
//! host, the same as the `Host` header it is sent.
//!
//! The upstream is spoken to in HTTP/1.1 only (no ALPN `h2`): the proxy
//! rewrites HTTP/1.1 heads and passes WebSocket upgrades, which HTTP/2 does
//! not carry.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;

/// Idle upstream connections are kept this long for reuse.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The connect timeout the hub uses (TCP connect plus TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client the hub speaks to its upstream with; `B` is the request body.
pub type UpstreamClient<B> = Client<UpstreamConnector, B>;

/// Why the upstream's TLS trust could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamTlsError {
    /// The CA file could not be read or is not PEM.
    #[error("upstream CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file holds no `CERTIFICATE` block.
    #[error("upstream CA file {0}: no PEM certificate in it")]
    NoCertificate(PathBuf),
    /// A certificate of the CA file is not a usable trust anchor.
    #[error("upstream CA file {path}: {source}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Why rustls refused it.
        source: rustls::Error,
    },
    /// rustls refused the configuration (no protocol version in common
    /// with the crypto provider; a build problem, not an input one).
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// Which certificates an `https://` upstream may present: the TLS client
/// configuration shared by every connection. Cheap to clone.
#[derive(Clone)]
pub struct UpstreamTls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls").finish_non_exhaustive()
    }
}

impl UpstreamTls {
    /// Trusts the bundled Mozilla roots only. Reads nothing.
    pub fn bundled() -> Result<Self, UpstreamTlsError> {
        Self::from_roots(bundled_roots())
    }

    /// What a running hub trusts: the bundled roots, the operating system's
    /// roots (unreadable ones are logged and skipped), and every PEM
    /// certificate in `ca_file` when given (a private CA). Reads files.
    pub fn load(ca_file: Option<&Path>) -> Result<Self, UpstreamTlsError> {
        let mut roots = bundled_roots();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!("system root certificates: {e}");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system root certificates loaded");
        if let Some(path) = ca_file {
            add_ca_file(&mut roots, path)?;
        }
        Self::from_roots(roots)
    }

    /// A copy of the client configuration (for clients built elsewhere).
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::clone(&self.config)
    }

    fn from_roots(roots: RootCertStore) -> Result<Self, UpstreamTlsError> {
        // An explicit provider: the process-wide default would panic should
        // two providers ever be compiled in.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(UpstreamTlsError::Config)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

fn bundled_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// Adds every certificate of the PEM file `path` to `roots`.
fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), UpstreamTlsError> {
    let pem_error = |source| UpstreamTlsError::CaFile {
        path: path.to_owned(),
        source,
    };
    let mut count = 0usize;
    for cert in CertificateDer::pem_file_iter(path).map_err(pem_error)? {
        let cert = cert.map_err(pem_error)?;
        roots
            .add(cert)
            .map_err(|source| UpstreamTlsError::BadCertificate {
                path: path.to_owned(),
                source,
            })?;
        count += 1;
    }
    if count == 0 {
        return Err(UpstreamTlsError::NoCertificate(path.to_owned()));
    }
    tracing::info!(path = %path.display(), count, "upstream CA certificates added");
    Ok(())
}

/// An error and its sources on one line (`a: b: c`), for messages that
/// must say why, e.g. which certificate check failed.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        // Wrappers often repeat their source's message.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// Builds the upstream client: HTTP/1.1 over TCP or TLS, pooled, with
/// `connect_timeout` covering the TCP connect and the TLS handshake.
pub fn client<B>(tls: &UpstreamTls, connect_timeout: Duration) -> UpstreamClient<B>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    // `https://` URIs pass through to the TLS layer.
    http.enforce_http(false);
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(ClientConfig::clone(&tls.config))
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(UpstreamConnector {
            inner: https,
            timeout: connect_timeout,
        })
}

/// The upstream connector: TCP, then TLS for `https://`, the whole within
/// a timeout. A timeout fails as an [`io::ErrorKind::TimedOut`] error, like
/// the TCP connector's own, so both render as 504.
#[derive(Clone)]
pub struct UpstreamConnector {
    inner: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

impl std::fmt::Debug for UpstreamConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConnector")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

type Connecting =
    Pin<Box<dyn Future<Output = Result<MaybeHttpsStream<TokioIo<TcpStream>>, BoxError>> + Send>>;

impl tower::Service<Uri> for UpstreamConnector {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect and TLS handshake took longer than {timeout:?}"),
                )) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_that_cannot_be_used_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = UpstreamTls::load(Some(&missing)).unwrap_err();
        assert!(matches!(err, UpstreamTlsError::CaFile { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = UpstreamTls::load(Some(&empty)).unwrap_err();
        assert!(matches!(err, UpstreamTlsError::NoCertificate(_)), "{err}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = UpstreamTls::load(Some(&garbage)).unwrap_err();
        assert!(
            matches!(err, UpstreamTlsError::BadCertificate { .. }),
            "{err}"
        );

        assert!(UpstreamTls::load(None).is_ok());
        assert!(UpstreamTls::bundled().is_ok());
    }

    #[test]
    fn error_chains_name_every_cause_once() {
        let inner = io::Error::other("invalid peer certificate: UnknownIssuer");
        let outer = io::Error::other(inner);
        assert_eq!(
            error_chain(&outer),
            "invalid peer certificate: UnknownIssuer"
        );
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Wrapper(#[source] io::Error);
        assert_eq!(
            error_chain(&Wrapper(outer)),
            "client error (Connect): invalid peer certificate: UnknownIssuer"
        );
    }
}
