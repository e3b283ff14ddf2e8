//! One open DataChannel to a remote peer: the transport's [`Link`] driven
//! through the sans-IO [`WireSession`]. Serves the remote's requests from
//! the store within the upload budget, and runs the engine's requests
//! ([`LinkHandle::fetch`]).
//!
//! Sending is pulled, not pushed: a message is taken from the session only
//! when the channel is writable (the transport's send-buffer limit), so a
//! slow remote holds at most that limit plus one message in memory, and the
//! session's round-robin decides whose answer goes next.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tuber_proto::wire::DATA_HEADER_LEN;
use tuber_proto::{PeerId, PieceHash};

use super::shared::SwarmShared;
use crate::meter::Direction;
use crate::transport::{Link, LinkEvent, TransportError};
use crate::wire_session::{
    Event, IncomingId, RequestError, RequestId, WireSession, WireSessionConfig,
};

/// A request of ours with no data for this long means the remote is gone
/// (a live one answers at once: data, missing or busy).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Commands queued per link before `fetch` waits.
const COMMAND_QUEUE: usize = 64;
/// Sending is paced: at most [`PACE_BURST`] bytes at once, then
/// [`PACE_RATE`] bytes per second. SCTP has no pacing and on a fast path
/// (loopback, a LAN) hands a whole send buffer to the network at once; a
/// receiver that reads slower than that (a browser's UDP socket, 208 KiB by
/// default) drops the tail of the burst, and a lost tail costs SCTP its
/// retransmission timeout (one second at least, then two): the stalls seen
/// as a live viewer's segment taking 3 s from the donor. 24 MB/s is above
/// what a Chromium page takes in here (about 13–29 MB/s) and far above a
/// home uplink, so pacing costs no throughput that exists.
pub const PACE_RATE: f64 = 24e6;
/// See [`PACE_RATE`]: about 50 datagrams.
pub const PACE_BURST: f64 = 64.0 * 1024.0;

/// A link with nothing sent or received for this long is closed: an idle
/// remote must not keep one of the swarm's link slots forever.
pub const IDLE_LINK: std::time::Duration = std::time::Duration::from_secs(120);

/// How one of our requests ended.
#[derive(Debug)]
pub enum FetchOutcome {
    /// The whole piece, verified.
    Data(Bytes),
    /// The remote does not have it.
    Missing,
    /// The remote's budget is spent.
    Busy,
    /// No progress in time.
    TimedOut,
    /// The bytes did not hash to the piece: the sender is to be reported.
    Corrupt,
    /// The link closed first.
    Closed,
}

enum LinkCmd {
    Fetch {
        piece: PieceHash,
        size: u32,
        reply: oneshot::Sender<FetchOutcome>,
    },
}

/// A handle on a running link task. Cheap to clone.
#[derive(Clone)]
pub struct LinkHandle {
    cmds: mpsc::Sender<LinkCmd>,
    closed: CancellationToken,
    /// Set when the link closed because the remote stopped answering.
    unresponsive: Arc<AtomicBool>,
    /// Stops the link task.
    stop: CancellationToken,
}

impl LinkHandle {
    /// Requests a whole piece of `size` bytes; verified against its hash.
    pub async fn fetch(&self, piece: PieceHash, size: u32) -> FetchOutcome {
        let (reply, rx) = oneshot::channel();
        if self
            .cmds
            .send(LinkCmd::Fetch { piece, size, reply })
            .await
            .is_err()
        {
            return FetchOutcome::Closed;
        }
        rx.await.unwrap_or(FetchOutcome::Closed)
    }

    /// Whether the link task has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Closes the link (its task ends, the channel closes).
    pub fn close(&self) {
        self.stop.cancel();
    }

    /// Whether it ended because a request of ours got no data in time: on a
    /// reliable channel that means the remote is gone or stuck.
    pub fn was_unresponsive(&self) -> bool {
        self.unresponsive.load(Ordering::Relaxed)
    }
}

/// Starts the task driving `link` with `peer`. Returns its handle; the task
/// ends when the channel closes, the session refuses the remote, or
/// `cancel` fires, and then cancels the handle's token.
pub fn spawn(
    link: Link,
    peer: PeerId,
    swarm: Arc<SwarmShared>,
    cancel: CancellationToken,
) -> LinkHandle {
    let (cmds, rx) = mpsc::channel(COMMAND_QUEUE);
    let closed = CancellationToken::new();
    let unresponsive = Arc::new(AtomicBool::new(false));
    let handle = LinkHandle {
        cmds,
        closed: closed.clone(),
        unresponsive: Arc::clone(&unresponsive),
        stop: cancel.clone(),
    };
    tokio::spawn(async move {
        let _done = closed.drop_guard();
        let mut driver = Driver::new(link, peer, swarm, unresponsive);
        driver.run(rx, cancel).await;
        driver.link.close().await;
    });
    handle
}

