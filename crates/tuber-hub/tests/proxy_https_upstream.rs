//! An `https://` upstream: a TLS server on 127.0.0.1 with a certificate for
//! `localhost` from a CA made at test time. With the CA configured, pages
//! get the script, ranges and WebSockets pass, and manifests are computed
//! over TLS; without it, the proxy answers a clear 502 about the
//! certificate.

mod proxy_support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use proxy_support::{bounded, settings, spawn_proxy_with, TAG};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message as ClientMessage;
use tower::ServiceExt;
use tuber_hub::db::HubDb;
use tuber_hub::manifests::{ManifestServiceError, Manifests};
use tuber_hub::proxy::error_page::HEADLINE;
use tuber_hub::upstream_client::UpstreamTls;
use tuber_proto::Manifest;

const PIECE_SIZE: u32 = 262_144;
const ETAG: &str = "\"tls-1\"";

/// A CA and a server certificate for `localhost` signed by it.
struct Pki {
    ca_pem: String,
    server: Arc<ServerConfig>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Tuber test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    Pki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

/// A TLS server for `router` on 127.0.0.1:0; stops when dropped.
struct TlsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsServer {
    async fn start(router: Router, config: Arc<ServerConfig>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            // Connection tasks live in the set, so they end with the server.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, router) = (acceptor.clone(), router.clone());
                connections.spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        router
                            .clone()
                            .oneshot(req.map(axum::body::Body::new::<Incoming>))
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self { addr, task }
    }

    /// `https://localhost:PORT`: the name the certificate is for.
    fn origin(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn video() -> Vec<u8> {
    (0..(PIECE_SIZE as usize * 3 + 12_345))
        .map(|i| (i * 31 % 251) as u8)
        .collect()
}

async fn serve_video(headers: HeaderMap) -> Response {
    let body = video();
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, "video/mp4".parse().expect("hv"));
    h.insert(header::ETAG, ETAG.parse().expect("hv"));
    h.insert(header::ACCEPT_RANGES, "bytes".parse().expect("hv"));
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    if let Some((a, b)) = range.and_then(|r| r.strip_prefix("bytes=")?.split_once('-')) {
        let a: usize = a.parse().expect("range start");
        let b: usize = b.parse::<usize>().expect("range end").min(body.len() - 1);
        let cr = format!("bytes {a}-{b}/{}", body.len());
        h.insert(header::CONTENT_RANGE, cr.parse().expect("hv"));
        return (StatusCode::PARTIAL_CONTENT, h, body[a..=b].to_vec()).into_response();
    }
    (h, body).into_response()
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        if matches!(msg, Message::Text(_) | Message::Binary(_)) && socket.send(msg).await.is_err() {
            break;
        }
    }
}

fn site() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { Html("<html><head><title>s</title></head><body>hi</body></html>") }),
        )
        .route("/video.mp4", get(serve_video))
        .route(
            "/ws",
            get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(echo) }),
        )
}

fn proxy_settings(up: &TlsServer, tls: UpstreamTls) -> tuber_hub::proxy::ProxySettings {
    let mut s = settings(up.addr);
    s.upstream = up.origin().parse().expect("upstream uri");
    s.tls = tls;
    s
}

#[tokio::test]
async fn https_upstream_with_a_private_ca() {
    let pki = pki();
    let up = TlsServer::start(site(), Arc::clone(&pki.server)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).expect("write CA");
    let tls = UpstreamTls::load(Some(&ca_file)).expect("trust the CA");
    let proxy = spawn_proxy_with(proxy_settings(&up, tls.clone())).await;
    let url = |p: &str| proxy.server.url(p);

    // A page gets the script.
    let (parts, body) = proxy_support::get(&url("/"), &[("accept", "text/html")]).await;
    assert_eq!(parts.status, StatusCode::OK);
    let page = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(page.contains(TAG), "{page}");
    assert!(page.contains("<body>hi</body>"), "{page}");

    // A range passes through.
    let data = video();
    let (parts, body) =
        proxy_support::get(&url("/video.mp4"), &[("range", "bytes=1000-1999")]).await;
    assert_eq!(parts.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        parts.headers[header::CONTENT_RANGE],
        format!("bytes 1000-1999/{}", data.len()).as_str()
    );
    assert_eq!(&body[..], &data[1000..2000]);

    // A WebSocket upgrade reaches the TLS upstream and echoes.
    let (mut ws, response) = bounded(tokio_tungstenite::connect_async(format!(
        "ws://{}/ws",
        proxy.server.addr
    )))
    .await
    .expect("handshake through the proxy");
    assert_eq!(response.status(), 101);
    bounded(ws.send(ClientMessage::text("over tls")))
        .await
        .expect("send");
    let back = bounded(ws.next()).await.expect("open").expect("frame");
    assert_eq!(back, ClientMessage::text("over tls"));
    drop(ws);

    // Manifests are computed over TLS, and pieces fetched by range.
    let db = HubDb::open(dir.path().join("db").as_path()).expect("db");
    let manifests = Manifests::new(up.origin().parse().expect("uri"), PIECE_SIZE, db, &tls);
    let m = bounded(manifests.get("/video.mp4"))
        .await
        .expect("manifest");
    let expected = Manifest::build("/video.mp4", "video/mp4", ETAG, PIECE_SIZE, &data);
    assert_eq!(*m, expected);
    let piece = bounded(manifests.fetch_piece(&expected.pieces[1]))
        .await
        .expect("piece");
    let (off, len) = expected.piece_range(1).expect("range");
    assert_eq!(
        &piece[..],
        &data[off as usize..(off + u64::from(len)) as usize]
    );

    bounded(proxy.server.shutdown()).await;
}

#[tokio::test]
async fn untrusted_certificate_gives_a_clear_502() {
    let pki = pki();
    let up = TlsServer::start(site(), Arc::clone(&pki.server)).await;
    // The system's and the bundled roots, but not the test CA.
    let tls = UpstreamTls::load(None).expect("default trust");
    let proxy = spawn_proxy_with(proxy_settings(&up, tls.clone())).await;

    let (parts, body) =
        proxy_support::get(&proxy.server.url("/"), &[("accept", "text/html")]).await;
    assert_eq!(parts.status, StatusCode::BAD_GATEWAY);
    let page = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(page.contains(HEADLINE), "{page}");
    assert!(page.contains("certificate was refused"), "{page}");
    assert!(page.contains(&up.origin()), "{page}");

    let (parts, body) =
        proxy_support::get(&proxy.server.url("/video.mp4"), &[("accept", "*/*")]).await;
    assert_eq!(parts.status, StatusCode::BAD_GATEWAY);
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(text.contains("certificate was refused"), "{text}");

    // The manifest service refuses the same way, saying why.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = HubDb::open(dir.path()).expect("db");
    let manifests = Manifests::new(up.origin().parse().expect("uri"), PIECE_SIZE, db, &tls);
    let err = bounded(manifests.get("/video.mp4"))
        .await
        .expect_err("untrusted");
    assert!(
        matches!(&err, ManifestServiceError::Unreachable(why) if why.contains("certificate")),
        "{err}"
    );

    bounded(proxy.server.shutdown()).await;
}
