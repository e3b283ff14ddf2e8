//! Connections of one swarm: offers we make for a fetcher's link, offers
//! we answer, their signals relayed through the hub, and the outcome of
//! each attempt.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tuber_proto::signal::ClientToHub;
use tuber_proto::{PeerId, SwarmDescriptor};

use super::{
    ConnEvent, Connecting, SwarmActor, CONNECT_TIMEOUT, MAX_INBOUND_CONNECTING, MAX_LINKS,
    UNREACHABLE_FOR,
};
use crate::engine::link::{self, LinkHandle};
use crate::engine::shared::lock;
use crate::engine::types::EngineEvent;
use crate::transport::{self, Link, RtcConfig, Signal, TransportError};

impl SwarmActor {
    pub(super) fn on_link_wanted(
        &mut self,
        peer: PeerId,
        reply: oneshot::Sender<Option<LinkHandle>>,
    ) {
        if let Some(l) = self.links.get(&peer) {
            if !l.is_closed() {
                let _ = reply.send(Some(l.clone()));
                return;
            }
            if l.was_unresponsive() {
                // Gone or stuck: do not redial it at once.
                self.unreachable.insert(peer, Instant::now());
            }
            self.links.remove(&peer);
        }
        if let Some(c) = self.connecting.iter_mut().find(|((p, _), _)| *p == peer) {
            c.1.waiters.push(reply);
            return;
        }
        let unreachable = self
            .unreachable
            .get(&peer)
            .is_some_and(|t| t.elapsed() < UNREACHABLE_FOR);
        let descriptor = lock(&self.shared.view).descriptor.clone();
        let Some(descriptor) = descriptor else {
            let _ = reply.send(None);
            return;
        };
        if unreachable || self.link_count() >= MAX_LINKS {
            let _ = reply.send(None);
            return;
        }
        let conn = self.next_conn;
        self.next_conn = self.next_conn.wrapping_add(2);
        self.start_connect(
            peer,
            conn,
            &descriptor,
            true,
            vec![reply],
            |cfg, out, inbound| async move {
                transport::connect_offer(&cfg, out, inbound, CONNECT_TIMEOUT).await
            },
        );
    }

    pub(super) fn on_offer(&mut self, from: PeerId, conn: u32, sdp: String) {
        let inbound = self.connecting.values().filter(|c| c.inbound).count();
        if self.shared.is_liar(&from)
            || self.link_count() >= MAX_LINKS
            || inbound >= MAX_INBOUND_CONNECTING
            || self.connecting.contains_key(&(from, conn))
            // One handshake at a time per remote, and no third link to it.
            || self.connecting.keys().any(|(p, _)| *p == from)
            || self.extra_links.get(&from).is_some_and(|l| !l.is_closed())
        {
            tracing::debug!(peer = %from, inbound, "offer not answered (limits)");
            return;
        }
        let Some(descriptor) = lock(&self.shared.view).descriptor.clone() else {
            return;
        };
        self.start_connect(
            from,
            conn,
            &descriptor,
            false,
            Vec::new(),
            |cfg, out, inbound| async move {
                transport::connect_answer(&cfg, sdp, out, inbound, CONNECT_TIMEOUT).await
            },
        );
    }

    /// Registers connection `(peer, conn)` (its signals from the hub are
    /// routed to it from now on) and runs `handshake`, the offering or the
    /// answering side, in a task that reports the outcome to the actor.
    fn start_connect<F, Fut>(
        &mut self,
        peer: PeerId,
        conn: u32,
        descriptor: &SwarmDescriptor,
        offering: bool,
        waiters: Vec<oneshot::Sender<Option<LinkHandle>>>,
        handshake: F,
    ) where
        F: FnOnce(RtcConfig, mpsc::Sender<Signal>, mpsc::Receiver<Signal>) -> Fut,
        Fut: Future<Output = Result<Link, TransportError>> + Send + 'static,
    {
        let (sig_tx, sig_rx) = mpsc::channel(64);
        self.connecting.insert(
            (peer, conn),
            Connecting {
                signals: sig_tx,
                waiters,
                inbound: !offering,
            },
        );
        let out = self.signal_sender(peer, conn, offering);
        let mut cfg = self.shared.engine.rtc.clone();
        cfg.ice_servers = descriptor.ice_servers.clone();
        let attempt = handshake(cfg, out, sig_rx);
        let events = self.conn_tx.clone();
        let cancel = self.shared.cancel.clone();
        tokio::spawn(async move {
            let r = tokio::select! {
                r = attempt => r,
                () = cancel.cancelled() => return,
            };
            let ev = match r {
                Ok(link) => ConnEvent::Connected { peer, conn, link },
                Err(error) => ConnEvent::Failed { peer, conn, error },
            };
            let _ = events.send(ev).await;
        });
    }

