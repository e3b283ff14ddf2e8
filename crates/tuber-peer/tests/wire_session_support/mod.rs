//! Shared helpers for the `wire_session_*` tests: two sessions wired back to
//! back in memory, a simulated engine on the server side, and a bounded
//! driver that fails on livelock instead of hanging (quinn's `drive_bounded`).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tuber_peer::wire_session::{Event, IncomingId, WireSession, WireSessionConfig};
use tuber_proto::wire::kind;
use tuber_proto::PieceHash;

/// Steps before `drive` declares a livelock.
pub const MAX_STEPS: usize = 100_000;

/// How the simulated server engine answers requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// From `store`, else `missing`.
    Serve,
    /// `busy` with this hint.
    Busy(u32),
    /// Not at all (kept in `held`).
    Hold,
}

/// Two sessions and the wire between them.
pub struct Pair {
    pub now: Instant,
    pub client: WireSession,
    pub server: WireSession,
    /// The server engine's pieces.
    pub store: HashMap<PieceHash, Bytes>,
    pub mode: Mode,
    /// Requests the server engine left unanswered in `Mode::Hold`.
    pub held: Vec<IncomingId>,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
    /// Every `data` frame the server put on the wire: (id, offset, payload len).
    pub data_log: Vec<(u32, u32, usize)>,
    /// The largest frame either side sent, and whether any exceeded the
    /// sender's limit in force at that moment.
    pub largest_frame: usize,
    pub over_limit: bool,
    c2s: VecDeque<Bytes>,
    s2c: VecDeque<Bytes>,
}

/// A deterministic byte pattern.
pub fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

impl Pair {
    /// Both sessions opened and the hellos exchanged.
    pub fn new(client: WireSessionConfig, server: WireSessionConfig) -> Self {
        let now = Instant::now();
        let mut pair = Self {
            now,
            client: WireSession::new(now, client),
            server: WireSession::new(now, server),
            store: HashMap::new(),
            mode: Mode::Serve,
            held: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            data_log: Vec::new(),
            largest_frame: 0,
            over_limit: false,
            c2s: VecDeque::new(),
            s2c: VecDeque::new(),
        };
        pair.client.handle_open(now);
        pair.server.handle_open(now);
        pair.drive();
        assert!(pair.client.is_ready() && pair.server.is_ready());
        pair
    }

    /// Adds a piece to the server's store; returns its hash.
    pub fn add_piece(&mut self, bytes: Bytes) -> PieceHash {
        let hash = PieceHash::of(&bytes);
        self.store.insert(hash, bytes);
        hash
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Moves everything the client has to send onto the wire.
    pub fn flush_client(&mut self) -> usize {
        let mut n = 0;
        while let Some(msg) = self.client.poll_transmit() {
            self.check_size(msg.len(), self.client.max_frame());
            self.c2s.push_back(msg);
            n += 1;
        }
        n
    }

    /// Moves at most `max` messages from the server onto the wire.
    pub fn flush_server(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(msg) = self.server.poll_transmit() else {
                break;
            };
            self.check_size(msg.len(), self.server.max_frame());
            if msg.first() == Some(&kind::DATA) {
                let id = u32::from_be_bytes([msg[1], msg[2], msg[3], msg[4]]);
                let offset = u32::from_be_bytes([msg[5], msg[6], msg[7], msg[8]]);
                self.data_log.push((id, offset, msg.len() - 9));
            }
            self.s2c.push_back(msg);
            n += 1;
        }
        n
    }

    fn check_size(&mut self, len: usize, limit: u32) {
        self.largest_frame = self.largest_frame.max(len);
        if len > limit as usize {
            self.over_limit = true;
        }
    }

    /// Delivers everything on the client→server wire, then lets the server
    /// engine act on the events.
    pub fn deliver_to_server(&mut self) -> usize {
        let mut n = 0;
        while let Some(msg) = self.c2s.pop_front() {
            self.server.handle_message(self.now, &msg);
            n += 1;
        }
        self.run_server_engine();
        n
    }

    /// Delivers at most `max` messages on the server→client wire.
    pub fn deliver_to_client(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(msg) = self.s2c.pop_front() else {
                break;
            };
            self.client.handle_message(self.now, &msg);
            n += 1;
        }
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
        }
        n
    }

    /// Messages on the server→client wire not yet delivered.
    pub fn in_flight_to_client(&self) -> usize {
        self.s2c.len()
    }

    fn run_server_engine(&mut self) {
        while let Some(e) = self.server.poll_event() {
            if let Event::Requested {
                id,
                piece,
                offset,
                length,
            } = &e
            {
                let (id, offset, length) = (*id, *offset as usize, *length as usize);
                match self.mode {
                    Mode::Serve => match self.store.get(piece) {
                        Some(bytes) if offset + length <= bytes.len() => {
                            let slice = bytes.slice(offset..offset + length);
                            self.server.respond_data(id, slice).unwrap();
                        }
                        _ => self.server.respond_missing(id).unwrap(),
                    },
                    Mode::Busy(ms) => self.server.respond_busy(id, ms).unwrap(),
                    Mode::Hold => self.held.push(id),
                }
            }
            self.server_events.push(e);
        }
    }

    /// Runs both sides until nothing moves; panics on livelock.
    pub fn drive(&mut self) {
        for _ in 0..MAX_STEPS {
            let moved = self.flush_client()
                + self.deliver_to_server()
                + self.flush_server(usize::MAX)
                + self.deliver_to_client(usize::MAX);
            if moved == 0 {
                return;
            }
        }
        panic!("livelock: still moving after {MAX_STEPS} steps");
    }

    /// The client's events of one kind.
    pub fn completed(&self) -> Vec<(u32, Bytes)> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                Event::Completed { id, bytes, .. } => Some((id.as_u32(), bytes.clone())),
                _ => None,
            })
            .collect()
    }
}

/// The code of an encoded `error` frame, if it is one.
pub fn error_code(msg: &[u8]) -> Option<u16> {
    (msg.len() >= 3 && msg[0] == kind::ERROR).then(|| u16::from_be_bytes([msg[1], msg[2]]))
}
