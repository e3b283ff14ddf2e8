//! The dashboard window's process, seen from the core: started on demand,
//! told over its stdin to come forward or to pick up a deep link, told to
//! quit when the app quits. When the owner closes the window the process
//! exits, and with it the webview and every WebKit process.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, Command};
use tokio::sync::Mutex;

/// The window process's stdin commands (one per line).
pub mod control {
    /// Bring the window forward.
    pub const FOCUS: &str = "focus";
    /// A deep link is waiting: take it and show the join form.
    pub const JOIN_LINK: &str = "join-link";
    /// Close the window and exit.
    pub const QUIT: &str = "quit";
}

struct Running {
    stdin: ChildStdin,
    id: u32,
}

/// Starts and steers the window process.
#[derive(Clone)]
pub struct WindowControl {
    exe: PathBuf,
    data_dir: PathBuf,
    running: Arc<Mutex<Option<Running>>>,
}

impl WindowControl {
    /// Control of `exe --data data_dir`.
    pub fn new(exe: PathBuf, data_dir: PathBuf) -> Self {
        Self {
            exe,
            data_dir,
            running: Arc::new(Mutex::new(None)),
        }
    }

    /// Shows the dashboard: tells a running window to come forward (and to
    /// take the pending link), or starts one.
    pub async fn open(&self, link_pending: bool) {
        let mut running = self.running.lock().await;
        if let Some(r) = running.as_mut() {
            let line = format!(
                "{}\n",
                if link_pending {
                    control::JOIN_LINK
                } else {
                    control::FOCUS
                }
            );
            if r.stdin.write_all(line.as_bytes()).await.is_ok() && r.stdin.flush().await.is_ok() {
                return;
            }
            // It is exiting: start a new one.
            *running = None;
        }
        let spawned = Command::new(&self.exe)
            .arg("--data")
            .arg(&self.data_dir)
            .stdin(Stdio::piped())
            .kill_on_drop(false)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(exe = %self.exe.display(), error = %e, "cannot start the dashboard window");
                return;
            }
        };
        let (Some(stdin), Some(id)) = (child.stdin.take(), child.id()) else {
            tracing::error!("the dashboard window exited at once");
            return;
        };
        *running = Some(Running { stdin, id });
        let slot = self.running.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            tracing::info!(?status, "the dashboard window closed");
            let mut running = slot.lock().await;
            if running.as_ref().is_some_and(|r| r.id == id) {
                *running = None;
            }
        });
    }

    /// Asks a running window to exit (at quit).
    pub async fn close(&self) {
        if let Some(mut r) = self.running.lock().await.take() {
            let _ = r
                .stdin
                .write_all(format!("{}\n", control::QUIT).as_bytes())
                .await;
            let _ = r.stdin.flush().await;
        }
    }
}
