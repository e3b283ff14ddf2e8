//! `tuber-desktop`: the long-lived part of the desktop app. It runs the
//! engine and the local API, shows the tray icon, sends notifications, and
//! starts the dashboard window (`tuber-desktop-window`) when asked. It
//! never loads a webview, so idling in the tray costs what the engine costs.
//!
//! A second start finds the data folder locked by the running one, hands
//! its deep link (or just "open the dashboard") to it over the local API,
//! and exits: that is the single instance.

mod api;
mod memory;
mod tray;
pub mod window;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tuber_peer::daemon::api::{router_with, ApiState};
use tuber_peer::daemon::client::DaemonClient;
use tuber_peer::daemon::files::{self, ApiInfo};
use tuber_peer::desktop::{self, AutostartEntry, DesktopPrefs, JoinLink, Notifier, TrayState};
use tuber_peer::{Engine, EngineConfig, EngineError, EngineEvent};

pub use api::{routes, Desktop, DesktopView, OpenRequest};
pub use window::WindowControl;

/// The piece store's page cache: small, the app idles in the tray (the OS
/// caches the store's file as well).
const STORE_CACHE: u64 = 8 * 1024 * 1024;
/// How long the engine may take to stop at quit (save history, flush).
const ENGINE_STOP: Duration = Duration::from_secs(5);

/// The command line. A desktop starts the app with a `tuber://` link as its
/// argument for deep links; the autostart entry passes `--hidden`.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "tuber-desktop",
    version,
    about = "Tuber: share websites' content from this computer"
)]
pub struct Options {
    /// Start in the tray without opening the dashboard.
    #[arg(long)]
    pub hidden: bool,
    /// The data folder (identity, piece store, meter) for this run; default:
    /// the one chosen in Settings, else the OS's data folder.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The app's config folder (desktop.json); default: the OS's.
    #[arg(long, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// A swarm (site address) to join at start.
    #[arg(long, value_name = "URL")]
    pub join: Option<String>,
    /// The operator's invite for `--join`, to be registered as trusted.
    #[arg(long, value_name = "TOKEN", requires = "join")]
    pub invite: Option<String>,
    /// A PEM file of extra CA certificates to trust for https:// sites (a
    /// private deployment), on top of the system's and the bundled roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Send invites to http:// sites on public addresses, in cleartext
    /// (refused by default: anyone on the way could read the invite).
    #[arg(long)]
    pub allow_insecure: bool,
    /// A `tuber://join?swarm=URL[&invite=TOKEN]` link to open.
    #[arg(value_name = "LINK")]
    pub link: Option<String>,
}

/// What the tray's menu asks of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Open (or focus) the dashboard.
    Open,
    /// Pause when sharing, resume when paused.
    TogglePause,
    /// Quit the app.
    Quit,
}

/// Runs the core until Quit, SIGTERM or SIGINT. Exit code 1 when it cannot
/// start, 2 for a bad command line.
pub fn run(opts: Options) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webrtc=warn,rtc=error".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    memory::limit_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(main(opts))
}

async fn main(opts: Options) -> ExitCode {
    let Some((default_config, default_data)) = desktop::default_dirs() else {
        eprintln!("error: this system names no home folder; pass --data DIR and --config DIR");
        return ExitCode::from(2);
    };
    let config_dir = opts.config.clone().unwrap_or(default_config);
    let prefs = DesktopPrefs::load(&config_dir);
    let data_dir = opts
        .data
        .clone()
        .or_else(|| prefs.data_dir.clone())
        .unwrap_or(default_data);
    let link = match opts.link.as_deref().map(JoinLink::parse) {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        None => None,
    };
    if let Err(e) = std::fs::create_dir_all(&data_dir) {
        eprintln!(
            "error: cannot create the data folder {}: {e}",
            data_dir.display()
        );
        return ExitCode::from(1);
    }
    let mut config = EngineConfig::new(&data_dir);
    config.store_cache_bytes = Some(STORE_CACHE);
    config.ca_file = opts.ca_file.clone();
    config.allow_insecure = opts.allow_insecure;
    let engine = match Engine::start(config).await {
        Ok(e) => e,
        Err(EngineError::DataDirInUse(_)) => return hand_over(&data_dir, opts.link).await,
        Err(e) => {
            eprintln!(
                "error: cannot start the peer engine in {}: {e}",
                data_dir.display()
            );
            return ExitCode::from(1);
        }
    };
    let code = match serve(
        &opts,
        engine.clone(),
        config_dir,
        data_dir.clone(),
        prefs,
        link,
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    };
    if tokio::time::timeout(ENGINE_STOP, engine.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the engine did not stop within {ENGINE_STOP:?}");
    }
    files::remove_api_info(&data_dir);
    code
}

