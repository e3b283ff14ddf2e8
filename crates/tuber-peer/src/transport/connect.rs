//! Building a connection and negotiating it: offer/answer, trickle ICE, and
//! waiting for the channel to open.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription,
};

use tuber_proto::signal::IceCandidate;

use super::link::{ConnectTimings, Link, LinkEvent, Pump};
use super::peer::{build, to_rtc_candidate, Built, HandlerEvent, Shared};
use super::{RtcConfig, Signal, TransportError, CHANNEL_LABEL};

/// Start the offering side: creates the ordered, reliable DataChannel
/// labelled `"tuber"`, sends the offer SDP and then trickled candidates
/// (ending with `Candidate(None)`) through `out`, and applies what arrives on
/// `inbound` (the answer, remote candidates; candidates before the answer are
/// queued). Returns once the channel is open, or an error after `timeout`.
pub async fn connect_offer(
    cfg: &RtcConfig,
    out: mpsc::Sender<Signal>,
    inbound: mpsc::Receiver<Signal>,
    timeout: Duration,
) -> Result<Link, TransportError> {
    let start = Instant::now();
    let (pc, shared, events) = build_within(cfg, start, timeout).await?;
    let mut neg = Negotiation::new(pc, shared, events, out, inbound, timeout);
    let result = tokio::time::timeout(remaining(start, timeout), async {
        let init = RTCDataChannelInit {
            ordered: true,
            ..Default::default()
        };
        let dc = neg
            .pc
            .create_data_channel(CHANNEL_LABEL, Some(init))
            .await?;
        let offer = neg.pc.create_offer(None).await?;
        neg.pc.set_local_description(offer.clone()).await?;
        neg.send_description(offer.sdp).await?;
        neg.channel = Some(dc);
        neg.run().await
    })
    .await;
    neg.finish(result).await
}

/// Answering side: `offer_sdp` came from the remote. Sends the answer and
/// trickled candidates through `out`, applies the remote's candidates from
/// `inbound`, accepts the remote's `"tuber"` DataChannel. Returns once it is
/// open, or an error after `timeout` (a garbage offer fails at once).
pub async fn connect_answer(
    cfg: &RtcConfig,
    offer_sdp: String,
    out: mpsc::Sender<Signal>,
    inbound: mpsc::Receiver<Signal>,
    timeout: Duration,
) -> Result<Link, TransportError> {
    let start = Instant::now();
    // Parse before binding anything: garbage is refused without sockets.
    let offer = RTCSessionDescription::offer(offer_sdp).map_err(TransportError::Sdp)?;
    let (pc, shared, events) = build_within(cfg, start, timeout).await?;
    let mut neg = Negotiation::new(pc, shared, events, out, inbound, timeout);
    let result = tokio::time::timeout(remaining(start, timeout), async {
        neg.pc
            .set_remote_description(offer)
            .await
            .map_err(TransportError::Sdp)?;
        neg.remote_set = true;
        let answer = neg.pc.create_answer(None).await?;
        neg.pc.set_local_description(answer.clone()).await?;
        neg.send_description(answer.sdp).await?;
        neg.run().await
    })
    .await;
    neg.finish(result).await
}

/// [`build`] within the connect timeout.
async fn build_within(
    cfg: &RtcConfig,
    start: Instant,
    timeout: Duration,
) -> Result<Built, TransportError> {
    match tokio::time::timeout(timeout, build(cfg, start)).await {
        Ok(built) => built,
        Err(_) => Err(TransportError::Timeout {
            timeout,
            reached: "setup",
        }),
    }
}

fn remaining(start: Instant, timeout: Duration) -> Duration {
    timeout.saturating_sub(start.elapsed())
}

/// How often the driver is nudged between ICE connecting and the channel
/// opening (see [`Negotiation::run`]).
const NUDGE_INTERVAL: Duration = Duration::from_millis(1);

/// One connection being negotiated; after the channel opens, what is left
/// (late candidates both ways) becomes the link's [`Pump`].
struct Negotiation {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedReceiver<HandlerEvent>,
    out: Option<mpsc::Sender<Signal>>,
    inbound: Option<mpsc::Receiver<Signal>>,
    timeout: Duration,
    /// The remote description is applied; candidates go straight in.
    remote_set: bool,
    /// Remote candidates that arrived before the remote description.
    queued: Vec<IceCandidate>,
    /// Local candidates gathered before our description was sent.
    unsent: Vec<Signal>,
    description_sent: bool,
    channel: Option<Arc<dyn DataChannel>>,
    /// Messages that arrived before `OnOpen` was seen (should not happen).
    early: VecDeque<LinkEvent>,
}

