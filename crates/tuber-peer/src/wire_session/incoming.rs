//! The sender's side: the remote's open requests, and the data we queued
//! for them, sent round-robin one frame per request so that one large
//! answer does not starve the others.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use tuber_proto::wire::{data_header, DATA_HEADER_LEN};

/// One open request from the remote.
#[derive(Debug)]
enum Served {
    /// Handed to the engine; no answer yet.
    Pending { offset: u32, length: u32 },
    /// Answering with `bytes` (the engine's slice, not copied), of which
    /// `sent` have gone out.
    Sending {
        offset: u32,
        bytes: Bytes,
        sent: usize,
    },
}

impl Served {
    fn unsent(&self) -> u64 {
        match self {
            Self::Pending { .. } => 0,
            Self::Sending { bytes, sent, .. } => bytes.len().saturating_sub(*sent) as u64,
        }
    }
}

/// What a received `request` did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RequestOutcome {
    /// Open; hand it to the engine.
    Accepted,
    /// Over the in-flight cap: answer `busy` at once.
    OverCap,
    /// The id is already open: a protocol violation.
    Duplicate,
}

/// Why the engine's answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    /// The request is not open: cancelled by the remote, already answered,
    /// never received, or the channel closed. Nothing is sent.
    #[error("request not open")]
    NotOpen,
    /// `respond_data` must hand exactly the requested `length` bytes.
    #[error("data of {got} bytes for a request of {expected}")]
    WrongLength {
        /// The request's length.
        expected: u32,
        /// What the engine handed.
        got: usize,
    },
}

/// The remote's requests to us.
#[derive(Debug)]
pub(super) struct Incoming {
    open: HashMap<u32, Served>,
    /// Ids with data queued, in round-robin order; each appears once.
    turn: VecDeque<u32>,
    max_in_flight: usize,
}

impl Incoming {
    pub(super) fn new(max_in_flight: usize) -> Self {
        Self {
            open: HashMap::new(),
            turn: VecDeque::new(),
            max_in_flight,
        }
    }

    pub(super) fn on_request(&mut self, id: u32, offset: u32, length: u32) -> RequestOutcome {
        if self.open.contains_key(&id) {
            return RequestOutcome::Duplicate;
        }
        if self.open.len() >= self.max_in_flight {
            return RequestOutcome::OverCap;
        }
        self.open.insert(id, Served::Pending { offset, length });
        RequestOutcome::Accepted
    }

    /// The remote cancelled `id`: drops its queued data. The bytes of its
    /// answer that will now never be sent (0 while the engine has not
    /// answered), or `None` if it was not open.
    pub(super) fn cancel(&mut self, id: u32) -> Option<u64> {
        self.turn.retain(|&t| t != id);
        self.open.remove(&id).map(|served| served.unsent())
    }

    /// Bytes of queued answers not sent yet.
    pub(super) fn unsent(&self) -> u64 {
        self.open.values().map(Served::unsent).sum()
    }

    /// Ends a pending request with a one-frame answer (`missing`, `busy`).
    pub(super) fn answer(&mut self, id: u32) -> Result<(), RespondError> {
        match self.open.get(&id) {
            Some(Served::Pending { .. }) => {
                self.open.remove(&id);
                Ok(())
            }
            _ => Err(RespondError::NotOpen),
        }
    }

    /// Queues `bytes` as the answer to a pending request.
    pub(super) fn respond_data(&mut self, id: u32, bytes: Bytes) -> Result<(), RespondError> {
        let Some(served) = self.open.get_mut(&id) else {
            return Err(RespondError::NotOpen);
        };
        let Served::Pending { offset, length } = *served else {
            return Err(RespondError::NotOpen);
        };
        if bytes.len() as u64 != u64::from(length) {
            return Err(RespondError::WrongLength {
                expected: length,
                got: bytes.len(),
            });
        }
        *served = Served::Sending {
            offset,
            bytes,
            sent: 0,
        };
        self.turn.push_back(id);
        Ok(())
    }

    /// The next `data` frame, of at most `max_frame` bytes, from the request
    /// whose turn it is. Copies only this frame's payload, into the message.
    pub(super) fn next_frame(&mut self, max_frame: usize) -> Option<Bytes> {
        let max_payload = max_frame.saturating_sub(DATA_HEADER_LEN).max(1);
        while let Some(id) = self.turn.pop_front() {
            let Some(Served::Sending {
                offset,
                bytes,
                sent,
            }) = self.open.get_mut(&id)
            else {
                continue;
            };
            let start = *sent;
            let end = bytes.len().min(start.saturating_add(max_payload));
            let Some(chunk) = bytes.get(start..end).filter(|c| !c.is_empty()) else {
                self.open.remove(&id);
                continue;
            };
            // Offsets stay within 4 MiB: `offset + length` was checked on decode.
            let at = offset.saturating_add(u32::try_from(start).unwrap_or(u32::MAX));
            let mut frame = Vec::with_capacity(DATA_HEADER_LEN + chunk.len());
            frame.extend_from_slice(&data_header(id, at));
            frame.extend_from_slice(chunk);
            *sent = end;
            if end >= bytes.len() {
                self.open.remove(&id);
            } else {
                self.turn.push_back(id);
            }
            return Some(Bytes::from(frame));
        }
        None
    }

    /// Forgets everything (the channel closed).
    pub(super) fn clear(&mut self) {
        self.open.clear();
        self.turn.clear();
    }
}
