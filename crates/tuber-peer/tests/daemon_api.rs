//! The real `tuber-peer` binary: `run` on a temp data dir with the API on
//! a free loopback port, then the API's guards (Host, Origin, token), its
//! endpoints, the SSE stream, the CLI commands against it, a second `run`
//! on the same data dir, and a clean SIGTERM exit. No hub: loopback only.
//!
//! Every child process is owned by a guard that kills it on drop, and every
//! wait has a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tuber-peer");

/// A child process killed (and reaped) on drop; its output collected.
struct Proc {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tuber-peer");
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stdout);
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut r = BufReader::new(err);
            let mut buf = String::new();
            while r.read_line(&mut buf).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&buf);
                buf.clear();
            }
        });
        Self {
            child,
            stdout,
            stderr,
            lines,
        }
    }

    /// Waits for the exit, at most `limit`; None if it still runs.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads catch the last output.
                thread::sleep(Duration::from_millis(100));
                return Some(s);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running daemon on its own temp data dir.
struct Daemon {
    proc: Proc,
    port: u16,
    token: String,
    dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_str().expect("utf-8 path").to_string();
        let proc = Proc::spawn(&["--data", &data, "run", "--api", "127.0.0.1:0"]);
        let line = proc
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no address line; stderr:\n{}", proc.stderr()));
        let url = line
            .strip_prefix("tuber-peer api on http://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let port: u16 = url.parse().expect("port");
        let token = std::fs::read_to_string(dir.path().join("api.token")).expect("api.token");
        assert_eq!(token.trim().len(), 64);
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("api.json")).expect("api.json"))
                .expect("api.json is JSON");
        assert_eq!(info["url"], format!("http://127.0.0.1:{port}"));
        assert_eq!(info["pid"], proc.child.id());
        Self {
            proc,
            port,
            token: token.trim().to_string(),
            dir,
        }
    }

    fn data(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 path")
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A request with the token and the right Host.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        let auth = self.auth();
        request(self.port, method, path, &[("Authorization", &auth)], body)
    }

    /// The CLI against this daemon; its exit status, stdout and stderr.
    fn cli(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let mut all = vec!["--data", self.data()];
        all.extend_from_slice(args);
        cli(&all)
    }
}

fn cli(args: &[&str]) -> (ExitStatus, String, String) {
    let mut p = Proc::spawn(args);
    let status = p
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("tuber-peer {args:?} did not finish"));
    (status, p.stdout(), p.stderr())
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection. `Host: 127.0.0.1:PORT`
/// unless `headers` names another.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Answer {
        status,
        head: head.to_string(),
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

/// Reads an open SSE response until `needle` shows up, at most `limit`.
fn read_until(s: &mut TcpStream, seen: &mut String, needle: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => return false,
        }
    }
    true
}

