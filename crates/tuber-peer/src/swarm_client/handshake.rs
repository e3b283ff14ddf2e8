//! Joining: the descriptor, the WebSocket, and challenge → `hello` →
//! `welcome` (protocol §5.2), with the invite sent until it is redeemed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream};
use tuber_proto::descriptor::DescriptorError;
use tuber_proto::limits::PROTOCOL_VERSION;
use tuber_proto::signal::{self, ClientToHub, ErrorCode, HubToClient, Role};
use tuber_proto::{PeerId, SwarmDescriptor};

use super::fetch::FetchError;
use super::session::{error_msg, retry, send, Ctx, Ended, Ws};
use crate::tls::{certificate_problem, error_chain};

/// Longest the WebSocket connect and upgrade may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest from the upgrade to `welcome`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest WebSocket message read. Above the protocol's 64 KiB so that a
/// too-large message still decodes to a `too_large` answer; beyond this the
/// connection is dropped unread.
pub const MAX_WS_MESSAGE: usize = 256 * 1024;

/// What `welcome` said.
pub(super) struct Welcome {
    pub peer_id: PeerId,
    pub trusted: bool,
    pub ping_interval: Duration,
    /// ICE servers for this session only (short-lived TURN credentials).
    pub ice_servers: Vec<tuber_proto::descriptor::IceServer>,
}

pub(super) async fn join(ctx: &mut Ctx) -> Result<(Ws, Arc<SwarmDescriptor>, Welcome), Ended> {
    let descriptor = ctx
        .fetcher
        .fetch(&ctx.well_known)
        .await
        .map_err(|e| match e {
            // A hub on another protocol version stays so until someone upgrades.
            FetchError::Descriptor {
                source: DescriptorError::UnsupportedVersion(_),
                ..
            } => Ended::Refused {
                code: ErrorCode::UnsupportedVersion,
                message: e.to_string(),
            },
            FetchError::Certificate { .. } => Ended::Stopped {
                code: "tls_certificate",
                message: e.to_string(),
            },
            e => retry(e.to_string()),
        })?;
    // A hub may not send this peer (its identity, its invite) elsewhere.
    if let Err((field, url)) = descriptor.check_origin(&ctx.origin) {
        return Err(Ended::Stopped {
            code: "descriptor_refused",
            message: format!(
                "the descriptor's {field} URL {url} is not on {}, the site joined; \
                 a hub may only point this peer at its own origin",
                ctx.origin
            ),
        });
    }
    let url = descriptor.signaling.as_str();
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE));
    // Plain for ws://, our trust store for wss:// (never tungstenite's own).
    let connector = Connector::Rustls(ctx.tls.client_config());
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, Some(connector));
    let mut ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            let host = ctx.well_known.host().unwrap_or_default();
            return Err(match certificate_problem(&e, host) {
                Some(words) => Ended::Stopped {
                    code: "tls_certificate",
                    message: format!("signaling {url}: {words}"),
                },
                None => retry(format!("signaling {url}: {}", error_chain(&e))),
            });
        }
        Err(_) => return Err(retry(format!("signaling {url}: no connection in time"))),
    };
    if ctx.invite.is_some() && !ctx.allow_insecure {
        if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
            let to = tcp.peer_addr().ok();
            if !to.is_some_and(|a| crate::tls::is_private(a.ip())) {
                let _ = ws.close(None).await;
                return Err(Ended::Stopped {
                    code: "insecure_invite",
                    message: insecure_invite_message(&ctx.origin, to),
                });
            }
        }
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(ctx, &mut ws, &descriptor)).await {
        Ok(Ok(welcome)) => Ok((ws, Arc::new(descriptor), welcome)),
        Ok(Err(ended)) => Err(ended),
        Err(_) => Err(retry("no welcome from the hub in time")),
    }
}

/// Why an invite is not sent to `origin` (at `addr`) in cleartext.
pub(super) fn insecure_invite_message(origin: &str, addr: Option<std::net::SocketAddr>) -> String {
    let at = addr.map(|a| format!(" ({})", a.ip())).unwrap_or_default();
    format!(
        "refusing to send the invite to {origin}{at} in cleartext: it is not a loopback or \
         private address, so anyone on the way could read the invite and take this peer's \
         trusted place. Join by the site's https:// URL, or pass --allow-insecure if the \
         network is yours"
    )
}

