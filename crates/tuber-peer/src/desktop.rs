//! What the desktop app decides, kept out of the Tauri crate so it is tested
//! without a display or WebKit: the tray's state, the `tuber://join` deep
//! link, which engine events become desktop notifications, and the app's own
//! preferences (autostart, data folder). `src-tauri` only forwards.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::{EngineEvent, Status, SwarmPhase};

/// What the tray icon shows. Ordered by urgency: the first that applies wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrayState {
    /// A swarm is in the error state (refused invite, bad descriptor...).
    Error,
    /// The owner paused sharing.
    Paused,
    /// No swarm is joined: none configured, or none reachable right now.
    Offline,
    /// Joined to at least one swarm and serving.
    Sharing,
}

impl TrayState {
    /// From a status snapshot.
    pub fn of(status: &Status) -> Self {
        let phases = || status.swarms.iter().map(|s| &s.phase);
        if phases().any(|p| matches!(p, SwarmPhase::Error { .. })) {
            Self::Error
        } else if status.settings.paused {
            Self::Paused
        } else if phases().any(|p| matches!(p, SwarmPhase::Joined { .. })) {
            Self::Sharing
        } else {
            Self::Offline
        }
    }

    /// The icon file name in `icons/` (without the size suffix).
    pub fn icon_name(self) -> &'static str {
        match self {
            Self::Error => "tray-error",
            Self::Paused => "tray-paused",
            Self::Offline => "tray-offline",
            Self::Sharing => "tray-sharing",
        }
    }

    /// One line for the tray tooltip and the menu's title.
    pub fn describe(self, status: &Status) -> String {
        let joined = status
            .swarms
            .iter()
            .filter(|s| matches!(s.phase, SwarmPhase::Joined { .. }))
            .count();
        match self {
            Self::Error => {
                let why = status
                    .swarms
                    .iter()
                    .find_map(|s| match &s.phase {
                        SwarmPhase::Error { message, .. } => Some(format!("{}: {message}", s.url)),
                        _ => None,
                    })
                    .unwrap_or_default();
                format!("Tuber: error. {why}")
            }
            Self::Paused => "Tuber: sharing paused".into(),
            Self::Offline if status.swarms.is_empty() => {
                "Tuber: no swarm joined. Open the dashboard to join one".into()
            }
            Self::Offline => "Tuber: offline, reconnecting".into(),
            Self::Sharing => format!(
                "Tuber: sharing in {joined} swarm{}",
                if joined == 1 { "" } else { "s" }
            ),
        }
    }
}

/// A `tuber://join?swarm=URL[&invite=TOKEN]` link, taken apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinLink {
    /// The swarm's URL (an http or https address).
    pub swarm: String,
    /// The operator's invite, when the link carries one.
    pub invite: Option<String>,
}

/// Why a deep link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a URL, or not `tuber://join`.
    #[error("not a tuber://join link")]
    NotJoin,
    /// No `swarm=` parameter.
    #[error("the link names no swarm (tuber://join?swarm=URL)")]
    NoSwarm,
    /// The swarm parameter is not an http(s) URL.
    #[error("the swarm in the link is not an http or https address: {0}")]
    BadSwarm(String),
    /// Longer than anyone would type or click.
    #[error("the link is too long")]
    TooLong,
}

/// Longest link accepted (a URL and a token fit many times over).
pub const MAX_LINK_LEN: usize = 4096;

impl JoinLink {
    /// Parses a deep link. Accepts `tuber://join?…` and `tuber:join?…`
    /// (how some desktops hand the URL over), case-insensitive scheme.
    pub fn parse(link: &str) -> Result<Self, LinkError> {
        let link = link.trim();
        if link.len() > MAX_LINK_LEN {
            return Err(LinkError::TooLong);
        }
        let url = url::Url::parse(link).map_err(|_| LinkError::NotJoin)?;
        let target = url
            .host_str()
            .unwrap_or_else(|| url.path())
            .trim_matches('/');
        if url.scheme() != "tuber" || !target.eq_ignore_ascii_case("join") {
            return Err(LinkError::NotJoin);
        }
        let mut swarm = None;
        let mut invite = None;
        for (k, v) in url.query_pairs() {
            match &*k {
                "swarm" if swarm.is_none() => swarm = Some(v.trim().to_string()),
                "invite" if invite.is_none() => invite = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let swarm = swarm.filter(|s| !s.is_empty()).ok_or(LinkError::NoSwarm)?;
        match url::Url::parse(&swarm) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => return Err(LinkError::BadSwarm(swarm)),
        }
        Ok(Self {
            swarm,
            invite: invite.filter(|i| !i.is_empty()),
        })
    }

    /// The first argument of a command line that is a deep link, if any
    /// (how a desktop starts the app for `tuber://` links).
    pub fn from_args<I: IntoIterator<Item = S>, S: AsRef<str>>(
        args: I,
    ) -> Option<Result<Self, LinkError>> {
        args.into_iter()
            .map(|a| a.as_ref().to_string())
            .find(|a| a.len() >= 6 && a[..6].eq_ignore_ascii_case("tuber:"))
            .map(|a| Self::parse(&a))
    }
}

/// A desktop notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// Short title.
    pub title: String,
    /// One or two sentences.
    pub body: String,
}

