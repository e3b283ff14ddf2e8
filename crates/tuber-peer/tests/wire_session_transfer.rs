//! Two sessions back to back: handshake, fetches, fairness, cancel, answers,
//! timeouts.

mod wire_session_support;
use wire_session_support as common;

use std::time::Duration;

use common::{pattern, Mode, Pair};
use tuber_peer::wire_session::{Event, RequestError, WireSessionConfig};
use tuber_proto::PieceHash;

const MIB: usize = 1024 * 1024;

fn small() -> WireSessionConfig {
    WireSessionConfig::default()
}

fn large() -> WireSessionConfig {
    WireSessionConfig::default().with_large_frames()
}

#[test]
fn handshake_negotiates_256k_only_when_both_advertise_it() {
    for (c, s, want) in [
        (small(), small(), 65_536),
        (large(), small(), 65_536),
        (small(), large(), 65_536),
        (large(), large(), 262_144),
    ] {
        let mut p = Pair::new(c, s);
        assert_eq!(p.client.max_frame(), want);
        assert_eq!(p.server.max_frame(), want);
        let piece = p.add_piece(pattern(MIB, 1));
        p.client.request(p.now, piece, 0, MIB as u32, true).unwrap();
        p.drive();
        assert_eq!(p.completed().len(), 1);
        assert!(!p.over_limit, "a frame exceeded the limit in force");
        assert_eq!(p.largest_frame, want as usize, "data frames fill the limit");
        assert!(p.data_log.iter().all(|&(_, _, n)| n + 9 <= want as usize));
    }
}

#[test]
fn fetches_a_whole_piece_and_a_partial_range() {
    let mut p = Pair::new(large(), large());
    let bytes = pattern(MIB, 7);
    let piece = p.add_piece(bytes.clone());

    let whole = p.client.request(p.now, piece, 0, MIB as u32, true).unwrap();
    let part = p
        .client
        .request(p.now, piece, 1000, 300_000, false)
        .unwrap();
    p.drive();

    let done = p.completed();
    assert_eq!(done.len(), 2);
    for (id, got) in done {
        if id == whole.as_u32() {
            assert_eq!(got, bytes);
        } else {
            assert_eq!(id, part.as_u32());
            assert_eq!(got, bytes.slice(1000..301_000));
        }
    }
    assert!(!p.client.is_closed() && !p.server.is_closed());
}

#[test]
fn two_large_answers_are_interleaved() {
    let mut p = Pair::new(small(), small());
    let a = p.add_piece(pattern(MIB, 1));
    let b = p.add_piece(pattern(MIB, 2));
    p.client.request(p.now, a, 0, MIB as u32, true).unwrap();
    p.client.request(p.now, b, 0, MIB as u32, true).unwrap();
    p.drive();

    assert_eq!(p.completed().len(), 2);
    assert_eq!(p.data_log.len(), 2 * MIB.div_ceil(65_536 - 9));
    for pair in p.data_log.windows(2) {
        assert_ne!(pair[0].0, pair[1].0, "round-robin: {:?}", p.data_log);
    }
}

#[test]
fn corrupted_bytes_are_reported() {
    let mut p = Pair::new(small(), small());
    let good = pattern(256 * 1024, 3);
    let piece = PieceHash::of(&good);
    let mut bad = good.to_vec();
    bad[100_000] ^= 1;
    p.store.insert(piece, bad.into());

    let id = p.client.request(p.now, piece, 0, 256 * 1024, true).unwrap();
    p.drive();
    assert_eq!(p.client_events, vec![Event::Corrupt { id, piece }]);
}

#[test]
fn cancel_mid_transfer_stops_the_data_and_drops_late_frames() {
    let mut p = Pair::new(small(), small());
    let piece = p.add_piece(pattern(MIB, 4));
    let id = p.client.request(p.now, piece, 0, MIB as u32, true).unwrap();
    p.flush_client();
    p.deliver_to_server();
    assert_eq!(p.flush_server(4), 4);
    assert_eq!(p.deliver_to_client(2), 2);

    assert!(p.client.cancel(p.now, id));
    assert!(!p.client.cancel(p.now, id), "already cancelled");
    let sent: usize = p.data_log.iter().map(|&(_, _, len)| len).sum();
    assert_eq!(
        p.server.unsent_answer_bytes(),
        (MIB - sent) as u64,
        "the answer's bytes still to go"
    );
    p.flush_client();
    p.deliver_to_server();
    // The cancel says how much of the answer never went out: what an
    // upload cap charged for nothing and gives back.
    let unsent = p.server_events.iter().find_map(|e| match e {
        Event::Cancelled { unsent, .. } => Some(*unsent),
        _ => None,
    });
    assert_eq!(unsent, Some((MIB - sent) as u64));
    assert_eq!(p.server.unsent_answer_bytes(), 0);
    let sent_before = p.data_log.len();
    p.flush_server(usize::MAX);
    assert_eq!(p.data_log.len(), sent_before, "no data after the cancel");

    // The two frames that crossed the cancel are dropped silently.
    assert_eq!(p.in_flight_to_client(), 2);
    p.drive();
    assert!(p.client_events.is_empty(), "{:?}", p.client_events);
    assert!(!p.client.is_closed() && !p.server.is_closed());
}

