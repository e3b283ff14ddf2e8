//! Membership of one swarm: join by URL and stay joined.
//!
//! [`SwarmClient`] fetches the swarm's descriptor (`{url}/.well-known/tuber`),
//! opens its signaling WebSocket, proves its identity (challenge → `hello`
//! with the signed nonce and, once, an invite → `welcome`), then keeps the
//! session: it answers the hub's pings, hands every other hub message to the
//! engine through a bounded channel, and sends the engine's messages. When
//! the connection drops it reconnects after a jittered exponential backoff
//! ([`backoff`]), for as long as the handle lives. A refusal that retrying
//! cannot fix (`banned`, `invite_invalid`, `unsupported_version`) stops it,
//! with the reason in [`SwarmState::Refused`].
//!
//! Structured concurrency: the one task hangs off the handle. Dropping the
//! handle aborts it; [`SwarmClient::leave`] closes the connection politely.
//!
//! `https://` swarm URLs with `wss://` signaling, or plain `http://`/`ws://`
//! (where an invite goes only to a loopback or private address, unless
//! allowed). Every URL of the descriptor must be on the origin joined, and
//! the proof in `hello` is bound to that origin (protocol §5.3).

pub mod backoff;
mod builder;
mod fetch;
mod handshake;
mod session;
mod supervisor;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tuber_proto::signal::{self, ClientToHub, ErrorCode, SignalError};
use tuber_proto::{PeerId, SwarmDescriptor};
use zeroize::Zeroizing;

pub use builder::{JoinError, SwarmClientBuilder};
pub use fetch::FETCH_TIMEOUT;
pub use handshake::{CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, MAX_WS_MESSAGE};
pub use session::{CLOSE_TIMEOUT, MISSED_PINGS};
pub use supervisor::STABLE_SESSION;

use crate::identity::Identity;

/// Default capacity of the channel of hub messages to the engine.
pub const DEFAULT_INBOUND_QUEUE: usize = 256;
/// Capacity of the channel of engine messages to the hub.
pub const OUTBOUND_QUEUE: usize = 256;

/// An invite token from a site operator. It is a credential: `Debug` never
/// shows it, and its memory is wiped when dropped.
#[derive(Clone)]
pub struct Invite(Zeroizing<String>);

