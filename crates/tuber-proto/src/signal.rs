//! Signaling: JSON over WebSocket, one tagged message per text frame.
//!
//! Messages are named by direction: [`ClientToHub`] and [`HubToClient`]. Each
//! is a JSON object whose `type` field names the message. A receiver:
//! 1. refuses a frame over [`MAX_SIGNAL_FRAME`] bytes (`too_large`),
//! 2. refuses text that is not one known message (`bad_message`; an unknown
//!    `type` is reported as such, and the connection stays open so newer
//!    clients can probe),
//! 3. refuses a message that breaks a limit ([`Validate`]; `bad_message`),
//!
//! answering each with an [`ErrorCode`] in an `error` message; it never
//! crashes, and unknown fields inside a known message are ignored.
//!
//! Flow: on connect the hub sends `challenge`; the client answers `hello`
//! (a permanent peer signs [`hello_signing_payload`] with its ed25519 key);
//! the hub answers `welcome` or `error`. After that, any order.

use serde::{Deserialize, Serialize};

use crate::hash::{ManifestId, PeerId, PieceHash};
use crate::limits::*;
use crate::validate::{check_count, check_json_int, check_len, check_text, LimitError};

pub use crate::hash::Nonce;

/// What kind of peer a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A browser tab: ephemeral, untrusted, memory-only.
    Browser,
    /// A `tuber-peer` engine (desktop app or headless): long-lived, with a store.
    Permanent,
}

/// What a permanent peer offers the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Disk budget for this swarm, in bytes.
    pub disk_bytes: u64,
    /// Upload budget, in bytes per second (0: unlimited).
    pub upload_bps: u64,
}

/// 64-byte ed25519 signature, 128 lowercase hex digits on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signature(..)")
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let lower = s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let mut out = [0u8; 64];
        match (
            s.len() == 128 && lower,
            hex::decode_to_slice(s.as_bytes(), &mut out),
        ) {
            (true, Ok(())) => Ok(Self(out)),
            _ => Err(serde::de::Error::custom(
                "expected 128 lowercase hex digits",
            )),
        }
    }
}

/// Proof that a permanent peer holds the private key of its id, given to
/// the hub at `origin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustProof {
    /// The ed25519 public key: the peer's id.
    pub public_key: PeerId,
    /// The origin the peer joined (`scheme://host[:port]`, as
    /// [`crate::origin::origin_of`] serialises it). The hub refuses a proof
    /// for any origin but its own.
    pub origin: String,
    /// Signature over [`hello_signing_payload`].
    pub signature: Signature,
}

/// The bytes a permanent peer signs in `hello`: the domain tag
/// `tuber-hello-v2`, a zero byte, the origin it joined, a zero byte, the
/// swarm id, a zero byte, the 32 nonce bytes.
///
/// The swarm id stops a proof for one swarm being replayed to another; the
/// origin stops a hub the peer joined from relaying another hub's challenge
/// to the peer and the peer's `hello` back, and so signing in elsewhere as
/// the peer (a hub can copy anyone's swarm id, but the receiving hub checks
/// the origin against its own public URL). Neither may contain a zero byte
/// (the validators refuse control characters).
pub fn hello_signing_payload(origin: &str, swarm_id: &str, nonce: &Nonce) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + origin.len() + swarm_id.len() + 32);
    out.extend_from_slice(b"tuber-hello-v2\0");
    out.extend_from_slice(origin.as_bytes());
    out.push(0);
    out.extend_from_slice(swarm_id.as_bytes());
    out.push(0);
    out.extend_from_slice(nonce.as_bytes());
    out
}

/// An ICE candidate, as in `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:` line.
    pub candidate: String,
    /// The media id it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// The m-line index it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mline_index: Option<u16>,
}

/// Bytes moved with one remote peer since the last report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferReport {
    /// The remote peer.
    pub peer: PeerId,
    /// Bytes this client sent to it.
    pub up: u64,
    /// Bytes this client received from it (verified pieces only).
    pub down: u64,
}

