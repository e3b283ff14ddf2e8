//! `tuber-peer run`: the engine and its local API in the foreground until
//! SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::io::Write;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::api::{self, ApiState};
use super::files::{self, ApiInfo};
use super::DaemonError;
use crate::engine::{Engine, EngineConfig, EngineError};

/// How long open requests may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(3);
/// How long the engine may take to stop (save history, flush the store).
const ENGINE_STOP: Duration = Duration::from_secs(5);

/// What `run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The data dir.
    pub data_dir: PathBuf,
    /// Where the API listens; must be a loopback address.
    pub api: SocketAddr,
    /// Swarms to join at start, each with its invite.
    pub joins: Vec<(String, Option<String>)>,
    /// Extra CA certificates for https:// hubs.
    pub ca_file: Option<PathBuf>,
    /// Invites may go to public http:// hubs.
    pub allow_insecure: bool,
}

/// Refuses an API address others could reach.
pub fn check_loopback(addr: SocketAddr) -> Result<(), DaemonError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(DaemonError::Usage(format!(
            "--api {addr}: the local API listens on a loopback address only \
             (127.0.0.1 or [::1]); it is not meant to be reached from the network"
        )))
    }
}

/// Runs until SIGINT or SIGTERM; then stops the engine and removes
/// `api.json`. Prints `tuber-peer api on http://…` once the API listens,
/// then `tuber-peer dashboard on http://…/#token=…` (the page keeps the
/// token from the fragment, which never reaches the server).
pub async fn run(opts: RunOptions) -> Result<(), DaemonError> {
    check_loopback(opts.api)?;
    let dir = &opts.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| DaemonError::io(dir, e))?;
    let token = files::ensure_token(dir).map_err(|e| DaemonError::io(dir, e))?;
    let engine = start_engine(dir, &opts).await?;
    let served = serve(&opts, engine.clone(), token).await;
    tracing::info!("stopping the engine");
    if tokio::time::timeout(ENGINE_STOP, engine.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the engine did not stop within {ENGINE_STOP:?}");
    }
    files::remove_api_info(dir);
    served
}

async fn start_engine(dir: &Path, opts: &RunOptions) -> Result<Engine, DaemonError> {
    let mut config = EngineConfig::new(dir);
    config.ca_file = opts.ca_file.clone();
    config.allow_insecure = opts.allow_insecure;
    match Engine::start(config).await {
        Ok(e) => Ok(e),
        Err(e @ EngineError::DataDirInUse(_)) => {
            let running = match files::read_api_info(dir) {
                Ok(Some(i)) => format!(" (its API: {}, pid {})", i.url, i.pid),
                _ => String::new(),
            };
            Err(DaemonError::AlreadyRunning(format!(
                "{e}{running}. Stop it first, or pass --data with another directory."
            )))
        }
        Err(e) => Err(DaemonError::Engine(e)),
    }
}

/// Binds, joins, announces and serves until a signal.
async fn serve(
    opts: &RunOptions,
    engine: Engine,
    token: files::ApiToken,
) -> Result<(), DaemonError> {
    let listener = TcpListener::bind(opts.api)
        .await
        .map_err(|e| DaemonError::Bind(opts.api, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| DaemonError::Bind(opts.api, e))?;
    for (url, invite) in &opts.joins {
        match engine.join(url, invite.as_deref()).await {
            Ok(()) => tracing::info!(%url, "joined"),
            Err(EngineError::AlreadyJoined(_)) => tracing::info!(%url, "already joined"),
            Err(e) => return Err(DaemonError::Engine(e)),
        }
    }
    let url = format!("http://{bound}");
    let token_text = token.as_str().to_owned();
    let closing = CancellationToken::new();
    let app = api::router(ApiState::new(engine, token, bound.port(), closing.clone()));
    let shutdown = closing.clone();
    let mut server = AbortOnDropHandle::new(tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }));
    // Watch the signals before anyone learns the address.
    let signals = StopSignals::new()?;
    files::write_api_info(
        &opts.data_dir,
        &ApiInfo {
            url: url.clone(),
            pid: std::process::id(),
        },
    )
    .map_err(|e| DaemonError::io(&opts.data_dir, e))?;
    println!("tuber-peer api on {url}");
    println!("tuber-peer dashboard on {url}/#token={token_text}");
    let _ = std::io::stdout().flush();
    tracing::info!(%url, data = %opts.data_dir.display(), "tuber-peer running");

    let stopped_early = tokio::select! {
        name = signals.recv() => {
            tracing::info!("{name}: shutting down");
            None
        }
        done = &mut server => Some(done),
    };
    closing.cancel();
    let early = stopped_early.is_some();
    let done = match stopped_early {
        Some(done) => done,
        None => match tokio::time::timeout(DRAIN, &mut server).await {
            Ok(done) => done,
            Err(_) => {
                tracing::warn!("open API connections did not finish within {DRAIN:?}");
                return Ok(());
            }
        },
    };
    match done {
        Ok(Ok(())) if !early => Ok(()),
        Ok(Ok(())) => Err(DaemonError::Server("the API server stopped".into())),
        Ok(Err(e)) => Err(DaemonError::Server(e.to_string())),
        Err(e) => Err(DaemonError::Server(format!(
            "the API server task failed: {e}"
        ))),
    }
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere), watched from creation on.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> Result<Self, DaemonError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let watch = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|e| DaemonError::Server(format!("cannot watch {name}: {e}")))
            };
            Ok(Self {
                term: watch(SignalKind::terminate(), "SIGTERM")?,
                int: watch(SignalKind::interrupt(), "SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for one; its name.
    #[cfg_attr(not(unix), allow(unused_mut))]
    async fn recv(mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
