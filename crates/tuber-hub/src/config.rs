//! The hub's configuration file (TOML). Every field has a default, and
//! `HubConfig::default()` is a working local setup; `hub.example.toml` at the
//! crate root is the committed, commented example. Command-line flags
//! override the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::planner::BanReporters;

/// Everything the hub can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Address the HTTP server (proxy, signaling, API) listens on.
    /// Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The site to proxy, `http://` or `https://`. Default: none (`serve`
    /// requires it; `demo` runs its own).
    pub upstream: Option<String>,
    /// A PEM file of extra CA certificates trusted for an `https://`
    /// upstream (a private CA), on top of the bundled Mozilla roots and the
    /// system's. Default: none.
    pub upstream_ca_file: Option<PathBuf>,
    /// The hub's public URL as browsers see it (for the descriptor). Default:
    /// `http://{listen}`.
    pub public_url: Option<String>,
    /// Where the hub keeps its database (manifests, invites, trusted keys,
    /// bans) and its admin token. Default: the OS data dir
    /// (`~/.local/share/tuber-hub` on Linux).
    pub data_dir: Option<PathBuf>,
    /// Swarm id in the descriptor. Default: the public URL's host.
    pub swarm_id: Option<String>,
    /// Swarm name in the descriptor. Default: the swarm id.
    pub name: Option<String>,
    /// Piece size of manifests, bytes (a power of two, 16 KiB–4 MiB).
    /// Default 262144.
    pub piece_size: u32,
    /// STUN (the Gateway).
    pub stun: StunConfig,
    /// What the hub distributes peer to peer.
    pub distribute: DistributeConfig,
    /// The planner.
    pub planner: PlannerSettings,
    /// Signaling limits per WebSocket connection.
    pub signaling: SignalingConfig,
    /// Invites for trusted peers.
    pub invites: InviteConfig,
}

/// The STUN binding server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StunConfig {
    /// Serve STUN at all. Default true.
    pub enabled: bool,
    /// UDP address. Default `0.0.0.0:3478`.
    pub listen: SocketAddr,
    /// STUN URLs advertised in the descriptor. Default: `stun:{public host}:{port}`.
    pub advertise: Vec<String>,
}

/// Which responses are distributable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributeConfig {
    /// Smallest distributable response, bytes. Default 1 MiB.
    pub min_size: u64,
    /// Content-type prefixes that qualify. Default video/, audio/, image/,
    /// application/octet-stream, and common archive and media types.
    pub content_types: Vec<String>,
    /// Path extensions that qualify whatever the content type. Default:
    /// common media and download extensions.
    pub extensions: Vec<String>,
    /// Glob-like path patterns (`*` matches any run of characters) that are
    /// always distributable, whatever their size or type. Default none.
    pub include: Vec<String>,
    /// Path patterns that never are; wins over everything. Default none.
    pub exclude: Vec<String>,
    /// Read HLS playlists (`.m3u8`) and DASH manifests (`.mpd`) as they pass
    /// and treat the same-origin segments they list as distributable.
    /// Default true.
    pub playlists: bool,
}

/// The planner's knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlannerSettings {
    /// Trusted peers that hold each partition. Default 2.
    pub replication: u32,
    /// Consecutive pieces per partition. Default 64.
    pub partition_pieces: u32,
    /// Distinct reporters needed to ban a peer for bad pieces. Default 3.
    pub ban_threshold: u32,
    /// What counts as one reporter towards `ban_threshold`. Default
    /// `"distinct_networks"`: a trusted permanent peer counts on its own,
    /// every other client once per network of its address (IPv4 /24, IPv6
    /// /48), so one person's many tabs or WebSockets count once.
    /// `"distinct_peers"`: every connection counts on its own (the old rule);
    /// only for private networks and tests where every browser is on one
    /// host, as on the Internet anyone could then ban anyone. Behind a
    /// reverse proxy every client has the proxy's address, so with
    /// `"distinct_networks"` only trusted peers can get a peer banned.
    pub ban_reporters: BanReporters,
    /// How often the hub pings clients; three missed pings evict. Default 15 s.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
}

/// Per-connection signaling limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalingConfig {
    /// Messages a connection may send per second, sustained. Default 50.
    pub messages_per_second: u32,
    /// Burst above that rate. Default 200.
    pub burst: u32,
    /// Connections at most, over all swarms. Default 10000.
    pub max_connections: usize,
    /// Time a client has to say hello. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub hello_timeout: Duration,
}

