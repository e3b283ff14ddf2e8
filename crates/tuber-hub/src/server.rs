//! Assembles the hub: database, manifests, signaling, proxy, STUN, and the
//! HTTP router; runs until the caller's shutdown future resolves. The caller
//! binds the sockets (tests bind port 0) and decides when to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tuber_proto::descriptor::{IceServer, SwarmDescriptor};
use tuber_proto::limits::PROTOCOL_VERSION;

use crate::config::HubConfig;
use crate::db::{DbError, HubDb};
use crate::manifests::Manifests;
use crate::metrics::Metrics;
use crate::planner::PlannerConfig;
use crate::proxy::{Proxy, ProxySettings, Rules};
use crate::signaling::{Access, Connector, Signaling, SwarmHandle};
use crate::upstream_client::{UpstreamTls, DEFAULT_CONNECT_TIMEOUT};
use crate::{admin, routes, stun};

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The configuration does not make a working hub.
    #[error("{0}")]
    Config(String),
    /// The database could not be opened.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A socket or file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Shared by every request handler.
pub struct HubState {
    pub(crate) descriptor: Bytes,
    pub(crate) public_url: String,
    pub(crate) swarm: SwarmHandle,
    pub(crate) connector: Connector,
    pub(crate) connections: Arc<Semaphore>,
    /// Signaling connections per client network.
    pub(crate) per_network: Arc<crate::signaling::PerNetwork>,
    pub(crate) manifests: Manifests,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) db: HubDb,
    pub(crate) admin_token: String,
    pub(crate) invite_lifetime: Duration,
    /// How long bans last (`planner.ban_duration`), to list them.
    pub(crate) ban_duration: Duration,
    /// The origins whose pages may open signaling (`Origin` on the
    /// WebSocket upgrade; see `routes::ws`).
    pub(crate) ws_origins: Vec<String>,
    /// The `[distribute]` rules, for `/.tuber/rules` and `/.tuber/manifest`.
    pub(crate) rules: Rules,
    /// Reverse proxies whose `X-Forwarded-For` names the real client.
    pub(crate) trusted_proxies: crate::proxy::TrustedProxies,
    /// Orders what the planner is told about content (see `publication.rs`).
    pub(crate) publication: tokio::sync::Mutex<()>,
    proxy: Proxy,
}

/// The origins a browser page may open signaling from: the hub's public
/// origin, the address it listens on (a page loaded from it directly) and
/// the upstream's. Any other page is a foreign site making its visitors'
/// browsers talk to this swarm (to report, to flood), and is refused.
fn signaling_origins(
    public_url: &str,
    upstream: Option<&str>,
    listen: std::net::SocketAddr,
    config: &HubConfig,
) -> Vec<String> {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let own = format!("{scheme}://{listen}");
    let mut out: Vec<String> = [Some(public_url), upstream, Some(own.as_str())]
        .into_iter()
        .flatten()
        .filter_map(|u| tuber_proto::origin::origin_of(u).ok())
        .collect();
    out.dedup();
    out
}

/// How long a starting hub waits for a CLI command to release the database.
const HUB_LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(15);