/// Turns engine events into notifications: trusted registration, swarm
/// errors and "disk budget reached". The same notice is not repeated within
/// [`Notifier::QUIET`] (a swarm failing every retry would flood the desktop).
#[derive(Debug, Default)]
pub struct Notifier {
    recent: Vec<(Notice, Instant)>,
}

impl Notifier {
    /// How long an identical notice stays quiet.
    pub const QUIET: Duration = Duration::from_secs(600);

    /// The notice for `event` at `now`, if it deserves one.
    pub fn on_event(&mut self, event: &EngineEvent, now: Instant) -> Option<Notice> {
        let notice = match event {
            EngineEvent::Trusted { url } => Notice {
                title: "Trusted peer".into(),
                body: format!("{url} registered this computer as a trusted peer. Thank you for sharing."),
            },
            EngineEvent::Swarm {
                url,
                status: Some(s),
            } => match &s.phase {
                SwarmPhase::Error { message, .. } => Notice {
                    title: "Could not join a swarm".into(),
                    body: format!("{url}: {message}"),
                },
                _ => return None,
            },
            EngineEvent::BudgetReached { evicted } => Notice {
                title: "Disk budget reached".into(),
                body: format!(
                    "Tuber removed {evicted} older piece{} to stay within its disk budget. Raise the budget in Settings to keep more.",
                    if *evicted == 1 { "" } else { "s" }
                ),
            },
            EngineEvent::Error { message } => Notice {
                title: "Tuber error".into(),
                body: message.clone(),
            },
            _ => return None,
        };
        self.recent
            .retain(|(_, at)| now.saturating_duration_since(*at) < Self::QUIET);
        if self.recent.iter().any(|(n, _)| *n == notice) {
            return None;
        }
        self.recent.push((notice.clone(), now));
        Some(notice)
    }
}

/// The desktop app's own preferences, in `desktop.json` in its config
/// folder (not the data folder, which they may move).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DesktopPrefs {
    /// Start at login. None until the owner has answered the first-run question.
    pub autostart: Option<bool>,
    /// The data folder to use from the next start; None = the default.
    pub data_dir: Option<PathBuf>,
}

impl DesktopPrefs {
    /// The file name inside the config folder.
    pub const FILE: &'static str = "desktop.json";

    /// Loads from `config_dir`; defaults when absent (an unreadable file is
    /// moved aside with a warning, never trusted half-read).
    pub fn load(config_dir: &Path) -> Self {
        crate::engine::persist_load(&config_dir.join(Self::FILE)).unwrap_or_default()
    }

    /// Saves atomically into `config_dir`, creating it.
    pub fn save(&self, config_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(config_dir)?;
        crate::engine::persist_save(&config_dir.join(Self::FILE), self)
    }

    /// Whether the first-run question (start at login?) is still to be asked.
    pub fn must_ask_autostart(&self) -> bool {
        self.autostart.is_none()
    }
}

/// The desktop app's default folders: (config, data). The data folder holds
/// the identity, the piece store and the meter; it differs from the headless
/// daemon's so both can run for one user.
pub fn default_dirs() -> Option<(PathBuf, PathBuf)> {
    directories::ProjectDirs::from("org", "tuber", "tuber")
        .map(|p| (p.config_dir().to_path_buf(), p.data_dir().to_path_buf()))
}

