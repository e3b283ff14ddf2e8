//! The hub terminating TLS itself with certificates from pebble (Debian's
//! RFC 8555 test CA) over ACME HTTP-01, all on 127.0.0.1: issuance, the
//! descriptor and a signaling WebSocket over TLS, the plain-HTTP redirect,
//! renewal of pebble's short-lived certificates without a restart and
//! without dropping the WebSocket, and the stored certificate reused by a
//! restarted hub.
//!
//! pebble validates `hub.tuber.test` by asking `pebble-challtestsrv`'s DNS
//! (every name is 127.0.0.1) and fetching the challenge from `httpPort`,
//! which is the hub's plain-HTTP listener. Without pebble installed the
//! test is skipped, or fails when `CI` is set.

mod tls_support;

use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tuber_hub::config::{AcmeConfig, HubConfig, TlsConfig};
use tuber_proto::SwarmDescriptor;

const DOMAIN: &str = "hub.tuber.test";
/// pebble's certificate lifetime: renewal is due after two thirds of it.
const VALIDITY_SECS: u64 = 15;

/// Processes started by the test, killed by pid when it ends; their logs
/// are printed if it failed.
struct Procs(Vec<(Child, PathBuf)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (child, log) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                let text = std::fs::read_to_string(&*log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- {} (last lines) ---", log.display());
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

fn spawn(procs: &mut Procs, dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).expect("log file");
    let child = Command::new(name)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    procs.0.push((child, log));
}

/// A port free for TCP and UDP on 127.0.0.1 (the DNS server needs both).
fn free_port() -> u16 {
    loop {
        let tcp = StdTcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if StdUdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn installed(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// False (after saying why) when the test cannot run here.
pub fn pebble_or_skip() -> bool {
    let missing: Vec<&str> = ["pebble", "pebble-challtestsrv"]
        .into_iter()
        .filter(|b| !installed(b))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!("{missing:?} not installed (apt-get install pebble)");
    if std::env::var_os("CI").is_some() {
        panic!("CI is set and {why}");
    }
    eprintln!("skipping the ACME test: {why}");
    false
}

/// A test CA and a leaf for 127.0.0.1/localhost signed by it, for pebble's
/// own HTTPS listener: (CA PEM, leaf PEM, leaf key PEM).
fn listener_pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Tuber pebble listener CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

async fn wait_tcp(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// pebble's root (it makes a new one each start), from its management API.
async fn pebble_root(mgmt: SocketAddr, listener_ca: &str) -> String {
    let config = tls_support::client_config(listener_ca);
    let mut tls = tls_support::connect(mgmt, "localhost", &config)
        .await
        .expect("pebble management TLS");
    tls.write_all(b"GET /roots/0 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut resp)).await;
    let text = String::from_utf8_lossy(&resp);
    let start = text.find("-----BEGIN CERTIFICATE-----").expect("root PEM");
    text[start..].to_string()
}

/// A plain HTTP/1.1 request on 127.0.0.1:port: the whole answer.
async fn plain_http(port: u16, host: &str, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut resp)).await;
    String::from_utf8_lossy(&resp).into_owned()
}

struct Hub {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tuber_hub::server::HubError>>,
}

async fn start_hub(config: HubConfig) -> Hub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(tuber_hub::server::run(config, listener, None, async {
        let _ = stopped.await;
    }));
    Hub { addr, stop, task }
}

impl Hub {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the hub stops in time")
            .expect("hub task")
            .expect("hub ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_gets_and_renews_its_certificate_from_pebble() {
    if !pebble_or_skip() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter("tuber_hub::tls=info")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("tempdir");
    let (acme_port, mgmt_port, http_port, tls_port, dns_port, cts_mgmt) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let (listener_ca, leaf, leaf_key) = listener_pki();
    let ca_file = dir.path().join("listener-ca.pem");
    std::fs::write(&ca_file, &listener_ca).expect("ca");
    std::fs::write(dir.path().join("pebble-cert.pem"), leaf).expect("cert");
    std::fs::write(dir.path().join("pebble-key.pem"), leaf_key).expect("key");
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
        "certificate": dir.path().join("pebble-cert.pem"),
        "privateKey": dir.path().join("pebble-key.pem"),
        "httpPort": http_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "certificateValidityPeriod": VALIDITY_SECS,
    }});
    let config_file = dir.path().join("pebble.json");
    std::fs::write(&config_file, config.to_string()).expect("config");

    let mut procs = Procs(vec![]);
    let dns = format!("127.0.0.1:{dns_port}");
    spawn(
        &mut procs,
        dir.path(),
        "pebble-challtestsrv",
        &[
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
            "-dns01",
            &dns,
            "-management",
            &format!("127.0.0.1:{cts_mgmt}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
        ],
        &[],
    );
    spawn(
        &mut procs,
        dir.path(),
        "pebble",
        &[
            "-config",
            config_file.to_str().expect("utf-8"),
            "-dnsserver",
            &dns,
        ],
        // No random nonce rejections: the test measures, not fuzzes.
        &[("PEBBLE_VA_NOSLEEP", "1"), ("PEBBLE_WFE_NONCEREJECT", "0")],
    );
    let acme_addr: SocketAddr = ([127, 0, 0, 1], acme_port).into();
    let mgmt_addr: SocketAddr = ([127, 0, 0, 1], mgmt_port).into();
    wait_tcp(acme_addr, "pebble").await;
    wait_tcp(mgmt_addr, "pebble's management API").await;
    wait_tcp(([127, 0, 0, 1], cts_mgmt).into(), "pebble-challtestsrv").await;
    let root = pebble_root(mgmt_addr, &listener_ca).await;
    let client = tls_support::client_config(&root);

    let (site, site_task) = tuber_hub::demo::spawn().await.expect("upstream");
    let data = dir.path().join("hub");
    let mut hub_config = HubConfig {
        upstream: Some(format!("http://{site}")),
        data_dir: Some(data.clone()),
        tls: Some(TlsConfig {
            http_listen: Some(([127, 0, 0, 1], http_port).into()),
            acme: Some(AcmeConfig {
                domains: vec![DOMAIN.into()],
                contact: vec!["mailto:ops@tuber.test".into()],
                directory: format!("https://127.0.0.1:{acme_port}/dir"),
                directory_ca_file: Some(ca_file.clone()),
                renew_before: None,
            }),
            ..TlsConfig::default()
        }),
        ..HubConfig::default()
    };
    hub_config.stun.enabled = false;
    hub_config.planner.ping_interval = Duration::from_secs(1);

    // Issuance: from the hub's start to the first completed handshake.
    let started = Instant::now();
    let hub = start_hub(hub_config.clone()).await;
    let first =
        tls_support::wait_for_certificate(hub.addr, DOMAIN, &client, Duration::from_secs(60)).await;
    let issuance = started.elapsed();
    eprintln!("ACME issuance by pebble (hub start to first HTTPS handshake): {issuance:?}");
    assert!(first.names.contains(&DOMAIN.to_string()), "{first:?}");
    let lifetime = first
        .not_after
        .duration_since(first.not_before)
        .expect("lifetime");
    eprintln!(
        "pebble's certificate lifetime: {lifetime:?} (serial {})",
        first.serial
    );

    // The descriptor over HTTPS names wss:// signaling.
    let (status, body) = tls_support::get(hub.addr, DOMAIN, &client, "/.well-known/tuber").await;
    assert_eq!(status, 200);
    let d = SwarmDescriptor::decode(&body).expect("descriptor");
    assert_eq!(
        d.signaling,
        format!("wss://{DOMAIN}:{}/.tuber/ws", hub.addr.port())
    );
    assert_eq!(d.origin, format!("https://{DOMAIN}:{}/", hub.addr.port()));

    // Plain HTTP: a redirect to the same path over HTTPS, never elsewhere;
    // unknown challenge tokens are not found.
    let resp = plain_http(http_port, DOMAIN, "/a/b?c=d").await;
    assert!(resp.starts_with("HTTP/1.1 308"), "{resp}");
    let location = format!("location: https://{DOMAIN}:{}/a/b?c=d", hub.addr.port());
    assert!(resp.to_ascii_lowercase().contains(&location), "{resp}");
    let resp = plain_http(http_port, "evil.example", "/x").await;
    assert!(
        resp.to_ascii_lowercase()
            .contains(&format!("location: https://{DOMAIN}:{}/x", hub.addr.port())),
        "{resp}"
    );
    let resp = plain_http(http_port, DOMAIN, "/.well-known/acme-challenge/nope").await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");

    // A signaling WebSocket over TLS, open across the renewal.
    let (ws, ws_task) = tls_support::signaling(hub.addr, DOMAIN, &client).await;

    // Renewal: due when a third of the lifetime is left; poll the served
    // certificate until it changes.
    let due = first.not_after - lifetime / 3;
    let deadline = Instant::now() + lifetime + Duration::from_secs(60);
    let renewed = loop {
        let now =
            tls_support::wait_for_certificate(hub.addr, DOMAIN, &client, Duration::from_secs(10))
                .await;
        if now.serial != first.serial {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the hub did not renew within {lifetime:?} + 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seen = SystemTime::now();
    let swapped = Instant::now();
    let renewal = seen.duration_since(due).unwrap_or_default();
    eprintln!(
        "ACME renewal by pebble (renewal due to new certificate served, ±0.1 s polling): {renewal:?}"
    );
    assert!(renewed.not_before >= first.not_before, "{renewed:?}");
    assert_ne!(renewed.not_after, SystemTime::UNIX_EPOCH);

    // The WebSocket opened before the renewal still works: a ping after it.
    let ws_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        {
            let log = ws.lock().expect("log");
            assert!(
                log.closed.is_none(),
                "the WebSocket closed: {:?}",
                log.closed
            );
            if log
                .messages
                .iter()
                .any(|(t, kind)| *t > swapped && kind == "ping")
            {
                break;
            }
        }
        assert!(Instant::now() < ws_deadline, "no ping after the renewal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Kept in the data dir, the key private.
    let cert_dir = data.join("acme").join(DOMAIN);
    assert!(data.join("acme/account.json").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["key.pem", "../account.json"] {
            let mode = std::fs::metadata(cert_dir.join(f))
                .expect("stored")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} is private");
        }
    }
    ws_task.abort();
    hub.stop().await;

    // A restarted hub serves the stored certificate at once, no new order
    // (unless it became due meanwhile).
    let stored =
        tuber_hub::tls::files::load_files(&cert_dir.join("cert.pem"), &cert_dir.join("key.pem"))
            .expect("stored pair");
    let restarted = Instant::now();
    let hub = start_hub(hub_config).await;
    let again =
        tls_support::wait_for_certificate(hub.addr, DOMAIN, &client, Duration::from_secs(30)).await;
    if SystemTime::now() < stored.info.not_after - lifetime / 3 {
        assert_eq!(
            again.serial, stored.info.serial,
            "the stored certificate is reused"
        );
        eprintln!(
            "restart with the stored certificate: served after {:?}",
            restarted.elapsed()
        );
    }
    hub.stop().await;
    site_task.abort();
    drop(procs);
}
