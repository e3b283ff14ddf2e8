//! The Gateway: a STUN binding server (RFC 5389) on UDP, so peers learn the
//! address the internet sees them at. Advertised in the swarm descriptor's
//! ICE servers.
//!
//! Only Binding requests with the RFC 5389 magic cookie are answered, with
//! XOR-MAPPED-ADDRESS alone. Everything else (responses, indications, other
//! methods, malformed datagrams) is dropped without an answer: a reflector
//! that answers garbage is an amplifier. An answer is 32 bytes (IPv4) or 44
//! (IPv6) to a request of at least 20, and the codec is pure so that it is
//! tested without sockets.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use tokio::net::UdpSocket;

/// The RFC 5389 magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header.
pub const HEADER_LEN: usize = 20;
/// Largest datagram read; STUN over UDP stays well under the path MTU.
pub const MAX_DATAGRAM: usize = 1500;

const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// A STUN transaction id.
pub type TransactionId = [u8; 12];

/// Why a datagram is not a Binding request we answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Shorter than the header, or attributes overrun the datagram.
    #[error("truncated STUN message")]
    Truncated,
    /// The first two bits are not zero, or the cookie is wrong.
    #[error("not a STUN message")]
    NotStun,
    /// A valid STUN message that is not a Binding request.
    #[error("STUN message type {0:#06x} is not a binding request")]
    NotBindingRequest(u16),
    /// The length field is not a multiple of 4 or disagrees with the datagram.
    #[error("bad STUN length")]
    BadLength,
}

/// Parses a Binding request and returns its transaction id.
pub fn parse_binding_request(buf: &[u8]) -> Result<TransactionId, StunError> {
    let Some((header, body)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return Err(StunError::Truncated);
    };
    let msg_type = u16::from_be_bytes([header[0], header[1]]);
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let cookie = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if msg_type & 0xC000 != 0 || cookie != MAGIC_COOKIE {
        return Err(StunError::NotStun);
    }
    if len % 4 != 0 || len != body.len() {
        return Err(StunError::BadLength);
    }
    // Attributes: type u16, length u16, value padded to 4 bytes. We use none
    // of a request's attributes, but a message whose attributes overrun it
    // is malformed.
    let mut rest = body;
    while !rest.is_empty() {
        let Some((attr, after)) = rest.split_first_chunk::<4>() else {
            return Err(StunError::Truncated);
        };
        let alen = usize::from(u16::from_be_bytes([attr[2], attr[3]]));
        let padded = alen.div_ceil(4) * 4;
        rest = after.get(padded..).ok_or(StunError::Truncated)?;
    }
    if msg_type != BINDING_REQUEST {
        return Err(StunError::NotBindingRequest(msg_type));
    }
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&header[8..20]);
    Ok(tid)
}

/// A Binding success response telling the client `addr`.
pub fn binding_success(tid: &TransactionId, addr: SocketAddr) -> Vec<u8> {
    let xor_port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let (family, xored): (u8, Vec<u8>) = match addr.ip() {
        IpAddr::V4(ip) => (1, (u32::from(ip) ^ MAGIC_COOKIE).to_be_bytes().to_vec()),
        IpAddr::V6(ip) => {
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            key[4..].copy_from_slice(tid);
            (2, ip.octets().iter().zip(key).map(|(a, k)| a ^ k).collect())
        }
    };
    let mut attrs = Vec::with_capacity(24);
    attrs.extend_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
    attrs.extend_from_slice(&(4 + xored.len() as u16).to_be_bytes());
    attrs.extend_from_slice(&[0, family]);
    attrs.extend_from_slice(&xor_port.to_be_bytes());
    attrs.extend_from_slice(&xored);
    let mut out = Vec::with_capacity(HEADER_LEN + attrs.len());
    out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(tid);
    out.extend_from_slice(&attrs);
    out
}

