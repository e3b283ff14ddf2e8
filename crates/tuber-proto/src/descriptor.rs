//! The swarm descriptor served at `/.well-known/tuber` (RFC 8615).
//!
//! It is the one document a peer needs to join a swarm by its URL: everything
//! else comes over signaling. Versioning: `version` is the protocol version
//! the hub speaks; a client that does not speak it refuses to join with a
//! clear error. Within a version, fields are only ever added (with defaults),
//! and unknown fields are ignored.

use serde::{Deserialize, Serialize};

use crate::limits::*;
use crate::validate::{check_len, check_url, LimitError};

/// `GET /.well-known/tuber`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmDescriptor {
    /// Protocol version the hub speaks ([`PROTOCOL_VERSION`]).
    pub version: u16,
    /// Stable id of the swarm: 1–64 ASCII letters, digits, `.`, `_`, `-`.
    pub swarm_id: String,
    /// Human-readable name (the site's name).
    pub name: String,
    /// The site's URL: the swarm is named by it.
    pub origin: String,
    /// Signaling WebSocket URL (`ws:` or `wss:`).
    pub signaling: String,
    /// ICE servers for WebRTC (the hub's STUN first).
    #[serde(default)]
    pub ice_servers: Vec<IceServer>,
    /// Piece size of the swarm's manifests, in bytes.
    pub piece_size: u32,
    /// Manifest endpoint: `GET {manifest}?path=/some/resource`.
    pub manifest: String,
    /// Piece endpoint: `GET {pieces}{hash}` serves a piece by its hash.
    pub pieces: String,
    /// Registration endpoint for trusted peers (invites).
    pub register: String,
}

/// One ICE server, as in `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Why a descriptor was refused.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// Larger than [`MAX_DESCRIPTOR_BYTES`].
    #[error("descriptor is {0} bytes, more than the limit of {MAX_DESCRIPTOR_BYTES}")]
    TooLarge(usize),
    /// Not a JSON object.
    #[error("descriptor is not a JSON object")]
    NotAnObject,
    /// Not JSON, or a field is missing or of the wrong type.
    #[error("malformed descriptor: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The hub speaks a protocol version this client does not.
    #[error("the swarm speaks protocol version {0}, this client speaks {PROTOCOL_VERSION}")]
    UnsupportedVersion(u16),
    /// A field breaks a limit.
    #[error("invalid descriptor: {0}")]
    Invalid(#[from] LimitError),
}

impl SwarmDescriptor {
    /// Parses and validates a descriptor document.
    pub fn decode(bytes: &[u8]) -> Result<Self, DescriptorError> {
        if bytes.len() > MAX_DESCRIPTOR_BYTES {
            return Err(DescriptorError::TooLarge(bytes.len()));
        }
        if !bytes.trim_ascii_start().starts_with(b"{") {
            return Err(DescriptorError::NotAnObject);
        }
        // The version first: a later version may drop or change any other
        // field, and its users deserve "unsupported version", not "malformed".
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u16,
        }
        let VersionOnly { version } = serde_json::from_slice(bytes)?;
        if version != PROTOCOL_VERSION {
            return Err(DescriptorError::UnsupportedVersion(version));
        }
        let d: Self = serde_json::from_slice(bytes)?;
        d.validate()?;
        Ok(d)
    }

    /// The JSON document (compact).
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Checks that every URL a peer will request (signaling, manifests,
    /// pieces, registration) and the descriptor's own `origin` are on
    /// `joined`, the origin the user joined (as
    /// [`crate::origin::origin_of`] gives it): a hub may not send a peer's
    /// requests, and with them its identity and invite, to other hosts.
    /// Returns the first field that is not, and the URL it names.
    pub fn check_origin(&self, joined: &str) -> Result<(), (&'static str, &str)> {
        for (field, url) in [
            ("origin", self.origin.as_str()),
            ("signaling", self.signaling.as_str()),
            ("manifest", self.manifest.as_str()),
            ("pieces", self.pieces.as_str()),
            ("register", self.register.as_str()),
        ] {
            if !crate::origin::same_origin(url, joined) {
                return Err((field, url));
            }
        }
        Ok(())
    }

    /// Checks every limit.
    pub fn validate(&self) -> Result<(), LimitError> {
        validate_swarm_id(&self.swarm_id)?;
        check_len("name", &self.name, MAX_NAME_LEN)?;
        check_url("origin", &self.origin, &["http", "https"])?;
        check_url("signaling", &self.signaling, &["ws", "wss"])?;
        check_url("manifest", &self.manifest, &["http", "https"])?;
        check_url("pieces", &self.pieces, &["http", "https"])?;
        check_url("register", &self.register, &["http", "https"])?;
        validate_ice_servers(&self.ice_servers)?;
        crate::manifest::validate_piece_size(self.piece_size)
    }
}

/// Checks a list of ICE servers (the descriptor's, or a `welcome`'s):
/// at most [`MAX_ICE_SERVERS`], each with 1–[`MAX_ICE_URLS`] `stun`/`turn`
/// URLs and bounded credentials.
pub fn validate_ice_servers(servers: &[IceServer]) -> Result<(), LimitError> {
    if servers.len() > MAX_ICE_SERVERS {
        return Err(LimitError::too_many("ice_servers", MAX_ICE_SERVERS));
    }
    for s in servers {
        if s.urls.is_empty() || s.urls.len() > MAX_ICE_URLS {
            return Err(LimitError::out_of_range("ice_servers.urls"));
        }
        for u in &s.urls {
            check_url("ice_servers.urls", u, &["stun", "stuns", "turn", "turns"])?;
        }
        if let Some(u) = &s.username {
            check_len("ice_servers.username", u, MAX_ICE_CREDENTIAL_LEN)?;
        }
        if let Some(c) = &s.credential {
            check_len("ice_servers.credential", c, MAX_ICE_CREDENTIAL_LEN)?;
        }
    }
    Ok(())
}

/// Checks a swarm id: 1–64 ASCII letters, digits, `.`, `_`, `-`.
pub fn validate_swarm_id(id: &str) -> Result<(), LimitError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_SWARM_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(LimitError::out_of_range("swarm_id"))
    }
}
