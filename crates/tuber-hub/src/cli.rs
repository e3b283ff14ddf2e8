//! The `tuber-hub` command line. Flags override the config file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::net::{TcpListener, UdpSocket};

use crate::admin::{self, InviteRequest, InviteResponse};
use crate::config::HubConfig;
use crate::db::{DbError, HubDb};
use crate::server::{self, HubError};

/// Tuber hub: put it in front of a website to make it a peer-to-peer CDN.
#[derive(Debug, Parser)]
#[command(name = "tuber-hub", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Proxy a site and run its swarm.
    Serve {
        /// The site to proxy, http:// or https://, e.g. http://127.0.0.1:3000.
        #[arg(long)]
        upstream: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Run the hub in front of a built-in demo site (a video and a 32 MiB download).
    Demo {
        #[command(flatten)]
        common: Common,
    },
    /// Manage invites for trusted peers.
    Invite {
        #[command(subcommand)]
        command: InviteCommand,
    },
}

#[derive(Debug, Subcommand)]
enum InviteCommand {
    /// Print a new invite (works whether or not the hub is running).
    Create {
        /// Who it is for (shown in the hub's records).
        #[arg(long)]
        name: String,
        /// How long it stays valid, e.g. 7days, 12h (default from the config).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// HTTP address to listen on (port 0: any free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory (database, admin token).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Config file (TOML; see hub.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The hub's public URL, when it differs from http://LISTEN.
    #[arg(long)]
    public_url: Option<String>,
    /// UDP address of the STUN server.
    #[arg(long)]
    stun: Option<SocketAddr>,
    /// Do not run the STUN server.
    #[arg(long)]
    no_stun: bool,
}

impl Common {
    fn config(&self) -> Result<HubConfig, HubError> {
        let mut c = match &self.config {
            Some(path) => HubConfig::load(path).map_err(|e| HubError::Config(e.to_string()))?,
            None => HubConfig::default(),
        };
        if let Some(l) = self.listen {
            c.listen = l;
        }
        if let Some(d) = &self.data {
            c.data_dir = Some(d.clone());
        }
        if let Some(u) = &self.public_url {
            c.public_url = Some(u.clone());
        }
        if let Some(s) = self.stun {
            c.stun.listen = s;
        }
        if self.no_stun {
            c.stun.enabled = false;
        }
        Ok(c)
    }
}

/// Runs the parsed command line.
pub async fn main(cli: Cli) -> Result<(), HubError> {
    match cli.command {
        Command::Serve { upstream, common } => {
            let mut config = common.config()?;
            if upstream.is_some() {
                config.upstream = upstream;
            }
            serve(config).await
        }
        Command::Demo { common } => {
            let mut config = common.config()?;
            let (addr, site) = crate::demo::spawn().await?;
            config.upstream = Some(format!("http://{addr}"));
            if common.stun.is_none() {
                // The demo must start next to anything else on the machine.
                config.stun.listen = SocketAddr::new(config.listen.ip(), 0);
            }
            if config.name.is_none() {
                config.name = Some("Tuber demo".into());
            }
            let warm = tokio::spawn(announce_demo_content(config.listen));
            let result = serve(config).await;
            warm.abort();
            site.abort();
            result
        }
        Command::Invite {
            command:
                InviteCommand::Create {
                    name,
                    expires,
                    common,
                },
        } => {
            let config = common.config()?;
            let invite = create_invite(&config, &name, expires).await?;
            println!("{}", invite.token);
            eprintln!(
                "invite for {name:?}, valid until {} (unix time)\njoin link: {}",
                invite.expires, invite.join_link
            );
            Ok(())
        }
    }
}

/// Asks the demo hub for the demo resources' manifests once it listens, so
/// the planner knows them (and assigns them to trusted peers) before any
/// browser visits. Not possible on port 0, whose real port is not known here.
async fn announce_demo_content(listen: SocketAddr) {
    use http_body_util::Empty;
    if listen.port() == 0 {
        return;
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    for path in [crate::demo::VIDEO_PATH, crate::demo::DOWNLOAD_PATH] {
        let Ok(uri) = format!("http://{listen}/.tuber/manifest?path={path}").parse::<http::Uri>()
        else {
            continue;
        };
        for _ in 0..100 {
            match client.get(uri.clone()).await {
                Ok(r) if r.status().is_success() => break,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

async fn serve(config: HubConfig) -> Result<(), HubError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| HubError::Config(format!("cannot listen on {}: {e}", config.listen)))?;
    let stun = if config.stun.enabled {
        Some(UdpSocket::bind(config.stun.listen).await.map_err(|e| {
            HubError::Config(format!(
                "cannot bind STUN on {}: {e} (use --stun or --no-stun)",
                config.stun.listen
            ))
        })?)
    } else {
        None
    };
    let addr = listener.local_addr()?;
    // Scripts and tests read this line to find the hub.
    println!("tuber-hub listening on http://{addr}");
    server::run(config, listener, stun, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Makes an invite in the database, or through the running hub's admin API
/// when the hub holds the database.
async fn create_invite(
    config: &HubConfig,
    name: &str,
    expires: Option<Duration>,
) -> Result<InviteResponse, HubError> {
    let dir = server::data_dir(config)?;
    let lifetime = expires.unwrap_or(config.invites.default_expiry).as_secs();
    let opened = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || HubDb::open(&dir))
            .await
            .map_err(|e| HubError::Config(e.to_string()))?
    };
    match opened {
        Ok(db) => {
            let now = crate::db::unix_now();
            let token = db.create_invite(name, lifetime, now)?;
            db.flush()?;
            let public = config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.listen));
            Ok(InviteResponse {
                join_link: admin::join_link(public.trim_end_matches('/'), Some(&token)),
                token,
                expires: now + lifetime,
            })
        }
        Err(DbError::Locked(_)) => {
            let token = admin::ensure_token(&dir)?;
            let req = InviteRequest {
                name: name.to_string(),
                expires: Some(Duration::from_secs(lifetime)),
            };
            admin_request(config.listen, &token, &req).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn admin_request(
    listen: SocketAddr,
    token: &str,
    req: &InviteRequest,
) -> Result<InviteResponse, HubError> {
    use http_body_util::{BodyExt, Full};
    let body = serde_json::to_vec(req).map_err(|e| HubError::Config(e.to_string()))?;
    let host = if listen.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    let request = http::Request::post(format!("http://{host}/.tuber/admin/invites"))
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| HubError::Config(e.to_string()))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let unreachable = |e: String| {
        HubError::Config(format!(
            "the hub database is in use, but the hub at {host} did not answer ({e}); pass --listen or --config of the running hub"
        ))
    };
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(HubError::Config(format!(
            "the running hub refused the invite: {status} {}",
            String::from_utf8_lossy(&bytes).trim()
        )));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| HubError::Config(format!("the running hub answered: {e}")))
}
