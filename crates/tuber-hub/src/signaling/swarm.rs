//! One swarm's actor: it owns the [`Planner`] and the registry of connected
//! peers, so every planner input and every relay is serialised without locks.
//! Connections talk to it through a bounded channel; it talks to them through
//! each connection's own bounded channel and never waits on one (a client
//! too slow to take its messages is disconnected, not waited for).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tuber_proto::signal::{Capacity, ClientToHub, ErrorCode, HubToClient, Role};
use tuber_proto::{ManifestId, PeerId};

use crate::db::HubDb;
use crate::metrics::{Gauges, Metrics};
use crate::planner::{Output, Planner, PlannerConfig, Refused, Relay, ReporterGroup};

/// Identifies one WebSocket connection (a peer id may reconnect).
pub type ConnId = u64;

/// Messages an actor sends to a connection.
#[derive(Debug)]
pub enum Outgoing {
    /// Send this message.
    Msg(HubToClient),
    /// Send `error` (when there is a code), then close.
    Close(Option<ErrorCode>, &'static str),
}

/// A welcomed client, as the planner is told of it.
pub(crate) struct Joining {
    pub peer: PeerId,
    pub role: Role,
    pub trusted: bool,
    pub capacity: Option<Capacity>,
    /// Whom its blames for bad pieces count as.
    pub group: ReporterGroup,
}

/// Requests to the actor.
pub(crate) enum Command {
    Join {
        who: Joining,
        conn: ConnId,
        tx: mpsc::Sender<Outgoing>,
        reply: oneshot::Sender<Result<(), Refused>>,
    },
    Leave {
        peer: PeerId,
        conn: ConnId,
    },
    Message {
        peer: PeerId,
        conn: ConnId,
        msg: ClientToHub,
    },
    Content {
        manifest: std::sync::Arc<tuber_proto::Manifest>,
    },
    ContentRemoved {
        manifest: ManifestId,
        /// Its pieces that no other distributed manifest has, when the
        /// hub withdraws them (an expired signed URL): never introduced.
        withdrawn: Vec<tuber_proto::PieceHash>,
    },
    Gauges {
        reply: oneshot::Sender<Gauges>,
    },
    /// The operator lifts a ban: the planner and the database forget it.
    Unban {
        peer: PeerId,
        reply: oneshot::Sender<bool>,
    },
}

/// Outgoing messages a connection may have queued before it counts as stuck.
pub const CONNECTION_QUEUE: usize = 256;

struct Conn {
    id: ConnId,
    tx: mpsc::Sender<Outgoing>,
}

pub(crate) struct SwarmActor {
    planner: Planner,
    conns: HashMap<PeerId, Conn>,
    db: HubDb,
    metrics: Arc<Metrics>,
    blocking: JoinSet<()>,
}

impl SwarmActor {
    pub(crate) fn new(config: PlannerConfig, db: HubDb, metrics: Arc<Metrics>) -> Self {
        let ban_duration = config.ban_duration;
        let mut planner = Planner::new(config);
        // Bans outlive restarts (for what is left of them): the planner
        // refuses these on return. Those that ran out meanwhile are deleted.
        match crate::bans::split_expired(&db, ban_duration, crate::db::unix_now()) {
            Ok(active) => planner.restore_bans(Instant::now(), active),
            Err(e) => tracing::error!(error = %e, "cannot read bans; starting without them"),
        }
        Self {
            planner,
            conns: HashMap::new(),
            db,
            metrics,
            blocking: JoinSet::new(),
        }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Command>, cancel: CancellationToken) {
        loop {
            let deadline = self.planner.poll_timeout();
            tokio::select! {
                // Shutdown first, then inputs, then the planner's timer:
                // a busy swarm still notices a stop request at once.
                biased;
                () = cancel.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                () = sleep_until(deadline) => self.planner.handle_timeout(Instant::now()),
                Some(_) = self.blocking.join_next(), if !self.blocking.is_empty() => {}
            }
            self.drain();
        }
        for (_, conn) in self.conns.drain() {
            let _ = conn.tx.try_send(Outgoing::Close(None, "hub shutting down"));
        }
        while self.blocking.join_next().await.is_some() {}
    }