/// Another `tuber-desktop` owns the data folder: give it our link (or ask
/// it to show its dashboard) and leave.
async fn hand_over(data_dir: &std::path::Path, link: Option<String>) -> ExitCode {
    let sent = async {
        let client = DaemonClient::for_data_dir(data_dir)?;
        client
            .send::<_, serde_json::Value>(
                hyper::Method::POST,
                "/api/desktop/open",
                Some(&OpenRequest { link }),
            )
            .await
    };
    match sent.await {
        Ok(_) => {
            tracing::info!("Tuber is already running; it opens its dashboard");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: another program uses the data folder {} and does not answer ({e}). \
                 Quit it (or the tuber-peer daemon using that folder), or start with --data DIR.",
                data_dir.display()
            );
            ExitCode::from(1)
        }
    }
}

async fn serve(
    opts: &Options,
    engine: Engine,
    config_dir: PathBuf,
    data_dir: PathBuf,
    prefs: DesktopPrefs,
    link: Option<JoinLink>,
) -> Result<(), String> {
    let token =
        files::ensure_token(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
    let windows = WindowControl::new(exe.with_file_name("tuber-desktop-window"), data_dir.clone());
    let autostart = AutostartEntry::for_user(exe)
        .ok_or("this system names no config folder for the autostart entry")?;
    let desk = Arc::new(Desktop {
        engine: engine.clone(),
        config_dir,
        data_dir: data_dir.clone(),
        prefs: Mutex::new(prefs),
        pending_link: Mutex::new(link.clone()),
        autostart,
        windows: windows.clone(),
    });
    let closing = CancellationToken::new();
    let app = router_with(
        ApiState::new(engine.clone(), token, bound.port(), closing.clone()),
        routes(desk.clone()),
    );
    let shutdown = closing.clone();
    let server = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }));
    let url = format!("http://{bound}");
    files::write_api_info(
        &data_dir,
        &ApiInfo {
            url: url.clone(),
            pid: std::process::id(),
        },
    )
    .map_err(|e| format!("{}: {e}", data_dir.display()))?;
    println!("tuber-desktop api on {url}");
    tracing::info!(%url, data = %data_dir.display(), "tuber-desktop running");

    let _trim = memory::trim_periodically();
    let (actions_tx, mut actions) = mpsc::channel(16);
    let tray = tray::spawn(actions_tx).await;
    let relay =
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(relay(engine.clone(), tray.clone())));
    if let Some(url) = opts.join.clone() {
        let invite = opts.invite.clone();
        let engine = engine.clone();
        tokio::spawn(async move {
            match engine.join(&url, invite.as_deref()).await {
                Ok(()) | Err(EngineError::AlreadyJoined(_)) => {}
                Err(e) => tracing::warn!(%url, error = %e, "cannot join at start"),
            }
        });
    }
    if !opts.hidden {
        windows.open(link.is_some()).await;
    }

    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        // Stop requests first, then the tray's actions.
        tokio::select! {
            biased;
            _ = term.recv() => { tracing::info!("SIGTERM: quitting"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: quitting"); break; }
            action = actions.recv() => match action {
                Some(TrayAction::Quit) | None => break,
                Some(TrayAction::Open) => windows.open(false).await,
                Some(TrayAction::TogglePause) => {
                    let r = if engine.settings().paused { engine.resume().await } else { engine.pause().await };
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "cannot pause or resume");
                    }
                }
            },
        }
    }
    windows.close().await;
    if let Some(t) = tray {
        t.shutdown().await;
    }
    drop(relay);
    closing.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(3), server).await;
    Ok(())
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(kind).map_err(|e| format!("cannot watch signals: {e}"))
}

/// Engine events to the tray (its look) and to desktop notifications.
async fn relay(engine: Engine, tray: Option<tray::TrayHandle>) {
    let mut rx = engine.subscribe();
    let mut notifier = Notifier::default();
    let mut shown: Option<(TrayState, String, bool)> = None;
    loop {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                EngineEvent::Lagged { missed }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        };
        if let Some(n) = notifier.on_event(&event, Instant::now()) {
            // notify-rust blocks on D-Bus; keep it off the async workers.
            tokio::task::spawn_blocking(move || {
                if let Err(e) = notify_rust::Notification::new()
                    .appname("Tuber")
                    .icon("tuber-desktop")
                    .summary(&n.title)
                    .body(&n.body)
                    .show()
                {
                    tracing::debug!(error = %e, "cannot show a notification");
                }
            });
        }
        if matches!(event, EngineEvent::Stored { .. }) {
            continue;
        }
        // Rates come every second: re-read the status then too, so a swarm
        // that reconnects quietly still turns the icon back to sharing.
        let status = engine.status().await;
        let look = TrayState::of(&status);
        let now = (look, look.describe(&status), status.settings.paused);
        if shown.as_ref() != Some(&now) {
            if let Some(t) = &tray {
                t.show(now.0, now.1.clone(), now.2).await;
            }
            shown = Some(now);
        }
    }
}
