//! [`SwarmClientBuilder`]: the settings of a [`SwarmClient`], checked
//! before anything starts, and the start itself.

use std::sync::Arc;

use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tuber_proto::limits::PROTOCOL_VERSION;
use tuber_proto::signal::{Capacity, ClientToHub, HubToClient, Role, Validate};
use tuber_proto::{LimitError, Nonce};

use super::{fetch, session, supervisor};
use super::{Invite, SwarmClient, SwarmState, DEFAULT_INBOUND_QUEUE, OUTBOUND_QUEUE};
use crate::identity::Identity;
use crate::tls::TlsTrust;

/// Why a client could not be started.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The swarm URL does not parse or names no host.
    #[error("swarm URL {url:?}: {why}")]
    InvalidUrl { url: String, why: String },
    /// An invite for a public `http://` hub, which would travel in
    /// cleartext (see [`SwarmClientBuilder::allow_insecure`]).
    #[error("{0}")]
    InsecureInvite(String),
    /// The invite or the agent breaks a protocol limit.
    #[error("hello: {0}")]
    Hello(#[from] LimitError),
    /// Not called from within a tokio runtime.
    #[error("the swarm client needs a tokio runtime")]
    NoRuntime,
}

/// Configures and starts a [`SwarmClient`].
#[derive(Debug)]
pub struct SwarmClientBuilder {
    url: String,
    identity: Arc<Identity>,
    invite: Option<Invite>,
    capacity: Option<Capacity>,
    agent: String,
    inbound_queue: usize,
    tls: Option<TlsTrust>,
    allow_insecure: bool,
}

impl SwarmClientBuilder {
    pub(super) fn new(url: String, identity: Arc<Identity>) -> Self {
        Self {
            url,
            identity,
            invite: None,
            capacity: None,
            agent: concat!("tuber-peer/", env!("CARGO_PKG_VERSION")).to_string(),
            inbound_queue: DEFAULT_INBOUND_QUEUE,
            tls: None,
            allow_insecure: false,
        }
    }

    /// What an `https://` hub's certificate must chain to. Default: the
    /// bundled Mozilla roots and the system's ([`TlsTrust::load`]`(None)`,
    /// read at [`join`](Self::join)).
    pub fn tls(mut self, tls: TlsTrust) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Send an invite to an `http://` hub on a public address, in
    /// cleartext. Default false: such an invite is refused
    /// ([`JoinError::InsecureInvite`], or [`SwarmState::Stopped`] with
    /// `insecure_invite` when a name resolves to a public address), because
    /// anyone on the way could read it and take this peer's place.
    pub fn allow_insecure(mut self, allow: bool) -> Self {
        self.allow_insecure = allow;
        self
    }

    /// An invite to redeem at the first `welcome`, making this key trusted.
    /// Default: none (the key is trusted only if the hub already knows it).
    pub fn invite(mut self, invite: Invite) -> Self {
        self.invite = Some(invite);
        self
    }

    /// What this peer offers the swarm, sent in `hello`. Default: none.
    pub fn capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Software name and version for the hub's logs. Default:
    /// `tuber-peer/<crate version>`.
    pub fn agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = agent.into();
        self
    }

    /// Capacity of the channel of hub messages to the engine. Default:
    /// [`DEFAULT_INBOUND_QUEUE`]; at least 1.
    pub fn inbound_queue(mut self, n: usize) -> Self {
        self.inbound_queue = n.max(1);
        self
    }

    /// Starts the client on the current tokio runtime. Returns the handle
    /// and the receiver of hub messages (everything but pings); the receiver
    /// ends when the client stops.
    pub fn join(self) -> Result<(SwarmClient, mpsc::Receiver<HubToClient>), JoinError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| JoinError::NoRuntime)?;
        let uri = parse_swarm_url(&self.url)?;
        let well_known = fetch::well_known_url(&uri).map_err(|e| JoinError::InvalidUrl {
            url: self.url.clone(),
            why: e.to_string(),
        })?;
        check_hello(&self)?;
        let origin = tuber_proto::origin::origin_of(&uri.to_string()).map_err(|e| {
            JoinError::InvalidUrl {
                url: self.url.clone(),
                why: e.to_string(),
            }
        })?;
        if self.invite.is_some() && !self.allow_insecure {
            check_invite_transport(&uri, &origin)?;
        }
        let tls = match self.tls {
            Some(t) => t,
            None => TlsTrust::load(None).map_err(|e| JoinError::InvalidUrl {
                url: self.url.clone(),
                why: e.to_string(),
            })?,
        };

        let (state_tx, state_rx) = watch::channel(SwarmState::Connecting);
        let (inbound_tx, inbound_rx) = mpsc::channel(self.inbound_queue);
        let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let cancel = CancellationToken::new();
        let reconnect = Arc::new(Notify::new());
        let ctx = session::Ctx {
            settings: session::Settings {
                identity: self.identity,
                capacity: self.capacity,
                agent: self.agent,
            },
            fetcher: fetch::DescriptorClient::new(&tls),
            well_known,
            origin,
            tls,
            allow_insecure: self.allow_insecure,
            invite: self.invite,
            invite_uncertain: false,
            state: state_tx,
            inbound: inbound_tx,
            outbound: outbound_rx,
            cancel: cancel.clone(),
            reconnect: Arc::clone(&reconnect),
            sessions: 0,
        };
        let task = AbortOnDropHandle::new(runtime.spawn(supervisor::run(ctx)));
        let client = SwarmClient {
            url: self.url,
            state: state_rx,
            outbound: outbound_tx,
            reconnect,
            cancel,
            task,
        };
        Ok((client, inbound_rx))
    }
}

