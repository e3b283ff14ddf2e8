//! Manifests: what a resource is made of, piece by piece.
//!
//! Browsers and peers get manifests from the hub over HTTP, never from other
//! peers, so a manifest is the root of trust for every piece it lists.
//!
//! **Canonical encoding**: compact JSON (no whitespace) with the fields in the
//! order `path, length, content_type, version, piece_size, pieces`, strings
//! escaped as `JSON.stringify` and `serde_json` both do (`\"`, `\\`, the short
//! escapes `\b \f \n \r \t`, other control characters as `\u00xx`, everything
//! else literal UTF-8), and piece hashes as lowercase hex. The **manifest id**
//! is the SHA-256 of that encoding. Decoding accepts any JSON layout of the
//! same fields; the id is always computed over the re-encoded canonical form.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hash::{ManifestId, PieceHash};
use crate::limits::*;
use crate::validate::{check_len, LimitError};

/// A resource's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// URL path (and query, if any) of the resource on the origin; starts with `/`.
    pub path: String,
    /// Total length in bytes.
    pub length: u64,
    /// The origin's `Content-Type`.
    pub content_type: String,
    /// The origin's version of the bytes: its strong ETag, or a hash.
    pub version: String,
    /// Bytes per piece; every piece but the last is exactly this long.
    pub piece_size: u32,
    /// SHA-256 of every piece, in order.
    pub pieces: Vec<PieceHash>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest is {0} bytes, more than the limit of {MAX_MANIFEST_BYTES}")]
    TooLarge(usize),
    /// Not a JSON object.
    #[error("manifest is not a JSON object")]
    NotAnObject,
    /// Not JSON, or a field missing, unknown or of the wrong type.
    #[error("malformed manifest: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A field breaks a limit, or the piece count does not match the length.
    #[error("invalid manifest: {0}")]
    Invalid(#[from] LimitError),
}

impl Manifest {
    /// Builds the manifest of `bytes`, cut into `piece_size` pieces.
    pub fn build(
        path: impl Into<String>,
        content_type: impl Into<String>,
        version: impl Into<String>,
        piece_size: u32,
        bytes: &[u8],
    ) -> Self {
        let step = piece_size.max(1) as usize;
        Self {
            path: path.into(),
            length: bytes.len() as u64,
            content_type: content_type.into(),
            version: version.into(),
            piece_size,
            pieces: bytes.chunks(step).map(PieceHash::of).collect(),
        }
    }

    /// Parses and validates a manifest document.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        if !bytes.trim_ascii_start().starts_with(b"{") {
            return Err(ManifestError::NotAnObject);
        }
        let m: Self = serde_json::from_slice(bytes)?;
        m.validate()?;
        Ok(m)
    }

    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        // Field order is the struct's declaration order; serializing strings,
        // integers and hashes cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// SHA-256 of the canonical encoding.
    pub fn id(&self) -> ManifestId {
        ManifestId::from_bytes(Sha256::digest(self.encode()).into())
    }

    /// How many pieces a resource of `length` bytes has.
    pub fn piece_count_for(length: u64, piece_size: u32) -> u64 {
        if piece_size == 0 {
            return 0;
        }
        length.div_ceil(u64::from(piece_size))
    }

    /// Byte range `(offset, len)` of piece `index` in the resource.
    pub fn piece_range(&self, index: usize) -> Option<(u64, u32)> {
        if index >= self.pieces.len() {
            return None;
        }
        let start = index as u64 * u64::from(self.piece_size);
        let len = (self.length - start).min(u64::from(self.piece_size));
        // len <= piece_size, which is a u32.
        Some((start, len as u32))
    }

    /// Checks every limit and that the piece list matches the length.
    pub fn validate(&self) -> Result<(), LimitError> {
        if !self.path.starts_with('/') {
            return Err(LimitError::out_of_range("path"));
        }
        check_len("path", &self.path, MAX_PATH_LEN)?;
        check_len("content_type", &self.content_type, MAX_CONTENT_TYPE_LEN)?;
        check_len("version", &self.version, MAX_VERSION_LEN)?;
        validate_piece_size(self.piece_size)?;
        if self.pieces.len() > MAX_PIECES {
            return Err(LimitError::too_many("pieces", MAX_PIECES));
        }
        if Self::piece_count_for(self.length, self.piece_size) != self.pieces.len() as u64 {
            return Err(LimitError::out_of_range("length"));
        }
        Ok(())
    }
}

/// A piece size is a power of two in `MIN_PIECE_SIZE..=MAX_PIECE_SIZE`.
pub fn validate_piece_size(size: u32) -> Result<(), LimitError> {
    if size.is_power_of_two() && (MIN_PIECE_SIZE..=MAX_PIECE_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(LimitError::out_of_range("piece_size"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_cuts_pieces_and_the_last_is_short() {
        let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let m = Manifest::build("/v.mp4", "video/mp4", "\"e1\"", 16 * 1024, &data);
        assert_eq!(m.pieces.len(), 3);
        assert_eq!(m.pieces[2], PieceHash::of(&data[32_768..]));
        assert_eq!(m.piece_range(2), Some((32_768, 40_000 - 32_768)));
        assert_eq!(m.piece_range(3), None);
        m.validate().unwrap();
    }

    #[test]
    fn decode_recomputes_the_same_id_from_any_layout() {
        let m = Manifest::build("/a b/ü?x=1", "a/b", "W/\"v1\" é", 16 * 1024, &[1u8; 20_000]);
        let pretty = serde_json::to_vec_pretty(&m).unwrap();
        let back = Manifest::decode(&pretty).unwrap();
        assert_eq!(back.id(), m.id());
        assert_eq!(back.encode(), m.encode());
    }

    #[test]
    fn refuses_wrong_piece_count_and_sizes() {
        let mut m = Manifest::build("/x", "a/b", "1", 16 * 1024, &[0u8; 16 * 1024 + 1]);
        m.pieces.pop();
        assert!(m.validate().is_err());
        for bad in [0, 1000, 8 * 1024, 3 * 16 * 1024, 8 * 1024 * 1024] {
            assert!(validate_piece_size(bad).is_err(), "{bad}");
        }
        let mut m = Manifest::build("x", "a/b", "1", 16 * 1024, &[]);
        assert!(m.validate().is_err(), "path must start with /");
        m.path = "/x".into();
        m.validate().unwrap();
    }

    #[test]
    fn unknown_fields_are_refused() {
        let m = Manifest::build("/x", "a/b", "1", 16 * 1024, &[]);
        let mut v = serde_json::to_value(&m).unwrap();
        v["extra"] = 1.into();
        assert!(Manifest::decode(&serde_json::to_vec(&v).unwrap()).is_err());
    }
}
