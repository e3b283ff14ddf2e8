//! The tray icon, as a StatusNotifierItem on the session bus (ksni): no GTK
//! and no webview in the core. Its look follows `TrayState`; its menu opens
//! the dashboard, pauses or resumes sharing, and quits.

use ksni::menu::{MenuItem, StandardItem};
use ksni::{Icon, ToolTip, TrayMethods};
use tokio::sync::mpsc;
use tuber_peer::desktop::TrayState;

use super::TrayAction;

struct Tray {
    look: TrayState,
    summary: String,
    paused: bool,
    actions: mpsc::Sender<TrayAction>,
    icons: [Vec<Icon>; 4],
}

fn slot(state: TrayState) -> usize {
    match state {
        TrayState::Sharing => 0,
        TrayState::Paused => 1,
        TrayState::Offline => 2,
        TrayState::Error => 3,
    }
}

/// Decodes an embedded RGBA PNG into the ARGB32 (network order) pixmap the
/// StatusNotifierItem protocol carries.
fn pixmap(png_bytes: &[u8]) -> Vec<Icon> {
    let decode = || -> Result<Icon, png::DecodingError> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info()?;
        let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader.next_frame(&mut buf)?;
        let rgba = &buf[..info.buffer_size()];
        let data = match info.color_type {
            png::ColorType::Rgba => rgba
                .chunks_exact(4)
                .flat_map(|p| [p[3], p[0], p[1], p[2]])
                .collect(),
            png::ColorType::Rgb => rgba
                .chunks_exact(3)
                .flat_map(|p| [255, p[0], p[1], p[2]])
                .collect(),
            _ => Vec::new(),
        };
        Ok(Icon {
            width: info.width as i32,
            height: info.height as i32,
            data,
        })
    };
    match decode() {
        Ok(icon) if !icon.data.is_empty() => vec![icon],
        _ => Vec::new(),
    }
}

impl ksni::Tray for Tray {
    fn id(&self) -> String {
        "tuber-desktop".into()
    }
    fn title(&self) -> String {
        self.summary.clone()
    }
    fn icon_pixmap(&self) -> Vec<Icon> {
        self.icons[slot(self.look)].clone()
    }
    fn tool_tip(&self) -> ToolTip {
        ToolTip {
            title: self.summary.clone(),
            ..Default::default()
        }
    }
    fn activate(&mut self, _x: i32, _y: i32) {
        let _ = self.actions.try_send(TrayAction::Open);
    }
    fn menu(&self) -> Vec<MenuItem<Self>> {
        let send = |action: TrayAction| {
            Box::new(move |t: &mut Self| {
                let _ = t.actions.try_send(action);
            }) as Box<dyn Fn(&mut Self) + Send + Sync>
        };
        vec![
            StandardItem {
                label: self.summary.clone(),
                enabled: false,
                ..Default::default()
            }
            .into(),
            MenuItem::Separator,
            StandardItem {
                label: "Open dashboard".into(),
                activate: send(TrayAction::Open),
                ..Default::default()
            }
            .into(),
            StandardItem {
                label: if self.paused {
                    "Resume sharing"
                } else {
                    "Pause sharing"
                }
                .into(),
                activate: send(TrayAction::TogglePause),
                ..Default::default()
            }
            .into(),
            MenuItem::Separator,
            StandardItem {
                label: "Quit Tuber".into(),
                activate: send(TrayAction::Quit),
                ..Default::default()
            }
            .into(),
        ]
    }
}

/// The running tray.
#[derive(Clone)]
pub struct TrayHandle(ksni::Handle<Tray>);

impl TrayHandle {
    /// Shows a new state.
    pub async fn show(&self, look: TrayState, summary: String, paused: bool) {
        self.0
            .update(|t| {
                t.look = look;
                t.summary = summary;
                t.paused = paused;
            })
            .await;
    }

    /// Removes the icon.
    pub async fn shutdown(&self) {
        self.0.shutdown().await;
    }
}

/// Puts the icon in the tray. Without a session bus there is no tray (the
/// app still shares; the dashboard is then reached by starting it again).
pub async fn spawn(actions: mpsc::Sender<TrayAction>) -> Option<TrayHandle> {
    let tray = Tray {
        look: TrayState::Offline,
        summary: "Tuber: starting".into(),
        paused: false,
        actions,
        icons: [
            pixmap(include_bytes!("../../../icons/tray-sharing@2x.png")),
            pixmap(include_bytes!("../../../icons/tray-paused@2x.png")),
            pixmap(include_bytes!("../../../icons/tray-offline@2x.png")),
            pixmap(include_bytes!("../../../icons/tray-error@2x.png")),
        ],
    };
    // Registers whenever a tray host (StatusNotifierWatcher) appears.
    match tray.assume_sni_available(true).spawn().await {
        Ok(h) => Some(TrayHandle(h)),
        Err(e) => {
            tracing::warn!(error = %e, "no tray icon (is there a D-Bus session?)");
            None
        }
    }
}