/// Start at login, the XDG way: a desktop entry in `autostart/` of the
/// user's config folder that starts the app with `--hidden`.
#[derive(Debug, Clone)]
pub struct AutostartEntry {
    /// The entry's path (`~/.config/autostart/tuber-desktop.desktop`).
    pub path: PathBuf,
    /// The program it starts.
    pub exe: PathBuf,
}

impl AutostartEntry {
    /// The entry for `exe` in the user's config folder (XDG_CONFIG_HOME).
    pub fn for_user(exe: PathBuf) -> Option<Self> {
        let config = directories::BaseDirs::new()?.config_dir().to_path_buf();
        Some(Self::in_dir(&config.join("autostart"), exe))
    }

    /// The entry for `exe` in `autostart_dir`.
    pub fn in_dir(autostart_dir: &Path, exe: PathBuf) -> Self {
        Self {
            path: autostart_dir.join("tuber-desktop.desktop"),
            exe,
        }
    }

    /// Whether the entry exists.
    pub fn enabled(&self) -> bool {
        self.path.is_file()
    }

    /// Writes or removes the entry.
    pub fn set(&self, enabled: bool) -> std::io::Result<()> {
        if !enabled {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Exec quoting (desktop entry spec): the path in double quotes with
        // `"`, `` ` ``, `$` and `\` escaped.
        let exe = self.exe.display().to_string();
        let mut quoted = String::with_capacity(exe.len() + 2);
        for c in exe.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        let entry = format!(
            "[Desktop Entry]\nType=Application\nName=Tuber\nComment=Share websites' content from this computer\n\
             Exec=\"{quoted}\" --hidden\nIcon=tuber-desktop\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
        );
        crate::engine::persist_write_atomically(&self.path, entry.as_bytes())
    }
}

/// Checks a data folder the owner typed: absolute, and creatable.
pub fn check_data_dir(dir: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(dir.trim());
    if dir.trim().is_empty() || !path.is_absolute() {
        return Err("the data folder must be an absolute path, like /home/you/tuber-data".into());
    }
    std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Settings, SwarmStatus};
    use crate::meter::UpDown;

    fn swarm(phase: SwarmPhase) -> SwarmStatus {
        SwarmStatus {
            url: "http://a.example/".into(),
            swarm_id: None,
            name: None,
            phase,
            peers: 0,
            assigned_pieces: 0,
            assigned_held: 0,
            rate: UpDown::default(),
            bytes: UpDown::default(),
        }
    }

    fn status(paused: bool, swarms: Vec<SwarmStatus>) -> Status {
        Status {
            peer_id: "p".into(),
            settings: Settings {
                paused,
                ..Settings::default()
            },
            rate: UpDown::default(),
            total: UpDown::default(),
            swarms,
            peers: vec![],
            store: Default::default(),
            network: Default::default(),
        }
    }

    #[test]
    fn tray_state_by_urgency() {
        let joined = || swarm(SwarmPhase::Joined { trusted: true });
        let error = || {
            swarm(SwarmPhase::Error {
                code: "invite_invalid".into(),
                message: "the invite was refused".into(),
            })
        };
        assert_eq!(TrayState::of(&status(false, vec![])), TrayState::Offline);
        assert_eq!(
            TrayState::of(&status(false, vec![swarm(SwarmPhase::Connecting)])),
            TrayState::Offline
        );
        assert_eq!(
            TrayState::of(&status(false, vec![joined()])),
            TrayState::Sharing
        );
        assert_eq!(
            TrayState::of(&status(true, vec![joined()])),
            TrayState::Paused
        );
        assert_eq!(
            TrayState::of(&status(true, vec![joined(), error()])),
            TrayState::Error
        );
        let s = status(false, vec![error()]);
        assert!(TrayState::of(&s)
            .describe(&s)
            .contains("the invite was refused"));
        let s = status(false, vec![joined(), joined()]);
        assert_eq!(TrayState::of(&s).describe(&s), "Tuber: sharing in 2 swarms");
    }

