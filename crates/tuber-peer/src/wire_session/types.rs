//! The session's configuration, ids, events and errors.

use std::time::Duration;

use bytes::Bytes;
use tuber_proto::limits::{DEFAULT_MAX_FRAME, LARGE_MAX_FRAME};
use tuber_proto::{PieceHash, WireErrorCode};

/// Default cap on requests in flight, per direction.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
/// Default time a request may go without progress.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Default cap on bytes being assembled for our open requests.
pub const DEFAULT_MAX_ASSEMBLY_BYTES: usize = 32 * 1024 * 1024;

/// How a session behaves. `Default` suits a transport limited to 64 KiB
/// messages; see [`WireSessionConfig::with_large_frames`].
#[derive(Debug, Clone)]
pub struct WireSessionConfig {
    /// The `max_frame` we advertise in `hello`, clamped to 64–256 KiB.
    /// Default 65536; 262144 only when the transport accepts such messages.
    pub max_frame: u32,
    /// Requests in flight per direction; the remote's beyond it get `busy`
    /// at once, ours beyond it are refused. Default [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// A request of ours with no data for this long times out and is
    /// cancelled. Default [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// Sum of the lengths of our open requests (their assembly buffers).
    /// Default [`DEFAULT_MAX_ASSEMBLY_BYTES`].
    pub max_assembly_bytes: usize,
}

impl Default for WireSessionConfig {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_assembly_bytes: DEFAULT_MAX_ASSEMBLY_BYTES,
        }
    }
}

impl WireSessionConfig {
    /// Advertise 256 KiB frames: only when the transport (SCTP stack)
    /// accepts messages that large.
    pub fn with_large_frames(mut self) -> Self {
        self.max_frame = LARGE_MAX_FRAME;
        self
    }
}

/// One of our requests. Unique among our open requests; ids of the two
/// directions are independent, see [`IncomingId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(super) u32);

impl RequestId {
    /// The id on the wire.
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

/// One of the remote's requests to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncomingId(pub(super) u32);

impl IncomingId {
    /// The id on the wire.
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

/// What the session tells the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Server: the remote asks for `length` bytes of `piece` from `offset`.
    /// Answer with `respond_data`, `respond_missing` or `respond_busy`.
    Requested {
        /// Its id.
        id: IncomingId,
        /// The piece.
        piece: PieceHash,
        /// Start within the piece.
        offset: u32,
        /// Bytes wanted (≥ 1, within 4 MiB).
        length: u32,
    },
    /// Server: the remote no longer wants `id`; its queued data is dropped.
    Cancelled {
        /// Its id.
        id: IncomingId,
        /// Bytes of the answer that will never be sent (0 if the engine had
        /// not answered yet): what an upload cap charged for nothing.
        unsent: u64,
    },
    /// Client: all bytes of request `id` arrived (and, when asked to,
    /// hashed to `piece`).
    Completed {
        /// Our request.
        id: RequestId,
        /// The piece.
        piece: PieceHash,
        /// The requested range.
        bytes: Bytes,
    },
    /// Client: a whole piece arrived but does not hash to `piece`: report
    /// the sender.
    Corrupt {
        /// Our request.
        id: RequestId,
        /// The piece.
        piece: PieceHash,
    },
    /// Client: the remote does not hold that piece or range.
    Missing {
        /// Our request.
        id: RequestId,
    },
    /// Client: the remote's budget is spent; ask elsewhere.
    Busy {
        /// Our request.
        id: RequestId,
        /// When it may have budget again, if it said.
        retry_after: Option<Duration>,
    },
    /// Client: no progress within the timeout; a `cancel` was sent.
    TimedOut {
        /// Our request.
        id: RequestId,
    },
    /// The remote sent a non-fatal `error` (unsupported, or a code newer
    /// than ours); the channel stays open.
    RemoteError {
        /// Its code.
        code: WireErrorCode,
        /// Its reason.
        reason: String,
    },
    /// The session closed; every open request of either side is gone.
    Closed(CloseReason),
}

/// Why a session closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The remote sent something we refuse; we send (or, if it was itself an
    /// `error` frame, do not send) an `error` with `code`.
    Refused {
        /// The code.
        code: WireErrorCode,
        /// What was wrong.
        reason: String,
    },
    /// The remote sent a fatal `error`.
    Remote {
        /// Its code.
        code: WireErrorCode,
        /// Its reason.
        reason: String,
    },
}

/// Why [`super::WireSession::request`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Too many requests in flight, or their assembly would exceed the cap:
    /// wait for one to end.
    #[error("too many requests in flight")]
    Full,
    /// The session is closed.
    #[error("session closed")]
    Closed,
    /// Empty, past 4 MiB, or asks to verify a range that is not a whole
    /// piece (`offset` must be 0).
    #[error("request range out of bounds")]
    OutOfRange,
}