/// Invites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InviteConfig {
    /// Lifetime of an invite when `--expires` is not given. Default 7 days.
    #[serde(with = "humantime_serde")]
    pub default_expiry: Duration,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            upstream: None,
            upstream_ca_file: None,
            public_url: None,
            data_dir: None,
            swarm_id: None,
            name: None,
            piece_size: tuber_proto::limits::DEFAULT_PIECE_SIZE,
            stun: StunConfig::default(),
            distribute: DistributeConfig::default(),
            planner: PlannerSettings::default(),
            signaling: SignalingConfig::default(),
            invites: InviteConfig::default(),
        }
    }
}

impl Default for StunConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 3478)),
            advertise: vec![],
        }
    }
}

impl Default for DistributeConfig {
    fn default() -> Self {
        Self {
            min_size: 1024 * 1024,
            content_types: strings(&[
                "video/",
                "audio/",
                "image/",
                "application/octet-stream",
                "application/zip",
                "application/x-tar",
                "application/gzip",
                "application/x-xz",
                "application/x-7z-compressed",
                "application/vnd.debian.binary-package",
                "application/x-iso9660-image",
                "application/pdf",
                "application/wasm",
            ]),
            extensions: strings(&[
                "mp4", "m4v", "m4s", "m4a", "webm", "mkv", "mov", "ts", "mp3", "ogg", "oga", "ogv",
                "flac", "wav", "opus", "zip", "tar", "gz", "tgz", "xz", "bz2", "zst", "7z", "iso",
                "img", "dmg", "exe", "msi", "deb", "rpm", "apk", "appimage", "pdf", "bin", "wasm",
            ]),
            include: vec![],
            exclude: vec![],
            playlists: true,
        }
    }
}

impl Default for PlannerSettings {
    fn default() -> Self {
        Self {
            replication: 2,
            partition_pieces: 64,
            ban_threshold: 3,
            ban_reporters: BanReporters::DistinctNetworks,
            ping_interval: Duration::from_secs(15),
        }
    }
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            messages_per_second: 50,
            burst: 200,
            max_connections: 10_000,
            hello_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for InviteConfig {
    fn default() -> Self {
        Self {
            default_expiry: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or an unknown or mistyped field.
    #[error("config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        source: Box<toml::de::Error>,
    },
    /// A value out of range.
    #[error("config: {0}")]
    Invalid(String),
}

impl HubConfig {
    /// Reads and checks a config file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        config.check()?;
        Ok(config)
    }

    /// Checks values that the types alone do not.
    pub fn check(&self) -> Result<(), ConfigError> {
        tuber_proto::manifest::validate_piece_size(self.piece_size).map_err(|_| {
            ConfigError::Invalid(format!(
                "piece_size {} must be a power of two from 16384 to 4194304",
                self.piece_size
            ))
        })?;
        let p = &self.planner;
        if p.replication == 0 || p.partition_pieces == 0 || p.ban_threshold == 0 {
            return Err(ConfigError::Invalid(
                "planner.replication, partition_pieces and ban_threshold must be at least 1".into(),
            ));
        }
        if p.ping_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "planner.ping_interval must be at least 1s".into(),
            ));
        }
        if self.signaling.messages_per_second == 0 || self.signaling.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "signaling.messages_per_second and max_connections must be at least 1".into(),
            ));
        }
        if let Some(id) = &self.swarm_id {
            tuber_proto::descriptor::validate_swarm_id(id).map_err(|_| {
                ConfigError::Invalid(format!("swarm_id {id:?}: 1-64 of A-Z a-z 0-9 . _ -"))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_example_is_the_default() {
        let text = include_str!("../hub.example.toml");
        let parsed: HubConfig = toml::from_str(text).expect("example parses");
        assert_eq!(parsed, HubConfig::default());
        parsed.check().expect("default is valid");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_with_the_reason() {
        let err =
            toml::from_str::<HubConfig>("listen = \"127.0.0.1:1\"\nlisen = 3").expect_err("typo");
        assert!(err.to_string().contains("lisen"), "{err}");
        let c: HubConfig = toml::from_str("piece_size = 1000").expect("parses");
        assert!(c
            .check()
            .expect_err("bad")
            .to_string()
            .contains("piece_size"));
        let c: HubConfig = toml::from_str("[planner]\nping_interval = \"20ms\"").expect("parses");
        assert!(c.check().is_err());
        let c: HubConfig = toml::from_str("[planner]\nping_interval = \"30s\"").expect("parses");
        assert_eq!(c.planner.ping_interval, Duration::from_secs(30));
        let c: HubConfig =
            toml::from_str("[planner]\nban_reporters = \"distinct_peers\"").expect("parses");
        assert_eq!(c.planner.ban_reporters, BanReporters::DistinctPeers);
        let err = toml::from_str::<HubConfig>("[planner]\nban_reporters = \"anyone\"")
            .expect_err("unknown mode");
        assert!(err.to_string().contains("distinct_networks"), "{err}");
    }
}