#[test]
fn busy_and_missing_propagate() {
    let mut p = Pair::new(small(), small());
    let piece = p.add_piece(pattern(1000, 5));
    let absent = PieceHash::of(b"absent");

    let id = p.client.request(p.now, absent, 0, 10, false).unwrap();
    p.drive();
    assert_eq!(p.client_events, vec![Event::Missing { id }]);

    // A range past the piece's end is missing too.
    p.client_events.clear();
    let id = p.client.request(p.now, piece, 900, 200, false).unwrap();
    p.drive();
    assert_eq!(p.client_events, vec![Event::Missing { id }]);

    p.client_events.clear();
    p.mode = Mode::Busy(250);
    let id = p.client.request(p.now, piece, 0, 1000, true).unwrap();
    p.drive();
    let retry_after = Some(Duration::from_millis(250));
    assert_eq!(p.client_events, vec![Event::Busy { id, retry_after }]);

    p.client_events.clear();
    p.mode = Mode::Busy(0);
    let id = p.client.request(p.now, piece, 0, 1000, true).unwrap();
    p.drive();
    let busy = Event::Busy {
        id,
        retry_after: None,
    };
    assert_eq!(p.client_events, vec![busy]);
}

#[test]
fn requests_beyond_the_servers_cap_are_busy_at_once() {
    let server = WireSessionConfig {
        max_in_flight: 2,
        ..small()
    };
    let mut p = Pair::new(small(), server);
    p.mode = Mode::Hold;
    let piece = p.add_piece(pattern(1000, 6));
    for _ in 0..3 {
        p.client.request(p.now, piece, 0, 1000, true).unwrap();
    }
    p.drive();
    assert_eq!(p.held.len(), 2);
    assert!(matches!(
        p.client_events.as_slice(),
        [Event::Busy {
            retry_after: None,
            ..
        }]
    ));
}

#[test]
fn our_own_caps_and_ranges_are_checked() {
    let client = WireSessionConfig {
        max_in_flight: 2,
        max_assembly_bytes: 5000,
        ..small()
    };
    let mut p = Pair::new(client, small());
    let piece = PieceHash::of(b"x");
    let now = p.now;
    assert_eq!(
        p.client.request(now, piece, 0, 0, false),
        Err(RequestError::OutOfRange)
    );
    assert_eq!(
        p.client.request(now, piece, 4 * MIB as u32, 1, false),
        Err(RequestError::OutOfRange)
    );
    assert_eq!(
        p.client.request(now, piece, 1, 10, true),
        Err(RequestError::OutOfRange)
    );
    assert_eq!(
        p.client.request(now, piece, 0, 6000, false),
        Err(RequestError::Full)
    );
    let a = p.client.request(now, piece, 0, 2000, false).unwrap();
    let b = p.client.request(now, piece, 0, 2000, false).unwrap();
    assert_ne!(a, b);
    assert_eq!(
        p.client.request(now, piece, 0, 10, false),
        Err(RequestError::Full)
    );
}

#[test]
fn a_stalled_request_times_out_and_is_cancelled() {
    let timeout = Duration::from_secs(5);
    let client = WireSessionConfig {
        request_timeout: timeout,
        ..small()
    };
    let mut p = Pair::new(client, small());
    p.mode = Mode::Hold;
    let piece = p.add_piece(pattern(1000, 8));
    let start = p.now;
    let id = p.client.request(p.now, piece, 0, 1000, true).unwrap();
    p.drive();
    assert_eq!(p.client.poll_timeout(), Some(start + timeout));

    p.advance(timeout - Duration::from_millis(1));
    p.client.handle_timeout(p.now);
    assert!(p.client.poll_event().is_none());

    p.advance(Duration::from_millis(1));
    p.client.handle_timeout(p.now);
    assert_eq!(p.client.poll_event(), Some(Event::TimedOut { id }));
    assert_eq!(p.client.poll_timeout(), None);
    p.drive();
    assert!(
        p.server_events
            .iter()
            .any(|e| matches!(e, Event::Cancelled { unsent: 0, .. })),
        "cancelled before the engine answered: nothing was queued"
    );
    // The engine's late answer is refused; nothing is sent.
    let held = p.held[0];
    assert!(p.server.respond_data(held, pattern(1000, 8)).is_err());
    p.drive();
    assert!(p.client_events.is_empty());
    assert!(!p.client.is_closed() && !p.server.is_closed());
}

#[test]
fn a_close_mid_answer_says_how_much_never_went_out() {
    let mut p = Pair::new(small(), small());
    let piece = p.add_piece(pattern(MIB, 5));
    p.client.request(p.now, piece, 0, MIB as u32, true).unwrap();
    p.flush_client();
    p.deliver_to_server();
    assert_eq!(p.flush_server(3), 3);
    let sent: usize = p.data_log.iter().map(|&(_, _, len)| len).sum();
    assert!(sent > 0 && sent < MIB);
    // A text message breaks the protocol: the server refuses it and closes.
    p.server.handle_text_message(p.now);
    assert!(p.server.is_closed());
    assert_eq!(p.server.unsent_answer_bytes(), (MIB - sent) as u64);
}
