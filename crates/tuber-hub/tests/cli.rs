//! The `tuber-hub` binary: `demo` serves the demo site through the proxy,
//! `invite create` works with the hub stopped (straight to the database) and
//! running (through the admin API, since the hub holds the database), and
//! SIGTERM stops the hub cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tuber-hub");

/// Kills the child on drop, whatever happens in the test.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn invite(data: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["invite", "create", "--name", "test", "--data"])
        .arg(data)
        .args(extra)
        .output()
        .expect("run tuber-hub invite create")
}

#[test]
fn demo_and_invites_through_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");

    // Hub not running: the command opens the database itself.
    let out = invite(dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).expect("utf-8");
    assert!(token.trim().starts_with("tuber-invite-"), "{token}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("tuber://join?swarm="));

    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--no-stun", "--data"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tuber-hub demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut guard = Guard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("tuber-hub listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    // The demo page, through the proxy, with the script injected.
    let page = http_get(&addr, "/");
    assert!(page.contains("200 OK"), "{page}");
    assert!(page.contains("/.tuber/client/tuber.js"), "{page}");

    // Hub running: the database is locked, so the command asks the hub.
    let out = invite(dir.path(), &["--listen", &addr]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = String::from_utf8(out.stdout).expect("utf-8");
    assert!(second.trim().starts_with("tuber-invite-"));
    assert_ne!(second.trim(), token.trim());

    // SIGTERM: a clean, prompt exit.
    let pid = guard.0.id();
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = guard.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "hub did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn a_bad_config_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hub.toml");
    std::fs::write(&config, "piece_size = 1000\n").expect("write");
    let out = Command::new(BIN)
        .args(["serve", "--upstream", "http://127.0.0.1:9", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("piece_size"), "{err}");
}

/// `tuber-hub serve` on loopback port 0 with data in `dir`, its upstream a
/// port nothing listens on and no STUN.
fn serve_command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--upstream", "http://127.0.0.1:9"])
        .args(["--listen", "127.0.0.1:0", "--no-stun", "--data"])
        .arg(dir);
    cmd
}

#[test]
fn tls_flags_serve_https_and_incomplete_ones_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).expect("cert");
    std::fs::write(&key, c.signing_key.serialize_pem()).expect("key");
    let serve = |extra: &[&std::ffi::OsStr]| {
        let mut cmd = serve_command(dir.path());
        cmd.args(extra);
        cmd
    };
    let out = serve(&["--tls-cert".as_ref(), cert.as_os_str()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls.cert needs tls.key"), "{err}");
    let out = serve(&["--acme-domain".as_ref(), "hub.example.org".as_ref()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http_listen"), "{err}");

    let mut child = serve(&[
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start tuber-hub serve");
    let stdout = child.stdout.take().expect("stdout");
    let _guard = Guard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    assert!(
        line.starts_with("tuber-hub listening on https://127.0.0.1:"),
        "{line:?}"
    );

    // `invite create` reaches the running HTTPS hub over TLS, trusting the
    // certificate it serves...
    let addr = line
        .trim()
        .strip_prefix("tuber-hub listening on https://")
        .expect("address")
        .to_string();
    let tls = |cert: &std::path::Path| -> Vec<std::ffi::OsString> {
        vec![
            "--listen".into(),
            addr.clone().into(),
            "--tls-cert".into(),
            cert.into(),
            "--tls-key".into(),
            key.clone().into(),
        ]
    };
    let args = tls(&cert);
    let out = Command::new(BIN)
        .args(["invite", "create", "--name", "tls", "--data"])
        .arg(dir.path())
        .args(&args)
        .output()
        .expect("run invite create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim()
        .starts_with("tuber-invite-"));
    // ...and only that one: told another certificate, it sends nothing.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    let other_cert = dir.path().join("other.pem");
    std::fs::write(&other_cert, other.cert.pem()).expect("cert");
    let args = tls(&other_cert);
    let out = Command::new(BIN)
        .args(["invite", "create", "--name", "tls", "--data"])
        .arg(dir.path())
        .args(&args)
        .output()
        .expect("run invite create");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not the certificate the hub serves"), "{err}");
}

/// A minimal HTTP/1.1 GET over a plain socket (the test needs no client library).
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: text/html\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// A CLI command holding the database while the hub starts (an invite made
/// at that moment) delays the hub, and does not stop it; and the hub says
/// it listens only once it holds the database, so a command run after that
/// line goes through the admin API instead of taking the database.
#[test]
fn a_hub_starting_while_the_cli_holds_its_database_waits_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let held = tuber_hub::db::HubDb::open(dir.path()).expect("hold the database");
    let mut child = serve_command(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tuber-hub serve");
    let stdout = child.stdout.take().expect("stdout");
    let _guard = Guard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    // Longer than the CLI's own patience for a lock (1 s).
    assert!(
        rx.recv_timeout(Duration::from_millis(2500)).is_err(),
        "the hub said it listens while it did not hold its database"
    );
    drop(held);
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the hub started once the database was free");
    assert!(
        line.starts_with("tuber-hub listening on http://"),
        "{line:?}"
    );
    // Now the hub holds it: a second holder is refused.
    assert!(matches!(
        tuber_hub::db::HubDb::open(dir.path()),
        Err(tuber_hub::db::DbError::Locked(_))
    ));
}
