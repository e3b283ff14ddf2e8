// Protocol limits (docs/protocol.md §7), the same numbers as
// crates/tuber-proto/src/limits.rs.

export const PROTOCOL_VERSION = 2;
export const MAX_DESCRIPTOR_BYTES = 16384;
export const MAX_SWARM_ID_LEN = 64;
export const MAX_NAME_LEN = 128;
export const MAX_URL_LEN = 2048;
export const MAX_ICE_SERVERS = 8;
export const MAX_ICE_URLS = 8;
export const MAX_ICE_CREDENTIAL_LEN = 256;
export const MIN_PIECE_SIZE = 16384;
export const DEFAULT_PIECE_SIZE = 262144;
export const MAX_PIECE_SIZE = 4194304;
export const MAX_PIECES = 131072;
export const MAX_MANIFEST_BYTES = 10485760;
export const MAX_PATH_LEN = 2048;
export const MAX_CONTENT_TYPE_LEN = 255;
export const MAX_VERSION_LEN = 256;
export const MAX_SIGNAL_FRAME = 65536;
export const MAX_SDP_LEN = 16384;
export const MAX_CANDIDATE_LEN = 1024;
export const MAX_HASHES_PER_MESSAGE = 512;
export const MAX_PROVIDERS = 32;
export const MAX_REPORT_ENTRIES = 256;
export const MAX_BAD_PIECES = 64;
export const MAX_RANGES = 1024;
export const MAX_ERROR_MESSAGE_LEN = 1024;
export const MAX_INVITE_LEN = 512;
export const MAX_AGENT_LEN = 128;
export const MAX_JSON_INT = 9007199254740991;
export const DEFAULT_MAX_FRAME = 65536;
export const LARGE_MAX_FRAME = 262144;
export const MAX_WIRE_REASON_LEN = 256;
export const DATA_HEADER_LEN = 9;