    fn handle(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Join {
                who,
                conn,
                tx,
                reply,
            } => {
                let Joining {
                    peer,
                    role,
                    trusted,
                    capacity,
                    group,
                } = who;
                let result = self
                    .planner
                    .handle_join_with_group(now, peer, role, trusted, capacity, group);
                if result.is_ok() {
                    if let Some(old) = self.conns.insert(peer, Conn { id: conn, tx }) {
                        // The same key connected again: the newer connection wins.
                        let _ = old
                            .tx
                            .try_send(Outgoing::Close(None, "replaced by a newer connection"));
                    }
                }
                let _ = reply.send(result);
            }
            Command::Leave { peer, conn } => {
                if self.conns.get(&peer).is_some_and(|c| c.id == conn) {
                    self.conns.remove(&peer);
                    self.planner.handle_leave(now, peer);
                }
            }
            Command::Message { peer, conn, msg } => {
                if self.conns.get(&peer).is_some_and(|c| c.id == conn) {
                    self.message(now, peer, msg);
                }
            }
            Command::Content { manifest: m } => {
                let done =
                    self.planner
                        .handle_content_pieces(now, m.path.clone(), m.id(), &m.pieces);
                if let Err(e) = done {
                    tracing::warn!(error = %e, "content not assigned");
                }
            }
            Command::ContentRemoved {
                manifest,
                withdrawn,
            } => {
                self.planner.handle_content_removed(now, manifest);
                self.planner.handle_pieces_withdrawn(now, &withdrawn);
            }
            Command::Gauges { reply } => {
                let _ = reply.send(Gauges {
                    browsers: self.planner.peer_count_by_role(Role::Browser) as u64,
                    permanent: self.planner.peer_count_by_role(Role::Permanent) as u64,
                    trusted: self.planner.trusted_count() as u64,
                    bans: self.planner.ban_count() as u64,
                    donor_capacity: self.planner.donor_capacity(),
                    ..Gauges::default()
                });
            }
            Command::Unban { peer, reply } => {
                let in_planner = self.planner.unban(&peer);
                let db = self.db.clone();
                self.blocking.spawn_blocking(move || {
                    let in_db = db.unban(&peer).unwrap_or_else(|e| {
                        tracing::error!(error = %e, "cannot delete a ban");
                        false
                    });
                    if in_planner || in_db {
                        tracing::info!(?peer, "ban lifted by the operator");
                    }
                    let _ = reply.send(in_planner || in_db);
                });
            }
        }
    }

    fn message(&mut self, now: Instant, peer: PeerId, msg: ClientToHub) {
        let p = &mut self.planner;
        match msg {
            ClientToHub::Offer { to, conn, sdp } => {
                p.handle_activity(now, peer);
                self.relay(
                    now,
                    peer,
                    to,
                    Relay::Offer,
                    HubToClient::Offer {
                        from: peer,
                        conn,
                        sdp,
                    },
                );
            }
            ClientToHub::Answer { to, conn, sdp } => {
                p.handle_activity(now, peer);
                self.relay(
                    now,
                    peer,
                    to,
                    Relay::Answer,
                    HubToClient::Answer {
                        from: peer,
                        conn,
                        sdp,
                    },
                );
            }
            ClientToHub::Candidate {
                to,
                conn,
                candidate,
            } => {
                p.handle_activity(now, peer);
                self.relay(
                    now,
                    peer,
                    to,
                    Relay::Candidate,
                    HubToClient::Candidate {
                        from: peer,
                        conn,
                        candidate,
                    },
                );
            }
            ClientToHub::Have { pieces } => p.handle_have(now, peer, &pieces),
            ClientToHub::Lost { pieces } => p.handle_lost(now, peer, &pieces),
            ClientToHub::Want { req, pieces } => p.handle_want(now, peer, req, &pieces),
            ClientToHub::Report { transfers, bad } => {
                // Count what receivers say they got: senders could inflate `up`.
                let down: u64 = transfers.iter().map(|t| t.down).sum();
                Metrics::add(&self.metrics.p2p_reported_bytes, down);
                p.handle_report(now, peer, &transfers, &bad);
            }
            ClientToHub::Ping { nonce } => {
                p.handle_activity(now, peer);
                self.send(peer, HubToClient::Pong { nonce });
            }
            ClientToHub::Pong { .. } => p.handle_pong(now, peer),
            ClientToHub::Error { code, message } => {
                p.handle_activity(now, peer);
                tracing::debug!(?peer, ?code, %message, "client reported an error");
            }
            ClientToHub::Hello { .. } => {
                let error = HubToClient::Error {
                    code: ErrorCode::BadMessage,
                    message: "already welcomed".into(),
                };
                self.send(peer, error);
            }
            other => tracing::debug!(?peer, ?other, "message this hub does not handle"),
        }
    }