struct Driver {
    link: Link,
    peer: PeerId,
    swarm: Arc<SwarmShared>,
    session: WireSession,
    /// Our open requests and who waits for them.
    waiting: HashMap<RequestId, oneshot::Sender<FetchOutcome>>,
    /// Fetches the session had no room for yet.
    queued: std::collections::VecDeque<(PieceHash, u32, oneshot::Sender<FetchOutcome>)>,
    /// A message taken from the session that the channel had no room for.
    stash: Option<Bytes>,
    unresponsive: Arc<AtomicBool>,
    /// Answers read from the store, back from their tasks.
    served_tx: mpsc::Sender<(IncomingId, Serve)>,
    served_rx: mpsc::Receiver<(IncomingId, Serve)>,
    /// One permit per store read in flight, held by its task until its
    /// answer is back: a remote that requests and cancels at once frees its
    /// session slot but not the read, so without this a request/cancel
    /// flood would pile up read tasks, each holding a copy of a piece.
    reads: Arc<tokio::sync::Semaphore>,
    /// When anything last went either way.
    last_activity: Instant,
    /// The pacer's bytes available (negative: sent ahead) and when.
    pace_tokens: f64,
    pace_at: Instant,
}

impl Driver {
    fn new(
        link: Link,
        peer: PeerId,
        swarm: Arc<SwarmShared>,
        unresponsive: Arc<AtomicBool>,
    ) -> Self {
        let now = Instant::now();
        let config = WireSessionConfig {
            request_timeout: REQUEST_TIMEOUT,
            ..WireSessionConfig::default()
        };
        // 64 KiB frames, not the 256 KiB the channel allows: SCTP hands a
        // message to the network in one burst, and the pacer can only space
        // whole messages (see PACE_RATE).
        let mut session = WireSession::new(now, config);
        let (served_tx, served_rx) = mpsc::channel(crate::wire_session::DEFAULT_MAX_IN_FLIGHT);
        // The transport returns an open channel.
        session.handle_open(now);
        Self {
            link,
            peer,
            swarm,
            session,
            waiting: HashMap::new(),
            queued: Default::default(),
            stash: None,
            unresponsive,
            served_tx,
            served_rx,
            reads: Arc::new(tokio::sync::Semaphore::new(
                crate::wire_session::DEFAULT_MAX_IN_FLIGHT,
            )),
            last_activity: now,
            pace_tokens: PACE_BURST,
            pace_at: now,
        }
    }

