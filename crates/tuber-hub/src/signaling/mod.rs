//! Signaling: the WebSocket side of the hub. Each swarm is an actor
//! ([`swarm`]) that owns its planner and its peers; each connection is a task
//! ([`conn`]). Relays, holdings, assignments and bans never cross swarms,
//! because a swarm only knows its own registry.
//!
//! ## Layout
//! - `swarm.rs` — the per-swarm actor: planner inputs and outputs, relay.
//! - `route.rs` — the `/.tuber/ws` upgrade: the `Origin` check, the
//!   connection limit.
//! - `conn.rs` — one connection: challenge/hello/welcome, limits, I/O.
//! - `reporter_group.rs` — whom a connection's blames for bad pieces count
//!   as: a trusted peer alone, anyone else by its network.
//! - `per_network.rs` — connections per client network.

mod conn;
mod per_network;
mod reporter_group;
pub(crate) mod route;
mod swarm;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocket;
pub use per_network::{NetworkPermit, PerNetwork};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tuber_proto::signal::ClientToHub;
use tuber_proto::{ManifestId, PeerId, PieceHash};

use crate::config::SignalingConfig;
use crate::db::HubDb;
use crate::metrics::{Gauges, Metrics};
use crate::planner::{PlannerConfig, Refused};

use swarm::{Command, Joining, SwarmActor};
pub use swarm::{ConnId, Outgoing};

/// Requests a swarm actor may have queued (backpressure on connections).
const SWARM_QUEUE: usize = 1024;

/// Who this hub is to permanent peers, and where an invite may arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The hub's public origin, as `tuber_proto::origin::origin_of` gives it
    /// for the public URL. A permanent peer's proof must be for exactly this
    /// origin: a proof for another means the peer joined another hub, which
    /// is relaying this hub's challenge to sign in as that peer.
    pub origin: String,
    /// Refuse a `hello` whose invite came in cleartext: not over the hub's
    /// own TLS listener and not from a loopback address (a TLS terminator
    /// on the same host).
    pub refuse_cleartext_invites: bool,
    /// Whether the hub's listener terminates TLS itself.
    pub tls: bool,
}

impl Access {
    /// Whether an invite from `client` came over an encrypted path.
    pub(crate) fn invite_is_private(&self, client: Option<SocketAddr>) -> bool {
        self.tls || client.is_some_and(|a| a.ip().is_loopback())
    }
}

/// What every connection needs.
pub(crate) struct Shared {
    settings: SignalingConfig,
    access: Access,
    planner: PlannerConfig,
    db: HubDb,
    metrics: Arc<Metrics>,
    /// Makes the TURN credentials of each `welcome` (none: no TURN).
    turn: Option<crate::turn::TurnIssuer>,
}

/// The swarms this hub signals for. Owns their actors' tasks: dropping it
/// (or cancelling its token) stops them.
pub struct Signaling {
    shared: Arc<Shared>,
    swarms: HashMap<String, SwarmHandle>,
    tasks: JoinSet<()>,
    cancel: CancellationToken,
}

/// Serves upgraded WebSockets. Cheap to clone.
#[derive(Clone)]
pub struct Connector(Arc<Shared>);

impl Connector {
    /// Serves one upgraded WebSocket for `swarm` until it closes. `client`
    /// is the address the connection came from (`ConnectInfo`): its network
    /// is whom the client's blames for bad pieces count as, unless it is a
    /// trusted peer. None (unknown) makes the client count on its own.
    pub async fn serve(&self, ws: WebSocket, swarm: SwarmHandle, client: Option<SocketAddr>) {
        conn::run(ws, swarm, Arc::clone(&self.0), client, None).await;
    }

    /// As [`Connector::serve`], with the connection's place in its
    /// network's limits (its messages are charged to the network's budget).
    pub async fn serve_limited(
        &self,
        ws: WebSocket,
        swarm: SwarmHandle,
        client: Option<SocketAddr>,
        network: Option<NetworkPermit>,
    ) {
        conn::run(ws, swarm, Arc::clone(&self.0), client, network).await;
    }

