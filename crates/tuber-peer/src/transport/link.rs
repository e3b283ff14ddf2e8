//! [`Link`]: one open DataChannel and its PeerConnection.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelMessage};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

use super::connect::{apply_late_candidate, recv_signal};
use super::peer::HandlerEvent;
use super::{Signal, TransportError};

/// What [`Link::recv`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A binary message.
    Message(Bytes),
    /// A text message (its content dropped): the peer wire is binary, so
    /// this is a protocol violation for the caller to handle.
    Text,
}

impl LinkEvent {
    pub(super) fn from_message(msg: RTCDataChannelMessage) -> Self {
        if msg.is_string {
            Self::Text
        } else {
            Self::Message(msg.data.freeze())
        }
    }
}

/// Where the time to open a link went, from the `connect_*` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectTimings {
    /// ICE found a working pair.
    pub ice_connected: Option<Duration>,
    /// DTLS finished (the connection state became `connected`).
    pub connected: Option<Duration>,
    /// The DataChannel opened (SCTP association and DCEP done).
    pub open: Duration,
}

/// The signaling left after the channel opened: late local candidates go
/// out, late remote ones are applied. Runs as the link's task until both
/// directions are done or the link is dropped.
pub(super) struct Pump {
    pub(super) events: mpsc::UnboundedReceiver<HandlerEvent>,
    pub(super) inbound: Option<mpsc::Receiver<Signal>>,
    pub(super) out: Option<mpsc::Sender<Signal>>,
    pub(super) pc: Arc<dyn PeerConnection>,
}

impl Pump {
    async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(HandlerEvent::Candidate(candidate)) => {
                        self.send(Signal::Candidate(Some(candidate))).await
                    }
                    Some(HandlerEvent::GatheringComplete) => {
                        self.send(Signal::Candidate(None)).await;
                        self.out = None;
                    }
                    Some(HandlerEvent::DataChannel(dc)) => {
                        tracing::debug!("closing an unexpected remote DataChannel");
                        let _ = dc.close().await;
                    }
                    None => return,
                },
                signal = recv_signal(&mut self.inbound) => match signal {
                    Some(signal) => {
                        if let Some(candidate) = apply_late_candidate(signal) {
                            if let Err(err) = self.pc.add_ice_candidate(candidate).await {
                                tracing::debug!(%err, "late remote candidate refused");
                            }
                        }
                    }
                    None => self.inbound = None,
                },
            }
        }
    }

    async fn send(&mut self, signal: Signal) {
        if let Some(out) = &self.out {
            if out.send(signal).await.is_err() {
                self.out = None;
            }
        }
    }
}

/// One open DataChannel plus its PeerConnection. Dropping it closes both:
/// the connection is closed (the remote gets an SCTP ABORT) on a spawned
/// task when a tokio runtime is at hand, and its driver stops regardless.
pub struct Link {
    pc: Arc<dyn PeerConnection>,
    dc: Arc<dyn DataChannel>,
    state: watch::Receiver<RTCPeerConnectionState>,
    early: Mutex<VecDeque<LinkEvent>>,
    closed: AtomicBool,
    /// `close()` ran: nothing left for `Drop` to do.
    shut: AtomicBool,
    remote_max: u32,
    timings: ConnectTimings,
    pump: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("state", &*self.state.borrow())
            .field("remote_max", &self.remote_max)
            .field("timings", &self.timings)
            .finish_non_exhaustive()
    }
}

impl Link {
    pub(super) fn new(
        pc: Arc<dyn PeerConnection>,
        dc: Arc<dyn DataChannel>,
        state: watch::Receiver<RTCPeerConnectionState>,
        early: VecDeque<LinkEvent>,
        remote_max: u32,
        timings: ConnectTimings,
        pump: Pump,
    ) -> Self {
        Self {
            pc,
            dc,
            state,
            early: Mutex::new(early),
            closed: AtomicBool::new(false),
            shut: AtomicBool::new(false),
            remote_max,
            timings,
            pump: tokio::spawn(pump.run()),
        }
    }

    /// The next received message, or `None` once the channel or connection
    /// is closed (by either end) or failed. Cancel-safe.
    pub async fn recv(&self) -> Option<LinkEvent> {
        if let Some(event) = self.pop_early() {
            return Some(event);
        }
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let mut state = self.state.clone();
        loop {
            tokio::select! {
                event = self.dc.poll() => match event {
                    Some(DataChannelEvent::OnMessage(msg)) => {
                        return Some(LinkEvent::from_message(msg));
                    }
                    Some(DataChannelEvent::OnClose) | None => break,
                    Some(_) => {}
                },
                () = ended(&mut state) => break,
            }
        }
        self.closed.store(true, Ordering::Release);
        None
    }

    /// Resolves when a send would not wait: the channel's outstanding bytes
    /// are below the send-buffer limit. Cancel-safe.
    pub async fn writable(&self) -> Result<(), TransportError> {
        self.check_open()?;
        Ok(self.dc.writable().await?)
    }

    /// Send without waiting; [`TransportError::SendBufferFull`] when the
    /// buffer is at its limit (the message is dropped: keep a clone).
    pub async fn try_send(&self, msg: Bytes) -> Result<(), TransportError> {
        self.check_message(&msg)?;
        Ok(self.dc.try_send(into_bytes_mut(msg)).await?)
    }

    /// Send, waiting for room in the send buffer first.
    pub async fn send(&self, msg: Bytes) -> Result<(), TransportError> {
        self.check_message(&msg)?;
        Ok(self.dc.send(into_bytes_mut(msg)).await?)
    }

    /// The largest message the remote accepts: its SDP `max-message-size`
    /// (65536 when absent), capped at this end's own
    /// [`max_message_size`](super::RtcConfig::max_message_size).
    pub fn remote_max_message_size(&self) -> u32 {
        self.remote_max
    }

    /// Where the connect time went.
    pub fn connect_timings(&self) -> ConnectTimings {
        self.timings
    }

    /// Close the channel and the connection; the remote's `recv` ends.
    /// Idempotent.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if self.shut.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.dc.close().await;
        if let Err(err) = self.pc.close().await {
            tracing::debug!(%err, "closing the peer connection");
        }
        self.pump.abort();
    }

    fn pop_early(&self) -> Option<LinkEvent> {
        match self.early.lock() {
            Ok(mut early) => early.pop_front(),
            Err(poisoned) => poisoned.into_inner().pop_front(),
        }
    }

    fn check_open(&self) -> Result<(), TransportError> {
        if self.closed.load(Ordering::Acquire) {
            Err(TransportError::Closed)
        } else {
            Ok(())
        }
    }

    fn check_message(&self, msg: &Bytes) -> Result<(), TransportError> {
        self.check_open()?;
        if msg.len() > self.remote_max as usize {
            return Err(TransportError::MessageTooLarge {
                len: msg.len(),
                max: self.remote_max,
            });
        }
        Ok(())
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.pump.abort();
        if self.shut.load(Ordering::Acquire) {
            return;
        }
        // Close on a task so the remote hears an SCTP ABORT at once instead
        // of waiting out ICE consent. Without a runtime, dropping the last
        // handle still stops the driver (it runs on the reactor pool).
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let pc = self.pc.clone();
            handle.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

/// Resolves once the connection is failed or closed (or its driver gone).
async fn ended(state: &mut watch::Receiver<RTCPeerConnectionState>) {
    loop {
        if matches!(
            *state.borrow_and_update(),
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
        ) {
            return;
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

fn into_bytes_mut(msg: Bytes) -> BytesMut {
    // Free when `msg` is the only handle; one copy otherwise.
    msg.try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]))
}
