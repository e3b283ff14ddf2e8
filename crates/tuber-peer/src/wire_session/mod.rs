//! One DataChannel's peer wire (protocol §6) as a pure state machine.
//!
//! Sans-IO in the str0m / quinn-proto style: the session never reads the
//! clock, touches a channel or spawns. The driver feeds it `now` and each
//! received binary message ([`WireSession::handle_message`]), the channel's
//! opening ([`WireSession::handle_open`]) and timeouts
//! ([`WireSession::handle_timeout`]); the engine calls
//! [`WireSession::request`] and the `respond_*` methods. After **every** such
//! call the driver drains [`WireSession::poll_transmit`] (messages to send,
//! in order), [`WireSession::poll_event`], and re-arms its timer from
//! [`WireSession::poll_timeout`]. Once [`WireSession::is_closed`], it sends
//! what `poll_transmit` still yields (the `error` frame) and closes the
//! channel.
//!
//! Both directions share the channel: as a *server* the session answers the
//! remote's requests (the engine decides what, via [`Event::Requested`]); as
//! a *client* it assembles the answers to ours and checks them.
//!
//! Memory is bounded: at most [`WireSessionConfig::max_in_flight`] requests
//! each way, assembly buffers within [`WireSessionConfig::max_assembly_bytes`],
//! and queued answers are the engine's own [`Bytes`] (not copied until the
//! frame carrying them is transmitted).
//!
//! ## Layout
//! - `outgoing` — our requests: ids, assembly, verification, timeouts.
//! - `incoming` — the remote's requests: in-flight cap, queued answers,
//!   round-robin `data` frames.
//! - `types` — configuration, ids, events, errors.

mod incoming;
mod outgoing;
mod types;

use std::collections::VecDeque;

/// Control frames (busy, missing, cancel) queued unsent at most; a remote
/// that makes more without reading is refused.
pub const MAX_CONTROL_QUEUED: usize = 1024;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tuber_proto::limits::{DEFAULT_MAX_FRAME, LARGE_MAX_FRAME, MAX_PIECE_SIZE, PROTOCOL_VERSION};
use tuber_proto::wire::{kind, negotiated_max_frame};
use tuber_proto::{Frame, PieceHash, WireErrorCode};

pub use incoming::RespondError;
use incoming::{Incoming, RequestOutcome};
use outgoing::{AnswerOutcome, DataOutcome, Outgoing};
pub use types::{
    CloseReason, Event, IncomingId, RequestError, RequestId, WireSessionConfig,
    DEFAULT_MAX_ASSEMBLY_BYTES, DEFAULT_MAX_IN_FLIGHT, DEFAULT_REQUEST_TIMEOUT,
};

/// The peer wire on one DataChannel. See the module docs for the contract.
#[derive(Debug)]
pub struct WireSession {
    config: WireSessionConfig,
    /// `handle_open` was called: our `hello` leads the transmit queue.
    opened: bool,
    /// The remote's `max_frame`, once its `hello` arrived.
    remote_max_frame: Option<u32>,
    closed: Option<CloseReason>,
    /// Small frames (hello, request, cancel, missing, busy, error), in order;
    /// they go before queued data.
    control: VecDeque<Bytes>,
    events: VecDeque<Event>,
    outgoing: Outgoing,
    incoming: Incoming,
    /// Bytes of queued answers the close dropped unsent.
    unsent_at_close: u64,
}

impl WireSession {
    /// A session for a channel about to open.
    pub fn new(_now: Instant, mut config: WireSessionConfig) -> Self {
        config.max_frame = config.max_frame.clamp(DEFAULT_MAX_FRAME, LARGE_MAX_FRAME);
        Self {
            outgoing: Outgoing::new(
                config.max_in_flight,
                config.max_assembly_bytes,
                config.request_timeout,
            ),
            incoming: Incoming::new(config.max_in_flight),
            config,
            opened: false,
            remote_max_frame: None,
            closed: None,
            control: VecDeque::new(),
            events: VecDeque::new(),
            unsent_at_close: 0,
        }
    }

    // ---- getters ----

    /// Bytes of answers handed to [`WireSession::respond_data`] that have not
    /// gone out and now never will once the session is closed: an upload cap
    /// charges bytes sent, so the engine gives these back when the link ends.
    pub fn unsent_answer_bytes(&self) -> u64 {
        if self.closed.is_some() {
            self.unsent_at_close
        } else {
            self.incoming.unsent()
        }
    }

    /// The frame limit in force, for sending and receiving: 64 KiB until the
    /// remote's `hello`, then the negotiated limit (§6.4).
    pub fn max_frame(&self) -> u32 {
        match self.remote_max_frame {
            None => DEFAULT_MAX_FRAME,
            Some(theirs) => negotiated_max_frame(self.config.max_frame, theirs),
        }
    }

