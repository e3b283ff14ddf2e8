//! The requester's side: our open requests, their assembly buffers, and the
//! ids we cancelled (whose late answers are dropped silently, §6.5).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tuber_proto::PieceHash;

use super::{Event, RequestId};

/// How many cancelled ids we remember to drop their late frames. Far more
/// than can cross a `cancel` in flight with a bounded number of requests.
const CANCELLED_MEMORY: usize = 1024;

/// One open request of ours.
#[derive(Debug)]
struct Open {
    piece: PieceHash,
    offset: u32,
    length: u32,
    verify: bool,
    /// Bytes received so far; never longer than `length`.
    buf: Vec<u8>,
    /// When it times out unless more data arrives.
    deadline: Instant,
}

/// What a received `data` frame did.
#[derive(Debug)]
pub(super) enum DataOutcome {
    /// Appended; more to come.
    Progress,
    /// The request is complete (or failed verification).
    Done(Event),
    /// For a cancelled id: dropped silently.
    Dropped,
    /// Out of place: answer `error` 5 and close.
    Violation(&'static str),
}

/// What a received `missing` or `busy` frame did.
#[derive(Debug)]
pub(super) enum AnswerOutcome {
    /// The request ended with this answer.
    Ended,
    /// For a cancelled id: dropped silently.
    Dropped,
    /// Out of place: answer `error` 5 and close.
    Violation(&'static str),
}

/// Our requests to the remote.
#[derive(Debug)]
pub(super) struct Outgoing {
    open: HashMap<u32, Open>,
    cancelled: HashSet<u32>,
    cancelled_order: VecDeque<u32>,
    next_id: u32,
    /// Sum of `length` over open requests: the assembly memory they may use.
    reserved: u64,
    max_in_flight: usize,
    max_bytes: u64,
    timeout: Duration,
}

impl Outgoing {
    pub(super) fn new(max_in_flight: usize, max_bytes: usize, timeout: Duration) -> Self {
        Self {
            open: HashMap::new(),
            cancelled: HashSet::new(),
            cancelled_order: VecDeque::new(),
            next_id: 0,
            reserved: 0,
            max_in_flight,
            max_bytes: max_bytes as u64,
            timeout,
        }
    }

    /// Whether another request of `length` bytes fits the caps.
    pub(super) fn has_room(&self, length: u32) -> bool {
        self.open.len() < self.max_in_flight && self.reserved + u64::from(length) <= self.max_bytes
    }

    /// Opens a request; the caller checked [`Self::has_room`] and the range.
    pub(super) fn open(
        &mut self,
        now: Instant,
        piece: PieceHash,
        offset: u32,
        length: u32,
        verify: bool,
    ) -> RequestId {
        // Skip ids still open or whose late frames we still expect; both sets
        // are finite, so this ends.
        let id = loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if !self.open.contains_key(&id) && !self.cancelled.contains(&id) {
                break id;
            }
        };
        self.reserved += u64::from(length);
        self.open.insert(
            id,
            Open {
                piece,
                offset,
                length,
                verify,
                buf: Vec::new(),
                deadline: now + self.timeout,
            },
        );
        RequestId(id)
    }

    /// Cancels an open request; false if it was not open.
    pub(super) fn cancel(&mut self, id: u32) -> bool {
        if self.close(id).is_none() {
            return false;
        }
        self.cancelled.insert(id);
        self.cancelled_order.push_back(id);
        while self.cancelled_order.len() > CANCELLED_MEMORY {
            if let Some(old) = self.cancelled_order.pop_front() {
                self.cancelled.remove(&old);
            }
        }
        true
    }

    fn close(&mut self, id: u32) -> Option<Open> {
        let open = self.open.remove(&id)?;
        self.reserved = self.reserved.saturating_sub(u64::from(open.length));
        Some(open)
    }

    /// A `data` frame from the remote.
    pub(super) fn on_data(
        &mut self,
        now: Instant,
        id: u32,
        offset: u32,
        bytes: &[u8],
    ) -> DataOutcome {
        let Some(open) = self.open.get_mut(&id) else {
            return self.not_open(id, "data for no request");
        };
        let received = open.buf.len() as u64;
        if u64::from(offset) != u64::from(open.offset) + received {
            return DataOutcome::Violation("data out of order");
        }
        if bytes.is_empty() || received + bytes.len() as u64 > u64::from(open.length) {
            return DataOutcome::Violation("data past the request's length");
        }
        open.buf.extend_from_slice(bytes);
        open.deadline = now + self.timeout;
        if open.buf.len() as u64 != u64::from(open.length) {
            return DataOutcome::Progress;
        }
        let Some(done) = self.close(id) else {
            return DataOutcome::Progress;
        };
        let id = RequestId(id);
        if done.verify && !done.piece.verifies(&done.buf) {
            return DataOutcome::Done(Event::Corrupt {
                id,
                piece: done.piece,
            });
        }
        DataOutcome::Done(Event::Completed {
            id,
            piece: done.piece,
            bytes: Bytes::from(done.buf),
        })
    }

    /// A `missing` or `busy` frame from the remote.
    pub(super) fn on_answer(&mut self, id: u32) -> AnswerOutcome {
        match self.open.get(&id) {
            Some(open) if !open.buf.is_empty() => {
                AnswerOutcome::Violation("second answer after data")
            }
            Some(_) => {
                self.close(id);
                AnswerOutcome::Ended
            }
            None => match self.not_open(id, "answer for no request") {
                DataOutcome::Dropped => AnswerOutcome::Dropped,
                _ => AnswerOutcome::Violation("answer for no request"),
            },
        }
    }

    fn not_open(&self, id: u32, why: &'static str) -> DataOutcome {
        if self.cancelled.contains(&id) {
            DataOutcome::Dropped
        } else {
            DataOutcome::Violation(why)
        }
    }

    /// Ids whose deadline has passed, in id order.
    pub(super) fn expired(&self, now: Instant) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .open
            .iter()
            .filter(|(_, o)| o.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The earliest deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|o| o.deadline).min()
    }

    /// Forgets everything (the channel closed).
    pub(super) fn clear(&mut self) {
        self.open.clear();
        self.reserved = 0;
    }
}
