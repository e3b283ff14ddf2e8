//! The Tuber desktop app, as two programs so that the app idling in the tray
//! holds no browser engine:
//! - [`core`] — `tuber-desktop`: the peer engine, its local API (the
//!   headless daemon's, plus the desktop's own calls under `/api/desktop/`),
//!   the tray icon (StatusNotifierItem over D-Bus, no GTK), notifications,
//!   autostart and the single-instance hand-over. Long-lived and small.
//! - [`window`] — `tuber-desktop-window`: the dashboard (`ui/`) in a Tauri
//!   webview, started by the core when the owner opens it and gone when they
//!   close it. Its Tauri commands forward to the core's API, and the
//!   engine's events arrive as the `engine` Tauri event.
//!
//! Every decision (tray state, deep links, notifications, preferences) is
//! made in `tuber_peer::desktop` and every action is an `Engine` call; this
//! crate only connects them to the desktop.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod core;
pub mod window;
