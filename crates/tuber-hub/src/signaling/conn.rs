//! One signaling WebSocket: challenge, hello (with the ed25519 proof and an
//! optional invite), welcome, then messages both ways under a size limit and
//! a rate limit. Whatever the client sends, the worst outcome is an `error`
//! message or a closed connection, never a stopped hub.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::ws::{Message, WebSocket};
use ed25519_dalek::{Signature as EdSignature, VerifyingKey};
use tokio::sync::mpsc;
use tuber_proto::limits::{MAX_SIGNAL_FRAME, PROTOCOL_VERSION};
use tuber_proto::signal::{self, ClientToHub, ErrorCode, HubToClient, Role, SignalError};
use tuber_proto::{Nonce, PeerId};

use super::reporter_group::reporter_group;
use super::swarm::{ConnId, Joining, Outgoing, CONNECTION_QUEUE};
use super::{Shared, SwarmHandle};
use crate::invites::InviteError;
use crate::metrics::Metrics;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Refusals in a row after which a flooding client is disconnected.
const MAX_STRIKES: u32 = 100;

/// A token bucket: `rate` messages a second, `burst` at once.
struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            tokens: burst,
            last: now,
            rate: f64::from(rate),
            burst,
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    // The OS RNG failing is not recoverable for a server that hands out
    // ids; such a hub cannot serve anyone, and says so in the log.
    if let Err(e) = getrandom::fill(&mut b) {
        tracing::error!(error = %e, "the OS random number generator failed");
    }
    b
}

async fn send(ws: &mut WebSocket, msg: &HubToClient) -> bool {
    match signal::encode(msg) {
        Ok(text) => ws.send(Message::Text(text.into())).await.is_ok(),
        Err(e) => {
            // A bug on our side (the planner keeps messages within limits).
            tracing::error!(error = %e, "refusing to send an invalid message");
            true
        }
    }
}

