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
    /// Clients whose `X-Forwarded-For`/`Forwarded` headers the hub passes
    /// on (a reverse proxy in front of it), as addresses or CIDR ranges.
    /// From anyone else those headers are dropped and the hub names the
    /// client itself, so a client cannot pose as another address to the
    /// upstream. Default: loopback (`127.0.0.0/8`, `::1`).
    pub trusted_proxies: Vec<String>,
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
    /// Memory for the bytes of pieces the hub hashed, so it serves them to
    /// the first viewers without asking the origin again (least recently
    /// used first out), bytes. Default 256 MiB; 0 turns it off.
    pub piece_cache_bytes: u64,
    /// What one client network (IPv4 /24, IPv6 /48) may make the hub read
    /// from the upstream on its behalf, bytes per hour: new manifests (a
    /// whole body each) and pieces not in the cache. Past it, manifest and
    /// piece requests get 429 with Retry-After (browsers then load the
    /// resource through the proxy). Default 8 GiB; 0 = no limit.
    pub origin_budget_per_network: u64,
    /// Which manifests the hub keeps, and for how long.
    pub manifests: crate::manifests::IndexConfig,
    /// STUN (the Gateway).
    pub stun: StunConfig,
    /// TURN credentials handed to clients in `welcome`, for a TURN server
    /// (coturn) sharing `secret`. Default: none (direct paths only).
    pub turn: Option<crate::turn::TurnConfig>,
    /// What the hub distributes peer to peer.
    pub distribute: DistributeConfig,
    /// The planner.
    pub planner: PlannerSettings,
    /// Signaling limits per WebSocket connection.
    pub signaling: SignalingConfig,
    /// Invites for trusted peers.
    pub invites: InviteConfig,
    /// TLS terminated by the hub itself (certificate files or ACME).
    /// Default: none (plain HTTP, e.g. behind nginx or Caddy with
    /// `public_url`).
    pub tls: Option<TlsConfig>,
}

/// The hub's own HTTPS: `cert` + `key` files, or `[tls.acme]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first). With `key`: files mode.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert`.
    pub key: Option<PathBuf>,
    /// Files mode: how often the files' modification times are checked, so
    /// a renewal by certbot applies without a restart. Default 1 min.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// A plain-HTTP listener that redirects (308) to HTTPS and answers ACME
    /// HTTP-01 challenges. Default: none (required with `acme`).
    pub http_listen: Option<SocketAddr>,
    /// Certificates from an ACME CA instead of files.
    pub acme: Option<AcmeConfig>,
}

/// Let's Encrypt's production directory, the default ACME CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Automatic certificates over ACME (RFC 8555) with HTTP-01 challenges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeConfig {
    /// The names the certificate is for; the first is the default public
    /// host. Required.
    pub domains: Vec<String>,
    /// Account contact URLs, e.g. `mailto:ops@example.org`. Default none.
    pub contact: Vec<String>,
    /// The CA's directory URL. Default Let's Encrypt production.
    pub directory: String,
    /// Extra CA certificates (PEM) trusted for the ACME server's own HTTPS,
    /// besides the bundled and system roots (a test CA such as pebble's).
    pub directory_ca_file: Option<PathBuf>,
    /// Renew this long before expiry. Default: when less than a third of
    /// the certificate's lifetime is left.
    #[serde(default, with = "humantime_serde")]
    pub renew_before: Option<Duration>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            reload_interval: Duration::from_secs(60),
            http_listen: None,
            acme: None,
        }
    }
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            domains: vec![],
            contact: vec![],
            directory: LETS_ENCRYPT.into(),
            directory_ca_file: None,
            renew_before: None,
        }
    }
}