impl Negotiation {
    fn new(
        pc: Arc<dyn PeerConnection>,
        shared: Arc<Shared>,
        events: mpsc::UnboundedReceiver<HandlerEvent>,
        out: mpsc::Sender<Signal>,
        inbound: mpsc::Receiver<Signal>,
        timeout: Duration,
    ) -> Self {
        Self {
            pc,
            shared,
            events,
            out: Some(out),
            inbound: Some(inbound),
            timeout,
            remote_set: false,
            queued: Vec::new(),
            unsent: Vec::new(),
            description_sent: false,
            channel: None,
            early: VecDeque::new(),
        }
    }

    async fn send_description(&mut self, sdp: String) -> Result<(), TransportError> {
        let out = self.out.as_ref().ok_or(TransportError::SignalingClosed)?;
        out.send(Signal::Description(sdp))
            .await
            .map_err(|_| TransportError::SignalingClosed)?;
        self.description_sent = true;
        for signal in std::mem::take(&mut self.unsent) {
            self.forward(signal).await;
        }
        Ok(())
    }

    /// Send a local candidate (or the end of them) to the remote. A closed
    /// signaling channel is not an error here: the remote may have enough.
    async fn forward(&mut self, signal: Signal) {
        if !self.description_sent {
            self.unsent.push(signal);
            return;
        }
        let end = matches!(signal, Signal::Candidate(None));
        if let Some(out) = &self.out {
            if out.send(signal).await.is_err() {
                self.out = None;
            }
        }
        if end {
            // Nothing more to say; let the caller's signaling see the end.
            self.out = None;
        }
    }

    async fn on_event(&mut self, event: HandlerEvent) {
        match event {
            HandlerEvent::Candidate(candidate) => {
                self.forward(Signal::Candidate(Some(candidate))).await
            }
            HandlerEvent::GatheringComplete => self.forward(Signal::Candidate(None)).await,
            HandlerEvent::DataChannel(dc) => {
                let ours = self.channel.is_none()
                    && matches!(dc.label().await.as_deref(), Ok(CHANNEL_LABEL));
                if ours {
                    self.channel = Some(dc);
                } else {
                    tracing::debug!("closing an unexpected remote DataChannel");
                    let _ = dc.close().await;
                }
            }
        }
    }

    /// Apply one signal from the remote. `Err` only for a refused answer.
    async fn on_signal(&mut self, signal: Signal) -> Result<(), TransportError> {
        match signal {
            Signal::Description(sdp) if !self.remote_set => {
                let answer = RTCSessionDescription::answer(sdp).map_err(TransportError::Sdp)?;
                self.pc
                    .set_remote_description(answer)
                    .await
                    .map_err(TransportError::Sdp)?;
                self.remote_set = true;
                for candidate in std::mem::take(&mut self.queued) {
                    self.add_remote(candidate).await;
                }
            }
            Signal::Description(_) => {
                tracing::debug!("ignoring a second remote description (no renegotiation)")
            }
            Signal::Candidate(Some(candidate)) if !self.remote_set => self.queued.push(candidate),
            Signal::Candidate(Some(candidate)) => self.add_remote(candidate).await,
            Signal::Candidate(None) => {}
        }
        Ok(())
    }

    async fn add_remote(&self, candidate: IceCandidate) {
        if let Err(err) = self.pc.add_ice_candidate(to_rtc_candidate(candidate)).await {
            tracing::debug!(%err, "remote candidate refused");
        }
    }

