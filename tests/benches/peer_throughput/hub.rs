//! Harness bits: bounded waits, child processes killed on every path, and
//! the swarm the engine figures run in (an origin, a hub in this process,
//! engines A and B seeding).

use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use tuber_peer::transport::Link;
use tuber_proto::Manifest;
use tuber_tests::swarm::{wait_provider, Hub, Origin, Peer};

use crate::{Sizes, BIG, FIRST, PIECE, SERVED, WAIT, WARM};

/// Closes every link (the remote's `recv` ends), bounded.
pub async fn close_links(links: &[&Link]) {
    for l in links {
        bounded("a link closes", Duration::from_secs(10), l.close()).await;
    }
}

/// `fut`, or a panic naming `what` after `limit`.
pub async fn bounded<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: not within {limit:?}"),
    }
}

/// A child process, SIGKILLed when dropped (and by tokio's `kill_on_drop`),
/// with its stdout kept open so it never dies of SIGPIPE.
pub struct ChildGuard {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl ChildGuard {
    pub fn spawn(cmd: &mut tokio::process::Command) -> std::io::Result<Self> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        Ok(Self {
            child,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the child runs")
    }

    /// The first stdout line starting with `prefix`, within `limit`.
    pub async fn line_starting(&mut self, prefix: &str, limit: Duration) -> String {
        let what = format!("a line starting with {prefix:?} from the child");
        bounded(&what, limit, async {
            loop {
                match self.stdout.next_line().await {
                    Ok(Some(l)) if l.starts_with(prefix) => break l,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => panic!("the child closed stdout before {what}"),
                }
            }
        })
        .await
    }

    /// SIGKILL and reap (bounded).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Aborts a helper task when dropped.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The children's log filter: this process's `RUST_LOG`, else errors only
/// (the library warns at every connection close).
pub fn child_log() -> String {
    std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into())
}

/// The swarm of figures 2 to 5: an origin, a hub (`tuber_hub::server::run`)
/// in this process, engines A and B joined, A seeding [`BIG`], [`WARM`] and
/// the one-piece connect resources.
pub struct Swarm {
    pub origin: Origin,
    pub hub: Hub,
    pub url: String,
    /// The one-piece resources for the connect samples.
    pub firsts: Vec<String>,
    /// The manifest of [`SERVED`] (figure 4).
    pub served: Manifest,
    pub peer_a: Peer,
    pub peer_b: Peer,
}

impl Swarm {
    pub async fn start(sizes: &Sizes) -> Self {
        // ---- the swarm: origin, hub, engines A and B
        let one_piece = PIECE;
        let firsts: Vec<String> = (0..sizes.connect_samples)
            .map(|i| format!("{FIRST}-{i}.bin"))
            .collect();
        let mut resources = vec![
            (BIG, sizes.big, 0xb16),
            (WARM, one_piece, 0x3a3a),
            (SERVED, sizes.served, 0x5e7e),
        ];
        for (i, f) in firsts.iter().enumerate() {
            resources.push((f.as_str(), one_piece, 0xf125 + i as u64));
        }
        let origin = Origin::start(&resources).await;
        let hub = Hub::start(&origin.url(), |c| {
            // One-piece resources are distributable.
            c.distribute.min_size = 0;
            // One peer answering 50 offers at once sends ~150 signals in a
            // second; the default 50/s (burst 200) per connection is for
            // browsers, not for this benchmark's serving peer.
            c.signaling.messages_per_second = 2000;
            c.signaling.burst = 4000;
        })
        .await;
        let url = hub.url();
        let big = hub.manifest(BIG).await;
        let warm = hub.manifest(WARM).await;
        let mut first = Vec::new();
        for f in &firsts {
            first.push(hub.manifest(f).await);
        }
        let served = hub.manifest(SERVED).await;
        assert!(
            first.iter().all(|m| m.pieces.len() == 1),
            "one-piece resources"
        );

        let peer_a = Peer::start().await;
        let peer_b = Peer::start().await;
        peer_a.join(&url, None).await;
        peer_b.join(&url, None).await;
        peer_a.wait_joined(&url, WAIT).await;
        peer_b.wait_joined(&url, WAIT).await;
        for path in [BIG, WARM]
            .into_iter()
            .chain(firsts.iter().map(String::as_str))
        {
            let s = peer_a.fetch(&url, path, WAIT).await;
            assert_eq!(s.failed, 0, "A seeds {path}: {s:?}");
        }
        for m in [&big, &warm].into_iter().chain(first.iter()) {
            wait_provider(&url, &peer_a.id(), &m.pieces, WAIT).await;
        }
        Self {
            origin,
            hub,
            url,
            firsts,
            served,
            peer_a,
            peer_b,
        }
    }
}