/// A DNS name the hub may ask a certificate for and accept as `Host`:
/// 1-253 characters of letters, digits, `-` and `.`, in labels of 1-63
/// characters that neither start nor end with `-`; no wildcards (HTTP-01
/// cannot prove them).
pub fn valid_domain(name: &str) -> bool {
    name.len() <= 253
        && !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl TlsConfig {
    /// Checks that exactly one certificate source is named, completely.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.into()));
        match (&self.cert, &self.key, &self.acme) {
            (Some(_), Some(_), None) => {}
            (None, None, Some(acme)) => {
                if acme.domains.is_empty() {
                    return bad("tls.acme.domains must name at least one domain");
                }
                if let Some(d) = acme.domains.iter().find(|d| !valid_domain(d)) {
                    return Err(ConfigError::Invalid(format!(
                        "tls.acme.domains: {d:?} is not a DNS name (no wildcards, IP addresses or ports)"
                    )));
                }
                if !acme.directory.starts_with("https://") {
                    return bad("tls.acme.directory must be an https:// URL");
                }
                if self.http_listen.is_none() {
                    return bad("tls.acme needs tls.http_listen (e.g. \"0.0.0.0:80\"): the CA checks HTTP-01 challenges over plain HTTP on port 80");
                }
            }
            (Some(_), None, None) => return bad("tls.cert needs tls.key"),
            (None, Some(_), None) => return bad("tls.key needs tls.cert"),
            (_, _, Some(_)) => {
                return bad("tls: either cert and key files, or [tls.acme], not both")
            }
            (None, None, None) => {
                return bad("[tls] needs cert and key files, or a [tls.acme] section")
            }
        }
        if self.reload_interval < Duration::from_secs(1) {
            return bad("tls.reload_interval must be at least 1s");
        }
        Ok(())
    }
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
    /// Smallest distributable stream segment (a path ending in `.ts`,
    /// `.m4s`, `.cmfv`, `.cmfa`, `.aac`: HLS and DASH segments, which are
    /// short by design: 2 s at 2 Mb/s is 500 kB), bytes. Default 64 KiB.
    pub segment_min_size: u64,
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
    /// reverse proxy listed in `trusted_proxies`, the address it names in
    /// `X-Forwarded-For` counts.
    pub ban_reporters: BanReporters,
    /// How often the hub pings clients; three missed pings evict. Default 15 s.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// How long a ban for bad pieces lasts, from when it was made. Default
    /// 7 days. `tuber-hub bans list` shows the bans, `tuber-hub bans lift`
    /// ends one early.
    #[serde(with = "humantime_serde")]
    pub ban_duration: Duration,
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
    /// Connections at most from one client network (IPv4 /24, IPv6 /48; the
    /// address `X-Forwarded-For` names behind a trusted proxy), so one host
    /// cannot take the signaling tier. Default 500 (one carrier-grade NAT
    /// can hold many real viewers).
    pub max_connections_per_network: usize,
    /// What all the connections of one network may send together, in units
    /// per second (a message is 1 unit, plus 1 per 16 piece hashes it
    /// lists); burst four seconds' worth. Past it their messages are
    /// refused (`rate_limited`). Default 2000.
    pub network_message_units_per_second: u32,
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
    /// Refuse an invite that reaches the hub in cleartext: over plain HTTP
    /// from an address other than loopback (a TLS terminator on this host
    /// counts as encrypted). An invite seen in cleartext may have been read
    /// on the way. Default false (a peer already refuses to send one to a
    /// public `http://` hub).
    pub refuse_cleartext: bool,
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
            trusted_proxies: vec!["127.0.0.0/8".into(), "::1/128".into()],
            data_dir: None,
            swarm_id: None,
            name: None,
            piece_size: tuber_proto::limits::DEFAULT_PIECE_SIZE,
            piece_cache_bytes: crate::manifests::DEFAULT_PIECE_CACHE,
            origin_budget_per_network: 8 << 30,
            manifests: crate::manifests::IndexConfig::default(),
            stun: StunConfig::default(),
            turn: None,
            distribute: DistributeConfig::default(),
            planner: PlannerSettings::default(),
            signaling: SignalingConfig::default(),
            invites: InviteConfig::default(),
            tls: None,
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
            segment_min_size: 64 * 1024,
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
            ban_duration: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            messages_per_second: 50,
            burst: 200,
            max_connections: 10_000,
            max_connections_per_network: 500,
            network_message_units_per_second: 2000,
            hello_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for InviteConfig {
    fn default() -> Self {
        Self {
            default_expiry: Duration::from_secs(7 * 24 * 3600),
            refuse_cleartext: false,
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
        if let Some(bad) = self
            .trusted_proxies
            .iter()
            .find(|p| crate::proxy::Cidr::parse(p).is_none())
        {
            return Err(ConfigError::Invalid(format!(
                "trusted_proxies: {bad:?} is not an IP address or CIDR range"
            )));
        }
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
        let m = &self.manifests;
        if m.max_count == 0 || m.max_bytes < 1 << 20 || m.retention < Duration::from_secs(60) {
            return Err(ConfigError::Invalid(
                "manifests.max_count must be at least 1, max_bytes at least 1 MiB and retention at least 1m".into(),
            ));
        }
        if self.signaling.messages_per_second == 0 || self.signaling.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "signaling.messages_per_second and max_connections must be at least 1".into(),
            ));
        }
        if let Some(tls) = &self.tls {
            tls.check()?;
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

    #[test]
    fn tls_needs_one_complete_certificate_source() {
        let err = |text: &str| {
            toml::from_str::<HubConfig>(text)
                .expect("parses")
                .check()
                .expect_err("refused")
                .to_string()
        };
        assert!(err("[tls]\ncert = \"c.pem\"").contains("tls.cert needs tls.key"));
        assert!(err("[tls]\nkey = \"k.pem\"").contains("tls.key needs tls.cert"));
        assert!(err("[tls]\n").contains("needs cert and key"));
        let both = "[tls]\ncert = \"c\"\nkey = \"k\"\nhttp_listen = \"127.0.0.1:80\"\n[tls.acme]\ndomains = [\"a.example\"]";
        assert!(err(both).contains("not both"), "{}", err(both));
        assert!(err("[tls]\nhttp_listen = \"127.0.0.1:80\"\n[tls.acme]\n")
            .contains("at least one domain"));
        assert!(err("[tls.acme]\ndomains = [\"a.example\"]").contains("http_listen"));
        assert!(err(
            "[tls]\nhttp_listen = \"127.0.0.1:80\"\n[tls.acme]\ndomains = [\"*.example\"]"
        )
        .contains("not a DNS name"));
        let files: HubConfig =
            toml::from_str("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"").expect("parses");
        files.check().expect("files mode is valid");
        let tls = files.tls.expect("tls");
        assert_eq!(tls.reload_interval, Duration::from_secs(60));
        let acme: HubConfig = toml::from_str(
            "[tls]\nhttp_listen = \"0.0.0.0:80\"\n[tls.acme]\ndomains = [\"hub.example.org\"]\nrenew_before = \"30d\"",
        )
        .expect("parses");
        acme.check().expect("acme is valid");
        let a = acme.tls.and_then(|t| t.acme).expect("acme");
        assert_eq!(a.directory, LETS_ENCRYPT);
        assert_eq!(a.renew_before, Some(Duration::from_secs(30 * 86400)));
        let typo = toml::from_str::<HubConfig>("[tls.acme]\ndomain = [\"a\"]").expect_err("typo");
        assert!(typo.to_string().contains("domain"), "{typo}");
    }

    #[test]
    fn domains_are_plain_dns_names() {
        assert!(valid_domain("hub.tuber.test"));
        assert!(valid_domain("localhost"));
        for bad in [
            "", "a..b", "-a.b", "a-.b", "a b", "a:443", "*.a.b", "a/b", "ä.b",
        ] {
            assert!(!valid_domain(bad), "{bad}");
        }
    }
}
