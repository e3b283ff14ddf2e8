//! One join attempt: joining ([`super::handshake`]), then the session until
//! it ends. [`attempt`] says how it ended; the supervisor decides what
//! comes next.
//!
//! Never log a `hello` (it carries the invite) or anything from the
//! identity but its peer id.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tuber_proto::signal::{self, Capacity, ClientToHub, ErrorCode, HubToClient};
use tuber_proto::SwarmDescriptor;

use super::fetch::DescriptorClient;
use super::handshake::{join, Welcome};
use super::{Invite, SwarmState};
use crate::identity::Identity;

/// Hub pings that may go unheard before the connection counts as dead (the
/// hub evicts a client that misses three of its pings).
pub const MISSED_PINGS: u32 = 3;
/// Shortest silence that counts as a dead connection, whatever the hub's
/// ping interval.
pub const MIN_SILENCE: Duration = Duration::from_secs(2);
/// Longest a graceful close may take before the socket is just dropped.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest kept of an `error` message this client sends.
const MAX_OUR_ERROR_MESSAGE: usize = 1000;

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the client sends in every `hello`.
pub(super) struct Settings {
    pub identity: Arc<Identity>,
    pub capacity: Option<Capacity>,
    pub agent: String,
}

/// State that outlives one attempt.
pub(super) struct Ctx {
    pub settings: Settings,
    pub fetcher: DescriptorClient,
    pub well_known: http::Uri,
    /// The origin the user joined: what the proof is bound to, and where
    /// every URL of the descriptor must be.
    pub origin: String,
    /// What `wss://` signaling trusts.
    pub tls: crate::tls::TlsTrust,
    /// Send the invite over cleartext to a public address anyway.
    pub allow_insecure: bool,
    /// Sent in `hello` until a `welcome` shows it was redeemed.
    pub invite: Option<Invite>,
    /// An attempt sent the invite and then got no clear answer, so the hub
    /// may have redeemed it: a later `invite_invalid` may mean "already
    /// yours", and is retried once without the invite instead of refused.
    pub invite_uncertain: bool,
    pub state: watch::Sender<SwarmState>,
    pub inbound: mpsc::Sender<HubToClient>,
    pub outbound: mpsc::Receiver<String>,
    pub cancel: CancellationToken,
    pub reconnect: Arc<Notify>,
    /// Welcomes so far.
    pub sessions: u64,
}

/// How an attempt ended.
pub(super) enum Ended {
    /// Try again: at once if `immediate`, else after a backoff.
    Retry {
        error: String,
        joined_for: Option<Duration>,
        immediate: bool,
    },
    /// The hub (or the descriptor) said no for good.
    Refused { code: ErrorCode, message: String },
    /// This peer will not go on: `code` names why (see
    /// [`SwarmState::Stopped`]), `message` says it in words.
    Stopped { code: &'static str, message: String },
    /// The handle is leaving.
    Cancelled,
}

pub(super) fn retry(error: impl Into<String>) -> Ended {
    Ended::Retry {
        error: error.into(),
        joined_for: None,
        immediate: false,
    }
}

/// Runs one attempt to its end.
pub(super) async fn attempt(ctx: &mut Ctx) -> Ended {
    let cancel = ctx.cancel.clone();
    let joined = tokio::select! {
        biased;
        () = cancel.cancelled() => return Ended::Cancelled,
        joined = join(ctx) => joined,
    };
    match joined {
        Ok((ws, descriptor, welcome)) => session(ctx, ws, descriptor, welcome).await,
        Err(ended) => ended,
    }
}

/// After `welcome`, what the next loop turn handles.
enum Event {
    Cancelled,
    Reconnect,
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Outbound(Option<String>),
    Silence,
}

async fn session(
    ctx: &mut Ctx,
    mut ws: Ws,
    descriptor: Arc<SwarmDescriptor>,
    welcome: Welcome,
) -> Ended {
    ctx.invite = None;
    ctx.invite_uncertain = false;
    ctx.sessions += 1;
    // Queued for an earlier session (the engine re-sends what it must on
    // each new `Joined`).
    while ctx.outbound.try_recv().is_ok() {}
    // Registered before `Joined` is published, so a reconnect asked for as
    // soon as `Joined` is seen is not lost.
    let reconnect = Arc::clone(&ctx.reconnect);
    let reconnect = reconnect.notified();
    tokio::pin!(reconnect);
    tracing::info!(
        swarm = %descriptor.swarm_id,
        peer_id = %welcome.peer_id,
        trusted = welcome.trusted,
        "joined the swarm"
    );
    // The session's own ICE servers (TURN credentials that expire) join
    // the descriptor's for every connection this session makes.
    let descriptor = if welcome.ice_servers.is_empty() {
        descriptor
    } else {
        let mut d = (*descriptor).clone();
        d.ice_servers.extend(welcome.ice_servers.iter().cloned());
        d.ice_servers.truncate(tuber_proto::limits::MAX_ICE_SERVERS);
        Arc::new(d)
    };
    ctx.state.send_replace(SwarmState::Joined {
        peer_id: welcome.peer_id,
        trusted: welcome.trusted,
        session: ctx.sessions,
        descriptor,
    });
    let started = Instant::now();
    let silence = (welcome.ping_interval * (MISSED_PINGS + 1)).max(MIN_SILENCE);
    let mut deadline = started + silence;
    let ended = loop {
        let event = tokio::select! {
            // Leaving first, then a requested reconnect, then the hub's
            // messages before ours, so pings are answered under load.
            biased;
            () = ctx.cancel.cancelled() => Event::Cancelled,
            () = &mut reconnect => Event::Reconnect,
            frame = ws.next() => Event::Frame(frame),
            out = ctx.outbound.recv() => Event::Outbound(out),
            () = tokio::time::sleep_until(deadline) => Event::Silence,
        };
        match event {
            Event::Cancelled | Event::Outbound(None) => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
                return Ended::Cancelled;
            }
            Event::Reconnect => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
                break Ended::Retry {
                    error: "reconnect requested".into(),
                    joined_for: None,
                    immediate: true,
                };
            }
            Event::Silence => break retry(format!("nothing from the hub for {silence:?}")),
            Event::Outbound(Some(text)) => {
                if let Err(e) = ws.send(Message::text(text)).await {
                    break retry(format!("signaling connection: {e}"));
                }
            }
            Event::Frame(None) => break retry("the hub closed the connection"),
            Event::Frame(Some(Err(e))) => break retry(format!("signaling connection: {e}")),
            Event::Frame(Some(Ok(msg))) => {
                deadline = Instant::now() + silence;
                if let Some(ended) = handle_frame(ctx, &mut ws, msg).await {
                    break ended;
                }
            }
        }
    };
    match ended {
        Ended::Retry {
            error, immediate, ..
        } => Ended::Retry {
            error,
            joined_for: Some(started.elapsed()),
            immediate,
        },
        other => other,
    }
}

