//! The WebRTC transport: one reliable, ordered DataChannel to one remote peer.
//!
//! Built on `webrtc` 0.21.1 (a sans-IO core, `rtc`, under a tokio driver),
//! tuned as the design FIELD-NOTES ("WebRTC in Rust") require:
//!
//! - **Socket buffers.** The library has no socket-buffer setting, so every
//!   connection runs on `runtime::TunedRuntime`, the tokio runtime with a
//!   `wrap_udp_socket` that sets `SO_RCVBUF`/`SO_SNDBUF` to
//!   [`RtcConfig::socket_buffer`] (4 MiB), tries `SO_RCVBUFFORCE` when the
//!   kernel cut it short, and reads back what was granted
//!   ([`socket_buffer_report`]). With the stock 208 KiB, loopback bursts drop
//!   packets and each loss stalls SCTP for 200 ms–1 s.
//! - **Pacing.** Every datagram goes through a token bucket
//!   ([`RtcConfig::pacing`], 32 MB/s in 16 KiB bursts, `pacing`): SCTP sends
//!   whatever its window allows at once, and a browser's small socket buffer
//!   drops the tail, which SCTP recovers only by its doubling retransmission
//!   timer.
//! - **Flow control.** `with_data_channel_send_buffer_limit`
//!   ([`RtcConfig::send_buffer_limit`], 1 MiB): [`Link::send`] waits for room,
//!   [`Link::try_send`] fails with [`TransportError::SendBufferFull`].
//! - **256 KiB messages.** `SctpMaxMessageSize::Bounded(262144)` on both ends
//!   ([`RtcConfig::max_message_size`]); the negotiated value is
//!   [`Link::remote_max_message_size`].
//! - **Lean connections.** Concrete bind addresses (a wildcard bind skips
//!   loopback), mDNS off (no port-5353 socket per connection), UDP only, an
//!   empty media engine and no interceptors (DataChannel only), drivers on the
//!   library's shared reactor pool.
//! - **Connect time** ~25–45 ms on loopback instead of ~450 ms: ICE checks
//!   every 20 ms, no acceptance wait for reflexive pairs, and the driver
//!   nudged while the handshakes run (measurements in `peer`, the driver
//!   issue in `connect`).
//!
//! Signaling is the caller's: [`connect_offer`] and [`connect_answer`] take a
//! sender for [`Signal`]s going to the remote (the SDP first, then trickled
//! candidates, then `Candidate(None)`) and a receiver for the remote's.
//!
//! ## Layout
//! - `runtime` — the tuned runtime, socket buffers, interface enumeration.
//! - `pacing` — the token bucket every UDP send goes through.
//! - `peer` — building one peer connection: settings, event handler.
//! - `connect` — offer/answer, trickle ICE, waiting for the channel.
//! - `link` — [`Link`], the open channel.

mod connect;
mod link;
mod pacing;
mod peer;
mod runtime;

use std::time::Duration;

pub use connect::{connect_answer, connect_offer};
pub use link::{ConnectTimings, Link, LinkEvent};
pub use pacing::{Pacer, Pacing};
pub use runtime::{socket_buffer_report, SocketBufferReport};

use tuber_proto::descriptor::IceServer;
use tuber_proto::signal::IceCandidate;

/// The label of the one DataChannel a link carries.
pub const CHANNEL_LABEL: &str = "tuber";

/// The max-message-size a peer that advertises none accepts (RFC 8841 §6.1).
pub const DEFAULT_REMOTE_MAX_MESSAGE_SIZE: u32 = 65_536;

/// How a connection is built.
#[derive(Debug, Clone)]
pub struct RtcConfig {
    /// Concrete local addresses to bind UDP on (`"127.0.0.1:0"` in tests).
    /// The default is every up, non-link-local IPv4 interface address plus
    /// `127.0.0.1`, port 0. A wildcard (`0.0.0.0`) would make the library
    /// enumerate interfaces itself, skipping loopback.
    pub udp_addrs: Vec<String>,
    /// STUN/TURN servers, from the swarm descriptor.
    pub ice_servers: Vec<IceServer>,
    /// `SO_RCVBUF` and `SO_SNDBUF` to ask for, in bytes (4 MiB).
    pub socket_buffer: usize,
    /// Outstanding bytes per channel before sends wait (1 MiB).
    pub send_buffer_limit: usize,
    /// How the connection's UDP datagrams are paced ([`Pacing::DEFAULT`]).
    pub pacing: Pacing,
    /// The largest message this end accepts and advertises (262144, which
    /// is also the library's ceiling: larger values are refused).
    pub max_message_size: u32,
}

impl Default for RtcConfig {
    fn default() -> Self {
        Self {
            udp_addrs: runtime::default_udp_addrs(),
            ice_servers: Vec::new(),
            socket_buffer: 4 * 1024 * 1024,
            send_buffer_limit: 1024 * 1024,
            pacing: Pacing::DEFAULT,
            max_message_size: 262_144,
        }
    }
}

/// One signaling message, to or from the remote peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A session description (offer or answer, by role), as SDP text.
    Description(String),
    /// A trickled ICE candidate; `None` is the end of candidates.
    Candidate(Option<IceCandidate>),
}

/// Why a connection could not be made or a link operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The configuration cannot work (no bind address, a bad limit).
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// The remote's session description was refused.
    #[error("session description refused: {0}")]
    Sdp(#[source] webrtc::error::Error),
    /// The signaling channel closed before the remote's description arrived.
    #[error("signaling closed before the connection was established")]
    SignalingClosed,
    /// The connection was not open within the timeout.
    #[error("connection not open within {timeout:?} (reached: {reached})")]
    Timeout {
        /// The timeout given.
        timeout: Duration,
        /// How far the connection got: "setup" (binding sockets),
        /// "signaling" (no remote description), "ICE", "DTLS" or "SCTP".
        reached: &'static str,
    },
    /// ICE or DTLS failed, or the remote closed during setup.
    #[error("connection failed: {0}")]
    Failed(&'static str),
    /// The send buffer is at its limit; wait with [`Link::writable`].
    #[error("send buffer full")]
    SendBufferFull,
    /// The message is larger than the remote accepts.
    #[error("message of {len} bytes exceeds the remote's limit of {max}")]
    MessageTooLarge {
        /// The message's length.
        len: usize,
        /// [`Link::remote_max_message_size`].
        max: u32,
    },
    /// The link is closed.
    #[error("link closed")]
    Closed,
    /// Anything else the library reported.
    #[error("webrtc: {0}")]
    Webrtc(#[source] webrtc::error::Error),
}

impl From<webrtc::error::Error> for TransportError {
    fn from(err: webrtc::error::Error) -> Self {
        use webrtc::error::Error as E;
        match err {
            E::ErrSendBufferFull => Self::SendBufferFull,
            E::ErrDataChannelClosed | E::ErrConnectionClosed => Self::Closed,
            other => Self::Webrtc(other),
        }
    }
}
