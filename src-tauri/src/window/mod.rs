//! `tuber-desktop-window`: the dashboard in a Tauri webview. Started by the
//! core with `--data DIR` (its API address and token are in that folder);
//! exits when the window closes, so no webview outlives it.

pub mod commands;
mod events;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tauri::{Manager, WebviewUrl, WebviewWindowBuilder};
use tuber_peer::daemon::client::DaemonClient;

/// The window's label (capabilities/default.json names it).
pub const MAIN: &str = "main";

/// The command line (the core passes it).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "tuber-desktop-window",
    version,
    about = "The Tuber dashboard window (started by tuber-desktop)"
)]
pub struct Options {
    /// The data folder of the running tuber-desktop.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Passed by WebKitWebDriver when a test starts the window (automation
    /// is on only with TAURI_WEBVIEW_AUTOMATION=true).
    #[arg(long, hide = true)]
    pub automation: bool,
}

/// The core's API, for the commands.
pub struct Backend {
    /// A client of the core's local API.
    pub client: Arc<DaemonClient>,
    /// Whether the core's event stream is up now (a page that starts
    /// listening later asks, see `events_connected`).
    pub connected: Arc<AtomicBool>,
}

/// Shows the dashboard until the window closes.
pub fn run(opts: Options) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let client = match DaemonClient::for_data_dir(&opts.data) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!(
                "error: no running tuber-desktop for {}: {e}. Start Tuber instead of this window.",
                opts.data.display()
            );
            return ExitCode::from(1);
        }
    };
    let connected = Arc::new(AtomicBool::new(false));
    let built = tauri::Builder::default()
        .manage(Backend {
            client: client.clone(),
            connected: connected.clone(),
        })
        .invoke_handler(commands::handler())
        .setup(move |app| {
            WebviewWindowBuilder::new(app, MAIN, WebviewUrl::App("index.html".into()))
                .title("Tuber")
                .inner_size(1024.0, 720.0)
                .min_inner_size(560.0, 420.0)
                .build()?;
            events::start(app.handle().clone(), client.clone(), connected.clone());
            Ok(())
        })
        .build(tauri::generate_context!());
    match built {
        Ok(app) => {
            // The last window closing ends the process (Tauri's default).
            app.run(|app, event| {
                if let tauri::RunEvent::Ready = event {
                    let _ = app.get_webview_window(MAIN).map(|w| w.set_focus());
                }
            });
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot open the dashboard window: {e}");
            ExitCode::from(1)
        }
    }
}
