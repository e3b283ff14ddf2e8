//! The peer wire: binary frames over a reliable, ordered DataChannel.
//!
//! One DataChannel message is one frame: a type byte, then fixed big-endian
//! fields, then (for `data` and `error`) a variable tail that runs to the end
//! of the message. Frames borrow from the received buffer, so decoding a
//! 64 KiB `data` frame copies nothing.
//!
//! | type | frame    | fields after the type byte                         |
//! |------|----------|----------------------------------------------------|
//! | 0x00 | hello    | version u16, max_frame u32                          |
//! | 0x01 | request  | id u32, piece [32], offset u32, length u32          |
//! | 0x02 | data     | id u32, offset u32, bytes…                          |
//! | 0x03 | missing  | id u32                                              |
//! | 0x04 | busy     | id u32, retry_after_ms u32                          |
//! | 0x05 | cancel   | id u32                                              |
//! | 0x06 | error    | code u16, reason… (UTF-8)                           |
//!
//! 0x07–0x7f are reserved for later versions of this protocol, 0x80–0xff for
//! extensions; a receiver answers an unknown type with `error unsupported`
//! and carries on. Any other decode error is answered with an `error` frame
//! and the channel is closed.

use crate::hash::PieceHash;
use crate::limits::*;

/// Frame type bytes.
pub mod kind {
    /// `hello`
    pub const HELLO: u8 = 0x00;
    /// `request`
    pub const REQUEST: u8 = 0x01;
    /// `data`
    pub const DATA: u8 = 0x02;
    /// `missing`
    pub const MISSING: u8 = 0x03;
    /// `busy`
    pub const BUSY: u8 = 0x04;
    /// `cancel`
    pub const CANCEL: u8 = 0x05;
    /// `error`
    pub const ERROR: u8 = 0x06;
}

/// Bytes before the payload of a `data` frame.
pub const DATA_HEADER_LEN: usize = 9;

/// One peer wire frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Sent once by each side when the channel opens. Until the remote's
    /// hello arrives, frames are at most [`DEFAULT_MAX_FRAME`]; after it, at
    /// most the smaller of both ends' `max_frame`.
    Hello {
        /// [`PROTOCOL_VERSION`].
        version: u16,
        /// Largest frame this end accepts: [`DEFAULT_MAX_FRAME`]..=[`LARGE_MAX_FRAME`].
        max_frame: u32,
    },
    /// Ask for `length` bytes of `piece` from `offset`.
    Request {
        /// Chosen by the requester; unique among its open requests.
        id: u32,
        /// The piece.
        piece: PieceHash,
        /// Start within the piece.
        offset: u32,
        /// Bytes wanted; 1..=[`MAX_PIECE_SIZE`], and `offset + length` within it.
        length: u32,
    },
    /// Part of the answer to request `id`: consecutive, in order, non-empty,
    /// until `length` bytes have been sent.
    Data {
        /// The request.
        id: u32,
        /// Position of `bytes` within the piece.
        offset: u32,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// The sender does not hold that piece (or that range of it).
    Missing {
        /// The request.
        id: u32,
    },
    /// The sender's upload budget is spent: ask someone else now.
    Busy {
        /// The request.
        id: u32,
        /// When this sender may have budget again (a hint; 0: unknown).
        retry_after_ms: u32,
    },
    /// The requester no longer wants request `id`; the sender stops sending it.
    Cancel {
        /// The request.
        id: u32,
    },
    /// The sender refuses something the receiver sent.
    Error {
        /// What went wrong.
        code: WireErrorCode,
        /// Human-readable detail, at most [`MAX_WIRE_REASON_LEN`] bytes.
        reason: &'a str,
    },
}

/// Codes of the wire `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireErrorCode {
    /// 1: a frame did not decode; the sender of the error closes the channel.
    Malformed,
    /// 2: a frame was larger than allowed; the channel is closed.
    TooLarge,
    /// 3: the versions in `hello` are incompatible; the channel is closed.
    UnsupportedVersion,
    /// 4: an unknown frame type; the channel stays open.
    Unsupported,
    /// 5: a well-formed frame out of place (e.g. `data` for no request).
    Protocol,
    /// Any other code, from a newer peer.
    Other(u16),
}

impl WireErrorCode {
    /// The code on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            WireErrorCode::Malformed => 1,
            WireErrorCode::TooLarge => 2,
            WireErrorCode::UnsupportedVersion => 3,
            WireErrorCode::Unsupported => 4,
            WireErrorCode::Protocol => 5,
            WireErrorCode::Other(n) => n,
        }
    }

    /// The code read from the wire.
    pub fn from_u16(n: u16) -> Self {
        match n {
            1 => WireErrorCode::Malformed,
            2 => WireErrorCode::TooLarge,
            3 => WireErrorCode::UnsupportedVersion,
            4 => WireErrorCode::Unsupported,
            5 => WireErrorCode::Protocol,
            n => WireErrorCode::Other(n),
        }
    }
}