/// A piece that failed verification, and who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadPiece {
    /// The sender.
    pub peer: PeerId,
    /// The piece it claimed to send.
    pub piece: PieceHash,
}

/// A half-open range of piece indices `[start, end)` of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceRange {
    /// First index.
    pub start: u32,
    /// One past the last index; `end > start`.
    pub end: u32,
}

/// A peer the planner suggests for some of the wanted pieces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// Whom to connect to (over the relay).
    pub peer: PeerId,
    /// Its role.
    pub role: Role,
    /// Whether the hub trusts it.
    pub trusted: bool,
    /// Indices into the `want.pieces` list that it holds.
    pub pieces: Vec<u32>,
}

/// Why something was refused. Unknown codes from a newer peer read as `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not one known message, or a field breaks a limit.
    BadMessage,
    /// The frame is larger than [`MAX_SIGNAL_FRAME`].
    TooLarge,
    /// The protocol versions do not match.
    UnsupportedVersion,
    /// The message needs a `hello` first, or the proof did not verify.
    Unauthorized,
    /// The invite is unknown, expired or used.
    InviteInvalid,
    /// This peer is banned from the swarm.
    Banned,
    /// Too many messages or bytes; slow down.
    RateLimited,
    /// The target peer is not connected to this swarm.
    UnknownPeer,
    /// The hub failed; try again later.
    Internal,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

/// Messages from a client (browser or permanent peer) to the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientToHub {
    /// First message, after the hub's `challenge`.
    Hello {
        /// [`PROTOCOL_VERSION`].
        version: u16,
        /// Browser or permanent.
        role: Role,
        /// Permanent peers: the signed challenge.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<TrustProof>,
        /// An invite token, to register this key as trusted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invite: Option<String>,
        /// Permanent peers: what they offer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capacity: Option<Capacity>,
        /// Software name and version, for operators' logs.
        #[serde(default)]
        agent: String,
    },
    /// WebRTC offer for peer `to`; `conn` is chosen by the offerer.
    Offer { to: PeerId, conn: u32, sdp: String },
    /// WebRTC answer for peer `to`.
    Answer { to: PeerId, conn: u32, sdp: String },
    /// Trickled ICE candidate for peer `to`; `null` ends the candidates.
    Candidate {
        to: PeerId,
        conn: u32,
        candidate: Option<IceCandidate>,
    },
    /// This client now holds these pieces.
    Have { pieces: Vec<PieceHash> },
    /// This client no longer holds these pieces.
    Lost { pieces: Vec<PieceHash> },
    /// Who holds these pieces? Answered by `providers` with the same `req`.
    Want { req: u32, pieces: Vec<PieceHash> },
    /// Bytes per remote peer since the last report, and bad pieces.
    Report {
        transfers: Vec<TransferReport>,
        bad: Vec<BadPiece>,
    },
    /// Liveness probe; answered by `pong` with the same nonce.
    Ping { nonce: u32 },
    /// Answer to the hub's `ping`.
    Pong { nonce: u32 },
    /// Something the client refused.
    Error { code: ErrorCode, message: String },
}