    /// Relays within this swarm only: `to` is looked up in this actor's
    /// registry, so a peer of another swarm is unknown here. And only along
    /// the planner's introductions (`planner/relay.rs`).
    fn relay(&mut self, now: Instant, from: PeerId, to: PeerId, kind: Relay, msg: HubToClient) {
        if to == from || !self.conns.contains_key(&to) {
            let error = HubToClient::Error {
                code: ErrorCode::UnknownPeer,
                message: format!("peer {} is not in this swarm", to.to_hex()),
            };
            self.send(from, error);
            return;
        }
        if let Err(why) = self.planner.check_relay(now, from, to, kind) {
            Metrics::add(&self.metrics.relays_refused, 1);
            let error = HubToClient::Error {
                code: ErrorCode::UnknownPeer,
                message: format!("not relayed to peer {}: {why}", to.to_hex()),
            };
            self.send(from, error);
            return;
        }
        self.send(to, msg);
    }

    fn send(&mut self, peer: PeerId, msg: HubToClient) {
        let Some(conn) = self.conns.get(&peer) else {
            return;
        };
        match conn.tx.try_send(Outgoing::Msg(msg)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(
                    ?peer,
                    "disconnecting a client that does not read its messages"
                );
                self.drop_peer(peer, "too slow to read signaling messages");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.drop_peer(peer, "gone"),
        }
    }

    fn drop_peer(&mut self, peer: PeerId, why: &'static str) {
        if let Some(conn) = self.conns.remove(&peer) {
            let _ = conn.tx.try_send(Outgoing::Close(None, why));
        }
        self.planner.handle_leave(Instant::now(), peer);
    }

    /// Acts on everything the planner asked for (its contract: after every
    /// input, drain until empty).
    fn drain(&mut self) {
        while let Some(out) = self.planner.poll_output() {
            match out {
                Output::Send(peer, msg) => self.send(peer, msg),
                Output::Disconnect(peer, reason) => {
                    if let Some(conn) = self.conns.remove(&peer) {
                        let _ = conn
                            .tx
                            .try_send(Outgoing::Close(reason.code(), reason.message()));
                    }
                }
                Output::Banned(peer) => {
                    tracing::warn!(?peer, "banned for bad pieces");
                    let db = self.db.clone();
                    self.blocking.spawn_blocking(move || {
                        let now = crate::db::unix_now();
                        if let Err(e) =
                            db.record_ban(&peer, "bad pieces reported by several peers", now)
                        {
                            tracing::error!(error = %e, "cannot persist a ban");
                        }
                    });
                }
                Output::BanExpired(peer) => {
                    let db = self.db.clone();
                    self.blocking.spawn_blocking(move || {
                        if let Err(e) = db.unban(&peer) {
                            tracing::error!(error = %e, "cannot delete an expired ban");
                        }
                    });
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