/// Why a frame did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A zero-length message.
    #[error("empty frame")]
    Empty,
    /// Larger than the receiver's limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A type byte this version does not know (reserved or extension).
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// Shorter than its fixed fields, or longer for a fixed-size frame.
    #[error("frame type {kind:#04x} must be {expected} bytes, got {got}")]
    BadLength {
        /// The type byte.
        kind: u8,
        /// The size its fields need (the minimum, for `data` and `error`).
        expected: usize,
        /// What arrived.
        got: usize,
    },
    /// A field outside its range.
    #[error("frame field `{0}` out of range")]
    OutOfRange(&'static str),
    /// The `error` reason is not UTF-8.
    #[error("error reason is not UTF-8")]
    BadUtf8,
}

impl WireError {
    /// The code to send back before acting on this error.
    pub fn code(&self) -> WireErrorCode {
        match self {
            WireError::TooLarge { .. } => WireErrorCode::TooLarge,
            WireError::UnknownType(_) => WireErrorCode::Unsupported,
            _ => WireErrorCode::Malformed,
        }
    }

    /// Whether the receiver must close the channel (everything but an
    /// unknown type, which newer peers may send on purpose).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, WireError::UnknownType(_))
    }
}

/// Reads fixed fields off the front of a frame body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        // Callers check the frame length first; a short read yields zeros and
        // is unreachable, but never panics.
        let mut out = [0u8; N];
        if let Some((head, rest)) = self.0.split_first_chunk::<N>() {
            out = *head;
            self.0 = rest;
        }
        out
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }
}

fn exact(buf: &[u8], kind: u8, len: usize) -> Result<(), WireError> {
    if buf.len() == len {
        Ok(())
    } else {
        Err(WireError::BadLength {
            kind,
            expected: len,
            got: buf.len(),
        })
    }
}

fn at_least(buf: &[u8], kind: u8, len: usize) -> Result<(), WireError> {
    if buf.len() >= len {
        Ok(())
    } else {
        Err(WireError::BadLength {
            kind,
            expected: len,
            got: buf.len(),
        })
    }
}

impl<'a> Frame<'a> {
    /// Decodes one frame of at most `max_frame` bytes (the limit in force on
    /// this channel: [`DEFAULT_MAX_FRAME`] until both hellos are exchanged).
    pub fn decode(buf: &'a [u8], max_frame: usize) -> Result<Self, WireError> {
        if buf.len() > max_frame {
            return Err(WireError::TooLarge {
                len: buf.len(),
                max: max_frame,
            });
        }
        let Some((&t, _)) = buf.split_first() else {
            return Err(WireError::Empty);
        };
        let mut r = Reader(&buf[1..]);
        let frame = match t {
            kind::HELLO => {
                exact(buf, t, 7)?;
                let version = r.u16();
                let max_frame = r.u32();
                if max_frame < DEFAULT_MAX_FRAME {
                    return Err(WireError::OutOfRange("max_frame"));
                }
                Frame::Hello { version, max_frame }
            }
            kind::REQUEST => {
                exact(buf, t, 45)?;
                let id = r.u32();
                let piece = PieceHash::from_bytes(r.take());
                let offset = r.u32();
                let length = r.u32();
                let end = u64::from(offset) + u64::from(length);
                if length == 0 || end > u64::from(MAX_PIECE_SIZE) {
                    return Err(WireError::OutOfRange("length"));
                }
                Frame::Request {
                    id,
                    piece,
                    offset,
                    length,
                }
            }
            kind::DATA => {
                at_least(buf, t, DATA_HEADER_LEN + 1)?;
                let id = r.u32();
                let offset = r.u32();
                let bytes = &buf[DATA_HEADER_LEN..];
                let end = u64::from(offset) + bytes.len() as u64;
                if end > u64::from(MAX_PIECE_SIZE) {
                    return Err(WireError::OutOfRange("offset"));
                }
                Frame::Data { id, offset, bytes }
            }
            kind::MISSING => {
                exact(buf, t, 5)?;
                Frame::Missing { id: r.u32() }
            }
            kind::BUSY => {
                exact(buf, t, 9)?;
                Frame::Busy {
                    id: r.u32(),
                    retry_after_ms: r.u32(),
                }
            }
            kind::CANCEL => {
                exact(buf, t, 5)?;
                Frame::Cancel { id: r.u32() }
            }
            kind::ERROR => {
                at_least(buf, t, 3)?;
                let code = WireErrorCode::from_u16(r.u16());
                let tail = &buf[3..];
                if tail.len() > MAX_WIRE_REASON_LEN {
                    return Err(WireError::OutOfRange("reason"));
                }
                let reason = std::str::from_utf8(tail).map_err(|_| WireError::BadUtf8)?;
                Frame::Error { code, reason }
            }
            other => return Err(WireError::UnknownType(other)),
        };
        Ok(frame)
    }

