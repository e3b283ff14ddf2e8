//! A raw peer: its own identity and signaling session, WebRTC links it dials
//! itself, and the peer wire spoken by hand through a [`WireSession`] — no
//! engine, so it never announces and nobody asks it for anything. What a
//! hostile client (or a benchmark's light requester) is: it can send any
//! frame in any order, which a real engine never would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tuber_peer::transport::{self, Link, LinkEvent, RtcConfig, Signal};
use tuber_peer::wire_session::{Event, WireSessionConfig};
use tuber_peer::{Identity, SwarmClient, SwarmState, WireSession};
use tuber_proto::signal::{ClientToHub, HubToClient, Provider};
use tuber_proto::{PeerId, PieceHash};

/// Bound on joining, an introduction or a connection.
const WAIT: Duration = Duration::from_secs(30);

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where the hub's messages for this peer go: answers and candidates to the
/// link waiting for them, providers to the `want` waiting for them.
#[derive(Default)]
struct Routes {
    links: Vec<(PeerId, u32, mpsc::Sender<Signal>)>,
    providers: Vec<(u32, tokio::sync::oneshot::Sender<Vec<Provider>>)>,
    errors: Vec<String>,
}

/// A joined signaling session without an engine.
pub struct RawPeer {
    id: PeerId,
    client: Arc<SwarmClient>,
    routes: Arc<Mutex<Routes>>,
    rtc: RtcConfig,
    next: u32,
    _router: AbortOnDrop,
    _dir: tempfile::TempDir,
}

impl RawPeer {
    /// Joins the swarm at `url` as a new browser-role identity.
    pub async fn join(url: &str) -> Self {
        let dir = tempfile::tempdir().expect("raw peer dir");
        let id = Arc::new(Identity::load_or_create(dir.path()).expect("identity"));
        let peer_id = id.peer_id();
        let (client, mut inbound) = SwarmClient::builder(url, id)
            .agent("tuber-raw-peer")
            .join()
            .expect("join");
        let mut state = client.state();
        let joined = tokio::time::timeout(
            WAIT,
            state.wait_for(|s| matches!(s, SwarmState::Joined { .. })),
        )
        .await
        .expect("a raw peer joins in time")
        .expect("raw peer client")
        .clone();
        let mut rtc = RtcConfig {
            udp_addrs: vec!["127.0.0.1:0".into()],
            ..RtcConfig::default()
        };
        if let SwarmState::Joined { descriptor, .. } = joined {
            rtc.ice_servers = descriptor.ice_servers.clone();
        }
        let routes: Arc<Mutex<Routes>> = Arc::default();
        let r = Arc::clone(&routes);
        // Drains every hub message: a full queue would stall the client.
        let router = tokio::spawn(async move {
            while let Some(msg) = inbound.recv().await {
                let mut routes = r.lock().expect("routes");
                let (from, conn, signal) = match msg {
                    HubToClient::Answer { from, conn, sdp } => {
                        (from, conn, Signal::Description(sdp))
                    }
                    HubToClient::Candidate {
                        from,
                        conn,
                        candidate,
                    } => (from, conn, Signal::Candidate(candidate)),
                    HubToClient::Providers { req, providers } => {
                        if let Some(i) = routes.providers.iter().position(|(q, _)| *q == req) {
                            let (_, reply) = routes.providers.swap_remove(i);
                            let _ = reply.send(providers);
                        }
                        continue;
                    }
                    HubToClient::Error { code, message } => {
                        routes.errors.push(format!("{code:?}: {message}"));
                        continue;
                    }
                    _ => continue,
                };
                if let Some((_, _, tx)) = routes
                    .links
                    .iter()
                    .find(|(p, c, _)| *p == from && *c == conn)
                {
                    let _ = tx.try_send(signal);
                }
            }
        });
        Self {
            id: peer_id,
            client: Arc::new(client),
            routes,
            rtc,
            next: 1,
            _router: AbortOnDrop(router),
            _dir: dir,
        }
    }