async fn send_error(ws: &mut WebSocket, code: ErrorCode, message: impl Into<String>) -> bool {
    let mut message: String = message.into();
    message.truncate(floor_char_boundary(&message, 1000));
    send(ws, &HubToClient::Error { code, message }).await
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// What one text frame decoded to.
enum Inbound {
    Msg(ClientToHub),
    Refused(ErrorCode, String),
    Closed,
}

/// Reads the next signaling message, answering nothing itself. A message
/// the connection's network could not pay for even if it listed no more
/// hashes than its text has strings is refused unparsed.
async fn next(
    ws: &mut WebSocket,
    bucket: &mut Bucket,
    network: Option<&super::NetworkPermit>,
    metrics: &Metrics,
) -> Inbound {
    loop {
        let frame = match ws.recv().await {
            Some(Ok(frame)) => frame,
            Some(Err(_)) | None => return Inbound::Closed,
        };
        let refuse = |code, why: String| {
            Metrics::add(&metrics.signaling_refused, 1);
            Inbound::Refused(code, why)
        };
        match frame {
            Message::Text(text) => {
                if !bucket.allow(Instant::now()) {
                    return refuse(
                        ErrorCode::RateLimited,
                        "too many messages; slow down".into(),
                    );
                }
                let price = super::per_network::cost_of_text(text.as_str());
                if network.is_some_and(|n| !n.affords(Instant::now(), price)) {
                    return refuse(
                        ErrorCode::RateLimited,
                        "your network sends too many messages; slow down".into(),
                    );
                }
                return match signal::decode::<ClientToHub>(text.as_str()) {
                    Ok(msg) => Inbound::Msg(msg),
                    Err(e) => refuse(e.code(), e.to_string()),
                };
            }
            Message::Binary(b) => {
                let e = SignalError::TooLarge(b.len());
                let why = if b.len() > MAX_SIGNAL_FRAME {
                    e.to_string()
                } else {
                    "signaling messages are JSON text frames".into()
                };
                return refuse(ErrorCode::BadMessage, why);
            }
            Message::Close(_) => return Inbound::Closed,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}

/// Runs one connection to the end; `client` is where it came from, if known.
pub(crate) async fn run(
    mut ws: WebSocket,
    swarm: SwarmHandle,
    shared: std::sync::Arc<Shared>,
    client: Option<SocketAddr>,
    network: Option<super::NetworkPermit>,
) {
    let settings = &shared.settings;
    let mut bucket = Bucket::new(settings.messages_per_second, settings.burst, Instant::now());
    let nonce = Nonce::from_bytes(random32());
    if !send(
        &mut ws,
        &HubToClient::Challenge {
            version: PROTOCOL_VERSION,
            nonce,
        },
    )
    .await
    {
        return;
    }

    // Hello, within the hello timeout; anything else first is unauthorized.
    let deadline = tokio::time::Instant::now() + settings.hello_timeout;
    let hello = loop {
        match tokio::time::timeout_at(
            deadline,
            next(&mut ws, &mut bucket, network.as_ref(), &shared.metrics),
        )
        .await
        {
            Err(_) => {
                send_error(&mut ws, ErrorCode::Unauthorized, "no hello in time").await;
                return;
            }
            Ok(Inbound::Closed) => return,
            Ok(Inbound::Refused(code, why)) => {
                if !send_error(&mut ws, code, why).await {
                    return;
                }
            }
            Ok(Inbound::Msg(msg @ ClientToHub::Hello { .. })) => break msg,
            Ok(Inbound::Msg(_)) => {
                if !send_error(&mut ws, ErrorCode::Unauthorized, "say hello first").await {
                    return;
                }
            }
        }
    };
    let ClientToHub::Hello {
        version,
        role,
        proof,
        invite,
        capacity,
        ..
    } = hello
    else {
        return;
    };
    if version != PROTOCOL_VERSION {
        let why = format!("this hub speaks protocol version {PROTOCOL_VERSION}, not {version}");
        send_error(&mut ws, ErrorCode::UnsupportedVersion, why).await;
        return;
    }

    let (peer, trusted) = match role {
        Role::Browser => (PeerId::from_bytes(random32()), false),
        Role::Permanent => {
            let Some(proof) = proof else {
                send_error(
                    &mut ws,
                    ErrorCode::Unauthorized,
                    "a permanent peer must sign the challenge",
                )
                .await;
                return;
            };
            let ours = &shared.access.origin;
            if proof.origin != *ours {
                let why = format!(
                    "this proof is for {}, but this hub is {ours}: the hub this peer joined \
                     may be relaying another hub's login",
                    proof.origin
                );
                tracing::warn!(peer = ?proof.public_key, origin = %proof.origin, ?client, "hello for another origin refused");
                send_error(&mut ws, ErrorCode::Unauthorized, why).await;
                return;
            }
            if invite.is_some()
                && shared.access.refuse_cleartext_invites
                && !shared.access.invite_is_private(client)
            {
                send_error(
                    &mut ws,
                    ErrorCode::InviteInvalid,
                    "this hub takes invites only over HTTPS (the invite crossed the network \
                     in cleartext: ask the operator for a new one and join by the https:// URL)",
                )
                .await;
                return;
            }
            let payload = signal::hello_signing_payload(ours, swarm.id(), &nonce);
            let verified = VerifyingKey::from_bytes(proof.public_key.as_bytes()).and_then(|key| {
                key.verify_strict(&payload, &EdSignature::from_bytes(&proof.signature.0))
            });
            if verified.is_err() {
                send_error(
                    &mut ws,
                    ErrorCode::Unauthorized,
                    "the signature does not verify",
                )
                .await;
                return;
            }
            let peer = proof.public_key;
            match authorize(&shared, peer, invite).await {
                Ok(trusted) => (peer, trusted),
                Err((code, why)) => {
                    send_error(&mut ws, code, why).await;
                    return;
                }
            }
        }
    };

    let conn: ConnId = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel(CONNECTION_QUEUE);
    let who = Joining {
        peer,
        role,
        trusted,
        capacity,
        group: reporter_group(peer, trusted, client.map(|a| a.ip())),
    };
    if let Err(refused) = swarm.join(who, conn, tx).await {
        send_error(&mut ws, refused.code(), refused.to_string()).await;
        return;
    }
    let welcome = HubToClient::Welcome {
        peer_id: peer,
        role,
        trusted,
        swarm_id: swarm.id().to_string(),
        ping_interval_ms: u32::try_from(shared.planner.ping_interval.as_millis())
            .unwrap_or(u32::MAX),
        // Per connection, not in the cached descriptor: they expire.
        ice_servers: shared
            .turn
            .iter()
            .filter(|t| t.serves(role))
            .map(|t| t.ice_server(swarm.id(), crate::db::unix_now()))
            .collect(),
    };
    tracing::debug!(?peer, ?role, trusted, "welcome");
    let mut strikes = 0u32;
    if send(&mut ws, &welcome).await {
        loop {
            tokio::select! {
                // Outgoing first: a close from the planner (ban, eviction)
                // takes effect before more input from that client.
                biased;
                out = rx.recv() => match out {
                    Some(Outgoing::Msg(msg)) => {
                        if !send(&mut ws, &msg).await {
                            break;
                        }
                    }
                    Some(Outgoing::Close(code, why)) => {
                        if let Some(code) = code {
                            send_error(&mut ws, code, why).await;
                        }
                        let _ = ws.send(Message::Close(None)).await;
                        // The actor already forgot this connection.
                        return;
                    }
                    None => break,
                },
                inbound = next(&mut ws, &mut bucket, network.as_ref(), &shared.metrics) => match inbound {
                    Inbound::Closed => break,
                    Inbound::Msg(msg) => {
                        let cost = super::per_network::cost(&msg);
                        if network.as_ref().is_some_and(|n| !n.allow(Instant::now(), cost)) {
                            Metrics::add(&shared.metrics.signaling_refused, 1);
                            strikes += 1;
                            if strikes > MAX_STRIKES {
                                send_error(&mut ws, ErrorCode::RateLimited, "too many refused messages; goodbye").await;
                                break;
                            }
                            if !send_error(&mut ws, ErrorCode::RateLimited, "your network sends too many messages; slow down").await {
                                break;
                            }
                            continue;
                        }
                        strikes = 0;
                        if !swarm.message(peer, conn, msg).await {
                            break;
                        }
                    }
                    Inbound::Refused(code, why) => {
                        strikes += 1;
                        if strikes > MAX_STRIKES {
                            send_error(&mut ws, ErrorCode::RateLimited, "too many refused messages; goodbye").await;
                            break;
                        }
                        if !send_error(&mut ws, code, why).await {
                            break;
                        }
                    }
                },
            }
        }
    }
    swarm.leave(peer, conn).await;
}

/// Redeems an invite if one came, then reads the key's trust.
async fn authorize(
    shared: &Shared,
    peer: PeerId,
    invite: Option<String>,
) -> Result<bool, (ErrorCode, String)> {
    let db = shared.db.clone();
    let result = tokio::task::spawn_blocking(move || {
        if let Some(token) = invite {
            db.redeem_invite(&token, peer, crate::db::unix_now())?;
        }
        Ok::<_, InviteError>(db.is_trusted(&peer)?)
    })
    .await;
    match result {
        Ok(Ok(trusted)) => Ok(trusted),
        Ok(Err(InviteError::Db(e))) => {
            tracing::error!(error = %e, "hub database");
            Err((
                ErrorCode::Internal,
                "the hub could not check the invite; try again".into(),
            ))
        }
        Ok(Err(e)) => Err((ErrorCode::InviteInvalid, e.to_string())),
        Err(_) => Err((ErrorCode::Internal, "the hub failed; try again".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10, 5, t0);
        assert_eq!((0..10).filter(|_| b.allow(t0)).count(), 5);
        assert!(b.allow(t0 + Duration::from_millis(100)));
        assert!(!b.allow(t0 + Duration::from_millis(100)));
        assert_eq!(
            (0..100)
                .filter(|_| b.allow(t0 + Duration::from_secs(60)))
                .count(),
            5
        );
    }

    #[test]
    fn error_messages_are_cut_on_a_char_boundary() {
        let s = "é".repeat(600);
        let cut = floor_char_boundary(&s, 1000);
        assert!(cut <= 1000 && s.is_char_boundary(cut));
    }
}