fn parse_swarm_url(url: &str) -> Result<http::Uri, JoinError> {
    let invalid = |why: &str| JoinError::InvalidUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
        _ => return Err(invalid("the scheme must be http or https")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(uri)
}

/// Refuses an invite for `http://` at a literal public address. A name is
/// checked against the address it connects to (handshake).
fn check_invite_transport(uri: &http::Uri, origin: &str) -> Result<(), JoinError> {
    if uri.scheme_str() != Some("http") {
        return Ok(());
    }
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    if host.parse().is_ok_and(|ip| !crate::tls::is_private(ip)) {
        return Err(JoinError::InsecureInvite(
            super::handshake::insecure_invite_message(origin, None),
        ));
    }
    Ok(())
}

/// Refuses at once an invite or agent that every `hello` would break.
fn check_hello(b: &SwarmClientBuilder) -> Result<(), LimitError> {
    let nonce = Nonce::from_bytes([0; 32]);
    ClientToHub::Hello {
        version: PROTOCOL_VERSION,
        role: Role::Permanent,
        proof: Some(b.identity.sign_hello("https://check", "check", &nonce)),
        invite: b.invite.as_ref().map(|i| i.expose().to_string()),
        capacity: b.capacity,
        agent: b.agent.clone(),
    }
    .validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> (tempfile::TempDir, Arc<Identity>) {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap();
        (dir, Arc::new(id))
    }

    #[tokio::test]
    async fn bad_urls_are_refused_at_once() {
        let (_dir, id) = identity();
        for url in ["ftp://x/", "not a url", "/relative", "http:///x"] {
            let err = SwarmClient::builder(url, id.clone()).join().unwrap_err();
            assert!(matches!(err, JoinError::InvalidUrl { .. }), "{url}: {err}");
        }
        let long = "x".repeat(600);
        let err = SwarmClient::builder("http://127.0.0.1:1/", id)
            .invite(Invite::new(&long))
            .join()
            .unwrap_err();
        assert!(matches!(err, JoinError::Hello(_)), "{err}");
    }

    #[tokio::test]
    async fn an_invite_for_a_public_http_address_is_refused_and_says_why() {
        let (_dir, id) = identity();
        // TEST-NET-3: refused before any packet is sent.
        let err = SwarmClient::builder("http://203.0.113.5:8080/", id.clone())
            .tls(TlsTrust::bundled())
            .invite(Invite::new("inv_x"))
            .join()
            .unwrap_err();
        let JoinError::InsecureInvite(why) = &err else {
            panic!("{err}")
        };
        assert!(
            why.contains("cleartext") && why.contains("https://"),
            "{why}"
        );
        assert!(why.contains("--allow-insecure"), "{why}");
        // Private and loopback addresses, names (checked when connected)
        // and https pass; nothing here connects anywhere.
        for url in [
            "http://192.168.1.20:8080/",
            "http://127.0.0.1:1/",
            "http://[::1]:1/",
            "http://hub.example.org/",
            "https://203.0.113.5/",
        ] {
            let uri: http::Uri = url.parse().unwrap();
            let origin = tuber_proto::origin::origin_of(url).unwrap();
            assert!(check_invite_transport(&uri, &origin).is_ok(), "{url}");
        }
    }

    #[test]
    fn join_outside_a_runtime_is_an_error() {
        let (_dir, id) = identity();
        let err = SwarmClient::builder("http://127.0.0.1:1/", id)
            .join()
            .unwrap_err();
        assert!(matches!(err, JoinError::NoRuntime));
    }
}
