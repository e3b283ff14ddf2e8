//! What a permanent peer trusts when it speaks to a hub over TLS
//! (`https://` descriptors, manifests and pieces, `wss://` signaling), and
//! certificate failures told in words.
//!
//! Trust: the Mozilla roots bundled in the binary (`webpki-roots`), the
//! operating system's roots (`rustls-native-certs`, which also honours
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`), and, for private deployments, the
//! certificates of an extra CA file (`--ca-file`). rustls on `ring`, like
//! the hub.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};

/// Why the trust store could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsTrustError {
    /// The CA file could not be read or is not PEM.
    #[error("CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file holds no `CERTIFICATE` block.
    #[error("CA file {0}: no PEM certificate in it")]
    NoCertificate(PathBuf),
    /// A certificate of the CA file is not a usable trust anchor.
    #[error("CA file {path}: {source}")]
    BadCertificate {
        path: PathBuf,
        source: rustls::Error,
    },
    /// rustls refused the configuration (a build problem, not input).
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// The TLS client configuration of one engine. Cheap to clone.
#[derive(Clone)]
pub struct TlsTrust {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTrust").finish_non_exhaustive()
    }
}

impl TlsTrust {
    /// The bundled Mozilla roots only; reads nothing (unit tests).
    #[cfg(test)]
    pub(crate) fn bundled() -> Self {
        // Only fails if ring offers no TLS version: not input-dependent.
        Self::from_roots(bundled_roots()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The bundled roots, the system's, and every certificate of `ca_file`.
    /// Reads files: call it once, at start.
    pub fn load(ca_file: Option<&Path>) -> Result<Self, TlsTrustError> {
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

    fn from_roots(roots: RootCertStore) -> Result<Self, TlsTrustError> {
        // An explicit provider: the process-wide default would panic should
        // two providers ever be compiled in.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsTrustError::Config)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// The configuration for WebSockets (no ALPN: an HTTP/1.1 upgrade).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// An HTTP/1.1 connector for `http://` and `https://` URIs.
    pub fn https_connector(
        &self,
        http: hyper_util::client::legacy::connect::HttpConnector,
    ) -> hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector> {
        let mut http = http;
        // `https://` URIs pass through to the TLS layer.
        http.enforce_http(false);
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(ClientConfig::clone(&self.config))
            .https_or_http()
            .enable_http1()
            .wrap_connector(http)
    }
}

fn bundled_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsTrustError> {
    let pem_error = |source| TlsTrustError::CaFile {
        path: path.to_owned(),
        source,
    };
    let mut count = 0usize;
    for cert in CertificateDer::pem_file_iter(path).map_err(pem_error)? {
        roots
            .add(cert.map_err(pem_error)?)
            .map_err(|source| TlsTrustError::BadCertificate {
                path: path.to_owned(),
                source,
            })?;
        count += 1;
    }
    if count == 0 {
        return Err(TlsTrustError::NoCertificate(path.to_owned()));
    }
    tracing::info!(path = %path.display(), count, "extra CA certificates trusted");
    Ok(())
}

/// Whether `ip` is on this host or a private network (loopback, RFC 1918,
/// link-local, IPv6 unique-local): where an invite may travel without TLS,
/// because it does not cross the Internet.
pub fn is_private(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// An error and its sources on one line (`a: b: c`): hyper's own message
/// ("client error (Connect)") says nothing of why.
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

/// If `err` (or one of its sources) is a refused server certificate, what
/// that means, in words a user can act on; `host` is the hub's host.
pub fn certificate_problem(err: &(dyn std::error::Error + 'static), host: &str) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            if let Some(words) = rustls_words(r, host) {
                return Some(words);
            }
        }
        // io::Error hides its payload from `source()` in some wrappers.
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(words) = certificate_problem(inner, host) {
                    return Some(words);
                }
            }
        }
        if let Some(tls) = e.downcast_ref::<tokio_tungstenite::tungstenite::error::TlsError>() {
            let tokio_tungstenite::tungstenite::error::TlsError::Rustls(r) = tls else {
                return None;
            };
            return rustls_words(r, host);
        }
        next = e.source();
    }
    None
}

fn rustls_words(err: &rustls::Error, host: &str) -> Option<String> {
    let rustls::Error::InvalidCertificate(c) = err else {
        return None;
    };
    Some(match c {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("the certificate of {host} has expired (the site must renew it)")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("the certificate of {host} is not valid yet (is this computer's clock right?)")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the certificate of {host} is for another name (wrong host in the swarm URL?)")
        }
        CertificateError::UnknownIssuer => format!(
            "the certificate of {host} is signed by an unknown issuer (a private CA? \
             pass its certificate with --ca-file)"
        ),
        CertificateError::Revoked => format!("the certificate of {host} has been revoked"),
        other => format!("the certificate of {host} was refused: {other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_are_told_in_words_through_wrappers() {
        let cases = [
            (CertificateError::Expired, "expired"),
            (CertificateError::NotValidForName, "another name"),
            (CertificateError::UnknownIssuer, "--ca-file"),
            (CertificateError::NotValidYet, "clock"),
        ];
        for (c, words) in cases {
            let io = std::io::Error::other(rustls::Error::InvalidCertificate(c));
            let said = certificate_problem(&io, "hub.example.org").expect("a certificate error");
            assert!(
                said.contains(words) && said.contains("hub.example.org"),
                "{said}"
            );
        }
        let other = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(certificate_problem(&other, "x"), None);
    }

    #[test]
    fn private_addresses_are_the_local_ones() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.10",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "203.0.113.5",
            "8.8.8.8",
            "172.32.0.1",
            "100.64.0.1",
            "2001:db8::1",
            "::ffff:203.0.113.5",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        assert!(matches!(
            TlsTrust::load(Some(&path)),
            Err(TlsTrustError::NoCertificate(_))
        ));
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            TlsTrust::load(Some(&missing)),
            Err(TlsTrustError::CaFile { .. })
        ));
    }
}