/// Reads the XOR-MAPPED-ADDRESS of a Binding success response (used by tests
/// and by peers that check their own public address).
pub fn parse_binding_success(buf: &[u8]) -> Option<(TransactionId, SocketAddr)> {
    let (header, mut rest) = buf.split_first_chunk::<HEADER_LEN>()?;
    if u16::from_be_bytes([header[0], header[1]]) != BINDING_SUCCESS {
        return None;
    }
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&header[8..20]);
    while let Some((attr, after)) = rest.split_first_chunk::<4>() {
        let kind = u16::from_be_bytes([attr[0], attr[1]]);
        let len = usize::from(u16::from_be_bytes([attr[2], attr[3]]));
        let value = after.get(..len)?;
        if kind == ATTR_XOR_MAPPED_ADDRESS && len >= 8 {
            let port = u16::from_be_bytes([value[2], value[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
            let ip = match (value[1], len) {
                (1, 8) => {
                    let x = u32::from_be_bytes([value[4], value[5], value[6], value[7]]);
                    IpAddr::from((x ^ MAGIC_COOKIE).to_be_bytes())
                }
                (2, 20) => {
                    let mut key = [0u8; 16];
                    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                    key[4..].copy_from_slice(&tid);
                    let mut o = [0u8; 16];
                    for (i, b) in o.iter_mut().enumerate() {
                        *b = value[4 + i] ^ key[i];
                    }
                    IpAddr::from(o)
                }
                _ => return None,
            };
            return Some((tid, SocketAddr::new(ip, port)));
        }
        rest = after.get(len.div_ceil(4) * 4..)?;
    }
    None
}

/// Answers Binding requests on `socket` until `shutdown` resolves. Errors on
/// one datagram never stop the loop.
pub async fn serve(socket: UdpSocket, shutdown: impl Future<Output = ()>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            received = socket.recv_from(&mut buf) => {
                let (n, from) = match received {
                    Ok(r) => r,
                    Err(e) => {
                        // ICMP errors from earlier sends surface here on some
                        // systems; they concern one client, not the server.
                        tracing::debug!(error = %e, "stun recv");
                        continue;
                    }
                };
                match parse_binding_request(&buf[..n]) {
                    Ok(tid) => {
                        let reply = binding_success(&tid, from);
                        if let Err(e) = socket.send_to(&reply, from).await {
                            tracing::debug!(error = %e, "stun send");
                        }
                    }
                    Err(e) => tracing::trace!(error = %e, len = n, "stun: dropped datagram"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tid: TransactionId, attrs: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&tid);
        m.extend_from_slice(attrs);
        m
    }

    #[test]
    fn rfc5769_ipv4_response_vector_decodes() {
        // RFC 5769 §2.2 sample IPv4 response: 192.0.2.1:32853.
        let msg = hex_literal(
            "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220\
             002000080001a147e112a643\
             000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7\
             80280004c07d4c96",
        );
        let (tid, addr) = parse_binding_success(&msg).expect("decodes");
        assert_eq!(tid, hex_literal("b7e7a701bc34d686fa87dfae")[..]);
        assert_eq!(addr, "192.0.2.1:32853".parse().expect("addr"));
    }

    #[test]
    fn round_trip_v4_and_v6() {
        let tid = [7u8; 12];
        for a in ["203.0.113.9:3478", "[2001:db8::1]:61000"] {
            let addr: SocketAddr = a.parse().expect("addr");
            let reply = binding_success(&tid, addr);
            assert_eq!(parse_binding_success(&reply), Some((tid, addr)));
        }
    }

    #[test]
    fn requests_with_attributes_parse_and_garbage_does_not() {
        let tid = [1u8; 12];
        // SOFTWARE attribute "abc" padded to 4.
        let attrs = [0x80, 0x22, 0x00, 0x03, b'a', b'b', b'c', 0];
        assert_eq!(parse_binding_request(&request(tid, &attrs)), Ok(tid));
        assert_eq!(parse_binding_request(&request(tid, &[])), Ok(tid));
        let mut overrun = request(tid, &[0x80, 0x22, 0x00, 0x09, 1, 2, 3, 4]);
        assert_eq!(parse_binding_request(&overrun), Err(StunError::Truncated));
        overrun[4] = 0;
        assert_eq!(parse_binding_request(&overrun), Err(StunError::NotStun));
        assert_eq!(parse_binding_request(&[0u8; 19]), Err(StunError::Truncated));
        let mut response = binding_success(&tid, "127.0.0.1:1".parse().expect("addr"));
        assert_eq!(
            parse_binding_request(&response),
            Err(StunError::NotBindingRequest(BINDING_SUCCESS))
        );
        response.push(0);
        assert_eq!(parse_binding_request(&response), Err(StunError::BadLength));
    }

    #[test]
    fn answers_are_small() {
        let v4 = binding_success(&[0; 12], "192.0.2.1:1".parse().expect("addr"));
        let v6 = binding_success(&[0; 12], "[2001:db8::1]:1".parse().expect("addr"));
        assert_eq!((v4.len(), v6.len()), (32, 44));
    }

    fn hex_literal(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect::<String>().replace('\\', "");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }
}