    /// Drive signaling until the channel is open.
    ///
    /// Once ICE is up, the driver is nudged every millisecond through the
    /// channel handle. In `webrtc`/`rtc` 0.21.1, packets the core queues while
    /// handling an internal event — the SCTP INIT when DTLS completes, the
    /// DCEP OPEN when SCTP is up — go out only at the driver's next wake-up,
    /// the ICE agent's 200 ms connected-state tick: ~400 ms per connect. Any
    /// channel call wakes the driver (`wake_writes`), which flushes them. The
    /// DTLS ClientHello has the same problem one layer down (`DtlsHandler::
    /// handle_event` never drains `poll_transmit`) and only a timeout releases
    /// it: that is the 20 ms ICE check interval in `peer`.
    async fn run(&mut self) -> Result<Arc<dyn DataChannel>, TransportError> {
        let mut state = self.shared.state.clone();
        let shared = self.shared.clone();
        let mut nudging = false;
        let mut nudge = tokio::time::interval(NUDGE_INTERVAL);
        nudge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(err) = failed(&state.borrow_and_update()) {
                return Err(err);
            }
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(event) => self.on_event(event).await,
                    None => return Err(TransportError::Failed("connection driver stopped")),
                },
                signal = recv_signal(&mut self.inbound) => match signal {
                    Some(signal) => self.on_signal(signal).await?,
                    None if self.remote_set => self.inbound = None,
                    None => return Err(TransportError::SignalingClosed),
                },
                changed = state.changed() => if changed.is_err() {
                    return Err(TransportError::Failed("connection driver stopped"));
                },
                () = shared.ice_up.notified(), if !nudging => nudging = true,
                _ = nudge.tick(), if nudging && self.channel.is_some() => {
                    if let Some(dc) = &self.channel {
                        // The threshold is already 0; the call is for its wake.
                        let _ = dc.set_buffered_amount_low_threshold(0).await;
                    }
                }
                event = poll_channel(&self.channel) => match event {
                    Some(DataChannelEvent::OnOpen) => {
                        if let Some(dc) = &self.channel {
                            return Ok(dc.clone());
                        }
                    }
                    Some(DataChannelEvent::OnMessage(msg)) => {
                        self.early.push_back(LinkEvent::from_message(msg));
                    }
                    Some(DataChannelEvent::OnClose) | None => {
                        return Err(TransportError::Failed("data channel closed during setup"));
                    }
                    Some(_) => {}
                },
            }
        }
    }

    /// Close on failure; on success build the link and hand the rest of the
    /// signaling to its pump.
    async fn finish(
        self,
        result: Result<Result<Arc<dyn DataChannel>, TransportError>, tokio::time::error::Elapsed>,
    ) -> Result<Link, TransportError> {
        let dc = match result {
            Ok(Ok(dc)) => dc,
            Ok(Err(err)) => {
                let _ = self.pc.close().await;
                return Err(err);
            }
            Err(_) => {
                let reached = if !self.remote_set {
                    "signaling"
                } else if self.shared.ice_connected.get().is_none() {
                    "ICE"
                } else if self.shared.connected.get().is_none() {
                    "DTLS"
                } else {
                    "SCTP"
                };
                let _ = self.pc.close().await;
                return Err(TransportError::Timeout {
                    timeout: self.timeout,
                    reached,
                });
            }
        };
        let timings = ConnectTimings {
            ice_connected: self.shared.ice_connected.get().copied(),
            connected: self.shared.connected.get().copied(),
            open: self.shared.start.elapsed(),
        };
        let remote_max = match self.pc.sctp().await {
            Some(sctp) => sctp.max_message_size().await.ok(),
            None => None,
        }
        .unwrap_or(super::DEFAULT_REMOTE_MAX_MESSAGE_SIZE);
        let pump = Pump {
            events: self.events,
            inbound: self.inbound,
            out: self.out,
            pc: self.pc.clone(),
        };
        Ok(Link::new(
            self.pc,
            dc,
            self.shared.state.clone(),
            self.early,
            remote_max,
            timings,
            pump,
        ))
    }
}

/// The connection failed or was closed: setup cannot complete.
fn failed(state: &RTCPeerConnectionState) -> Option<TransportError> {
    match state {
        RTCPeerConnectionState::Failed => Some(TransportError::Failed("ICE or DTLS failed")),
        RTCPeerConnectionState::Closed => Some(TransportError::Failed("connection closed")),
        _ => None,
    }
}

/// The next signal, or pending forever once the channel is gone.
pub(super) async fn recv_signal(inbound: &mut Option<mpsc::Receiver<Signal>>) -> Option<Signal> {
    match inbound {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn poll_channel(channel: &Option<Arc<dyn DataChannel>>) -> Option<DataChannelEvent> {
    match channel {
        Some(dc) => dc.poll().await,
        None => std::future::pending().await,
    }
}

pub(super) fn apply_late_candidate(signal: Signal) -> Option<RTCIceCandidateInit> {
    match signal {
        Signal::Candidate(Some(candidate)) => Some(to_rtc_candidate(candidate)),
        _ => None,
    }
}
