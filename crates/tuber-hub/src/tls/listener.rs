//! HTTPS for `axum::serve`: a listener that accepts TCP connections and
//! hands over only those whose TLS handshake completed. Each handshake runs
//! in its own task with a deadline, so a slow or silent client delays no
//! one; a failed handshake is logged at debug level and forgotten.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Time a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at most; beyond that the listener stops
/// accepting until one ends (the kernel's backlog holds the rest).
pub const MAX_HANDSHAKES: usize = 1024;

/// The TLS server configuration of the hub: certificates from `resolver`,
/// ALPN `http/1.1` only. The hub's server speaks HTTP/1.1 (axum's `http2`
/// feature is off), and WebSockets (`/.tuber/ws`) are HTTP/1.1 upgrades.
pub fn server_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

type Handshake = Option<(TlsStream<TcpStream>, SocketAddr)>;

/// A TCP listener whose connections come out TLS-terminated.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Handshake>,
    timeout: Duration,
}

impl TlsListener {
    /// Serves TLS with `config` on `tcp`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> Self {
        Self {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: JoinSet::new(),
            timeout: HANDSHAKE_TIMEOUT,
        }
    }

    fn start_handshake(&mut self, stream: TcpStream, peer: SocketAddr) {
        let acceptor = self.acceptor.clone();
        let timeout = self.timeout;
        self.handshakes.spawn(async move {
            let _ = stream.set_nodelay(true);
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Some((tls, peer)),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake not done within {timeout:?}");
                    None
                }
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.handshakes.len() < MAX_HANDSHAKES;
            tokio::select! {
                accepted = self.tcp.accept(), if room => match accepted {
                    Ok((stream, peer)) => self.start_handshake(stream, peer),
                    Err(e) => {
                        // Out of file descriptors and the like: wait, as
                        // axum's own TCP listener does, rather than spin.
                        tracing::warn!(error = %e, "cannot accept a connection; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(conn)) = done {
                        return conn;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::cert::{load_pem, tests::self_signed, CertResolver};
    use axum::serve::Listener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_silent_client_does_not_block_the_next_handshake() {
        let (chain, key) = self_signed(&["localhost"]);
        let resolver = Arc::new(CertResolver::default());
        resolver.set(load_pem(chain.as_bytes(), key.as_bytes()).expect("pair"));
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let mut listener = TlsListener::new(tcp, server_config(resolver).expect("config"));
        listener.timeout = Duration::from_secs(2);

        // A client that connects and says nothing, then one speaking TLS.
        let _silent = TcpStream::connect(addr).await.expect("silent");
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(chain.as_bytes()) {
            roots.add(c.expect("pem")).expect("root");
        }
        use rustls::pki_types::pem::PemObject;
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let talker = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let mut tls = connector.connect(name, tcp).await.expect("handshake");
            tls.write_all(b"ping").await.expect("write");
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.expect("read");
            buf
        });
        let (mut io, peer) = tokio::time::timeout(Duration::from_secs(1), listener.accept())
            .await
            .expect("the TLS client is served before the silent one times out");
        assert_eq!(peer.ip(), addr.ip());
        let mut buf = [0u8; 4];
        io.read_exact(&mut buf).await.expect("read");
        io.write_all(b"pong").await.expect("write");
        assert_eq!(&talker.await.expect("client"), b"pong");
    }
}
