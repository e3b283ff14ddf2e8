//! The peer wire (`WireSession`) over one bare link, driven the engine's
//! way: a client fetching pieces, servers answering from memory or a store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;
use tuber_peer::transport::TransportError;
use tuber_peer::transport::{Link, LinkEvent, RtcConfig};
use tuber_peer::wire_session::{Event, RequestError};
use tuber_peer::{WireSession, WireSessionConfig};
use tuber_proto::limits::LARGE_MAX_FRAME;
use tuber_proto::PieceHash;

pub fn loopback_rtc() -> RtcConfig {
    RtcConfig {
        udp_addrs: vec!["127.0.0.1:0".into()],
        ..RtcConfig::default()
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// The peer wire over one link, driven the way the engine's link task
/// drives it (crates/tuber-peer/src/engine/link.rs): messages are pulled
/// from the session only when the channel is writable.
struct Wire<'a> {
    link: &'a Link,
    session: WireSession,
    stash: Option<Bytes>,
    mode: Sending,
    /// Frames handed to the link.
    sent: u64,
    /// `try_send` refusals (`SendBufferFull`) in [`Sending::EngineStyle`].
    refused: u64,
}

/// What [`Wire::step_with`] did.
enum Stepped<T> {
    Alive,
    Ended,
    Got(T),
}

async fn recv_opt<T>(rx: Option<&mut mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// How [`Wire`] hands frames to the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    /// As the engine's link task does: wait for `writable()`, then
    /// `try_send(frame.clone())`, keeping the frame when refused.
    EngineStyle,
    /// Wait for `writable()`, then `send(frame)`: the frame's only handle
    /// goes to the link, and a send admitted below the limit never fails.
    Await,
}

impl<'a> Wire<'a> {
    fn new(link: &'a Link, mode: Sending) -> Self {
        let now = Instant::now();
        let mut config = WireSessionConfig::default();
        if link.remote_max_message_size() >= LARGE_MAX_FRAME {
            config = config.with_large_frames();
        }
        let mut session = WireSession::new(now, config);
        session.handle_open(now);
        Self {
            link,
            session,
            stash: None,
            mode,
            sent: 0,
            refused: 0,
        }
    }

    /// One round of I/O; false once the link or the session ended.
    async fn step(&mut self) -> bool {
        !matches!(self.step_with::<()>(None).await, Stepped::Ended)
    }

    /// One round of I/O, or one item from `extra` (e.g. a finished read).
    async fn step_with<T>(&mut self, extra: Option<&mut mpsc::Receiver<T>>) -> Stepped<T> {
        let link = self.link;
        if self.session.is_closed() {
            while let Some(m) = self.stash.take().or_else(|| self.session.poll_transmit()) {
                if link.send(m).await.is_err() {
                    break;
                }
            }
            return Stepped::Ended;
        }
        if self.stash.is_none() {
            self.stash = self.session.poll_transmit();
        }
        let deadline = self.session.poll_timeout();
        tokio::select! {
            biased;
            ev = link.recv() => match ev {
                Some(LinkEvent::Message(m)) => self.session.handle_message(Instant::now(), &m),
                Some(LinkEvent::Text) => self.session.handle_text_message(Instant::now()),
                None => return Stepped::Ended,
            },
            Some(x) = recv_opt(extra) => return Stepped::Got(x),
            w = link.writable(), if self.stash.is_some() => {
                if w.is_err() {
                    return Stepped::Ended;
                }
                let sent = match self.mode {
                    Sending::EngineStyle => self.send_ready().await,
                    Sending::Await => match self.stash.take() {
                        Some(m) => link.send(m).await.map(|()| self.sent += 1),
                        None => Ok(()),
                    },
                };
                if sent.is_err() {
                    return Stepped::Ended;
                }
            }
            () = sleep_until(deadline) => self.session.handle_timeout(Instant::now()),
        }
        Stepped::Alive
    }

    async fn send_ready(&mut self) -> Result<(), TransportError> {
        let mut budget = 64;
        while let Some(m) = self.stash.take() {
            match self.link.try_send(m.clone()).await {
                Ok(()) => self.sent += 1,
                Err(TransportError::SendBufferFull) => {
                    self.refused += 1;
                    self.stash = Some(m);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
            budget -= 1;
            if budget == 0 {
                return Ok(());
            }
            self.stash = self.session.poll_transmit();
        }
        Ok(())
    }
}

/// Requests every `(piece, size)` of `wanted` whole and verified, keeping
/// `in_flight` open. The bytes got, or why not.
pub async fn fetch_over(
    link: &Link,
    wanted: &[(PieceHash, u32)],
    in_flight: usize,
) -> Result<u64, String> {
    fetch_into(link, wanted, in_flight, None).await
}

/// [`fetch_over`], storing each verified piece into `sink` (a put task per
/// piece, as the engine's fetchers do; all awaited before returning).
pub async fn fetch_into(
    link: &Link,
    wanted: &[(PieceHash, u32)],
    in_flight: usize,
    sink: Option<&tuber_store::Store>,
) -> Result<u64, String> {
    // Ours are small request frames: how they are sent does not matter.
    let mut wire = Wire::new(link, Sending::Await);
    let (mut next, mut open, mut done, mut bytes) = (0usize, 0usize, 0usize, 0u64);
    let mut puts = Vec::new();
    let owner = tuber_store::Owner::new("http://127.0.0.1/", "/bench-sink");
    loop {
        while let Some(ev) = wire.session.poll_event() {
            match ev {
                Event::Completed {
                    bytes: b, piece, ..
                } => {
                    open -= 1;
                    done += 1;
                    bytes += b.len() as u64;
                    if let Some(store) = sink {
                        let (store, owner) = (store.clone(), owner.clone());
                        puts.push(tokio::spawn(async move {
                            store.put(piece, b.to_vec(), owner, false).await
                        }));
                    }
                }
                Event::Corrupt { .. } => return Err("a piece failed verification".into()),
                Event::Missing { .. } => return Err("the server lacks a piece".into()),
                Event::Busy { .. } => return Err("the server answered busy".into()),
                Event::TimedOut { .. } => return Err("a request timed out".into()),
                Event::Closed(r) => return Err(format!("peer wire closed: {r:?}")),
                _ => {}
            }
        }
        while open < in_flight && next < wanted.len() {
            let (hash, size) = wanted[next];
            match wire.session.request(Instant::now(), hash, 0, size, true) {
                Ok(_) => {
                    open += 1;
                    next += 1;
                }
                Err(RequestError::Full) => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        if done == wanted.len() {
            // Every request was answered; wait for the stores.
            for p in puts {
                p.await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            }
            return Ok(bytes);
        }
        if !wire.step().await {
            return Err(format!(
                "link closed after {done} of {} pieces",
                wanted.len()
            ));
        }
    }
}

/// Answers every request from `pieces` in memory until the link closes;
/// returns the frames sent and the `try_send` refusals.
pub async fn serve_from_memory(
    link: Arc<Link>,
    pieces: Arc<HashMap<PieceHash, Bytes>>,
    mode: Sending,
) -> (u64, u64) {
    let mut wire = Wire::new(&link, mode);
    loop {
        while let Some(ev) = wire.session.poll_event() {
            if let Event::Requested {
                id,
                piece,
                offset,
                length,
            } = ev
            {
                let (start, end) = (offset as usize, offset as usize + length as usize);
                let _ = match pieces.get(&piece) {
                    Some(b) if end <= b.len() => wire.session.respond_data(id, b.slice(start..end)),
                    _ => wire.session.respond_missing(id),
                };
            }
        }
        if !wire.step().await {
            break;
        }
    }
    (wire.sent, wire.refused)
}

/// Answers every request from `store` until the link closes. `inline`:
/// each read is awaited in the driver loop before anything else happens
/// (as the engine's link task does); otherwise reads run as tasks and the
/// driver keeps sending while they are under way.
pub async fn serve_from_store(link: Arc<Link>, store: tuber_store::Store, inline: bool) {
    let mut wire = Wire::new(&link, Sending::Await);
    let (done_tx, mut done_rx) = mpsc::channel(64);
    loop {
        while let Some(ev) = wire.session.poll_event() {
            let Event::Requested {
                id,
                piece,
                offset,
                length,
            } = ev
            else {
                continue;
            };
            if inline {
                let got = store.get(piece).await;
                answer(&mut wire.session, id, got, offset, length);
            } else {
                let (store, done) = (store.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let got = store.get(piece).await;
                    let _ = done.send((id, got, offset, length)).await;
                });
            }
        }
        match wire.step_with(Some(&mut done_rx)).await {
            Stepped::Ended => break,
            Stepped::Alive => {}
            Stepped::Got((id, got, offset, length)) => {
                answer(&mut wire.session, id, got, offset, length)
            }
        }
    }
}

fn answer(
    session: &mut WireSession,
    id: tuber_peer::wire_session::IncomingId,
    got: Result<Option<Vec<u8>>, tuber_store::StoreError>,
    offset: u32,
    length: u32,
) {
    let (start, end) = (offset as usize, offset as usize + length as usize);
    let _ = match got {
        Ok(Some(b)) if end <= b.len() => session.respond_data(id, Bytes::from(b).slice(start..end)),
        _ => session.respond_missing(id),
    };
}
