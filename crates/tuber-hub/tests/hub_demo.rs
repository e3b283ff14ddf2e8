//! The whole hub (`server::run`) in front of the demo site, over real HTTP
//! and WebSocket on 127.0.0.1: descriptor, injected page, manifests and
//! pieces that match the upstream's bytes, metrics, and content reaching a
//! trusted peer as `assign` from the moment the proxy first sees it.

use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use tokio_tungstenite::tungstenite::Message;
use tuber_hub::config::HubConfig;
use tuber_hub::demo;
use tuber_proto::signal::{self, Capacity, ClientToHub, HubToClient, Role, Signature, TrustProof};
use tuber_proto::{Manifest, PeerId, PieceHash, SwarmDescriptor};

async fn get(url: &str, range: Option<&str>) -> (http::StatusCode, http::HeaderMap, bytes::Bytes) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let mut req = http::Request::get(url);
    if let Some(r) = range {
        req = req.header(http::header::RANGE, r);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(30),
        client.request(req.body(Empty::new()).expect("req")),
    )
    .await
    .expect("answered in time")
    .expect("response");
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.expect("body").to_bytes(),
    )
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv(ws: &mut Ws) -> HubToClient {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("message in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return signal::decode(t.as_str()).expect("valid");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_site_through_the_hub() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (site, site_task) = demo::spawn().await.expect("demo site");
    let config = HubConfig {
        upstream: Some(format!("http://{site}")),
        data_dir: Some(dir.path().to_path_buf()),
        ..HubConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let stun = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind udp");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let hub = tokio::spawn(tuber_hub::server::run(
        config,
        listener,
        Some(stun),
        async {
            let _ = stopped.await;
        },
    ));
    let base = format!("http://{addr}");

    // The descriptor names this hub's signaling and STUN.
    let (status, _, body) = get(&format!("{base}/.well-known/tuber"), None).await;
    assert_eq!(status, 200);
    let d = SwarmDescriptor::decode(&body).expect("valid descriptor");
    assert_eq!(d.signaling, format!("ws://{addr}/.tuber/ws"));
    assert!(d.ice_servers[0].urls[0].starts_with("stun:127.0.0.1:"));

    // The page comes through the proxy with the script injected.
    let (status, _, page) = get(&format!("{base}/"), None).await;
    assert_eq!(status, 200);
    let page = String::from_utf8(page.to_vec()).expect("utf-8");
    assert_eq!(page.matches("/.tuber/client/tuber.js").count(), 1, "{page}");
    // The descriptor's registration endpoint is a page a person can follow.
    let (status, _, reg) = get(&d.register, None).await;
    assert_eq!(status, 200);
    let reg = String::from_utf8(reg.to_vec()).expect("utf-8");
    assert!(
        reg.contains("tuber://join?swarm=http%3A%2F%2F127.0.0.1"),
        "{reg}"
    );
    let (status, headers, _) = get(&format!("{base}/.tuber/sw.js"), None).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("service-worker-allowed").expect("header"), "/");

    // A trusted permanent peer joins.
    let dbdir = dir.path().to_path_buf();
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let (mut ws, _) = tokio_tungstenite::connect_async(d.signaling.as_str())
        .await
        .expect("ws");
    let HubToClient::Challenge { nonce, .. } = recv(&mut ws).await else {
        panic!("challenge")
    };
    let token = {
        // The hub holds the database: ask it through its admin API, as
        // `tuber-hub invite create` does.
        let admin_token = std::fs::read_to_string(dbdir.join("admin.token")).expect("admin token");
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let req = http::Request::post(format!("{base}/.tuber/admin/invites"))
            .header("authorization", format!("Bearer {}", admin_token.trim()))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                br#"{"name":"test peer"}"#,
            )))
            .expect("req");
        let resp = client.request(req).await.expect("admin");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        v["token"].as_str().expect("token").to_string()
    };
    let origin = tuber_proto::origin::origin_of(&d.origin).expect("origin");
    let sig = key.sign(&signal::hello_signing_payload(&origin, &d.swarm_id, &nonce));
    let hello = ClientToHub::Hello {
        version: tuber_proto::limits::PROTOCOL_VERSION,
        role: Role::Permanent,
        proof: Some(TrustProof {
            public_key: PeerId::from_bytes(key.verifying_key().to_bytes()),
            origin,
            signature: Signature(sig.to_bytes()),
        }),
        invite: Some(token),
        capacity: Some(Capacity {
            disk_bytes: 10_000_000_000,
            upload_bps: 10_000_000,
        }),
        agent: "test".into(),
    };
    ws.send(Message::Text(
        signal::encode(&hello).expect("encode").into(),
    ))
    .await
    .expect("send");
    assert!(matches!(
        recv(&mut ws).await,
        HubToClient::Welcome { trusted: true, .. }
    ));

    // The video passes through the proxy (a player's first range request):
    // the hub makes its manifest and the trusted peer is assigned it at once.
    let (status, _, head) = get(&format!("{base}{}", demo::VIDEO_PATH), Some("bytes=0-")).await;
    assert_eq!(status, 206);
    assert_eq!(&head[..], demo::VIDEO);
    let expected = Manifest::build(
        demo::VIDEO_PATH,
        "video/webm",
        "\"tuber-demo-clip-1\"",
        262_144,
        demo::VIDEO,
    );
    let assign = loop {
        match recv(&mut ws).await {
            a @ HubToClient::Assign { .. } => break a,
            HubToClient::Ping { nonce } => {
                let pong = signal::encode(&ClientToHub::Pong { nonce }).expect("encode");
                ws.send(Message::Text(pong.into())).await.expect("pong");
            }
            other => panic!("expected assign, got {other:?}"),
        }
    };
    let HubToClient::Assign {
        resource,
        manifest,
        ranges,
        ..
    } = assign
    else {
        unreachable!()
    };
    assert_eq!(resource, demo::VIDEO_PATH);
    assert_eq!(manifest, expected.id());
    let assigned: u32 = ranges.iter().map(|r| r.end - r.start).sum();
    assert_eq!(
        assigned as usize,
        expected.pieces.len(),
        "one trusted peer holds everything"
    );

    // The manifest endpoint agrees, byte for byte, and pieces verify.
    let (status, _, body) = get(
        &format!("{base}/.tuber/manifest?path={}", demo::VIDEO_PATH),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(&body[..], &expected.encode()[..]);
    let (status, _, piece) =
        get(&format!("{base}/.tuber/piece/{}", expected.pieces[1]), None).await;
    assert_eq!(status, 200);
    assert!(expected.pieces[1].verifies(&piece));
    let (status, headers, part) = get(
        &format!("{base}/.tuber/piece/{}", expected.pieces[1]),
        Some("bytes=10-19"),
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(&part[..], &piece[10..20]);
    assert_eq!(
        headers.get("content-range").expect("cr"),
        &format!("bytes 10-19/{}", piece.len())[..]
    );
    let (status, _, _) = get(
        &format!("{base}/.tuber/piece/{}", PieceHash::of(b"nope")),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&format!("{base}/.tuber/manifest?path=relative"), None).await;
    assert_eq!(status, 400);

    // Metrics count the peer and the origin's bytes.
    let (_, _, text) = get(&format!("{base}/metrics"), None).await;
    let text = String::from_utf8(text.to_vec()).expect("utf-8");
    assert!(
        text.contains("tuber_peers_connected{role=\"permanent\"} 1"),
        "{text}"
    );
    assert!(text.contains("tuber_trusted_peers 1"), "{text}");
    assert!(
        text.contains("tuber_manifests_computed_total 1\n"),
        "{text}"
    );
    // The video's bytes went through the proxy (and one piece, twice, through
    // the piece endpoint): the origin's distributable traffic is counted.
    let origin: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tuber_origin_distributable_bytes_total "))
        .and_then(|v| v.parse().ok())
        .expect("origin bytes metric");
    assert!(origin >= demo::VIDEO.len() as u64, "{origin}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), hub)
        .await
        .expect("hub stops in time")
        .expect("hub task")
        .expect("hub ran cleanly");
    site_task.abort();
}

/// `/.tuber/rules` shows the operator's `[distribute]` rules (normalised) to
/// browsers, and `/.tuber/manifest` never publishes an excluded path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_served_and_excluded_paths_get_no_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (site, site_task) = demo::spawn().await.expect("demo site");
    let mut config = HubConfig {
        upstream: Some(format!("http://{site}")),
        data_dir: Some(dir.path().to_path_buf()),
        ..HubConfig::default()
    };
    config.distribute.min_size = 4096;
    config.distribute.content_types = vec![" Video/".into()];
    config.distribute.extensions = vec![".WEBM".into(), "bin".into()];
    config.distribute.include = vec!["/always/*".into()];
    config.distribute.exclude = vec!["/downloads/*".into(), "*?token=*".into()];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let hub = tokio::spawn(tuber_hub::server::run(config, listener, None, async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");

    let (status, headers, body) = get(&format!("{base}/.tuber/rules"), None).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("cache-control").expect("header"), "no-cache");
    assert_eq!(
        headers.get("content-type").expect("header"),
        "application/json"
    );
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v,
        serde_json::json!({
            "min_size": 4096,
            "content_types": ["video/"],
            "extensions": ["webm", "bin"],
            "include": ["/always/*"],
            "exclude": ["/downloads/*", "*?token=*"],
            "playlists": true,
        })
    );

    // Excluded by path, and by query: refused without reading the upstream.
    for path in [
        demo::DOWNLOAD_PATH.to_string(),
        format!("{}%3Ftoken%3Dabc", demo::VIDEO_PATH),
    ] {
        let (status, headers, body) =
            get(&format!("{base}/.tuber/manifest?path={path}"), None).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(
            headers.get("content-type").expect("header"),
            "application/json"
        );
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"], "not distributable");
    }
    // Not excluded: the manifest as before.
    let (status, _, body) = get(
        &format!("{base}/.tuber/manifest?path={}", demo::VIDEO_PATH),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let m = Manifest::decode(&body).expect("manifest");
    assert_eq!(m.path, demo::VIDEO_PATH);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), hub)
        .await
        .expect("hub stops in time")
        .expect("hub task")
        .expect("hub ran cleanly");
    site_task.abort();
}