    /// Whether the remote's `hello` has arrived.
    pub fn is_ready(&self) -> bool {
        self.remote_max_frame.is_some() && self.closed.is_none()
    }

    /// Whether the session closed (drain `poll_transmit`, then close the
    /// channel).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Why it closed.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    // ---- inputs ----

    /// The channel opened: queues our `hello` ahead of anything else.
    pub fn handle_open(&mut self, _now: Instant) {
        if self.opened || self.closed.is_some() {
            return;
        }
        self.opened = true;
        let hello = Frame::Hello {
            version: PROTOCOL_VERSION,
            max_frame: self.config.max_frame,
        };
        self.control.push_front(Bytes::from(hello.encode()));
    }

    /// A text DataChannel message: not part of the protocol (§6.5).
    pub fn handle_text_message(&mut self, _now: Instant) {
        self.refuse(WireErrorCode::Malformed, "text message");
    }

    /// One received binary DataChannel message. Decoded with the limit in
    /// force; checks follow §6.3 in order, so an unknown type is answered
    /// `error` 4 and dropped (the channel stays) even before the remote's
    /// `hello`, while any other frame before it is `error` 5 and a close.
    pub fn handle_message(&mut self, now: Instant, msg: &[u8]) {
        if self.closed.is_some() {
            return;
        }
        let frame = match Frame::decode(msg, self.max_frame() as usize) {
            Ok(frame) => frame,
            Err(e) if !e.is_fatal() => {
                self.queue(&Frame::Error {
                    code: e.code(),
                    reason: &e.to_string(),
                });
                return;
            }
            Err(e) => {
                // Nobody answers an `error` frame with an `error` frame.
                let answer = msg.first() != Some(&kind::ERROR);
                self.close(
                    CloseReason::Refused {
                        code: e.code(),
                        reason: e.to_string(),
                    },
                    answer,
                );
                return;
            }
        };
        match (self.remote_max_frame, frame) {
            (_, Frame::Error { code, reason }) => self.on_remote_error(code, reason),
            (None, Frame::Hello { version, max_frame }) => {
                if version == PROTOCOL_VERSION {
                    self.remote_max_frame = Some(max_frame);
                } else {
                    self.refuse(WireErrorCode::UnsupportedVersion, "unsupported version");
                }
            }
            (None, _) => self.refuse(WireErrorCode::Protocol, "first frame is not hello"),
            (Some(_), Frame::Hello { .. }) => self.refuse(WireErrorCode::Protocol, "second hello"),
            (Some(_), frame) => self.on_frame(now, frame),
        }
    }