    #[test]
    fn join_links() {
        let l = JoinLink::parse("tuber://join?swarm=http%3A%2F%2F127.0.0.1%3A8080%2F&invite=abc")
            .unwrap();
        assert_eq!(l.swarm, "http://127.0.0.1:8080/");
        assert_eq!(l.invite.as_deref(), Some("abc"));
        let l = JoinLink::parse("TUBER://JOIN?swarm=https://v.example.org/").unwrap();
        assert_eq!(
            (l.swarm.as_str(), l.invite),
            ("https://v.example.org/", None)
        );
        assert_eq!(
            JoinLink::parse("tuber:join?swarm=https://v.example.org/&invite=")
                .unwrap()
                .invite,
            None
        );
        assert_eq!(
            JoinLink::parse("tuber://leave?swarm=http://a/"),
            Err(LinkError::NotJoin)
        );
        assert_eq!(
            JoinLink::parse("https://join?swarm=http://a/"),
            Err(LinkError::NotJoin)
        );
        assert_eq!(
            JoinLink::parse("tuber://join?invite=x"),
            Err(LinkError::NoSwarm)
        );
        assert!(matches!(
            JoinLink::parse("tuber://join?swarm=javascript:alert(1)"),
            Err(LinkError::BadSwarm(_))
        ));
        assert!(matches!(
            JoinLink::parse("tuber://join?swarm=file:///etc/passwd"),
            Err(LinkError::BadSwarm(_))
        ));
        assert_eq!(
            JoinLink::parse(&format!("tuber://join?swarm=http://a/{}", "x".repeat(5000))),
            Err(LinkError::TooLong)
        );
        assert_eq!(JoinLink::parse("not a url"), Err(LinkError::NotJoin));
        assert_eq!(JoinLink::from_args(["tuber-desktop", "--hidden"]), None);
        assert_eq!(
            JoinLink::from_args(["tuber-desktop", "tuber://join?swarm=http://a.example/"]),
            Some(Ok(JoinLink {
                swarm: "http://a.example/".into(),
                invite: None
            }))
        );
    }

    #[test]
    fn notices_for_trust_errors_and_budget_not_repeated() {
        let mut n = Notifier::default();
        let t0 = Instant::now();
        let trusted = EngineEvent::Trusted {
            url: "http://a/".into(),
        };
        assert!(n.on_event(&trusted, t0).unwrap().body.contains("trusted"));
        assert_eq!(n.on_event(&trusted, t0 + Duration::from_secs(1)), None);
        assert!(n
            .on_event(&trusted, t0 + Notifier::QUIET + Duration::from_secs(1))
            .is_some());
        let err = EngineEvent::Swarm {
            url: "http://b/".into(),
            status: Some(swarm(SwarmPhase::Error {
                code: "x".into(),
                message: "refused".into(),
            })),
        };
        assert_eq!(n.on_event(&err, t0).unwrap().body, "http://b/: refused");
        let ok = EngineEvent::Swarm {
            url: "http://b/".into(),
            status: Some(swarm(SwarmPhase::Connecting)),
        };
        assert_eq!(n.on_event(&ok, t0), None);
        assert_eq!(
            n.on_event(&EngineEvent::BudgetReached { evicted: 3 }, t0)
                .unwrap()
                .title,
            "Disk budget reached"
        );
        let rates = EngineEvent::Rates {
            at: 0,
            rate: UpDown::default(),
            total: UpDown::default(),
        };
        assert_eq!(n.on_event(&rates, t0), None);
    }

    #[test]
    fn autostart_entry_written_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let e = AutostartEntry::in_dir(
            &dir.path().join("autostart"),
            PathBuf::from("/opt/my \"app\"/tuber-desktop"),
        );
        assert!(!e.enabled());
        e.set(true).unwrap();
        assert!(e.enabled());
        let text = std::fs::read_to_string(&e.path).unwrap();
        assert!(
            text.contains("Exec=\"/opt/my \\\"app\\\"/tuber-desktop\" --hidden\n"),
            "{text}"
        );
        e.set(false).unwrap();
        assert!(!e.enabled());
        e.set(false).unwrap();
    }

    #[test]
    fn prefs_round_trip_and_data_dir_checks() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("cfg");
        let p = DesktopPrefs::load(&cfg);
        assert!(p.must_ask_autostart());
        let p = DesktopPrefs {
            autostart: Some(false),
            data_dir: Some(dir.path().join("d")),
        };
        p.save(&cfg).unwrap();
        assert_eq!(DesktopPrefs::load(&cfg), p);
        assert!(!DesktopPrefs::load(&cfg).must_ask_autostart());
        assert!(check_data_dir("relative/path").is_err());
        assert!(check_data_dir("  ").is_err());
        let d = dir.path().join("new/data");
        assert_eq!(check_data_dir(d.to_str().unwrap()).unwrap(), d);
        assert!(d.is_dir());
    }
}
