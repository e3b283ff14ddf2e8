//! What the engine shows to user interfaces: settings, the status snapshot
//! and the event stream. Plain serde types, so the desktop app, the daemon's
//! local API and the tests all see the same JSON; no UI type leaks in.

use serde::{Deserialize, Serialize};

use crate::meter::UpDown;

/// What the owner decides. Persisted in the data dir (`settings.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Upload cap in bytes per second; 0 = unlimited.
    pub upload_bps: u64,
    /// Download cap in bytes per second; 0 = unlimited.
    pub download_bps: u64,
    /// Disk budget for pieces, in bytes.
    pub disk_budget: u64,
    /// Sharing paused: every request is answered `busy`, no prefetch.
    pub paused: bool,
}

/// Default disk budget: 10 GiB.
pub const DEFAULT_DISK_BUDGET: u64 = 10 * 1024 * 1024 * 1024;

impl Default for Settings {
    fn default() -> Self {
        Self {
            upload_bps: 0,
            download_bps: 0,
            disk_budget: DEFAULT_DISK_BUDGET,
            paused: false,
        }
    }
}

/// A change to some settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsPatch {
    /// New upload cap (bytes/s, 0 = unlimited).
    pub upload_bps: Option<u64>,
    /// New download cap (bytes/s, 0 = unlimited).
    pub download_bps: Option<u64>,
    /// New disk budget (bytes). Lowering it evicts at once.
    pub disk_budget: Option<u64>,
    /// Pause or resume.
    pub paused: Option<bool>,
}

/// Where one swarm stands, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SwarmPhase {
    /// Fetching the descriptor or waiting for `welcome`.
    Connecting,
    /// In the swarm.
    Joined {
        /// Whether the hub trusts this peer (registered with an invite).
        trusted: bool,
    },
    /// Disconnected; retrying by itself.
    Retrying {
        /// Why the last attempt failed.
        error: String,
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
    /// Refused for good (banned, bad invite, unsupported version): the
    /// engine no longer tries. Leave and join again to retry.
    Error {
        /// The hub's error code, as in the protocol.
        code: String,
        /// What it said.
        message: String,
    },
}

/// One joined swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmStatus {
    /// The URL it was joined by (the swarm's name).
    pub url: String,
    /// The swarm id from its descriptor, once known.
    pub swarm_id: Option<String>,
    /// The site's name from its descriptor, once known.
    pub name: Option<String>,
    /// Where it stands.
    pub phase: SwarmPhase,
    /// Open peer connections.
    pub peers: usize,
    /// Pieces assigned by the planner / held of them.
    pub assigned_pieces: u64,
    /// Assigned pieces stored so far.
    pub assigned_held: u64,
    /// Bytes per second now, and in total since joined (this run).
    pub rate: UpDown,
    /// Bytes since install.
    pub bytes: UpDown,
}

/// One remote peer this engine is connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Its id (hex).
    pub peer: String,
    /// The swarm URL.
    pub swarm: String,
    /// `browser` or `permanent`, when the hub said.
    pub role: Option<String>,
    /// Whether the hub trusts it, when the hub said.
    pub trusted: Option<bool>,
    /// Bytes per second now.
    pub rate: UpDown,
    /// Bytes since connected.
    pub bytes: UpDown,
}

/// Store usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// Pieces held.
    pub pieces: u64,
    /// Piece bytes held.
    pub bytes: u64,
    /// What the store's folder occupies on disk (piece files in whole
    /// filesystem blocks, the database, the directories), as `du` counts.
    /// Absent from a daemon older than this field: 0.
    #[serde(default)]
    pub disk_bytes: u64,
    /// Bytes of pieces pinned by assignments.
    pub pinned_bytes: u64,
    /// The disk budget, for the store's whole folder: the piece files get
    /// what the database leaves; the folder stays within 1.1 x this plus
    /// 4 MiB.
    pub budget: u64,
    /// Corrupt pieces found and deleted since the store was created.
    pub corrupt_detected: u64,
    /// Pieces evicted since the store was created.
    pub evictions: u64,
}

/// The socket buffers the kernel granted (WebRTC needs ~4 MiB on loopback
/// and fast LANs; a stock kernel caps at ~208 KiB).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// Bytes asked for.
    pub socket_buffer_requested: u64,
    /// Receive buffer granted, once a socket was opened.
    pub socket_buffer_granted: Option<u64>,
}

/// Everything a dashboard shows at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This installation's peer id (hex).
    pub peer_id: String,
    /// Current settings.
    pub settings: Settings,
    /// Rates now.
    pub rate: UpDown,
    /// Bytes since install.
    pub total: UpDown,
    /// Joined swarms, in URL order.
    pub swarms: Vec<SwarmStatus>,
    /// Connected remote peers.
    pub peers: Vec<PeerStatus>,
    /// Store usage.
    pub store: StoreStatus,
    /// Socket buffers.
    pub network: NetworkStatus,
}

/// One resource held in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedResource {
    /// Swarm URL.
    pub swarm: String,
    /// Resource path.
    pub resource: String,
    /// Pieces held.
    pub pieces: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Reads of its pieces.
    pub hits: u64,
    /// Bytes served from it.
    pub bytes_served: u64,
    /// Whether the planner assigned it (pinned).
    pub assigned: bool,
}

/// A pushed update. `Rates` comes once a second while the engine runs;
/// the rest when something happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    /// The last second's rates (for the live graph), and totals.
    Rates {
        /// Unix second the rates belong to.
        at: u64,
        /// Bytes per second.
        rate: UpDown,
        /// Bytes since install.
        total: UpDown,
    },
    /// A swarm's state changed (joined, trusted, retrying, refused, left).
    Swarm {
        /// The swarm's new status; `None` after a leave.
        url: String,
        /// Its status, or none when it was left.
        status: Option<SwarmStatus>,
    },
    /// The hub registered this peer as trusted in a swarm.
    Trusted {
        /// The swarm URL.
        url: String,
    },
    /// A peer connection opened or closed.
    Peer {
        /// The swarm URL.
        swarm: String,
        /// The remote's id (hex).
        peer: String,
        /// Open now?
        connected: bool,
    },
    /// Settings changed.
    Settings {
        /// The new settings.
        settings: Settings,
    },
    /// A piece arrived and was stored (assignments and fetches).
    Stored {
        /// Swarm URL.
        swarm: String,
        /// Resource path.
        resource: String,
    },
    /// Pieces were evicted to stay within the disk budget.
    BudgetReached {
        /// Pieces evicted.
        evicted: u64,
    },
    /// A remote sent a piece that failed verification.
    BadPiece {
        /// Swarm URL.
        swarm: String,
        /// The sender (hex).
        peer: String,
    },
    /// Never sent by the engine: a relay of this stream (the daemon's
    /// server-sent events, the desktop app) says so when its subscriber
    /// fell behind and missed `missed` events; re-read the status.
    Lagged {
        /// Events missed.
        missed: u64,
    },
    /// Something went wrong that the owner should see.
    Error {
        /// What, in words.
        message: String,
    },
}