    /// A channel whose signals go to `peer` over signaling, as ours
    /// (`offer` when `offering`) for connection `conn`.
    fn signal_sender(&self, peer: PeerId, conn: u32, offering: bool) -> mpsc::Sender<Signal> {
        let (tx, mut rx) = mpsc::channel::<Signal>(64);
        let shared = Arc::clone(&self.shared);
        let sender = self.outbound_relay.clone();
        tokio::spawn(async move {
            while let Some(sig) = rx.recv().await {
                let msg = match sig {
                    Signal::Description(sdp) if offering => ClientToHub::Offer {
                        to: peer,
                        conn,
                        sdp,
                    },
                    Signal::Description(sdp) => ClientToHub::Answer {
                        to: peer,
                        conn,
                        sdp,
                    },
                    Signal::Candidate(candidate) => ClientToHub::Candidate {
                        to: peer,
                        conn,
                        candidate,
                    },
                };
                if sender.send(msg).await.is_err() || shared.cancel.is_cancelled() {
                    break;
                }
            }
        });
        tx
    }

    /// The hub could not relay to a peer (it left the swarm): give up the
    /// connection attempts to it now instead of at their timeout. The error
    /// names the peer only in its text (protocol §5.6), so look for its id.
    pub(super) fn fail_unknown_peer(&mut self, message: &str) {
        let gone: Vec<(PeerId, u32)> = self
            .connecting
            .keys()
            .filter(|(p, _)| message.contains(&p.to_hex()))
            .copied()
            .collect();
        for (peer, conn) in gone {
            tracing::debug!(%peer, "peer left the swarm; connection abandoned");
            self.unreachable.insert(peer, Instant::now());
            if let Some(c) = self.connecting.remove(&(peer, conn)) {
                for w in c.waiters {
                    let _ = w.send(None);
                }
            }
        }
    }

    pub(super) fn on_conn(&mut self, ev: ConnEvent) {
        match ev {
            ConnEvent::Connected { peer, conn, link } => {
                let waiters = self
                    .connecting
                    .remove(&(peer, conn))
                    .map(|c| c.waiters)
                    .unwrap_or_default();
                let handle = link::spawn(
                    link,
                    peer,
                    Arc::clone(&self.shared),
                    self.shared.cancel.child_token(),
                );
                // With two links to one peer (both offered at once), the
                // newer serves its requests and the map keeps one for ours;
                // the newer is kept (and counted) as the extra one, and a
                // link beyond those two is closed.
                match self.links.get(&peer) {
                    Some(l) if !l.is_closed() => {
                        if let Some(old) = self.extra_links.insert(peer, handle.clone()) {
                            old.close();
                        }
                    }
                    _ => {
                        self.links.insert(peer, handle.clone());
                    }
                }
                self.unreachable.remove(&peer);
                for w in waiters {
                    let _ = w.send(Some(handle.clone()));
                }
                self.update_peers();
                self.shared.engine.emit(EngineEvent::Peer {
                    swarm: self.shared.url.clone(),
                    peer: peer.to_string(),
                    connected: true,
                });
            }
            ConnEvent::Failed { peer, conn, error } => {
                tracing::debug!(%peer, %error, "connection failed");
                if let Some(c) = self.connecting.remove(&(peer, conn)) {
                    if !c.waiters.is_empty() {
                        self.unreachable.insert(peer, Instant::now());
                    }
                    for w in c.waiters {
                        let _ = w.send(None);
                    }
                }
            }
        }
    }
}
