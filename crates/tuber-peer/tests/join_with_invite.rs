//! A permanent peer with an invite is welcomed as trusted; after a
//! reconnect it is still trusted without sending the invite again (a second
//! use would be refused as `invite_invalid`). Neither the invite nor the
//! secret key shows up in the logs.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::{identity, joined, wait_for, TestHub};
use tuber_peer::{Invite, SwarmClient, SwarmState};

/// Everything logged, at every level of the two crates involved.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_makes_the_peer_trusted_once_and_for_all() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("tuber_peer=trace,tuber_hub=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test binary");

    let hub = TestHub::start().await;
    let token = hub.invite().await;
    let (keys, id) = identity();
    let (client, _inbound) = SwarmClient::builder(hub.url(), id.clone())
        .invite(Invite::new(&token))
        .join()
        .expect("join");
    let mut state = client.state();
    let s = wait_for(&mut state, "Joined", joined).await;
    assert!(
        matches!(
            s,
            SwarmState::Joined {
                trusted: true,
                session: 1,
                ..
            }
        ),
        "{s:?}"
    );

    // Reconnect: the invite is spent, the key is what the hub trusts now.
    client.reconnect();
    let s = wait_for(&mut state, "a second session", |s| {
        matches!(
            s,
            SwarmState::Joined { session: 2, .. } | SwarmState::Refused { .. }
        )
    })
    .await;
    assert!(
        matches!(s, SwarmState::Joined { trusted: true, .. }),
        "still trusted, invite not resent: {s:?}"
    );
    client.leave().await;

    let logs = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8");
    assert!(
        logs.contains("joined the swarm"),
        "logging was captured: {logs}"
    );
    assert!(!logs.contains(&token), "the invite leaked into the logs");
    let key = std::fs::read(keys.path().join(tuber_peer::identity::KEY_FILE)).expect("key");
    let secret: String = key[16..48].iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !logs.contains(&secret),
        "the secret key leaked into the logs"
    );
}