    /// Largest WebSocket message accepted at the transport level. Larger
    /// than the protocol's 64 KiB so that a too-large message still gets a
    /// `too_large` answer; beyond this the connection is closed unread.
    pub const MAX_WS_MESSAGE: usize = 256 * 1024;
}

/// A cheap handle to one swarm's actor.
#[derive(Clone)]
pub struct SwarmHandle {
    id: Arc<str>,
    tx: mpsc::Sender<Command>,
}

impl Signaling {
    /// No swarms yet.
    pub fn new(
        settings: SignalingConfig,
        access: Access,
        planner: PlannerConfig,
        db: HubDb,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings,
                access,
                planner,
                db,
                metrics,
                turn: None,
            }),
            swarms: HashMap::new(),
            tasks: JoinSet::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// Hands every client TURN credentials from `turn` in its `welcome`.
    /// Call before the first [`Signaling::connector`]: later connectors
    /// would not see it.
    pub fn with_turn(mut self, turn: Option<crate::turn::TurnIssuer>) -> Self {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.turn = turn,
            None => tracing::error!("with_turn after connector(): TURN not configured"),
        }
        self
    }

    /// Starts the actor of swarm `id` (or returns the running one).
    pub fn add_swarm(&mut self, id: &str) -> SwarmHandle {
        if let Some(h) = self.swarms.get(id) {
            return h.clone();
        }
        let (tx, rx) = mpsc::channel(SWARM_QUEUE);
        let actor = SwarmActor::new(
            self.shared.planner.clone(),
            self.shared.db.clone(),
            self.shared.metrics.clone(),
        );
        self.tasks.spawn(actor.run(rx, self.cancel.child_token()));
        let handle = SwarmHandle { id: id.into(), tx };
        self.swarms.insert(id.to_string(), handle.clone());
        handle
    }

    /// The running swarm `id`.
    pub fn swarm(&self, id: &str) -> Option<SwarmHandle> {
        self.swarms.get(id).cloned()
    }

    /// What the HTTP server needs to serve connections.
    pub fn connector(&self) -> Connector {
        Connector(Arc::clone(&self.shared))
    }

    /// Stops every swarm and waits for their actors.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl SwarmHandle {
    /// The swarm id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hub publishes a manifest: its content is assigned to trusted
    /// peers, and its pieces count as being seeded (see the planner).
    pub async fn content(&self, manifest: std::sync::Arc<tuber_proto::Manifest>) {
        let _ = self.tx.send(Command::Content { manifest }).await;
    }

    /// The hub no longer distributes `manifest`: its holders unassign it;
    /// nobody is introduced as a holder of `withdrawn` (see the planner's
    /// `withdrawn.rs`).
    pub async fn content_removed(&self, manifest: ManifestId, withdrawn: Vec<PieceHash>) {
        let cmd = Command::ContentRemoved {
            manifest,
            withdrawn,
        };
        let _ = self.tx.send(cmd).await;
    }

    /// Connected peers and bans, for `/metrics`.
    pub async fn gauges(&self) -> Gauges {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Gauges { reply }).await.is_err() {
            return Gauges::default();
        }
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    /// Lifts `peer`'s ban (planner and database); true if it was banned.
    pub async fn unban(&self, peer: PeerId) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Unban { peer, reply }).await.is_err() {
            return false;
        }
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false)
    }

    async fn join(
        &self,
        who: Joining,
        conn: ConnId,
        tx: mpsc::Sender<Outgoing>,
    ) -> Result<(), Refused> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Join {
            who,
            conn,
            tx,
            reply,
        };
        if self.tx.send(cmd).await.is_err() {
            return Err(Refused::Full);
        }
        rx.await.unwrap_or(Err(Refused::Full))
    }

    async fn message(&self, peer: PeerId, conn: ConnId, msg: ClientToHub) -> bool {
        self.tx
            .send(Command::Message { peer, conn, msg })
            .await
            .is_ok()
    }

    async fn leave(&self, peer: PeerId, conn: ConnId) {
        let _ = self.tx.send(Command::Leave { peer, conn }).await;
    }
}
