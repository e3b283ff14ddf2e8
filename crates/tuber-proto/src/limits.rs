//! Every limit of the protocol, in one place, each with its unit.
//!
//! A receiver checks these before it acts on anything it decoded; what it does
//! with a message that breaks one is in `docs/protocol.md` ("Limits").

/// The protocol version this crate speaks: descriptor `version`, signaling
/// `hello.version`/`challenge.version` and the wire `hello` frame.
pub const PROTOCOL_VERSION: u16 = 2;

// ---- Swarm descriptor -------------------------------------------------------

/// Largest descriptor document a client reads.
pub const MAX_DESCRIPTOR_BYTES: usize = 16 * 1024;
/// Longest swarm id (ASCII letters, digits, `.`, `_`, `-`).
pub const MAX_SWARM_ID_LEN: usize = 64;
/// Longest human-readable swarm name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest URL anywhere in the protocol.
pub const MAX_URL_LEN: usize = 2048;
/// Most ICE servers in a descriptor.
pub const MAX_ICE_SERVERS: usize = 8;
/// Most URLs of one ICE server.
pub const MAX_ICE_URLS: usize = 8;
/// Longest ICE username or credential.
pub const MAX_ICE_CREDENTIAL_LEN: usize = 256;

// ---- Manifest ---------------------------------------------------------------

/// Smallest piece size a manifest may declare (bytes; a power of two).
pub const MIN_PIECE_SIZE: u32 = 16 * 1024;
/// The piece size the hub uses unless configured otherwise.
pub const DEFAULT_PIECE_SIZE: u32 = 256 * 1024;
/// Largest piece size a manifest may declare (bytes; a power of two).
pub const MAX_PIECE_SIZE: u32 = 4 * 1024 * 1024;
/// Most pieces in one manifest: 32 GiB at the default piece size.
pub const MAX_PIECES: usize = 1 << 17;
/// Largest manifest document (its canonical form is ~67 bytes a piece).
pub const MAX_MANIFEST_BYTES: usize = 10 * 1024 * 1024;
/// Longest resource path (bytes, including any query string).
pub const MAX_PATH_LEN: usize = 2048;
/// Longest content type.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;
/// Longest version string (an ETag or a hash).
pub const MAX_VERSION_LEN: usize = 256;

// ---- Signaling --------------------------------------------------------------

/// Largest signaling frame (one WebSocket text message), in bytes.
pub const MAX_SIGNAL_FRAME: usize = 64 * 1024;
/// Longest SDP offer or answer.
pub const MAX_SDP_LEN: usize = 16 * 1024;
/// Longest ICE candidate line, and longest `sdp_mid`.
pub const MAX_CANDIDATE_LEN: usize = 1024;
/// Most piece hashes in one `have`, `lost` or `want`.
pub const MAX_HASHES_PER_MESSAGE: usize = 512;
/// Most providers in one `providers` answer.
pub const MAX_PROVIDERS: usize = 32;
/// Most per-peer entries in one `report`.
pub const MAX_REPORT_ENTRIES: usize = 256;
/// Most bad-piece entries in one `report`.
pub const MAX_BAD_PIECES: usize = 64;
/// Most piece ranges in one `assign` or `unassign`.
pub const MAX_RANGES: usize = 1024;
/// Longest error message text, in bytes.
pub const MAX_ERROR_MESSAGE_LEN: usize = 1024;
/// Longest invite token.
pub const MAX_INVITE_LEN: usize = 512;
/// Longest `agent` string in `hello`.
pub const MAX_AGENT_LEN: usize = 128;
/// Largest integer a JSON number may carry: JavaScript's
/// `Number.MAX_SAFE_INTEGER`, so that the browser reads every value exactly.
pub const MAX_JSON_INT: u64 = (1 << 53) - 1;

// ---- Peer wire ----------------------------------------------------------------

/// Largest peer wire frame every peer accepts (bytes, type byte included).
pub const DEFAULT_MAX_FRAME: u32 = 64 * 1024;
/// Largest frame a peer may advertise; used when both ends advertise it.
pub const LARGE_MAX_FRAME: u32 = 256 * 1024;
/// Longest reason text of a wire `error` frame, in bytes.
pub const MAX_WIRE_REASON_LEN: usize = 256;