/// Reads the next signaling message, skipping WebSocket control frames.
async fn next_message(ws: &mut Ws) -> Result<HubToClient, Ended> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return signal::decode(text.as_str())
                    .map_err(|e| retry(format!("the hub sent an invalid message: {e}")));
            }
            Some(Ok(Message::Close(_))) | None => {
                return Err(retry("the hub closed the connection"));
            }
            Some(Ok(Message::Binary(_))) => {
                return Err(retry("the hub sent a binary message"));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(retry(format!("signaling connection: {e}"))),
        }
    }
}

async fn handshake(
    ctx: &mut Ctx,
    ws: &mut Ws,
    descriptor: &SwarmDescriptor,
) -> Result<Welcome, Ended> {
    let nonce = match next_message(ws).await? {
        HubToClient::Challenge { version, nonce } if version == PROTOCOL_VERSION => nonce,
        HubToClient::Challenge { version, .. } => {
            let message =
                format!("the hub speaks protocol version {version}, this peer {PROTOCOL_VERSION}");
            send(ws, &error_msg(ErrorCode::UnsupportedVersion, &message)).await;
            return Err(Ended::Refused {
                code: ErrorCode::UnsupportedVersion,
                message,
            });
        }
        HubToClient::Error { code, message } => return Err(refusal(ctx, code, message, false)),
        _ => return Err(retry("the hub did not start with a challenge")),
    };
    let settings = &ctx.settings;
    let hello = ClientToHub::Hello {
        version: PROTOCOL_VERSION,
        role: Role::Permanent,
        proof: Some(
            settings
                .identity
                .sign_hello(&ctx.origin, &descriptor.swarm_id, &nonce),
        ),
        invite: ctx.invite.as_ref().map(|i| i.expose().to_string()),
        capacity: settings.capacity,
        agent: settings.agent.clone(),
    };
    let sent_invite = ctx.invite.is_some();
    // Checked when the client was built; failing here is a bug, not input.
    let text = signal::encode(&hello).map_err(|e| retry(format!("encoding hello: {e}")))?;
    let was_uncertain = ctx.invite_uncertain;
    // From here until an answer, the hub may have redeemed the invite.
    ctx.invite_uncertain |= sent_invite;
    if let Err(e) = ws.send(Message::text(text)).await {
        return Err(retry(format!("signaling connection: {e}")));
    }
    loop {
        match next_message(ws).await? {
            HubToClient::Welcome {
                peer_id,
                role,
                trusted,
                ping_interval_ms,
                ice_servers,
                ..
            } => {
                if peer_id != settings.identity.peer_id() || role != Role::Permanent {
                    return Err(retry("the hub welcomed someone else"));
                }
                return Ok(Welcome {
                    peer_id,
                    trusted,
                    ping_interval: Duration::from_millis(u64::from(ping_interval_ms)),
                    ice_servers,
                });
            }
            HubToClient::Error { code, message } => {
                if code == ErrorCode::InviteInvalid {
                    ctx.invite_uncertain = was_uncertain;
                }
                return Err(refusal(ctx, code, message, sent_invite));
            }
            HubToClient::Ping { nonce } => {
                send(ws, &ClientToHub::Pong { nonce }).await;
            }
            _ => {}
        }
    }
}

/// What an `error` before `welcome` means for the next attempt.
fn refusal(ctx: &mut Ctx, code: ErrorCode, message: String, sent_invite: bool) -> Ended {
    match code {
        ErrorCode::InviteInvalid if sent_invite && ctx.invite_uncertain => {
            ctx.invite = None;
            ctx.invite_uncertain = false;
            Ended::Retry {
                error: "the invite was refused, probably redeemed by an earlier attempt; \
                        retrying without it"
                    .into(),
                joined_for: None,
                immediate: true,
            }
        }
        ErrorCode::InviteInvalid | ErrorCode::Banned | ErrorCode::UnsupportedVersion => {
            Ended::Refused { code, message }
        }
        _ => retry(format!("the hub refused: {code:?}: {message}")),
    }
}
