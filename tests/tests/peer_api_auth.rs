//! The headless daemon's local API (the real `tuber-peer` binary) refuses a
//! request without its token, with a wrong token, from a foreign `Origin`
//! (a cross-site page) and for a foreign `Host` (DNS rebinding), even with
//! the right token; and answers the right token from its own origin.
//!
//! The binary is the one cargo built into this target dir (`cargo test
//! --workspace` builds it; alone: `cargo build -p tuber-peer`), or
//! `TUBER_PEER_BIN`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::io::{AsyncBufReadExt, BufReader};
use tuber_tests::swarm::{http, init_tracing};

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TUBER_PEER_BIN") {
        return p.into();
    }
    // target/debug/deps/peer_api_auth-HASH → target/debug/tuber-peer
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("tuber-peer");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p tuber-peer --bin tuber-peer` \
         (or set TUBER_PEER_BIN)",
        bin.display()
    );
    bin
}

async fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> (http::StatusCode, String) {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let (status, _, body) = http(req.body(Full::new(Bytes::new())).expect("request")).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_api_needs_the_token_and_its_own_origin() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = tokio::process::Command::new(binary())
        .arg("--data")
        .arg(dir.path())
        .args(["run", "--api", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tuber-peer");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("read stdout")
                .expect("tuber-peer exited before its API listened");
            if let Some(url) = line.strip_prefix("tuber-peer api on ") {
                break url.trim().trim_end_matches('/').to_string();
            }
        }
    })
    .await
    .expect("the API listens within 30 s");
    let token = std::fs::read_to_string(dir.path().join("api.token")).expect("api.token");
    let token = token.trim();
    let bearer = format!("Bearer {token}");
    let status_url = format!("{base}/api/status");
    let port = base.rsplit(':').next().expect("port");

    // The right token from no page at all (a CLI, curl): answered.
    let (s, body) = request("GET", &status_url, &[("authorization", &bearer)]).await;
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    assert!(v["peer_id"].is_string(), "{body}");

    // No token, a wrong one, a token without the Bearer scheme: 401.
    let (s, body) = request("GET", &status_url, &[]).await;
    assert_eq!(s, 401, "no token: {body}");
    assert!(!body.contains("peer_id"), "{body}");
    let (s, _) = request(
        "GET",
        &status_url,
        &[("authorization", "Bearer 0123456789abcdef")],
    )
    .await;
    assert_eq!(s, 401, "wrong token");
    let (s, _) = request("GET", &status_url, &[("authorization", token)]).await;
    assert_eq!(s, 401, "token without the Bearer scheme");

    // A foreign Origin, even with the token: 403, and nothing done.
    let evil = [
        ("authorization", bearer.as_str()),
        ("origin", "http://evil.example"),
    ];
    let (s, body) = request("GET", &status_url, &evil).await;
    assert_eq!(s, 403, "foreign origin: {body}");
    let (s, _) = request("POST", &format!("{base}/api/pause"), &evil).await;
    assert_eq!(s, 403, "foreign origin may not pause");
    let (s, body) = request(
        "GET",
        &format!("{base}/api/settings"),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let settings: serde_json::Value = serde_json::from_str(&body).expect("settings JSON");
    assert_eq!(
        settings["paused"], false,
        "the refused pause did nothing: {body}"
    );
    let (s, _) = request(
        "GET",
        &status_url,
        &[("authorization", &bearer), ("origin", "null")],
    )
    .await;
    assert_eq!(s, 403, "opaque origin");

    // A foreign Host (DNS rebinding: evil.example resolving to 127.0.0.1).
    let host = format!("evil.example:{port}");
    let (s, body) = request(
        "GET",
        &status_url,
        &[("authorization", &bearer), ("host", &host)],
    )
    .await;
    assert_eq!(s, 403, "foreign host: {body}");

    // Its own origin with the token: answered.
    let own = format!("http://127.0.0.1:{port}");
    let (s, body) = request(
        "GET",
        &status_url,
        &[("authorization", &bearer), ("origin", &own)],
    )
    .await;
    assert_eq!(s, 200, "own origin: {body}");

    println!(
        "{base}: token 200, none/wrong/unscheme'd 401, foreign origin 403 (GET and POST), \
         origin null 403, foreign host 403, own origin 200"
    );
    child.start_kill().expect("kill");
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
