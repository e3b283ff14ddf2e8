//! The `tuber-hub` command line. Flags override the config file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::net::{TcpListener, UdpSocket};

mod admin_client;
pub mod bans;

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

impl Cli {
    /// Parses `args` (the first is the program's name) as the binary parses
    /// its own: for tests that run a command in-process.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        <Self as Parser>::try_parse_from(args)
    }
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
    /// List and lift bans of peers that sent bad pieces (works whether or
    /// not the hub is running).
    Bans {
        #[command(subcommand)]
        command: bans::BansCommand,
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
pub(crate) struct Common {
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
    /// Serve HTTPS with this PEM certificate chain (with --tls-key; re-read
    /// when the file changes).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate from an ACME CA for this domain
    /// (repeatable; the first is the public host). Needs --http-listen.
    #[arg(long, value_name = "NAME")]
    acme_domain: Vec<String>,
    /// The ACME CA's directory URL (default: Let's Encrypt production).
    #[arg(long, value_name = "URL")]
    acme_directory: Option<String>,
    /// Extra CA certificates (PEM) to trust for the ACME CA's own HTTPS.
    #[arg(long, value_name = "FILE")]
    acme_ca_file: Option<PathBuf>,
    /// Plain-HTTP address for redirects to HTTPS and ACME HTTP-01
    /// challenges, e.g. 0.0.0.0:80.
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
}

impl Common {
    pub(crate) fn config(&self) -> Result<HubConfig, HubError> {
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
        self.apply_tls(&mut c);
        c.check().map_err(|e| HubError::Config(e.to_string()))?;
        Ok(c)
    }

    /// The TLS flags, over the file's `[tls]`: certificate files replace
    /// ACME and the other way round.
    fn apply_tls(&self, c: &mut HubConfig) {
        let files = self.tls_cert.is_some() || self.tls_key.is_some();
        let acme = !self.acme_domain.is_empty()
            || self.acme_directory.is_some()
            || self.acme_ca_file.is_some();
        if !files && !acme && self.http_listen.is_none() {
            return;
        }
        let tls = c.tls.get_or_insert_with(Default::default);
        if files {
            tls.acme = None;
            if let Some(f) = &self.tls_cert {
                tls.cert = Some(f.clone());
            }
            if let Some(f) = &self.tls_key {
                tls.key = Some(f.clone());
            }
        }
        if acme {
            tls.cert = None;
            tls.key = None;
            let a = tls.acme.get_or_insert_with(Default::default);
            if !self.acme_domain.is_empty() {
                a.domains = self.acme_domain.clone();
            }
            if let Some(d) = &self.acme_directory {
                a.directory = d.clone();
            }
            if let Some(f) = &self.acme_ca_file {
                a.directory_ca_file = Some(f.clone());
            }
        }
        if let Some(h) = self.http_listen {
            tls.http_listen = Some(h);
        }
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
        Command::Bans { command } => bans::run(command).await,
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
    let http_redirect = match config.tls.as_ref().and_then(|t| t.http_listen) {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
            HubError::Config(format!(
                "cannot listen on {addr} (--http-listen, tls.http_listen): {e}"
            ))
        })?),
        None => None,
    };
    let addr = listener.local_addr()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // Scripts and tests read this line to find the hub, and may then run a
    // CLI command on its data directory: printed once the hub holds it.
    let ready = move || println!("tuber-hub listening on {scheme}://{addr}");
    server::run_with(
        config,
        listener,
        http_redirect,
        stun,
        ready,
        shutdown_signal(),
    )
    .await
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
                .unwrap_or_else(|| match &config.tls {
                    Some(tls) => crate::tls::default_public_url(tls, config.listen),
                    None => format!("http://{}", config.listen),
                });
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
            let body = serde_json::to_vec(&req).map_err(|e| HubError::Config(e.to_string()))?;
            let answer = admin_client::call(
                config,
                &dir,
                &token,
                http::Method::POST,
                "/.tuber/admin/invites",
                Some(body),
            )
            .await?;
            serde_json::from_slice(&answer)
                .map_err(|e| HubError::Config(format!("the running hub answered: {e}")))
        }
        Err(e) => Err(e.into()),
    }
}
