//! The hub terminating TLS with certificate files (files mode): it serves
//! HTTPS with the files' certificate, and replacing the files (as certbot
//! does) swaps the served certificate without a restart, while a signaling
//! WebSocket opened before stays open.

mod tls_support;

use std::path::Path;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tuber_hub::config::{HubConfig, TlsConfig};
use tuber_proto::SwarmDescriptor;

/// Writes through a temporary file and a rename, as certbot's symlink
/// switch is atomic too.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificate_files_are_served_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Tuber files-mode CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca, ca_key);
    let leaf = || {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("leaf");
        (
            format!("{}{}", cert.pem(), ca_cert.pem()),
            key.serialize_pem(),
        )
    };
    let (cert_path, key_path) = (dir.path().join("fullchain.pem"), dir.path().join("key.pem"));
    let (chain1, key1) = leaf();
    replace(&cert_path, &chain1);
    replace(&key_path, &key1);

    let (site, site_task) = tuber_hub::demo::spawn().await.expect("upstream");
    let mut config = HubConfig {
        upstream: Some(format!("http://{site}")),
        data_dir: Some(dir.path().join("hub")),
        tls: Some(TlsConfig {
            cert: Some(cert_path.clone()),
            key: Some(key_path.clone()),
            reload_interval: Duration::from_secs(1),
            ..TlsConfig::default()
        }),
        ..HubConfig::default()
    };
    config.stun.enabled = false;
    config.planner.ping_interval = Duration::from_secs(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let hub = tokio::spawn(tuber_hub::server::run(config, listener, None, async {
        let _ = stopped.await;
    }));

    let client = tls_support::client_config(&ca_cert.pem());
    let first =
        tls_support::wait_for_certificate(addr, "localhost", &client, Duration::from_secs(20))
            .await;
    let (status, body) = tls_support::get(addr, "localhost", &client, "/.well-known/tuber").await;
    assert_eq!(status, 200);
    let d = SwarmDescriptor::decode(&body).expect("descriptor");
    assert_eq!(d.signaling, format!("wss://{addr}/.tuber/ws"));
    let (ws, ws_task) = tls_support::signaling(addr, "localhost", &client).await;

    // A broken pair (new key, old chain) is refused; the old one stays.
    let (chain2, key2) = leaf();
    replace(&key_path, &key2);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still =
        tls_support::wait_for_certificate(addr, "localhost", &client, Duration::from_secs(5)).await;
    assert_eq!(
        still.serial, first.serial,
        "a mismatched pair is not served"
    );
    // The matching chain arrives: served from the next check on.
    replace(&cert_path, &chain2);
    let swapped_at = Instant::now();
    let deadline = swapped_at + Duration::from_secs(15);
    loop {
        let now =
            tls_support::wait_for_certificate(addr, "localhost", &client, Duration::from_secs(5))
                .await;
        if now.serial != first.serial {
            break;
        }
        assert!(Instant::now() < deadline, "the new files were not served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "files mode: new certificate served {:?} after the files changed",
        swapped_at.elapsed()
    );
    let seen = Instant::now();
    let ws_deadline = seen + Duration::from_secs(10);
    loop {
        {
            let log = ws.lock().expect("log");
            assert!(
                log.closed.is_none(),
                "the WebSocket closed: {:?}",
                log.closed
            );
            if log.messages.iter().any(|(t, k)| *t > seen && k == "ping") {
                break;
            }
        }
        assert!(Instant::now() < ws_deadline, "no ping after the swap");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ws_task.abort();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), hub)
        .await
        .expect("stops in time")
        .expect("task")
        .expect("hub ran");
    site_task.abort();
}
