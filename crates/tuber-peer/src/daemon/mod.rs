//! The headless daemon `tuber-peer`: the [`Engine`](crate::Engine) in the
//! foreground with a local HTTP API, and the commands that talk to it.
//!
//! `tuber-peer run` starts the engine, serves the API on a loopback address
//! (default `127.0.0.1:7447`) and writes `api.json` (its URL and pid) beside
//! `api.token` (the bearer token, 0600) in the data dir. The other commands
//! (`status`, `join`, `leave`, `pause`, `resume`, `set`) find the daemon
//! through those two files and act through the API.
//!
//! ## Layout
//! - [`cli`] — the command line (clap) and what each command does.
//! - [`run`] — `run`: engine, API, signals, clean exit.
//! - [`api`] — the axum router: Host/Origin checks, token, endpoints, SSE.
//! - [`client`] — the CLI's HTTP client to a running daemon.
//! - [`files`] — `api.token` and `api.json`.
//! - [`status`] — the status as a table for people.
//! - [`ui`] — the dashboard's files (`ui/`), embedded and served at `/`.
//! - [`units`] — human sizes and rates (`2MB/s`, `512MiB`), both ways.

pub mod api;
pub mod cli;
pub mod client;
pub mod files;
pub mod run;
pub mod status;
pub mod ui;
pub mod units;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::engine::EngineError;

/// The API address when `--api` is not given.
pub const DEFAULT_API: &str = "127.0.0.1:7447";

/// Why a daemon command failed. Its `Display` is the message for people.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A command line that cannot be acted on.
    #[error("{0}")]
    Usage(String),
    /// `run` while another daemon holds the data dir.
    #[error("{0}")]
    AlreadyRunning(String),
    /// A client command with no daemon to talk to.
    #[error("{0}")]
    NotRunning(String),
    /// A file in the data dir.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The API address cannot be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The engine refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The API server failed.
    #[error("{0}")]
    Server(String),
    /// The daemon answered with an error.
    #[error("the daemon refused ({status}): {message}")]
    Api { status: u16, message: String },
    /// The daemon could not be asked, or answered nonsense.
    #[error("talking to the daemon at {url}: {why}")]
    Http { url: String, why: String },
}

impl DaemonError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