/// Messages from the hub to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HubToClient {
    /// First message on every connection.
    Challenge { version: u16, nonce: Nonce },
    /// `hello` accepted.
    Welcome {
        /// This client's id: its key (permanent) or one the hub made (browser).
        peer_id: PeerId,
        /// The role accepted.
        role: Role,
        /// Whether the hub trusts this peer (a registered key).
        trusted: bool,
        /// The swarm joined.
        swarm_id: String,
        /// How often the hub pings; miss three and you are evicted.
        ping_interval_ms: u32,
        /// ICE servers for this connection only, used with the
        /// descriptor's: short-lived TURN credentials (a cached, public
        /// descriptor cannot carry them). Omitted when empty.
        #[serde(
            default,
            skip_serializing_if = "Vec::is_empty",
            deserialize_with = "null_as_empty"
        )]
        ice_servers: Vec<crate::descriptor::IceServer>,
    },
    /// Offer relayed from peer `from`.
    Offer {
        from: PeerId,
        conn: u32,
        sdp: String,
    },
    /// Answer relayed from peer `from`.
    Answer {
        from: PeerId,
        conn: u32,
        sdp: String,
    },
    /// Candidate relayed from peer `from`.
    Candidate {
        from: PeerId,
        conn: u32,
        candidate: Option<IceCandidate>,
    },
    /// Answer to `want`: peers to try, trusted permanent peers first.
    Providers { req: u32, providers: Vec<Provider> },
    /// Hold these pieces of a manifest (trusted peers only).
    Assign {
        partition: u32,
        resource: String,
        manifest: ManifestId,
        ranges: Vec<PieceRange>,
    },
    /// Stop holding these pieces for the planner.
    Unassign {
        partition: u32,
        resource: String,
        manifest: ManifestId,
        ranges: Vec<PieceRange>,
    },
    /// Liveness probe; answer `pong` with the same nonce.
    Ping { nonce: u32 },
    /// Answer to the client's `ping`.
    Pong { nonce: u32 },
    /// Something the hub refused.
    Error { code: ErrorCode, message: String },
}

/// Checks a decoded value against the protocol's limits.
pub trait Validate {
    /// `Ok` when every field is within its limit.
    fn validate(&self) -> Result<(), LimitError>;
}

/// Why a signaling frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// Larger than [`MAX_SIGNAL_FRAME`].
    #[error("signaling frame is {0} bytes, more than the limit of {MAX_SIGNAL_FRAME}")]
    TooLarge(usize),
    /// The frame is not a JSON object.
    #[error("signaling message is not a JSON object")]
    NotAnObject,
    /// Not JSON, an unknown `type`, or a missing or mistyped field.
    #[error("malformed signaling message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A field breaks a limit.
    #[error("invalid signaling message: {0}")]
    Invalid(#[from] LimitError),
}

impl SignalError {
    /// The code to send back in an `error` message.
    pub fn code(&self) -> ErrorCode {
        match self {
            SignalError::TooLarge(_) => ErrorCode::TooLarge,
            SignalError::NotAnObject | SignalError::Malformed(_) | SignalError::Invalid(_) => {
                ErrorCode::BadMessage
            }
        }
    }
}

/// Decodes and validates one signaling frame.
pub fn decode<T>(text: &str) -> Result<T, SignalError>
where
    T: serde::de::DeserializeOwned + Validate,
{
    if text.len() > MAX_SIGNAL_FRAME {
        return Err(SignalError::TooLarge(text.len()));
    }
    // serde reads a JSON array as a struct too (`["ping",1]`); the protocol
    // says objects, and the browser's decoder cannot accept anything else.
    if !text.trim_start().starts_with('{') {
        return Err(SignalError::NotAnObject);
    }
    let msg: T = serde_json::from_str(text)?;
    msg.validate()?;
    Ok(msg)
}

/// Encodes one signaling frame (compact JSON, fields in declaration order).
///
/// Refuses a message the receiver would refuse: over [`MAX_SIGNAL_FRAME`]
/// (each field can be within its limit and the whole still too large, e.g. 32
/// providers of 512 pieces each), or breaking a field limit. A sender splits
/// lists across several messages instead.
pub fn encode<T: Serialize + Validate>(msg: &T) -> Result<String, SignalError> {
    msg.validate()?;
    let text = serde_json::to_string(msg)?;
    if text.len() > MAX_SIGNAL_FRAME {
        return Err(SignalError::TooLarge(text.len()));
    }
    Ok(text)
}

fn check_sdp(sdp: &str) -> Result<(), LimitError> {
    check_text("sdp", sdp, MAX_SDP_LEN)
}

/// An optional list: missing and `null` both read as empty (§2).
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn check_candidate(c: &Option<IceCandidate>) -> Result<(), LimitError> {
    if let Some(c) = c {
        check_len("candidate", &c.candidate, MAX_CANDIDATE_LEN)?;
        if let Some(mid) = &c.sdp_mid {
            check_len("sdp_mid", mid, MAX_CANDIDATE_LEN)?;
        }
    }
    Ok(())
}

