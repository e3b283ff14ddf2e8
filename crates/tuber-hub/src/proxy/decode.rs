//! Content codings the proxy can undo as a stream: the HTML it rewrites and
//! the playlists it reads may come gzip-, deflate- or brotli-compressed.

use std::io;
use std::pin::Pin;

use async_compression::tokio::bufread::{BrotliDecoder, DeflateDecoder, GzipDecoder};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use http::{header, HeaderMap};
use http_body_util::BodyExt;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, BufReader};
use tokio_util::io::{ReaderStream, StreamReader};

/// A boxed byte stream, the currency between the stages of a rewrite.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

type BoxBufRead = Pin<Box<dyn AsyncBufRead + Send>>;

/// Read size of decoders: large enough that a 1 GiB page costs few wakeups.
const DECODE_CHUNK: usize = 64 * 1024;

/// A content coding the proxy can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// No `Content-Encoding`, or `identity`.
    Identity,
    /// `gzip` / `x-gzip`.
    Gzip,
    /// `deflate`: zlib-wrapped per RFC 9110, raw deflate from some servers.
    Deflate,
    /// `br`.
    Brotli,
}

impl Coding {
    /// The response's single coding, or `None` when it is one the proxy
    /// cannot undo (zstd, a chain of several): such bodies pass untouched.
    pub(crate) fn of(headers: &HeaderMap) -> Option<Coding> {
        let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
        let Some(first) = values.next() else {
            return Some(Coding::Identity);
        };
        if values.next().is_some() {
            return None;
        }
        let value = first.to_str().ok()?.trim().to_ascii_lowercase();
        match value.as_str() {
            "" | "identity" => Some(Coding::Identity),
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Brotli),
            _ => None,
        }
    }
}

/// The body's data frames as a byte stream.
pub(crate) fn body_stream<B>(body: B) -> ByteStream
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Box::pin(body.into_data_stream().map_err(io::Error::other))
}

/// Decodes `input` as a stream. Nothing is read until the result is polled,
/// so response headers never wait for the body.
pub(crate) fn decode(coding: Coding, input: ByteStream) -> ByteStream {
    if coding == Coding::Identity {
        return input;
    }
    let reader: BoxBufRead = Box::pin(StreamReader::new(input));
    let opened = async move { decoder(coding, reader).await.map(reader_stream) };
    Box::pin(futures_util::stream::once(opened).try_flatten())
}

fn reader_stream(reader: Pin<Box<dyn AsyncRead + Send>>) -> ByteStream {
    Box::pin(ReaderStream::with_capacity(reader, DECODE_CHUNK))
}

/// Decodes a whole, already bounded buffer (a collected playlist), reading at
/// most `limit` decoded bytes; `None` when the result would be longer.
pub(crate) async fn decode_bounded(
    coding: Coding,
    bytes: Vec<u8>,
    limit: usize,
) -> io::Result<Option<Vec<u8>>> {
    if coding == Coding::Identity {
        return Ok((bytes.len() <= limit).then_some(bytes));
    }
    let reader: BoxBufRead = Box::pin(io::Cursor::new(bytes));
    let decoded = decoder(coding, reader).await?;
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoded.take(cap).read_to_end(&mut out).await?;
    Ok((out.len() <= limit).then_some(out))
}

async fn decoder(
    coding: Coding,
    mut reader: BoxBufRead,
) -> io::Result<Pin<Box<dyn AsyncRead + Send>>> {
    Ok(match coding {
        Coding::Identity => Box::pin(reader),
        Coding::Gzip => {
            let mut d = GzipDecoder::new(reader);
            // Some servers concatenate gzip members; browsers accept that.
            d.multiple_members(true);
            Box::pin(d)
        }
        Coding::Brotli => Box::pin(BrotliDecoder::new(reader)),
        Coding::Deflate => {
            // The crate's features give raw deflate only, and HTTP's
            // "deflate" is usually zlib: skip a zlib header when there is
            // one. The Adler-32 trailer after the deflate stream is left
            // unread (the decoder stops at the stream's end).
            let mut head = [0u8; 2];
            let n = read_up_to(&mut reader, &mut head).await?;
            let rest: BoxBufRead = if n == 2 && zlib_header(head)? {
                reader
            } else {
                let first = io::Cursor::new(head[..n].to_vec());
                Box::pin(BufReader::new(first.chain(reader)))
            };
            Box::pin(DeflateDecoder::new(rest))
        }
    })
}

/// Reads until `buf` is full or the input ends; returns how much was read.
async fn read_up_to(reader: &mut BoxBufRead, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = reader.read(&mut buf[n..]).await?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

/// Whether two bytes are a zlib header (RFC 1950: method 8, check bits);
/// a header that asks for a preset dictionary cannot be decoded.
fn zlib_header(head: [u8; 2]) -> io::Result<bool> {
    let [cmf, flg] = head;
    let is_zlib =
        cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0;
    if is_zlib && flg & 0x20 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "zlib stream with a preset dictionary",
        ));
    }
    Ok(is_zlib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_headers_are_recognised() {
        assert!(zlib_header([0x78, 0x9c]).unwrap());
        assert!(zlib_header([0x78, 0x01]).unwrap());
        assert!(zlib_header([0x78, 0xda]).unwrap());
        // Raw deflate typically starts with a block header, not a zlib one.
        assert!(!zlib_header([0xcb, 0x48]).unwrap());
        assert!(zlib_header([0x78, 0xbb]).is_err());
    }

    #[test]
    fn codings_are_parsed() {
        let mut h = HeaderMap::new();
        assert_eq!(Coding::of(&h), Some(Coding::Identity));
        h.insert(header::CONTENT_ENCODING, "GZIP".parse().unwrap());
        assert_eq!(Coding::of(&h), Some(Coding::Gzip));
        h.insert(header::CONTENT_ENCODING, "zstd".parse().unwrap());
        assert_eq!(Coding::of(&h), None);
        h.append(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert_eq!(Coding::of(&h), None);
    }
}