    /// Times out our requests that made no progress (each gets
    /// [`Event::TimedOut`] and a `cancel` on the wire).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        for id in self.outgoing.expired(now) {
            if self.outgoing.cancel(id) {
                self.queue(&Frame::Cancel { id });
                self.events.push_back(Event::TimedOut { id: RequestId(id) });
            }
        }
    }

    // ---- engine calls: as a client ----

    /// Asks the remote for `length` bytes of `piece` from `offset`. With
    /// `verify`, the range must be the whole piece (`offset` 0, `length` its
    /// size) and the assembled bytes must hash to `piece`, else
    /// [`Event::Corrupt`].
    pub fn request(
        &mut self,
        now: Instant,
        piece: PieceHash,
        offset: u32,
        length: u32,
        verify: bool,
    ) -> Result<RequestId, RequestError> {
        if self.closed.is_some() {
            return Err(RequestError::Closed);
        }
        let end = u64::from(offset) + u64::from(length);
        if length == 0 || end > u64::from(MAX_PIECE_SIZE) || (verify && offset != 0) {
            return Err(RequestError::OutOfRange);
        }
        if !self.outgoing.has_room(length) {
            return Err(RequestError::Full);
        }
        let id = self.outgoing.open(now, piece, offset, length, verify);
        self.queue(&Frame::Request {
            id: id.0,
            piece,
            offset,
            length,
        });
        Ok(id)
    }

    /// Cancels one of our open requests: queues `cancel`; its late frames
    /// are dropped. False if it was not open (already ended).
    pub fn cancel(&mut self, _now: Instant, id: RequestId) -> bool {
        if self.closed.is_some() || !self.outgoing.cancel(id.0) {
            return false;
        }
        self.queue(&Frame::Cancel { id: id.0 });
        true
    }

    // ---- engine calls: as a server ----

    /// Answers `id` with exactly its `length` bytes (the engine's slice of
    /// the piece), sent as `data` frames, round-robin with other answers.
    pub fn respond_data(&mut self, id: IncomingId, bytes: Bytes) -> Result<(), RespondError> {
        self.incoming.respond_data(id.0, bytes)
    }

    /// Answers `id` with `missing`.
    pub fn respond_missing(&mut self, id: IncomingId) -> Result<(), RespondError> {
        self.incoming.answer(id.0)?;
        self.queue(&Frame::Missing { id: id.0 });
        Ok(())
    }

    /// Answers `id` with `busy` (`retry_after_ms` 0: unknown; see
    /// [`crate::Busy::retry_after_ms`]).
    pub fn respond_busy(
        &mut self,
        id: IncomingId,
        retry_after_ms: u32,
    ) -> Result<(), RespondError> {
        self.incoming.answer(id.0)?;
        self.queue(&Frame::Busy {
            id: id.0,
            retry_after_ms,
        });
        Ok(())
    }

    // ---- outputs ----

    /// The next message to send on the channel. Nothing before
    /// `handle_open`, except the `error` of a session that closed.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.closed.is_some() {
            return self.control.pop_front();
        }
        if !self.opened {
            return None;
        }
        if let Some(frame) = self.control.pop_front() {
            return Some(frame);
        }
        self.incoming.next_frame(self.max_frame() as usize)
    }

    /// The next event for the engine.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`WireSession::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        self.outgoing.next_deadline()
    }

    // ---- internals ----

    fn on_frame(&mut self, now: Instant, frame: Frame<'_>) {
        match frame {
            Frame::Request {
                id,
                piece,
                offset,
                length,
            } => match self.incoming.on_request(id, offset, length) {
                RequestOutcome::Accepted => self.events.push_back(Event::Requested {
                    id: IncomingId(id),
                    piece,
                    offset,
                    length,
                }),
                RequestOutcome::OverCap => self.queue(&Frame::Busy {
                    id,
                    retry_after_ms: 0,
                }),
                RequestOutcome::Duplicate => {
                    self.refuse(WireErrorCode::Protocol, "request id already open")
                }
            },
            Frame::Cancel { id } => {
                if let Some(unsent) = self.incoming.cancel(id) {
                    self.events.push_back(Event::Cancelled {
                        id: IncomingId(id),
                        unsent,
                    });
                }
            }
            Frame::Data { id, offset, bytes } => {
                match self.outgoing.on_data(now, id, offset, bytes) {
                    DataOutcome::Progress | DataOutcome::Dropped => {}
                    DataOutcome::Done(event) => self.events.push_back(event),
                    DataOutcome::Violation(why) => self.refuse(WireErrorCode::Protocol, why),
                }
            }
            Frame::Missing { id } => self.on_answer(id, Event::Missing { id: RequestId(id) }),
            Frame::Busy { id, retry_after_ms } => {
                let retry_after =
                    (retry_after_ms > 0).then(|| Duration::from_millis(u64::from(retry_after_ms)));
                self.on_answer(
                    id,
                    Event::Busy {
                        id: RequestId(id),
                        retry_after,
                    },
                );
            }
            // Handled by `handle_message`.
            Frame::Hello { .. } | Frame::Error { .. } => {}
        }
    }

    fn on_answer(&mut self, id: u32, event: Event) {
        match self.outgoing.on_answer(id) {
            AnswerOutcome::Ended => self.events.push_back(event),
            AnswerOutcome::Dropped => {}
            AnswerOutcome::Violation(why) => self.refuse(WireErrorCode::Protocol, why),
        }
    }

    fn on_remote_error(&mut self, code: WireErrorCode, reason: &str) {
        let reason = reason.to_owned();
        match code {
            WireErrorCode::Unsupported | WireErrorCode::Other(_) => {
                self.events.push_back(Event::RemoteError { code, reason });
            }
            _ => self.close(CloseReason::Remote { code, reason }, false),
        }
    }

    /// Sends `error` with `code` and closes.
    fn refuse(&mut self, code: WireErrorCode, reason: &str) {
        self.close(
            CloseReason::Refused {
                code,
                reason: reason.to_owned(),
            },
            true,
        );
    }

    fn close(&mut self, reason: CloseReason, send_error: bool) {
        if self.closed.is_some() {
            return;
        }
        self.control.clear();
        self.unsent_at_close = self.incoming.unsent();
        self.incoming.clear();
        self.outgoing.clear();
        if let (true, CloseReason::Refused { code, reason }) = (send_error, &reason) {
            let frame = Frame::Error {
                code: *code,
                reason,
            };
            self.control.push_back(Bytes::from(frame.encode()));
        }
        self.events.push_back(Event::Closed(reason.clone()));
        self.closed = Some(reason);
    }

    fn queue(&mut self, frame: &Frame<'_>) {
        // Control answers (busy, missing) wait for the remote to read; one
        // that keeps asking without reading would grow them without bound.
        if self.control.len() >= MAX_CONTROL_QUEUED {
            self.refuse(WireErrorCode::Protocol, "too many answers unread");
            return;
        }
        self.control.push_back(Bytes::from(frame.encode()));
    }
}