fn check_hashes(v: &[PieceHash]) -> Result<(), LimitError> {
    check_count("pieces", v, MAX_HASHES_PER_MESSAGE)
}

fn check_error(message: &str) -> Result<(), LimitError> {
    check_len("message", message, MAX_ERROR_MESSAGE_LEN)
}

fn check_ranges(resource: &str, ranges: &[PieceRange]) -> Result<(), LimitError> {
    if !resource.starts_with('/') {
        return Err(LimitError::out_of_range("resource"));
    }
    check_len("resource", resource, MAX_PATH_LEN)?;
    check_count("ranges", ranges, MAX_RANGES)?;
    let max = MAX_PIECES as u32;
    if ranges.iter().any(|r| r.start >= r.end || r.end > max) {
        return Err(LimitError::out_of_range("ranges"));
    }
    Ok(())
}

impl Validate for ClientToHub {
    fn validate(&self) -> Result<(), LimitError> {
        match self {
            ClientToHub::Hello {
                proof,
                invite,
                capacity,
                agent,
                ..
            } => {
                if let Some(p) = proof {
                    // The exact serialisation only: anything else would
                    // sign bytes the hub can never match.
                    if crate::origin::origin_of(&p.origin).ok().as_deref() != Some(&p.origin) {
                        return Err(LimitError::out_of_range("proof.origin"));
                    }
                }
                if let Some(i) = invite {
                    check_len("invite", i, MAX_INVITE_LEN)?;
                }
                if let Some(c) = capacity {
                    check_json_int("capacity.disk_bytes", c.disk_bytes)?;
                    check_json_int("capacity.upload_bps", c.upload_bps)?;
                }
                check_len("agent", agent, MAX_AGENT_LEN)
            }
            ClientToHub::Offer { sdp, .. } | ClientToHub::Answer { sdp, .. } => check_sdp(sdp),
            ClientToHub::Candidate { candidate, .. } => check_candidate(candidate),
            ClientToHub::Have { pieces }
            | ClientToHub::Lost { pieces }
            | ClientToHub::Want { pieces, .. } => check_hashes(pieces),
            ClientToHub::Report { transfers, bad } => {
                check_count("transfers", transfers, MAX_REPORT_ENTRIES)?;
                check_count("bad", bad, MAX_BAD_PIECES)?;
                for t in transfers {
                    check_json_int("transfers.up", t.up)?;
                    check_json_int("transfers.down", t.down)?;
                }
                Ok(())
            }
            ClientToHub::Ping { .. } | ClientToHub::Pong { .. } => Ok(()),
            ClientToHub::Error { message, .. } => check_error(message),
        }
    }
}

impl Validate for HubToClient {
    fn validate(&self) -> Result<(), LimitError> {
        match self {
            HubToClient::Challenge { .. } => Ok(()),
            HubToClient::Welcome {
                swarm_id,
                ice_servers,
                ..
            } => {
                crate::descriptor::validate_swarm_id(swarm_id)?;
                crate::descriptor::validate_ice_servers(ice_servers)
            }
            HubToClient::Offer { sdp, .. } | HubToClient::Answer { sdp, .. } => check_sdp(sdp),
            HubToClient::Candidate { candidate, .. } => check_candidate(candidate),
            HubToClient::Providers { providers, .. } => {
                check_count("providers", providers, MAX_PROVIDERS)?;
                for p in providers {
                    check_count("providers.pieces", &p.pieces, MAX_HASHES_PER_MESSAGE)?;
                    if p.pieces
                        .iter()
                        .any(|&i| i as usize >= MAX_HASHES_PER_MESSAGE)
                    {
                        return Err(LimitError::out_of_range("providers.pieces"));
                    }
                }
                Ok(())
            }
            HubToClient::Assign {
                resource, ranges, ..
            }
            | HubToClient::Unassign {
                resource, ranges, ..
            } => check_ranges(resource, ranges),
            HubToClient::Ping { .. } | HubToClient::Pong { .. } => Ok(()),
            HubToClient::Error { message, .. } => check_error(message),
        }
    }
}
