//! One joined swarm's actor: owns the signaling client, routes the hub's
//! messages (offers and candidates to connecting links, providers to the
//! fetcher that asked, assignments to the duties worker), keeps the table
//! of open links, and sends `have`, `lost` and `report` in batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tuber_proto::signal::{ClientToHub, ErrorCode, HubToClient, Provider, TransferReport};
use tuber_proto::{PeerId, PieceHash};

mod connect;

use super::duties::{self, Duty};
use super::link::LinkHandle;
use super::shared::{lock, SwarmCmd, SwarmShared};
use super::types::{EngineEvent, SwarmPhase};
use crate::swarm_client::{SwarmClient, SwarmState};
use crate::transport::{Link, Signal, TransportError};

/// Longest a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that could not be reached is not tried again for this long.
const UNREACHABLE_FOR: Duration = Duration::from_secs(30);
/// How often `have`/`lost` batches go out.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(250);
/// How often traffic is reported to the hub.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Most links (both directions, connecting ones too) one swarm keeps open.
const MAX_LINKS: usize = 256;
/// Of those, most handshakes the remote started (offers we answer) at
/// once, and one per remote: bare offers must not take every slot, and our
/// own fetcher's links always find room.
const MAX_INBOUND_CONNECTING: usize = 64;
/// Most pieces in one `have`/`lost`/`want` (protocol limit).
const MAX_LIST: usize = 512;

enum ConnEvent {
    Connected {
        peer: PeerId,
        conn: u32,
        link: Link,
    },
    Failed {
        peer: PeerId,
        conn: u32,
        error: TransportError,
    },
}

struct Connecting {
    signals: mpsc::Sender<Signal>,
    waiters: Vec<oneshot::Sender<Option<LinkHandle>>>,
    /// The remote offered (we answer).
    inbound: bool,
}

pub struct SwarmActor {
    shared: Arc<SwarmShared>,
    client: SwarmClient,
    inbound: mpsc::Receiver<HubToClient>,
    state: watch::Receiver<SwarmState>,
    cmds: mpsc::Receiver<SwarmCmd>,
    conn_tx: mpsc::Sender<ConnEvent>,
    conn_rx: mpsc::Receiver<ConnEvent>,
    /// Signals of connecting links, to send through the client.
    outbound_relay: mpsc::Sender<ClientToHub>,
    relay_rx: mpsc::Receiver<ClientToHub>,
    duties: mpsc::Sender<Duty>,
    links: HashMap<PeerId, LinkHandle>,
    /// A second link to a peer (both sides offered at once): it serves the
    /// remote's requests, and counts against [`MAX_LINKS`]. At most one.
    extra_links: HashMap<PeerId, LinkHandle>,
    connecting: HashMap<(PeerId, u32), Connecting>,
    unreachable: HashMap<PeerId, Instant>,
    wants: HashMap<u32, oneshot::Sender<Vec<Provider>>>,
    next_req: u32,
    next_conn: u32,
    session: u64,
    roles: HashMap<PeerId, Provider>,
}

impl SwarmActor {
    pub fn new(
        shared: Arc<SwarmShared>,
        client: SwarmClient,
        inbound: mpsc::Receiver<HubToClient>,
        cmds: mpsc::Receiver<SwarmCmd>,
    ) -> Self {
        let (conn_tx, conn_rx) = mpsc::channel(64);
        let (outbound_relay, relay_rx) = mpsc::channel(256);
        let duties = duties::spawn(Arc::clone(&shared));
        let mut seed = [0u8; 4];
        // Random connection ids: an offer of ours and one of the remote's
        // must not share (peer, conn) by accident.
        let _ = getrandom::fill(&mut seed);
        Self {
            state: client.state(),
            shared,
            client,
            inbound,
            cmds,
            conn_tx,
            conn_rx,
            outbound_relay,
            relay_rx,
            duties,
            links: HashMap::new(),
            extra_links: HashMap::new(),
            connecting: HashMap::new(),
            unreachable: HashMap::new(),
            wants: HashMap::new(),
            next_req: 1,
            next_conn: u32::from_be_bytes(seed) | 1,
            session: 0,
            roles: HashMap::new(),
        }
    }

