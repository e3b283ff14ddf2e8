//! Client side of the TLS tests: a rustls client that trusts a given root
//! and resolves the hub's name to 127.0.0.1 itself, a GET over it, the
//! certificate the hub served, and a signaling WebSocket over TLS that
//! answers the hub's pings.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message;
use tuber_hub::tls::cert::CertInfo;
use tuber_proto::signal::{self, ClientToHub, HubToClient, Role};

/// A client trusting only the PEM roots given, ALPN http/1.1.
pub fn client_config(roots_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots.add(c.expect("PEM root")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

/// One TLS connection to `addr` with SNI `name` (within 10 s).
pub async fn connect(
    addr: SocketAddr,
    name: &str,
    config: &Arc<ClientConfig>,
) -> Result<TlsStream<TcpStream>, String> {
    let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    let attempt = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .map_err(|_| "TLS connect timed out".to_string())?
}

/// The leaf certificate the server presented.
pub fn served(tls: &TlsStream<TcpStream>) -> CertInfo {
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .expect("peer certificates");
    CertInfo::parse(&certs[0]).expect("x509")
}

/// Handshakes until one succeeds (the hub may not have a certificate
/// yet), within `limit`; the served certificate.
pub async fn wait_for_certificate(
    addr: SocketAddr,
    name: &str,
    config: &Arc<ClientConfig>,
    limit: Duration,
) -> CertInfo {
    let deadline = Instant::now() + limit;
    loop {
        match connect(addr, name, config).await {
            Ok(tls) => return served(&tls),
            Err(e) if Instant::now() > deadline => {
                panic!("no TLS handshake with {name} at {addr} within {limit:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// GET `path` over a fresh TLS connection.
pub async fn get(
    addr: SocketAddr,
    name: &str,
    config: &Arc<ClientConfig>,
    path: &str,
) -> (http::StatusCode, Bytes) {
    let tls = connect(addr, name, config).await.expect("TLS");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http1");
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, format!("{name}:{}", addr.port()))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(10), send.send_request(req))
        .await
        .expect("answered in time")
        .expect("response");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

type Ws = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

async fn next(ws: &mut Ws) -> HubToClient {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("message in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return signal::decode::<HubToClient>(t.as_str()).expect("valid");
        }
    }
}

/// What a signaling WebSocket has seen.
#[derive(Debug, Default)]
pub struct WsLog {
    /// Arrival time and `type` of every hub message.
    pub messages: Vec<(Instant, String)>,
    /// Set when the socket closed or failed, with why.
    pub closed: Option<String>,
}

/// Opens `/.tuber/ws` over TLS, expects `challenge`, says hello as a
/// browser, expects `welcome`, then answers pings in the background.
pub async fn signaling(
    addr: SocketAddr,
    name: &str,
    config: &Arc<ClientConfig>,
) -> (Arc<Mutex<WsLog>>, tokio::task::JoinHandle<()>) {
    let tls = connect(addr, name, config).await.expect("TLS");
    let url = format!("wss://{name}:{}/.tuber/ws", addr.port());
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(url, tls),
    )
    .await
    .expect("upgrade in time")
    .expect("WebSocket over TLS");
    let first = next(&mut ws).await;
    assert!(matches!(first, HubToClient::Challenge { .. }), "{first:?}");
    let hello: ClientToHub = serde_json::from_value(serde_json::json!({
        "type": "hello", "version": tuber_proto::limits::PROTOCOL_VERSION,
        "role": Role::Browser, "agent": "tls test"
    }))
    .expect("hello");
    ws.send(Message::Text(
        signal::encode(&hello).expect("encode").into(),
    ))
    .await
    .expect("send hello");
    let welcome = next(&mut ws).await;
    assert!(
        matches!(welcome, HubToClient::Welcome { .. }),
        "{welcome:?}"
    );
    let log = Arc::new(Mutex::new(WsLog::default()));
    let l = Arc::clone(&log);
    let task = tokio::spawn(async move {
        loop {
            let why = match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let msg: HubToClient = match signal::decode(t.as_str()) {
                        Ok(m) => m,
                        Err(e) => break l.lock().expect("log").closed = Some(e.to_string()),
                    };
                    let kind = serde_json::to_value(&msg).expect("json")["type"]
                        .as_str()
                        .unwrap_or("?")
                        .to_string();
                    l.lock().expect("log").messages.push((Instant::now(), kind));
                    if let HubToClient::Ping { nonce } = msg {
                        let pong: ClientToHub = serde_json::from_value(
                            serde_json::json!({"type": "pong", "nonce": nonce}),
                        )
                        .expect("pong");
                        let text = signal::encode(&pong).expect("encode");
                        if let Err(e) = ws.send(Message::Text(text.into())).await {
                            break l.lock().expect("log").closed = Some(e.to_string());
                        }
                    }
                    continue;
                }
                Some(Ok(Message::Close(c))) => format!("closed by the hub: {c:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => e.to_string(),
                None => "ended".to_string(),
            };
            l.lock().expect("log").closed = Some(why);
            break;
        }
    });
    (log, task)
}
