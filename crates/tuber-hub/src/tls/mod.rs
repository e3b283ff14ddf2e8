//! TLS terminated by the hub itself (`[tls]` in the config): HTTPS on the
//! main listener with a certificate that can change at run time, from
//! files ([`files`]) or from an ACME CA ([`acme`]), and a plain-HTTP
//! listener ([`http`]) for redirects and HTTP-01 challenges.
//!
//! - [`cert`] — the swappable certificate resolver and certificate facts.
//! - [`listener`] — the TLS accept wrapper for `axum::serve`.
//! - [`pinned`] — the CLI's TLS to its own running hub (the served certificate, pinned).
//!
//! Behind a TLS terminator (nginx, Caddy) none of this runs: the hub speaks
//! plain HTTP and `public_url` says `https://`.

pub mod acme;
pub mod cert;
pub mod files;
pub mod http;
pub mod listener;
pub mod pinned;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::TlsConfig;
pub use cert::CertResolver;
pub use http::Challenges;

/// A background task of the TLS side.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the server needs to serve HTTPS.
pub struct HubTls {
    /// The TLS server configuration (certificates from `resolver`).
    pub server_config: Arc<rustls::ServerConfig>,
    /// What is served now.
    pub resolver: Arc<CertResolver>,
    /// HTTP-01 tokens, for the plain-HTTP listener.
    pub challenges: Challenges,
    /// Hosts the plain-HTTP redirect may name: the ACME domains, or the
    /// names of the certificate files.
    pub hosts: Vec<String>,
    /// The task that keeps the certificate fresh. With ACME it must start
    /// once the plain-HTTP listener serves the challenges.
    pub task: Task,
}

/// Sets TLS up: in files mode the files are loaded now (an error stops
/// the start); with ACME a stored certificate is reused when still good,
/// and the task orders one otherwise.
pub async fn start(
    config: &TlsConfig,
    data_dir: &Path,
    cancel: CancellationToken,
) -> Result<HubTls, String> {
    let resolver = Arc::new(CertResolver::default());
    let challenges = Challenges::default();
    let server_config =
        listener::server_config(resolver.clone()).map_err(|e| format!("TLS configuration: {e}"))?;
    let (task, hosts): (Task, Vec<String>) = match (&config.cert, &config.key, &config.acme) {
        (Some(cert), Some(key), None) => {
            let task = files::start(
                cert.clone(),
                key.clone(),
                config.reload_interval,
                resolver.clone(),
                cancel,
            )
            .await
            .map_err(|e| format!("tls: {e}"))?;
            let names = resolver.current().map(|l| l.info.names).unwrap_or_default();
            (Box::pin(task), names)
        }
        (None, None, Some(acme_config)) => {
            let (acme_config, dir) = (acme_config.clone(), data_dir.to_owned());
            let hosts = acme_config.domains.clone();
            let r = resolver.clone();
            let c = challenges.clone();
            let (manager, stored) = tokio::task::spawn_blocking(move || {
                let manager = acme::Acme::new(acme_config, &dir, r, c)?;
                let stored = manager.load_stored();
                Ok::<_, acme::AcmeError>((manager, stored))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("tls.acme: {e}"))?;
            (Box::pin(manager.run(stored, cancel)), hosts)
        }
        _ => return Err("[tls] needs cert and key files, or [tls.acme]".into()),
    };
    Ok(HubTls {
        server_config,
        resolver,
        challenges,
        hosts,
        task,
    })
}

/// The public URL of a hub serving HTTPS on `addr` when none is
/// configured: `https://{first ACME domain, else the address}`, the port
/// left out when it is 443.
pub fn default_public_url(config: &TlsConfig, addr: SocketAddr) -> String {
    let host = config
        .acme
        .as_ref()
        .and_then(|a| a.domains.first().cloned())
        .unwrap_or_else(|| match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        });
    match addr.port() {
        443 => format!("https://{host}"),
        port => format!("https://{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AcmeConfig;

    #[test]
    fn the_default_public_url_is_https_on_the_first_domain() {
        let mut c = TlsConfig::default();
        let a: SocketAddr = "0.0.0.0:443".parse().expect("addr");
        let b: SocketAddr = "[::1]:8443".parse().expect("addr");
        assert_eq!(default_public_url(&c, a), "https://0.0.0.0");
        assert_eq!(default_public_url(&c, b), "https://[::1]:8443");
        c.acme = Some(AcmeConfig {
            domains: vec!["hub.example.org".into(), "b.example.org".into()],
            ..AcmeConfig::default()
        });
        assert_eq!(default_public_url(&c, a), "https://hub.example.org");
        assert_eq!(default_public_url(&c, b), "https://hub.example.org:8443");
    }
}