/// Handles one frame from the hub; `Some` ends the session.
async fn handle_frame(ctx: &mut Ctx, ws: &mut Ws, frame: Message) -> Option<Ended> {
    let text = match frame {
        Message::Text(text) => text,
        Message::Binary(_) => {
            let msg = error_msg(
                ErrorCode::BadMessage,
                "signaling messages are JSON text frames",
            );
            return (!send(ws, &msg).await).then(|| retry("send failed"));
        }
        Message::Close(_) => return Some(retry("the hub closed the connection")),
        _ => return None,
    };
    let msg = match signal::decode::<HubToClient>(text.as_str()) {
        Ok(msg) => msg,
        Err(e) => {
            tracing::warn!(error = %e, "refused a message from the hub");
            let answer = error_msg(e.code(), &e.to_string());
            return (!send(ws, &answer).await).then(|| retry("send failed"));
        }
    };
    match msg {
        HubToClient::Ping { nonce } => {
            return (!send(ws, &ClientToHub::Pong { nonce }).await).then(|| retry("send failed"));
        }
        HubToClient::Error {
            code: code @ ErrorCode::Banned,
            message,
        } => return Some(Ended::Refused { code, message }),
        HubToClient::Challenge { .. } | HubToClient::Welcome { .. } => {
            tracing::debug!("ignored a second challenge or welcome");
            return None;
        }
        HubToClient::Error { code, ref message } => {
            tracing::debug!(?code, %message, "the hub refused a message");
        }
        _ => {}
    }
    // A slow engine slows this connection down (bounded queue) rather than
    // losing messages; one that stopped listening loses them.
    tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Some(Ended::Cancelled),
        _ = ctx.inbound.send(msg) => None,
    }
}

/// An `error` message for the hub, cut to the protocol's length limit.
pub(super) fn error_msg(code: ErrorCode, message: &str) -> ClientToHub {
    let mut end = message.len().min(MAX_OUR_ERROR_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    // The protocol forbids control characters in messages.
    let message = message[..end].chars().filter(|c| !c.is_control()).collect();
    ClientToHub::Error { code, message }
}

/// Sends one message; false when the connection failed.
pub(super) async fn send(ws: &mut Ws, msg: &ClientToHub) -> bool {
    match signal::encode(msg) {
        Ok(text) => ws.send(Message::text(text)).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "refusing to send an invalid message");
            true
        }
    }
}