    /// This peer's id.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// The hub's errors to this peer so far.
    pub fn hub_errors(&self) -> Vec<String> {
        self.routes.lock().expect("routes").errors.clone()
    }

    /// Asks the hub who has `pieces` (a `want`): the providers it names.
    pub async fn want(&mut self, pieces: Vec<PieceHash>) -> Vec<Provider> {
        let req = self.next_number();
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.routes
            .lock()
            .expect("routes")
            .providers
            .push((req, reply));
        self.client
            .send(&ClientToHub::Want { req, pieces })
            .await
            .expect("send want");
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("providers in time")
            .expect("providers")
    }

    /// Offers a link to `server` through the hub, as an engine does.
    pub async fn dial(&mut self, server: PeerId) -> Result<Link, String> {
        let conn = self.next_number();
        let (out_tx, mut out_rx) = mpsc::channel::<Signal>(64);
        let (in_tx, in_rx) = mpsc::channel::<Signal>(64);
        self.routes
            .lock()
            .expect("routes")
            .links
            .push((server, conn, in_tx));
        let c = Arc::clone(&self.client);
        let outbound = AbortOnDrop(tokio::spawn(async move {
            while let Some(sig) = out_rx.recv().await {
                let msg = match sig {
                    Signal::Description(sdp) => ClientToHub::Offer {
                        to: server,
                        conn,
                        sdp,
                    },
                    Signal::Candidate(candidate) => ClientToHub::Candidate {
                        to: server,
                        conn,
                        candidate,
                    },
                };
                if c.send(&msg).await.is_err() {
                    break;
                }
            }
        }));
        let link = transport::connect_offer(&self.rtc, out_tx, in_rx, WAIT)
            .await
            .map_err(|e| e.to_string());
        drop(outbound);
        link
    }

    fn next_number(&mut self) -> u32 {
        self.next += 1;
        self.next
    }
}

/// The peer wire over one link, driven by hand: what goes out is exactly
/// what the test asks for.
pub struct RawWire {
    link: Link,
    session: WireSession,
    /// Events not yet taken by the test.
    events: VecDeque<Event>,
    /// Payload bytes of `data` frames received.
    pub data_bytes: u64,
}

impl RawWire {
    /// Opens the peer wire on `link` (sends our `hello`).
    pub fn new(link: Link) -> Self {
        let now = Instant::now();
        let mut session = WireSession::new(now, WireSessionConfig::default());
        session.handle_open(now);
        Self {
            link,
            session,
            events: VecDeque::new(),
            data_bytes: 0,
        }
    }

    /// The session, to queue requests and cancels on.
    pub fn session(&mut self) -> &mut WireSession {
        &mut self.session
    }

    /// Sends what the session queued and reads what arrived, for `time`.
    pub async fn pump(&mut self, time: Duration) {
        let until = Instant::now() + time;
        while Instant::now() < until && !self.session.is_closed() {
            while let Some(m) = self.session.poll_transmit() {
                if self.link.send(m).await.is_err() {
                    return;
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left.min(Duration::from_millis(20)), self.link.recv()).await
            {
                Ok(Some(LinkEvent::Message(m))) => {
                    if m.first() == Some(&tuber_proto::wire::kind::DATA) {
                        self.data_bytes +=
                            m.len().saturating_sub(tuber_proto::wire::DATA_HEADER_LEN) as u64;
                    }
                    self.session.handle_message(Instant::now(), &m);
                }
                Ok(Some(LinkEvent::Text)) => self.session.handle_text_message(Instant::now()),
                Ok(None) => return,
                Err(_) => {}
            }
            self.session.handle_timeout(Instant::now());
            while let Some(e) = self.session.poll_event() {
                self.events.push_back(e);
            }
        }
    }

    /// Takes every event so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// Closes the link.
    pub async fn close(self) {
        self.link.close().await;
    }
}