    async fn run(&mut self, mut cmds: mpsc::Receiver<LinkCmd>, cancel: CancellationToken) {
        let mut cmds_closed = false;
        loop {
            self.process_events();
            if self.unresponsive.load(Ordering::Relaxed) {
                tracing::info!(peer = %self.peer, "peer stopped answering; closing the link");
                break;
            }
            if self.session.is_closed() {
                // Flush the error frame, then go.
                while let Some(m) = self.stash.take().or_else(|| self.session.poll_transmit()) {
                    if self.link.send(m).await.is_err() {
                        break;
                    }
                }
                break;
            }
            if self.stash.is_none() {
                self.stash = self.session.poll_transmit();
            }
            let deadline = self.session.poll_timeout();
            let idle_at = self.last_activity + IDLE_LINK;
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                ev = self.link.recv() => match ev {
                    Some(LinkEvent::Message(m)) => {
                        self.last_activity = Instant::now();
                        self.record(Direction::Down, m.len());
                        self.session.handle_message(Instant::now(), &m);
                    }
                    Some(LinkEvent::Text) => self.session.handle_text_message(Instant::now()),
                    None => break,
                },
                w = self.link.writable(), if self.stash.is_some() => {
                    if w.is_err() {
                        break;
                    }
                    if self.send_ready().await.is_err() {
                        break;
                    }
                }
                // With every handle gone the link still serves the remote.
                cmd = cmds.recv(), if !cmds_closed => match cmd {
                    Some(LinkCmd::Fetch { piece, size, reply }) => {
                        self.last_activity = Instant::now();
                        self.queued.push_back((piece, size, reply));
                        self.start_queued();
                    }
                    None => cmds_closed = true,
                },
                Some((id, answer)) = self.served_rx.recv() => self.answer(id, answer),
                () = sleep_until(deadline) => self.session.handle_timeout(Instant::now()),
                () = tokio::time::sleep_until(idle_at.into()) => {
                    if self.waiting.is_empty() && self.queued.is_empty() && self.stash.is_none() {
                        tracing::debug!(peer = %self.peer, "link idle for {IDLE_LINK:?}; closing it");
                        break;
                    }
                    self.last_activity = Instant::now();
                }
            }
        }
        // Answers the link will never send were charged as they were queued.
        let stashed = self
            .stash
            .as_ref()
            .filter(|m| m.first() == Some(&tuber_proto::wire::kind::DATA))
            .map_or(0, |m| m.len().saturating_sub(DATA_HEADER_LEN) as u64);
        self.swarm
            .refund_upload(self.session.unsent_answer_bytes() + stashed);
        for (_, reply) in self.waiting.drain() {
            let _ = reply.send(FetchOutcome::Closed);
        }
        for (_, _, reply) in self.queued.drain(..) {
            let _ = reply.send(FetchOutcome::Closed);
        }
    }

    /// Sends the stashed message: `writable` just said the send buffer is
    /// below its limit, so `send` does not wait (it may take the buffer
    /// past the limit by one message, which is what the limit allows).
    /// Moved, not cloned: the transport then frames it without a copy.
    async fn send_ready(&mut self) -> Result<(), TransportError> {
        if let Some(m) = self.stash.take() {
            let len = m.len();
            self.pace(len).await;
            self.link.send(m).await?;
            self.last_activity = Instant::now();
            self.record(Direction::Up, len);
        }
        Ok(())
    }

    /// Waits until the pacer lets `len` bytes go (see [`PACE_RATE`]), then
    /// takes them. A message larger than the burst goes when the pacer is
    /// full and leaves it in debt, so the long-run rate holds either way.
    async fn pace(&mut self, len: usize) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.pace_at).as_secs_f64();
        self.pace_tokens = (self.pace_tokens + elapsed * PACE_RATE).min(PACE_BURST);
        self.pace_at = now;
        let need = (len as f64).min(PACE_BURST);
        if self.pace_tokens < need {
            let wait = (need - self.pace_tokens) / PACE_RATE;
            tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
            self.pace_tokens = need;
            self.pace_at = Instant::now();
        }
        self.pace_tokens -= len as f64;
    }

    fn record(&self, dir: Direction, bytes: usize) {
        self.swarm.record(self.peer, dir, bytes as u64);
    }

    fn start_queued(&mut self) {
        while let Some((piece, size, reply)) = self.queued.pop_front() {
            if reply.is_closed() {
                continue;
            }
            match self.session.request(Instant::now(), piece, 0, size, true) {
                Ok(id) => {
                    self.waiting.insert(id, reply);
                }
                Err(RequestError::Full) => {
                    self.queued.push_front((piece, size, reply));
                    return;
                }
                Err(RequestError::Closed) => {
                    let _ = reply.send(FetchOutcome::Closed);
                }
                Err(RequestError::OutOfRange) => {
                    let _ = reply.send(FetchOutcome::Missing);
                }
            }
        }
    }

    fn process_events(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Requested {
                    id,
                    piece,
                    offset,
                    length,
                } => {
                    // Read in a task: a burst of requests must not stop
                    // the loop from feeding the channel meanwhile. At most
                    // one task per permit; past that, busy at once.
                    let Ok(permit) = Arc::clone(&self.reads).try_acquire_owned() else {
                        self.answer(id, Serve::Busy(100));
                        continue;
                    };
                    let swarm = Arc::clone(&self.swarm);
                    let done = self.served_tx.clone();
                    tokio::spawn(async move {
                        let answer = swarm.serve(piece, offset, length).await;
                        let _ = done.send((id, answer)).await;
                        drop(permit);
                    });
                }
                Event::Cancelled { unsent, .. } => self.swarm.refund_upload(unsent),
                Event::RemoteError { .. } => {}
                Event::Completed { id, bytes, .. } => {
                    self.swarm.credit_verified(self.peer, bytes.len() as u64);
                    self.finish(id, FetchOutcome::Data(bytes));
                }
                Event::Corrupt { id, .. } => self.finish(id, FetchOutcome::Corrupt),
                Event::Missing { id } => self.finish(id, FetchOutcome::Missing),
                Event::Busy { id, .. } => self.finish(id, FetchOutcome::Busy),
                Event::TimedOut { id } => {
                    self.unresponsive.store(true, Ordering::Relaxed);
                    self.finish(id, FetchOutcome::TimedOut);
                }
                Event::Closed(reason) => {
                    tracing::debug!(peer = %self.peer, ?reason, "peer wire closed");
                }
            }
        }
    }

    fn answer(&mut self, id: IncomingId, answer: Serve) {
        let r = match answer {
            // Charged as it is queued; what never goes out (cancelled, or the
            // link closes first) is given back, so the cap counts bytes sent.
            Serve::Data(b) => {
                let len = b.len() as u64;
                match self.swarm.charge_upload(len) {
                    Err(retry_ms) => self.session.respond_busy(id, retry_ms),
                    Ok(()) => self.session.respond_data(id, b).inspect_err(|_| {
                        self.swarm.refund_upload(len);
                    }),
                }
            }
            Serve::Missing => self.session.respond_missing(id),
            Serve::Busy(ms) => self.session.respond_busy(id, ms),
        };
        if let Err(e) = r {
            // Cancelled meanwhile, or the session closed.
            tracing::debug!(peer = %self.peer, error = %e, "answer dropped");
        }
    }

    fn finish(&mut self, id: RequestId, outcome: FetchOutcome) {
        if let Some(reply) = self.waiting.remove(&id) {
            let _ = reply.send(outcome);
        }
        self.start_queued();
    }
}

/// The engine's answer to one request.
pub enum Serve {
    Data(Bytes),
    Missing,
    Busy(u32),
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Flips one byte: the test-only "liar" switch.
pub fn corrupt(bytes: Bytes) -> Bytes {
    let mut b = BytesMut::from(&bytes[..]);
    if let Some(x) = b.first_mut() {
        *x ^= 0xff;
    }
    b.freeze()
}
