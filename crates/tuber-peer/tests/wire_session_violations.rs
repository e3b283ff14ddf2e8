//! One session fed hand-made messages: protocol violations get the right
//! error code and close (or not), and random input never panics nor makes
//! the session send a frame over the limit in force.

mod wire_session_support;
use wire_session_support as common;

use std::time::Instant;

use bytes::Bytes;
use common::error_code;
use tuber_peer::wire_session::{CloseReason, Event, WireSession, WireSessionConfig};
use tuber_proto::wire::WireErrorCode;
use tuber_proto::{Frame, PieceHash};

/// The protocol version this build speaks.
const V: u16 = tuber_proto::limits::PROTOCOL_VERSION;

fn hello(version: u16, max_frame: u32) -> Vec<u8> {
    Frame::Hello { version, max_frame }.encode()
}

fn data(id: u32, offset: u32, bytes: &[u8]) -> Vec<u8> {
    Frame::Data { id, offset, bytes }.encode()
}

/// An opened session whose `hello` was sent.
fn opened(now: Instant) -> WireSession {
    let mut s = WireSession::new(now, WireSessionConfig::default());
    s.handle_open(now);
    assert_eq!(s.poll_transmit().map(|m| m[0]), Some(0x00));
    s
}

/// An opened session that also received the remote's hello.
fn ready(now: Instant) -> WireSession {
    let mut s = opened(now);
    s.handle_message(now, &hello(V, 65_536));
    assert!(s.is_ready());
    s
}

fn drain(s: &mut WireSession) -> Vec<Bytes> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

/// Asserts the session answered with exactly one `error` of `code` and closed.
fn assert_refused(s: &mut WireSession, code: u16) {
    let sent = drain(s);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(error_code(&sent[0]), Some(code));
    assert!(s.is_closed());
    assert!(matches!(
        s.close_reason(),
        Some(CloseReason::Refused { code: c, .. }) if c.to_u16() == code
    ));
    let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(matches!(events.last(), Some(Event::Closed(_))));
}