/// The data directory: configured, else the OS's (`~/.local/share/tuber-hub`).
pub fn data_dir(config: &HubConfig) -> Result<PathBuf, HubError> {
    if let Some(d) = &config.data_dir {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("org", "tuber", "tuber-hub")
        .map(|p| p.data_dir().to_path_buf())
        .ok_or_else(|| HubError::Config("no home directory: pass --data DIR".into()))
}

/// Runs the hub on `listener` (HTTP, or HTTPS with `config.tls`) and `stun`
/// (UDP, optional) until `shutdown` resolves; then stops accepting, lets
/// requests in flight end, and stops every task it started. With
/// `tls.http_listen` the plain-HTTP listener is bound here; see
/// [`run_with`] to bind it beforehand.
pub async fn run(
    config: HubConfig,
    listener: TcpListener,
    stun_socket: Option<UdpSocket>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    run_with(config, listener, None, stun_socket, || {}, shutdown).await
}

/// [`run`], with the plain-HTTP listener of `tls.http_listen` (redirects
/// to HTTPS, ACME HTTP-01 challenges) already bound by the caller. Without
/// it, and with `tls.http_listen` set, that address is bound here.
/// `ready` runs once the hub holds its database: from then on a CLI command
/// on the same data directory goes through the admin API (and, before,
/// could take the database from under a starting hub).
pub async fn run_with(
    config: HubConfig,
    listener: TcpListener,
    http_redirect: Option<TcpListener>,
    stun_socket: Option<UdpSocket>,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    config
        .check()
        .map_err(|e| HubError::Config(e.to_string()))?;
    let http_redirect = match (
        http_redirect,
        config.tls.as_ref().and_then(|t| t.http_listen),
    ) {
        (Some(l), _) => Some(l),
        (None, Some(addr)) => Some(bind_http(addr).await?),
        (None, None) => None,
    };
    let upstream: http::Uri = config
        .upstream
        .as_deref()
        .ok_or_else(|| HubError::Config("no upstream: pass --upstream URL".into()))?
        .parse()
        .map_err(|e| HubError::Config(format!("upstream URL: {e}")))?;
    let http_addr = listener.local_addr()?;
    let stun_addr = stun_socket
        .as_ref()
        .map(UdpSocket::local_addr)
        .transpose()?;

    let dir = data_dir(&config)?;
    let db = {
        let dir = dir.clone();
        // A CLI command may hold the database for a moment (an invite made
        // while the hub starts): wait for it longer than the CLI waits for
        // a hub.
        tokio::task::spawn_blocking(move || HubDb::open_waiting(&dir, HUB_LOCK_PATIENCE))
            .await
            .map_err(|e| HubError::Config(e.to_string()))??
    };
    let admin_token = admin::ensure_token(&dir)?;
    ready();

    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| match &config.tls {
            Some(tls) => crate::tls::default_public_url(tls, http_addr),
            None => format!("http://{http_addr}"),
        })
        .trim_end_matches('/')
        .to_string();
    let descriptor = descriptor(&config, &public_url, stun_addr)?;
    let swarm_id = descriptor.swarm_id.clone();

    let metrics = Arc::new(Metrics::default());
    let planner = PlannerConfig {
        replication: config.planner.replication,
        partition_pieces: config.planner.partition_pieces,
        ban_threshold: config.planner.ban_threshold,
        ban_reporters: config.planner.ban_reporters,
        ping_interval: config.planner.ping_interval,
        ban_duration: config.planner.ban_duration,
        ..PlannerConfig::default()
    };
    let access = Access {
        origin: tuber_proto::origin::origin_of(&public_url)
            .map_err(|e| HubError::Config(format!("public URL {public_url:?}: {e}")))?,
        refuse_cleartext_invites: config.invites.refuse_cleartext,
        tls: config.tls.is_some(),
    };
    let turn = config
        .turn
        .as_ref()
        .map(crate::turn::TurnIssuer::new)
        .transpose()
        .map_err(|e| HubError::Config(e.to_string()))?;
    let mut signaling = Signaling::new(
        config.signaling.clone(),
        access,
        planner,
        db.clone(),
        Arc::clone(&metrics),
    )
    .with_turn(turn);
    let swarm = signaling.add_swarm(&swarm_id);
    // Reads the system's root certificates and the CA file: off the workers.
    let tls = {
        let ca_file = config.upstream_ca_file.clone();
        tokio::task::spawn_blocking(move || UpstreamTls::load(ca_file.as_deref()))
            .await
            .map_err(|e| HubError::Config(e.to_string()))?
            .map_err(|e| HubError::Config(e.to_string()))?
    };
    let manifests = Manifests::with_cache(
        upstream.clone(),
        config.piece_size,
        db.clone(),
        &tls,
        config.piece_cache_bytes,
        Some(Rules::new(&config.distribute)),
    );
    manifests.set_origin_budget(config.origin_budget_per_network);
    manifests.set_index_config(config.manifests.clone());
    {
        let manifests = manifests.clone();
        tokio::task::spawn_blocking(move || manifests.load_index(crate::db::unix_now()))
            .await
            .map_err(|e| HubError::Config(e.to_string()))??;
    }

    let rules = Rules::new(&config.distribute);
    let (seen_tx, seen_rx) = mpsc::channel(1024);
    let proxy = Proxy::new(
        ProxySettings {
            upstream,
            tls,
            script_tag: crate::proxy::page_script_tag(&rules),
            distribute: config.distribute.clone(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            public_origin: Some(public_url.clone()),
            origin_bytes: Some(Arc::clone(&metrics.origin_distributable_bytes)),
            fallback_bytes: Some(Arc::clone(&metrics.fallback_piece_bytes)),
            manifests: Some(manifests.clone()),
            trusted_proxies: crate::proxy::TrustedProxies::new(&config.trusted_proxies),
        },
        seen_tx,
    )
    .map_err(|e| HubError::Config(e.to_string()))?;

    let ws_origins = signaling_origins(&public_url, config.upstream.as_deref(), http_addr, &config);
    let state = Arc::new(HubState {
        descriptor: Bytes::from(descriptor.encode()),
        public_url,
        swarm,
        connector: signaling.connector(),
        connections: Arc::new(Semaphore::new(config.signaling.max_connections)),
        per_network: crate::signaling::PerNetwork::new(
            config.signaling.max_connections_per_network,
            config.signaling.network_message_units_per_second,
        ),
        manifests,
        metrics,
        db: db.clone(),
        admin_token,
        invite_lifetime: config.invites.default_expiry,
        ban_duration: config.planner.ban_duration,
        ws_origins,
        rules,
        trusted_proxies: crate::proxy::TrustedProxies::new(&config.trusted_proxies),
        publication: tokio::sync::Mutex::new(()),
        proxy,
    });

    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let tls = match &config.tls {
        Some(tls) => Some(
            crate::tls::start(tls, &dir, cancel.child_token())
                .await
                .map_err(HubError::Config)?,
        ),
        None => None,
    };
    tasks.spawn(crate::publication::run(
        Arc::clone(&state),
        cancel.child_token(),
    ));
    tasks.spawn(crate::publisher::publish_seen(
        Arc::clone(&state),
        seen_rx,
        cancel.child_token(),
    ));
    if let Some(socket) = stun_socket {
        let token = cancel.child_token();
        tasks.spawn(stun::serve(socket, async move { token.cancelled().await }));
    }

    let app = router(Arc::clone(&state)).into_make_service_with_connect_info::<SocketAddr>();
    let served = match tls {
        Some(tls) => {
            if let Some(plain) = http_redirect {
                let target = crate::tls::http::RedirectTarget::new(&state.public_url, &tls.hosts)
                    .map_err(HubError::Config)?;
                let redirects = crate::tls::http::router(target, tls.challenges.clone());
                let token = cancel.child_token();
                let plain_addr = plain.local_addr()?;
                tasks.spawn(async move {
                    let served = axum::serve(plain, redirects)
                        .with_graceful_shutdown(token.cancelled_owned())
                        .await;
                    if let Err(e) = served {
                        tracing::error!(%plain_addr, error = %e, "the plain-HTTP listener stopped");
                    }
                });
                tracing::info!(%plain_addr, "plain HTTP: redirects to HTTPS and ACME challenges");
            }
            // After the plain-HTTP listener: ACME orders need its challenges.
            tasks.spawn(tls.task);
            tracing::info!(%http_addr, swarm = %swarm_id, public_url = %state.public_url, "tuber hub listening (HTTPS)");
            let listener = crate::tls::listener::TlsListener::new(listener, tls.server_config);
            axum::serve(listener.tap_io(|_| {}), app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            tracing::info!(%http_addr, swarm = %swarm_id, "tuber hub listening");
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };

    cancel.cancel();
    while tasks.join_next().await.is_some() {}
    drop(state);
    signaling.shutdown().await;
    let _ = tokio::task::spawn_blocking(move || db.flush()).await;
    served.map_err(HubError::Io)
}

async fn bind_http(addr: SocketAddr) -> Result<TcpListener, HubError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| HubError::Config(format!("cannot listen on {addr} (tls.http_listen): {e}")))
}

/// The hub's routes, then the proxy for everything else.
pub fn router(state: Arc<HubState>) -> Router {
    Router::new()
        .route("/.well-known/tuber", get(routes::descriptor))
        .route("/.tuber/manifest", get(routes::manifest))
        .route("/.tuber/rules", get(routes::rules))
        .route("/.tuber/piece/{hash}", get(routes::piece))
        .route("/.tuber/client/{*file}", get(routes::client_file))
        .route("/.tuber/sw.js", get(routes::service_worker_js))
        .route("/.tuber/ws", get(routes::ws))
        .route("/.tuber/register", get(routes::register))
        .route("/.tuber/admin/invites", post(admin::create_invite))
        .route("/.tuber/admin/content", post(admin::add_content))
        .route("/.tuber/admin/bans", get(admin::list_bans))
        .route("/.tuber/admin/bans/{peer}", delete(admin::lift_ban))
        .route("/metrics", get(routes::metrics))
        .fallback(proxy)
        .with_state(state)
}

async fn proxy(
    State(state): State<Arc<HubState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    // A site worker's host URL (`/sw.js?tuber-host=classic`): Tuber's worker.
    if let Some(host) = crate::site_worker::host_response(req.method(), req.uri(), req.headers()) {
        return host;
    }
    state.proxy.handle(req, Some(client)).await
}

fn descriptor(
    config: &HubConfig,
    public_url: &str,
    stun_addr: Option<SocketAddr>,
) -> Result<SwarmDescriptor, HubError> {
    let uri: http::Uri = public_url
        .parse()
        .map_err(|e| HubError::Config(format!("public URL {public_url:?}: {e}")))?;
    let host = uri.host().unwrap_or("localhost").trim_matches(['[', ']']);
    let swarm_id = config.swarm_id.clone().unwrap_or_else(|| {
        let mut id: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if let Some(port) = uri.port_u16() {
            id.push_str(&format!("-{port}"));
        }
        id.chars().take(64).collect()
    });
    let ws_scheme = if uri.scheme_str() == Some("https") {
        "wss"
    } else {
        "ws"
    };
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
    let mut stun_urls = config.stun.advertise.clone();
    if stun_urls.is_empty() {
        if let Some(addr) = stun_addr {
            let stun_host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_string()
            };
            stun_urls.push(format!("stun:{stun_host}:{}", addr.port()));
        }
    }
    let d = SwarmDescriptor {
        version: PROTOCOL_VERSION,
        name: config.name.clone().unwrap_or_else(|| swarm_id.clone()),
        swarm_id,
        origin: format!("{public_url}/"),
        signaling: format!("{ws_scheme}://{authority}/.tuber/ws"),
        ice_servers: if stun_urls.is_empty() {
            vec![]
        } else {
            vec![IceServer {
                urls: stun_urls,
                username: None,
                credential: None,
            }]
        },
        piece_size: config.piece_size,
        manifest: format!("{public_url}/.tuber/manifest"),
        pieces: format!("{public_url}/.tuber/piece/"),
        register: format!("{public_url}/.tuber/register"),
    };
    d.validate()
        .map_err(|e| HubError::Config(format!("descriptor: {e}")))?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_from_defaults_is_valid_and_names_stun() {
        let config = HubConfig::default();
        let stun = "127.0.0.1:3478".parse().ok();
        let d = descriptor(&config, "http://127.0.0.1:8080", stun).expect("descriptor");
        assert_eq!(d.swarm_id, "127.0.0.1-8080");
        assert_eq!(d.signaling, "ws://127.0.0.1:8080/.tuber/ws");
        assert_eq!(
            d.ice_servers[0].urls,
            vec!["stun:127.0.0.1:3478".to_string()]
        );
        let d = descriptor(&config, "https://video.example.org", None).expect("descriptor");
        assert_eq!(d.swarm_id, "video.example.org");
        assert_eq!(d.signaling, "wss://video.example.org/.tuber/ws");
        assert!(SwarmDescriptor::decode(&d.encode()).is_ok());
    }
}
