//! Building one `webrtc` peer connection: the tuned settings, and the event
//! handler that reports the driver's callbacks to the negotiation.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize;
use rtc::peer_connection::transport::RTCDtlsRole;
use tokio::sync::{mpsc, watch, Notify};
use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceConnectionState, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, SettingEngine, SettingEngineBuilder,
};

use tuber_proto::signal::IceCandidate;

use super::runtime::TunedRuntime;
use super::RtcConfig;
use super::TransportError;

/// What the driver's callbacks report to the negotiation.
pub(super) enum HandlerEvent {
    Candidate(IceCandidate),
    GatheringComplete,
    DataChannel(Arc<dyn DataChannel>),
}

/// State the callbacks publish for the negotiation and the [`Link`].
pub(super) struct Shared {
    pub(super) start: Instant,
    pub(super) ice_connected: OnceLock<Duration>,
    pub(super) connected: OnceLock<Duration>,
    /// Signalled once ICE is connected: the negotiation starts nudging the
    /// driver (see `Negotiation::run`).
    pub(super) ice_up: Notify,
    pub(super) state: watch::Receiver<RTCPeerConnectionState>,
}

struct Handler {
    events: mpsc::UnboundedSender<HandlerEvent>,
    state: watch::Sender<RTCPeerConnectionState>,
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _ = self
                    .events
                    .send(HandlerEvent::Candidate(to_signal_candidate(init)));
            }
            Err(err) => tracing::debug!(%err, "local candidate not serialisable"),
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.events.send(HandlerEvent::GatheringComplete);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        if state == RTCIceConnectionState::Connected {
            let _ = self.shared.ice_connected.set(self.shared.start.elapsed());
            self.shared.ice_up.notify_one();
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            let _ = self.shared.connected.set(self.shared.start.elapsed());
        }
        self.state.send_replace(state);
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        let _ = self.events.send(HandlerEvent::DataChannel(data_channel));
    }
}

/// Connect-time tuning, measured on loopback (two links in one process):
/// library defaults ~450 ms (ICE ~3 ms, DTLS +20–200 ms, channel +400 ms),
/// occasionally ~1.45 s; with all of the below 23–47 ms.
///
/// - ICE checks every 20 ms, not 200 ms (same ~1.4 s per-pair budget): the
///   DTLS ClientHello the core queues when ICE connects is only sent on the
///   driver's next timeout, which is the next ICE tick.
/// - Peer-reflexive and server-reflexive pairs nominated without the 1 s /
///   500 ms acceptance wait. With trickle ICE the answerer's checks often
///   arrive before its candidates, so the pair is peer-reflexive and the
///   default cost a full second in about half of the connects. Relay pairs
///   keep their 2 s wait, so a direct path still wins over a relayed one.
/// - The other ~400 ms (SCTP INIT and DCEP OPEN waiting for a timer) are
///   nudged away in `Negotiation::run`.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(20);
const ICE_MAX_BINDING_REQUESTS: u16 = 70;
const PRFLX_MIN_WAIT: Duration = Duration::ZERO;
const SRFLX_MIN_WAIT: Duration = Duration::ZERO;

fn setting_engine(cfg: &RtcConfig) -> SettingEngine {
    SettingEngineBuilder::new()
        .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(cfg.max_message_size))
        // No port-5353 socket per connection; peers that only send mDNS
        // (`.local`) host candidates still reach us through srflx/relay.
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        // The answerer is the DTLS server, so the offerer — which holds the
        // DataChannel handle it can nudge the driver through — is the DTLS and
        // SCTP client whose queued packets stall (see `Negotiation::run`).
        .with_answering_dtls_role(RTCDtlsRole::Server)
        .with_network_types(vec![NetworkType::Udp4, NetworkType::Udp6])
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
        .with_prflx_acceptance_min_wait(Some(PRFLX_MIN_WAIT))
        .with_srflx_acceptance_min_wait(Some(SRFLX_MIN_WAIT))
        .build()
}

/// How many reactor threads the library's shared pool gets (set once per
/// process, by the first connection). Drivers on the pool are pinned to one
/// thread each and stop when their connection is dropped.
fn reactor_pool_size() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8)
}

pub(super) type Built = (
    Arc<dyn PeerConnection>,
    Arc<Shared>,
    mpsc::UnboundedReceiver<HandlerEvent>,
);

pub(super) async fn build(cfg: &RtcConfig, start: Instant) -> Result<Built, TransportError> {
    if cfg.udp_addrs.is_empty() {
        return Err(TransportError::Config("no UDP bind address".into()));
    }
    let max = SctpMaxMessageSize::MAX_MESSAGE_SIZE;
    if !(1024..=max).contains(&cfg.max_message_size) {
        return Err(TransportError::Config(format!(
            "max_message_size {} is outside 1024..={max}",
            cfg.max_message_size
        )));
    }
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (state_tx, state_rx) = watch::channel(RTCPeerConnectionState::New);
    let shared = Arc::new(Shared {
        start,
        ice_connected: OnceLock::new(),
        connected: OnceLock::new(),
        ice_up: Notify::new(),
        state: state_rx,
    });
    let handler = Arc::new(Handler {
        events: events_tx,
        state: state_tx,
        shared: shared.clone(),
    });
    let ice_servers = cfg
        .ice_servers
        .iter()
        .map(|server| RTCIceServer {
            urls: server.urls.clone(),
            username: server.username.clone().unwrap_or_default(),
            credential: server.credential.clone().unwrap_or_default(),
        })
        .collect();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_ice_servers(ice_servers)
                .build(),
        )
        .with_setting_engine(setting_engine(cfg))
        .with_runtime(Arc::new(TunedRuntime::new(cfg.socket_buffer, cfg.pacing)))
        .with_handler(handler)
        .with_udp_addrs(cfg.udp_addrs.clone())
        .with_dedicated_reactor_pool_size(reactor_pool_size())
        .with_data_channel_send_buffer_limit(cfg.send_buffer_limit)
        .build()
        .await?;
    Ok((Arc::new(pc), shared, events_rx))
}

fn to_signal_candidate(init: RTCIceCandidateInit) -> IceCandidate {
    IceCandidate {
        candidate: init.candidate,
        // The library writes an empty mid; a browser would look it up.
        sdp_mid: init.sdp_mid.filter(|mid| !mid.is_empty()),
        sdp_mline_index: init.sdp_mline_index,
    }
}

pub(super) fn to_rtc_candidate(candidate: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdp_mid,
        sdp_mline_index: candidate.sdp_mline_index,
        username_fragment: None,
        url: None,
    }
}