impl Invite {
    /// Wraps a token as pasted by the user (surrounding whitespace trimmed).
    pub fn new(token: &str) -> Self {
        Self(Zeroizing::new(token.trim().to_string()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Invite(..)")
    }
}

/// Where the client stands. Observe it with [`SwarmClient::state`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SwarmState {
    /// Fetching the descriptor, connecting, or waiting for `welcome`.
    Connecting,
    /// In the swarm.
    Joined {
        /// This peer's id, as the hub welcomed it.
        peer_id: PeerId,
        /// Whether the hub trusts this peer's key.
        trusted: bool,
        /// Counts welcomes, from 1: a new value means a new session, whose
        /// hub state (holdings, relays) starts empty.
        session: u64,
        /// The descriptor this session joined by, its `ice_servers`
        /// followed by the session's own from `welcome`.
        descriptor: Arc<SwarmDescriptor>,
    },
    /// Waiting before the next attempt.
    Backoff {
        /// When the next attempt starts.
        until: Instant,
        /// Failed attempts in a row so far.
        failures: u32,
        /// Why the last attempt or session ended.
        last_error: String,
    },
    /// The hub (or its descriptor) refused this peer for good; the client
    /// has stopped.
    Refused {
        /// The hub's error code (`unsupported_version` for a descriptor of
        /// another protocol version).
        code: ErrorCode,
        /// The hub's explanation.
        message: String,
    },
    /// This peer refused to go on with the hub, for a reason retrying
    /// cannot fix; the client has stopped. Leave and join again to retry.
    Stopped {
        /// `tls_certificate` (the hub's certificate was refused),
        /// `descriptor_refused` (the descriptor points outside the joined
        /// origin), `insecure_invite` (the invite would cross a public
        /// network in cleartext).
        code: &'static str,
        /// What happened and what to do, in words.
        message: String,
    },
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Not in the swarm right now; the message would be for no session.
    #[error("not joined to the swarm")]
    NotJoined,
    /// The message breaks a protocol limit.
    #[error(transparent)]
    Invalid(#[from] SignalError),
    /// The client has stopped (refused, or leaving).
    #[error("the swarm client has stopped")]
    Stopped,
}

/// A joined (or joining) swarm. Dropping it stops everything it started.
#[derive(Debug)]
pub struct SwarmClient {
    url: String,
    state: watch::Receiver<SwarmState>,
    outbound: mpsc::Sender<String>,
    reconnect: Arc<Notify>,
    cancel: CancellationToken,
    task: AbortOnDropHandle<()>,
}

impl SwarmClient {
    /// A builder for the swarm at `url` (e.g. `http://video.example.org/`),
    /// signing as `identity`.
    pub fn builder(url: impl Into<String>, identity: Arc<Identity>) -> SwarmClientBuilder {
        SwarmClientBuilder::new(url.into(), identity)
    }

    /// The swarm URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A receiver of state changes.
    pub fn state(&self) -> watch::Receiver<SwarmState> {
        self.state.clone()
    }

    /// The state now.
    pub fn current(&self) -> SwarmState {
        self.state.borrow().clone()
    }

    /// Sends a message to the hub in the current session. Waits while the
    /// outbound queue is full.
    pub async fn send(&self, msg: &ClientToHub) -> Result<(), SendError> {
        let text = signal::encode(msg)?;
        if !matches!(*self.state.borrow(), SwarmState::Joined { .. }) {
            return Err(if self.task.is_finished() {
                SendError::Stopped
            } else {
                SendError::NotJoined
            });
        }
        self.outbound
            .send(text)
            .await
            .map_err(|_| SendError::Stopped)
    }

    /// Drops the current connection and joins again at once (e.g. after
    /// the network changed). No effect unless joined.
    pub fn reconnect(&self) {
        self.reconnect.notify_waiters();
    }

    /// Whether the client has stopped (refused).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Leaves the swarm: closes the connection politely and waits for the
    /// task (at most [`CLOSE_TIMEOUT`] plus a little).
    pub async fn leave(self) {
        self.cancel.cancel();
        let mut task = self.task;
        let grace = session::CLOSE_TIMEOUT * 2;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> (tempfile::TempDir, Arc<Identity>) {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap();
        (dir, Arc::new(id))
    }

    #[test]
    fn invites_never_show_in_debug() {
        let invite = Invite::new("  inv_secret_token \n");
        assert_eq!(invite.expose(), "inv_secret_token");
        assert_eq!(format!("{invite:?}"), "Invite(..)");
        let (_dir, id) = identity();
        let b = SwarmClient::builder("http://x/", id).invite(invite);
        assert!(!format!("{b:?}").contains("secret"));
    }

    #[tokio::test]
    async fn an_unreachable_hub_means_backoff_with_the_reason() {
        let (_dir, id) = identity();
        // Port 1 on loopback: nothing listens there.
        let (client, _rx) = SwarmClient::builder("http://127.0.0.1:1/", id)
            .join()
            .unwrap();
        let mut state = client.state();
        let s = state
            .wait_for(|s| matches!(s, SwarmState::Backoff { .. }))
            .await
            .unwrap()
            .clone();
        let SwarmState::Backoff {
            last_error,
            failures,
            ..
        } = s
        else {
            unreachable!()
        };
        assert_eq!(failures, 1);
        assert!(last_error.contains("127.0.0.1:1"), "{last_error}");
        assert!(matches!(
            client.send(&ClientToHub::Ping { nonce: 1 }).await,
            Err(SendError::NotJoined)
        ));
        client.leave().await;
    }
}