    /// Appends the encoded frame to `out`. The caller keeps frames within the
    /// limit in force ([`Frame::encoded_len`]); see [`data_header`] to send
    /// a payload without copying it.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match *self {
            Frame::Hello { version, max_frame } => {
                out.push(kind::HELLO);
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&max_frame.to_be_bytes());
            }
            Frame::Request {
                id,
                piece,
                offset,
                length,
            } => {
                out.push(kind::REQUEST);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(piece.as_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&length.to_be_bytes());
            }
            Frame::Data { id, offset, bytes } => {
                out.extend_from_slice(&data_header(id, offset));
                out.extend_from_slice(bytes);
            }
            Frame::Missing { id } => {
                out.push(kind::MISSING);
                out.extend_from_slice(&id.to_be_bytes());
            }
            Frame::Busy { id, retry_after_ms } => {
                out.push(kind::BUSY);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&retry_after_ms.to_be_bytes());
            }
            Frame::Cancel { id } => {
                out.push(kind::CANCEL);
                out.extend_from_slice(&id.to_be_bytes());
            }
            Frame::Error { code, reason } => {
                out.push(kind::ERROR);
                out.extend_from_slice(&code.to_u16().to_be_bytes());
                out.extend_from_slice(truncate_utf8(reason, MAX_WIRE_REASON_LEN).as_bytes());
            }
        }
    }

    /// The encoded frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Length of the encoded frame.
    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Hello { .. } => 7,
            Frame::Request { .. } => 45,
            Frame::Data { bytes, .. } => DATA_HEADER_LEN + bytes.len(),
            Frame::Missing { .. } | Frame::Cancel { .. } => 5,
            Frame::Busy { .. } => 9,
            Frame::Error { reason, .. } => 3 + truncate_utf8(reason, MAX_WIRE_REASON_LEN).len(),
        }
    }
}

/// The 9-byte header of a `data` frame; the payload follows it.
pub fn data_header(id: u32, offset: u32) -> [u8; DATA_HEADER_LEN] {
    let mut h = [0u8; DATA_HEADER_LEN];
    h[0] = kind::DATA;
    h[1..5].copy_from_slice(&id.to_be_bytes());
    h[5..9].copy_from_slice(&offset.to_be_bytes());
    h
}

/// The frame limit once both ends have said hello: the smaller of the two
/// advertisements, clamped to [`DEFAULT_MAX_FRAME`]..=[`LARGE_MAX_FRAME`].
pub fn negotiated_max_frame(mine: u32, theirs: u32) -> u32 {
    mine.min(theirs).clamp(DEFAULT_MAX_FRAME, LARGE_MAX_FRAME)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_snapshot() {
        let f = Frame::Request {
            id: 0x01020304,
            piece: PieceHash::from_bytes([0xab; 32]),
            offset: 65536,
            length: 16,
        };
        let bytes = f.encode();
        assert_eq!(
            hex::encode(&bytes),
            format!("0101020304{}0001000000000010", "ab".repeat(32))
        );
        assert_eq!(Frame::decode(&bytes, 64 * 1024).unwrap(), f);
    }

    #[test]
    fn data_header_matches_the_encoder() {
        let payload = [9u8; 100];
        let f = Frame::Data {
            id: 7,
            offset: 300,
            bytes: &payload,
        };
        let mut manual = data_header(7, 300).to_vec();
        manual.extend_from_slice(&payload);
        assert_eq!(f.encode(), manual);
        assert_eq!(f.encoded_len(), manual.len());
    }

    #[test]
    fn limits_are_enforced() {
        let payload = vec![1u8; 64 * 1024 + 1 - DATA_HEADER_LEN];
        let big = Frame::Data {
            id: 1,
            offset: 0,
            bytes: &payload,
        }
        .encode();
        assert!(matches!(
            Frame::decode(&big, 64 * 1024),
            Err(WireError::TooLarge { .. })
        ));
        assert!(Frame::decode(&big, 256 * 1024).is_ok());
        let zero_len = Frame::Request {
            id: 1,
            piece: PieceHash::of(b""),
            offset: 0,
            length: 0,
        };
        assert_eq!(
            Frame::decode(&zero_len.encode(), 1 << 16),
            Err(WireError::OutOfRange("length"))
        );
        let past_end = Frame::Request {
            id: 1,
            piece: PieceHash::of(b""),
            offset: u32::MAX,
            length: u32::MAX,
        };
        assert_eq!(
            Frame::decode(&past_end.encode(), 1 << 16),
            Err(WireError::OutOfRange("length"))
        );
        assert_eq!(
            Frame::decode(&[0x07], 1 << 16),
            Err(WireError::UnknownType(7))
        );
        assert!(!WireError::UnknownType(7).is_fatal());
        assert!(WireError::Empty.is_fatal());
    }

    #[test]
    fn error_reason_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(200); // 400 bytes
        let f = Frame::Error {
            code: WireErrorCode::Protocol,
            reason: &long,
        };
        let bytes = f.encode();
        assert_eq!(bytes.len(), 3 + 256);
        let Frame::Error { reason, .. } = Frame::decode(&bytes, 1 << 16).unwrap() else {
            panic!("not an error frame");
        };
        assert_eq!(reason.chars().count(), 128);
    }

    #[test]
    fn negotiation_takes_the_smaller_and_clamps() {
        assert_eq!(negotiated_max_frame(262_144, 65_536), 65_536);
        assert_eq!(negotiated_max_frame(262_144, 262_144), 262_144);
        assert_eq!(negotiated_max_frame(1 << 30, 1 << 30), 262_144);
    }
}