#[test]
fn the_api_checks_host_origin_and_token_before_anything() {
    let d = Daemon::start();
    let host = format!("127.0.0.1:{}", d.port);
    let auth = d.auth();

    let a = request(d.port, "GET", "/api/status", &[], None);
    assert_eq!(a.status, 401, "{a:?}");
    assert!(a.json()["error"].as_str().is_some());
    let a = request(
        d.port,
        "GET",
        "/api/status",
        &[("Authorization", "Bearer 00")],
        None,
    );
    assert_eq!(a.status, 401);
    let wrong = format!("Bearer {}", "0".repeat(64));
    let a = request(
        d.port,
        "GET",
        "/api/status",
        &[("Authorization", &wrong)],
        None,
    );
    assert_eq!(a.status, 401);

    let a = request(
        d.port,
        "GET",
        "/api/status",
        &[("Authorization", &auth), ("Origin", "http://evil.example")],
        None,
    );
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.json()["error"].as_str().is_some());
    let evil_host = format!("evil.example:{}", d.port);
    let a = request(
        d.port,
        "GET",
        "/api/status",
        &[("Authorization", &auth), ("Host", &evil_host)],
        None,
    );
    assert_eq!(a.status, 403, "{a:?}");
    let other_port = format!("127.0.0.1:{}", d.port.wrapping_add(1));
    let a = request(d.port, "GET", "/", &[("Host", &other_port)], None);
    assert_eq!(a.status, 403, "the Host check covers / too");
    // Rebinding checks come before the token: a foreign page learns nothing.
    let a = request(d.port, "GET", "/api/status", &[("Host", &evil_host)], None);
    assert_eq!(a.status, 403);

    let a = d.call("GET", "/api/status", None);
    assert_eq!(a.status, 200, "{a:?}");
    let status = a.json();
    let peer_id = status["peer_id"].as_str().expect("peer_id");
    assert_eq!(peer_id.len(), 64);
    assert!(status["settings"]["upload_bps"].is_u64());
    assert!(a
        .head
        .to_ascii_lowercase()
        .contains("cache-control: no-store"));

    for (h, o) in [
        (
            format!("localhost:{}", d.port),
            format!("http://localhost:{}", d.port),
        ),
        (host.clone(), format!("http://127.0.0.1:{}", d.port)),
    ] {
        let a = request(
            d.port,
            "GET",
            "/api/settings",
            &[("Authorization", &auth), ("Host", &h), ("Origin", &o)],
            None,
        );
        assert_eq!(a.status, 200, "{h} {o}: {a:?}");
    }

    let a = request(d.port, "GET", "/", &[], None);
    assert_eq!(a.status, 200, "the page needs no token");
    assert!(a.body.contains("dashboard"));

    // Every endpoint answers JSON.
    for path in [
        "/api/swarms",
        "/api/history",
        "/api/cached",
        "/api/settings",
    ] {
        let a = d.call("GET", path, None);
        assert_eq!(a.status, 200, "{path}: {a:?}");
        let _ = a.json();
    }
    let a = d.call("GET", "/api/nothing", None);
    assert_eq!(a.status, 404);
    assert!(a.json()["error"].as_str().is_some());
    let a = d.call(
        "DELETE",
        "/api/swarms",
        Some(r#"{"url":"http://not-joined.example/"}"#),
    );
    assert_eq!(a.status, 404, "{a:?}");
    let a = d.call("POST", "/api/swarms", Some(r#"{"url":"not a url"}"#));
    assert_eq!(a.status, 400, "{a:?}");
    let a = d.call("PATCH", "/api/settings", Some(r#"{"upload_bps":"fast"}"#));
    assert!(a.status == 400 || a.status == 422, "{a:?}");
    assert!(a.json()["error"].as_str().is_some());
    let huge = format!(r#"{{"url":"{}"}}"#, "a".repeat(100 * 1024));
    let a = d.call("POST", "/api/swarms", Some(&huge));
    assert_eq!(a.status, 413, "{:?}", a.head);
}

#[test]
fn settings_change_through_the_api_and_the_cli() {
    let d = Daemon::start();
    let a = d.call("PATCH", "/api/settings", Some(r#"{"upload_bps": 123456}"#));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["upload_bps"], 123456);

    let (st, out, err) = d.cli(&["status", "--json"]);
    assert!(st.success(), "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    assert_eq!(status["settings"]["upload_bps"], 123456);

    let (st, out, err) = d.cli(&["set", "--upload-cap", "2MB/s", "--disk-budget", "512MiB"]);
    assert!(st.success(), "{err}");
    assert!(out.contains("2.00 MB/s"), "{out}");
    let s = d.call("GET", "/api/settings", None).json();
    assert_eq!(s["upload_bps"], 2_000_000);
    assert_eq!(s["disk_budget"], 512 * 1024 * 1024);

    let (st, _, err) = d.cli(&["set", "--upload-cap", "2Mb/s"]);
    assert!(!st.success(), "bits are refused");
    assert!(err.contains("bits"), "{err}");

    let (st, _, err) = d.cli(&["pause"]);
    assert!(st.success(), "{err}");
    assert_eq!(d.call("GET", "/api/settings", None).json()["paused"], true);
    let (st, out, err) = d.cli(&["status"]);
    assert!(st.success(), "{err}");
    assert!(out.contains("paused"), "{out}");
    assert!(out.contains("upload 2.00 MB/s"), "{out}");
    let (st, _, err) = d.cli(&["resume"]);
    assert!(st.success(), "{err}");
    assert_eq!(d.call("GET", "/api/settings", None).json()["paused"], false);

    let (st, _, err) = d.cli(&["leave", "http://never-joined.example/"]);
    assert!(!st.success());
    assert!(err.contains("not joined"), "{err}");
}

#[test]
fn events_stream_rates_and_settings() {
    let d = Daemon::start();
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
    // The EventSource way: the token in the query.
    let req = format!(
        "GET /api/events?token={} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\n\r\n",
        d.token, d.port
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut seen = String::new();
    assert!(
        read_until(&mut s, &mut seen, "event: rates", Duration::from_secs(3)),
        "no rates event within 3 s: {seen:?}"
    );
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("text/event-stream"), "{seen}");
    assert!(seen.contains(r#""type":"rates""#), "{seen}");

    let a = d.call("PATCH", "/api/settings", Some(r#"{"download_bps": 777}"#));
    assert_eq!(a.status, 200);
    assert!(
        read_until(&mut s, &mut seen, "event: settings", Duration::from_secs(5)),
        "no settings event: {seen:?}"
    );
    assert!(seen.contains(r#""download_bps":777"#), "{seen}");

    // The query token works for the event stream only.
    let path = format!("/api/status?token={}", d.token);
    assert_eq!(request(d.port, "GET", &path, &[], None).status, 401);
}

#[test]
fn a_second_run_fails_clearly_and_sigterm_exits_cleanly() {
    let mut d = Daemon::start();
    let (st, out, err) = cli(&["--data", d.data(), "run", "--api", "127.0.0.1:0"]);
    assert!(!st.success(), "a second daemon on the same data dir: {out}");
    assert!(err.contains("already uses the data dir"), "{err}");
    assert!(!out.contains("api on"), "{out}");
    // The first one is untouched.
    assert_eq!(d.call("GET", "/api/status", None).status, 200);
    assert!(d.dir.path().join("api.json").exists());

    let (st, _, err) = cli(&["--data", d.data(), "run", "--api", "0.0.0.0:0"]);
    assert!(!st.success());
    assert!(err.contains("loopback"), "{err}");

    let pid = d.proc.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = d
        .proc
        .wait(Duration::from_secs(10))
        .expect("exit within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}; stderr:\n{}", d.proc.stderr());
    assert!(!d.dir.path().join("api.json").exists(), "api.json removed");
    assert!(d.dir.path().join("api.token").exists(), "the token stays");

    let (st, _, err) = cli(&["--data", d.data(), "status"]);
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("no tuber-peer daemon"), "{err}");
}

#[test]
fn the_cli_says_when_no_daemon_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_string();
    let (st, _, err) = cli(&["--data", &data, "status"]);
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("no tuber-peer daemon is running"), "{err}");

    // A stale api.json (the daemon was killed): still a clear message.
    let stale = r#"{"url":"http://127.0.0.1:1","pid":1}"#;
    std::fs::write(dir.path().join("api.json"), stale).expect("write");
    std::fs::write(dir.path().join("api.token"), "ab".repeat(32)).expect("write");
    let (st, _, err) = cli(&["--data", &data, "pause"]);
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("no tuber-peer daemon answers"), "{err}");
}