#[test]
fn data_before_hello_is_a_protocol_error() {
    let now = Instant::now();
    let mut s = opened(now);
    s.handle_message(now, &data(1, 0, b"x"));
    assert_refused(&mut s, 5);
    // Nothing more once closed.
    s.handle_message(now, &hello(V, 65_536));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn second_hello_and_wrong_version() {
    let now = Instant::now();
    let mut s = ready(now);
    s.handle_message(now, &hello(V, 65_536));
    assert_refused(&mut s, 5);

    let mut s = opened(now);
    // A peer of the previous protocol version.
    s.handle_message(now, &hello(V - 1, 65_536));
    assert_refused(&mut s, 3);
}

#[test]
fn data_out_of_order_past_length_or_unknown() {
    let now = Instant::now();
    let piece = PieceHash::of(b"p");
    let with_request = |len| {
        let mut s = ready(now);
        let id = s.request(now, piece, 100, len, false).unwrap().as_u32();
        drain(&mut s);
        (s, id)
    };

    let (mut s, id) = with_request(10);
    s.handle_message(now, &data(id, 100, b"abc"));
    s.handle_message(now, &data(id, 104, b"def"));
    assert_refused(&mut s, 5);

    let (mut s, id) = with_request(10);
    s.handle_message(now, &data(id, 100, &[7; 11]));
    assert_refused(&mut s, 5);

    let (mut s, id) = with_request(10);
    s.handle_message(now, &data(id + 1, 100, b"abc"));
    assert_refused(&mut s, 5);

    let (mut s, id) = with_request(10);
    s.handle_message(now, &Frame::Missing { id: id + 1 }.encode());
    assert_refused(&mut s, 5);
}

#[test]
fn duplicate_request_id_is_a_protocol_error() {
    let now = Instant::now();
    let mut s = ready(now);
    let req = Frame::Request {
        id: 9,
        piece: PieceHash::of(b"p"),
        offset: 0,
        length: 10,
    }
    .encode();
    s.handle_message(now, &req);
    assert!(matches!(s.poll_event(), Some(Event::Requested { .. })));
    s.handle_message(now, &req);
    assert_refused(&mut s, 5);
}

#[test]
fn text_and_garbage_messages() {
    let now = Instant::now();
    // A text DataChannel message: malformed, close.
    let mut s = ready(now);
    s.handle_text_message(now);
    assert_refused(&mut s, 1);

    // Text-like bytes in a binary message: 'h' (0x68) and '{' (0x7b) are
    // reserved types: unsupported, the channel stays.
    let mut s = ready(now);
    for garbage in [&b"hello world"[..], br#"{"type":"hello"}"#, &[0x80, 1, 2]] {
        s.handle_message(now, garbage);
        let sent = drain(&mut s);
        assert_eq!(sent.len(), 1);
        assert_eq!(error_code(&sent[0]), Some(4));
        assert!(!s.is_closed());
    }
    // Still usable.
    s.handle_message(now, &Frame::Cancel { id: 1 }.encode());
    assert!(!s.is_closed());

    // A bad length: malformed, close.
    let mut s = ready(now);
    s.handle_message(now, &[0x03, 0, 0]);
    assert_refused(&mut s, 1);

    // Empty: malformed, close.
    let mut s = ready(now);
    s.handle_message(now, &[]);
    assert_refused(&mut s, 1);
}

#[test]
fn frames_over_the_limit_in_force_are_too_large() {
    let now = Instant::now();
    // 64 KiB + 1 before hello, even though we advertise 256 KiB.
    let mut s = WireSession::new(now, WireSessionConfig::default().with_large_frames());
    s.handle_open(now);
    drain(&mut s);
    s.handle_message(now, &data(1, 0, &vec![0; 65_536 - 8]));
    assert_refused(&mut s, 2);
}

#[test]
fn error_frames_are_never_answered() {
    let now = Instant::now();
    // A fatal error from the remote closes, silently.
    let mut s = ready(now);
    let err = Frame::Error {
        code: WireErrorCode::Protocol,
        reason: "nope",
    };
    s.handle_message(now, &err.encode());
    assert!(s.is_closed());
    assert!(drain(&mut s).is_empty());
    assert!(matches!(s.close_reason(), Some(CloseReason::Remote { .. })));

    // A malformed error frame (bad UTF-8) closes without an answer.
    let mut s = ready(now);
    s.handle_message(now, &[0x06, 0, 5, 0xff]);
    assert!(s.is_closed());
    assert!(drain(&mut s).is_empty());

    // An unsupported error keeps the channel, and is not answered either.
    let mut s = opened(now);
    let err = Frame::Error {
        code: WireErrorCode::Unsupported,
        reason: "",
    };
    s.handle_message(now, &err.encode());
    assert!(!s.is_closed());
    assert!(drain(&mut s).is_empty());
    assert!(matches!(s.poll_event(), Some(Event::RemoteError { .. })));
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A message that is often nearly valid, so the fuzzing reaches past decode.
fn message(rng: &mut Rng) -> Vec<u8> {
    let id = rng.below(4) as u32;
    let offset = rng.below(70_000) as u32;
    match rng.below(10) {
        0 => hello(rng.below(3) as u16, 65_536 + rng.below(300_000) as u32),
        1 => Frame::Request {
            id,
            piece: PieceHash::of(&[rng.below(2) as u8]),
            offset,
            length: 1 + rng.below(300_000) as u32,
        }
        .encode(),
        2 => data(id, offset, &vec![1; 1 + rng.below(70_000) as usize]),
        3 => Frame::Cancel { id }.encode(),
        4 => Frame::Busy {
            id,
            retry_after_ms: offset,
        }
        .encode(),
        5 => Frame::Missing { id }.encode(),
        _ => {
            let max = if rng.below(4) == 0 { 300_000 } else { 64 };
            let len = rng.below(max) as usize;
            let mut msg: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let (Some(first), true) = (msg.first_mut(), rng.below(2) == 0) {
                *first %= 8;
            }
            msg
        }
    }
}

#[test]
fn random_messages_never_panic_nor_exceed_the_limit() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let base = Instant::now();
    for case in 0..400 {
        let config = if rng.below(2) == 0 {
            WireSessionConfig::default()
        } else {
            WireSessionConfig::default().with_large_frames()
        };
        let mut s = WireSession::new(base, config);
        s.handle_open(base);
        if rng.below(4) != 0 {
            s.handle_message(base, &hello(V, 65_536 + rng.below(300_000) as u32));
        }
        for step in 0..40u64 {
            let now = base + std::time::Duration::from_millis(step * 500);
            match rng.below(8) {
                0 => {
                    let _ = s.request(
                        now,
                        PieceHash::of(b"p"),
                        rng.below(1000) as u32,
                        1 + rng.below(200_000) as u32,
                        false,
                    );
                }
                1 => s.handle_timeout(now),
                _ => s.handle_message(now, &message(&mut rng)),
            }
            while let Some(e) = s.poll_event() {
                if let Event::Requested { id, length, .. } = e {
                    let _ = match rng.below(3) {
                        0 => s.respond_data(id, Bytes::from(vec![3; length as usize])),
                        1 => s.respond_missing(id),
                        _ => s.respond_busy(id, 5),
                    };
                }
            }
            // Drain part of the output, so frames pile up across inputs.
            for _ in 0..rng.below(4) {
                let limit = s.max_frame() as usize;
                match s.poll_transmit() {
                    Some(msg) => assert!(
                        !msg.is_empty() && msg.len() <= limit,
                        "case {case}: frame of {} over {limit}",
                        msg.len()
                    ),
                    None => break,
                }
            }
        }
        let limit = s.max_frame() as usize;
        for msg in drain(&mut s) {
            assert!(msg.len() <= limit, "case {case}");
        }
    }
}

/// Issue #14 item 6: a remote that keeps requesting beyond the in-flight cap
/// without reading the `busy` answers cannot grow them without bound: past
/// `MAX_CONTROL_QUEUED` unread answers it is refused and the session closes.
#[test]
fn requests_over_the_cap_without_reading_are_refused_at_a_bound() {
    use tuber_peer::wire_session::MAX_CONTROL_QUEUED;
    let now = Instant::now();
    let mut s = ready(now);
    let piece = PieceHash::of(b"x");
    let request = |id: u32| {
        Frame::Request {
            id,
            piece,
            offset: 0,
            length: 1024,
        }
        .encode()
    };
    let cap = tuber_peer::wire_session::DEFAULT_MAX_IN_FLIGHT as u32;
    for id in 1..=cap {
        s.handle_message(now, &request(id));
    }
    let requested = std::iter::from_fn(|| s.poll_event())
        .filter(|e| matches!(e, Event::Requested { .. }))
        .count();
    assert_eq!(
        requested, cap as usize,
        "the in-flight cap's worth is accepted"
    );
    // Over the cap: each gets `busy`, queued while the remote reads nothing.
    for id in cap + 1..=cap + MAX_CONTROL_QUEUED as u32 {
        s.handle_message(now, &request(id));
        assert!(!s.is_closed(), "{id}");
    }
    s.handle_message(now, &request(cap + MAX_CONTROL_QUEUED as u32 + 1));
    assert_refused(&mut s, 5);
}
