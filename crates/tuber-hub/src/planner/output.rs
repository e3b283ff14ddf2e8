//! What the planner asks the server to do, and why it refuses or
//! disconnects a peer.

use std::fmt;

use tuber_proto::signal::{ErrorCode, HubToClient};
use tuber_proto::PeerId;

/// Something the server must do, drained with [`Planner::poll_output`](super::Planner::poll_output).
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this message to this peer. Every message passes
    /// `tuber_proto::signal::encode` (limits and the 64 KiB frame).
    Send(PeerId, HubToClient),
    /// Close this peer's connection (after an `error`, see
    /// [`DisconnectReason::code`]). The planner has already forgotten it.
    Disconnect(PeerId, DisconnectReason),
    /// This peer was just banned: persist it (see [`Planner::bans`](super::Planner::bans)).
    Banned(PeerId),
    /// This peer's ban ran out (`ban_duration`): forget the persisted ban.
    BanExpired(PeerId),
}

/// Why the planner disconnects a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// Blamed for bad pieces by `ban_threshold` distinct reporter groups.
    Banned,
    /// Silent for longer than three ping intervals.
    MissedPings,
}

impl DisconnectReason {
    /// The `error` code to send before closing, if any.
    pub fn code(self) -> Option<ErrorCode> {
        match self {
            DisconnectReason::Banned => Some(ErrorCode::Banned),
            DisconnectReason::MissedPings => None,
        }
    }

    /// A short human-readable reason (an `error` message or a close reason).
    pub fn message(self) -> &'static str {
        match self {
            DisconnectReason::Banned => "banned for bad pieces",
            DisconnectReason::MissedPings => "missed pings",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Why [`Planner::handle_join`](super::Planner::handle_join) refused a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The peer is banned: send `error` `banned` and close.
    #[error("banned for bad pieces")]
    Banned,
    /// The swarm has `max_peers` peers: send `error` `rate_limited` and close.
    #[error("the swarm is full")]
    Full,
}

impl Refused {
    /// The `error` code to send.
    pub fn code(self) -> ErrorCode {
        match self {
            Refused::Banned => ErrorCode::Banned,
            Refused::Full => ErrorCode::RateLimited,
        }
    }
}