    pub async fn run(mut self) {
        let cancel = self.shared.cancel.clone();
        let mut announce = tokio::time::interval(ANNOUNCE_EVERY);
        let mut report = tokio::time::interval(REPORT_EVERY);
        announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.on_state().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                msg = self.inbound.recv() => match msg {
                    Some(m) => self.on_hub(m).await,
                    None => {
                        // The client stopped (refused): keep answering
                        // status until the engine leaves.
                        self.on_state().await;
                        cancel.cancelled().await;
                        break;
                    }
                },
                changed = self.state.changed() => {
                    if changed.is_err() {
                        cancel.cancelled().await;
                        break;
                    }
                    self.on_state().await;
                }
                Some(cmd) = self.cmds.recv() => self.on_cmd(cmd).await,
                Some(ev) = self.conn_rx.recv() => self.on_conn(ev),
                Some(msg) = self.relay_rx.recv() => {
                    if let Err(e) = self.client.send(&msg).await {
                        tracing::debug!(error = %e, "signal not relayed");
                    }
                }
                _ = announce.tick() => self.announce().await,
                _ = report.tick() => self.report().await,
            }
        }
        self.client.leave().await;
    }

    async fn on_state(&mut self) {
        let state = self.state.borrow_and_update().clone();
        let phase = match &state {
            SwarmState::Connecting => SwarmPhase::Connecting,
            SwarmState::Joined {
                trusted,
                session,
                descriptor,
                ..
            } => {
                lock(&self.shared.view).descriptor = Some(Arc::clone(descriptor));
                if *session != self.session {
                    self.session = *session;
                    // A new session's hub state starts empty: say again
                    // what we hold, and drop the wants of the old one.
                    self.wants.clear();
                    if *trusted {
                        self.shared.engine.emit(EngineEvent::Trusted {
                            url: self.shared.url.clone(),
                        });
                    }
                    self.reannounce().await;
                }
                SwarmPhase::Joined { trusted: *trusted }
            }
            SwarmState::Backoff {
                until, last_error, ..
            } => SwarmPhase::Retrying {
                error: last_error.clone(),
                retry_in_ms: until.saturating_duration_since(Instant::now()).as_millis() as u64,
            },
            SwarmState::Refused { code, message } => SwarmPhase::Error {
                code: serde_json::to_value(code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "unknown".into()),
                message: message.clone(),
            },
            SwarmState::Stopped { code, message } => SwarmPhase::Error {
                code: (*code).to_string(),
                message: message.clone(),
            },
            #[allow(unreachable_patterns)]
            _ => SwarmPhase::Connecting,
        };
        self.shared.set_phase(phase);
        let status = {
            let meter = lock(&self.shared.engine.meter);
            super::support::swarm_status(&self.shared, &meter, Instant::now())
        };
        self.shared.engine.emit(EngineEvent::Swarm {
            url: self.shared.url.clone(),
            status: Some(status),
        });
    }

    async fn reannounce(&mut self) {
        let held = match self
            .shared
            .engine
            .store
            .list_by_swarm(self.shared.url.clone())
            .await
        {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list held pieces");
                return;
            }
        };
        lock(&self.shared.have).extend(held);
        self.announce().await;
    }

    async fn announce(&mut self) {
        if !matches!(*self.state.borrow(), SwarmState::Joined { .. }) {
            return;
        }
        for (list, lost) in [(&self.shared.have, false), (&self.shared.lost, true)] {
            let pieces: Vec<PieceHash> = std::mem::take(&mut *lock(list));
            for chunk in pieces.chunks(MAX_LIST) {
                let msg = if lost {
                    ClientToHub::Lost {
                        pieces: chunk.to_vec(),
                    }
                } else {
                    ClientToHub::Have {
                        pieces: chunk.to_vec(),
                    }
                };
                if let Err(e) = self.client.send(&msg).await {
                    // Not joined any more: the next session re-announces.
                    tracing::debug!(error = %e, "announce not sent");
                    break;
                }
            }
        }
    }

    async fn report(&mut self) {
        self.prune_links();
        if !matches!(*self.state.borrow(), SwarmState::Joined { .. }) {
            return;
        }
        let transfers: Vec<TransferReport> = lock(&self.shared.transfers)
            .drain()
            .take(256)
            .map(|(peer, t)| TransferReport {
                peer,
                up: t.up.min((1 << 53) - 1),
                down: t.down.min((1 << 53) - 1),
            })
            .collect();
        let bad = std::mem::take(&mut *lock(&self.shared.bad));
        if transfers.is_empty() && bad.is_empty() {
            return;
        }
        if let Err(e) = self
            .client
            .send(&ClientToHub::Report { transfers, bad })
            .await
        {
            tracing::debug!(error = %e, "report not sent");
        }
    }

    /// Links open or being set up, both directions.
    fn link_count(&self) -> usize {
        self.links.len() + self.extra_links.len() + self.connecting.len()
    }

    fn prune_links(&mut self) {
        self.extra_links.retain(|_, l| !l.is_closed());
        let gone: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(_, l)| l.is_closed())
            .map(|(p, _)| *p)
            .collect();
        for peer in gone {
            self.links.remove(&peer);
            self.shared.engine.emit(EngineEvent::Peer {
                swarm: self.shared.url.clone(),
                peer: peer.to_string(),
                connected: false,
            });
        }
        self.update_peers();
    }

    fn update_peers(&self) {
        let peers = self
            .links
            .keys()
            .map(|p| (*p, self.roles.get(p).cloned()))
            .collect();
        lock(&self.shared.view).peers = peers;
    }

    async fn on_hub(&mut self, msg: HubToClient) {
        match msg {
            HubToClient::Offer { from, conn, sdp } => self.on_offer(from, conn, sdp),
            HubToClient::Answer { from, conn, sdp } => {
                if let Some(c) = self.connecting.get(&(from, conn)) {
                    let _ = c.signals.try_send(Signal::Description(sdp));
                }
            }
            HubToClient::Candidate {
                from,
                conn,
                candidate,
            } => {
                if let Some(c) = self.connecting.get(&(from, conn)) {
                    let _ = c.signals.try_send(Signal::Candidate(candidate));
                }
            }
            HubToClient::Providers { req, providers } => {
                for p in &providers {
                    self.roles.insert(p.peer, p.clone());
                }
                if let Some(reply) = self.wants.remove(&req) {
                    let _ = reply.send(providers);
                }
            }
            HubToClient::Assign {
                resource,
                manifest,
                ranges,
                ..
            } => {
                let duty = Duty::Assign {
                    resource,
                    manifest,
                    ranges,
                };
                if self.duties.send(duty).await.is_err() {
                    tracing::warn!("duties worker gone; assignment dropped");
                }
            }
            HubToClient::Unassign {
                resource,
                manifest,
                ranges,
                ..
            } => {
                let _ = self
                    .duties
                    .send(Duty::Unassign {
                        resource,
                        manifest,
                        ranges,
                    })
                    .await;
            }
            HubToClient::Error { code, message } => {
                if code == ErrorCode::UnknownPeer {
                    self.fail_unknown_peer(&message);
                } else {
                    tracing::warn!(?code, %message, swarm = %self.shared.url, "hub error");
                }
            }
            _ => {}
        }
    }

    async fn on_cmd(&mut self, cmd: SwarmCmd) {
        match cmd {
            SwarmCmd::Want { pieces, reply } => {
                let req = self.next_req;
                self.next_req = self.next_req.wrapping_add(1);
                let msg = ClientToHub::Want { req, pieces };
                if self.client.send(&msg).await.is_ok() {
                    self.wants.insert(req, reply);
                    // Forget answers that never came.
                    self.wants.retain(|_, r| !r.is_closed());
                }
            }
            SwarmCmd::Link { peer, reply } => self.on_link_wanted(peer, reply),
        }
    }
}
