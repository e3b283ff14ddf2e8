//! Short-lived TURN credentials (the Gateway's relay fallback).
//!
//! The hub does not relay media itself: operators run a real TURN server
//! (coturn, from Debian) with `use-auth-secret` and the same
//! `static-auth-secret` as `[turn] secret`. The hub hands every signaling
//! client, in its `welcome`, credentials made by the TURN REST API
//! convention (draft-uberti-behave-turn-rest-00, what coturn implements):
//!
//! ```text
//! username   = "<expiry unix seconds>:<swarm id>"
//! credential = base64(HMAC-SHA1(secret, username))
//! ```
//!
//! coturn recomputes the credential from the username and refuses one whose
//! expiry has passed, so the hub keeps no state and talks to no TURN server.
//! Not in the descriptor: that is public and cached, and credentials there
//! would outlive their expiry in every cache.
//!
//! Why the swarm id and a rounded expiry: coturn's quotas count per
//! username (`user-quota`: concurrent allocations). Rounding the expiry up
//! to a whole [`EXPIRY_STEP`] makes every client of one swarm get the same
//! username within a step, so `user-quota` caps a swarm's concurrent relays
//! (per step: at most `ttl / step + 1` usernames of one swarm are valid at
//! once) and coturn's per-session usage lines name the swarm. The relayed
//! bandwidth is capped by coturn's `max-bps` per session and `bps-capacity`
//! in total; the hub counts no relayed bytes itself.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use tuber_proto::descriptor::IceServer;

/// Expiries are rounded up to a multiple of this, so that one swarm's
/// clients share a username (and coturn's per-user quota) for this long.
pub const EXPIRY_STEP: Duration = Duration::from_secs(600);

/// The `[turn]` table: where the TURN server is and the secret shared
/// with it. Absent (the default): no TURN, peers only try direct paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// `turn:`/`turns:` URLs handed to clients, e.g.
    /// `turn:turn.example.org:3478?transport=udp`,
    /// `turn:turn.example.org:443?transport=tcp` (for networks that block
    /// UDP). 1–8 URLs. Required.
    pub urls: Vec<String>,
    /// The shared secret: coturn's `static-auth-secret`. This or
    /// `secret_file` is required.
    pub secret: Option<String>,
    /// A file holding the secret (trailing whitespace ignored), so the
    /// config file can be world-readable.
    pub secret_file: Option<PathBuf>,
    /// How long credentials stay valid (before rounding up to 10 min).
    /// A client keeps using them for allocations it made; a reconnect gets
    /// new ones. Default 1 h.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Hand credentials to permanent peers too. Default false: a relay on
    /// the browser's side is enough for every NAT pair (the relay admits
    /// the peer's packets by address, whatever port its NAT picks), coturn
    /// refuses to relay between two of its own allocations anyway (403
    /// Forbidden IP), and each allocation costs the operator.
    pub permanent_peers: bool,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            secret: None,
            secret_file: None,
            ttl: Duration::from_secs(3600),
            permanent_peers: false,
        }
    }
}

/// Why `[turn]` cannot work.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// A rule of the table is broken.
    #[error("[turn]: {0}")]
    Invalid(String),
    /// The secret file could not be read.
    #[error("[turn] secret_file {path}: {source}")]
    SecretFile {
        /// The file named.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
}

/// Makes credentials. Cheap to share (immutable).
#[derive(Clone)]
pub struct TurnIssuer {
    urls: Vec<String>,
    secret: Vec<u8>,
    ttl: Duration,
    permanent_peers: bool,
}

impl std::fmt::Debug for TurnIssuer {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnIssuer")
            .field("urls", &self.urls)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TurnIssuer {
    /// Checks the table and reads the secret (from the file if named).
    pub fn new(config: &TurnConfig) -> Result<Self, TurnError> {
        let secret = match (&config.secret, &config.secret_file) {
            (Some(_), Some(_)) => {
                return Err(TurnError::Invalid(
                    "set secret or secret_file, not both".into(),
                ))
            }
            (Some(s), None) => s.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|source| TurnError::SecretFile {
                    path: path.clone(),
                    source,
                })?
                .trim_end()
                .to_string(),
            (None, None) => {
                return Err(TurnError::Invalid(
                    "secret or secret_file is required".into(),
                ))
            }
        };
        if secret.is_empty() {
            return Err(TurnError::Invalid("the secret is empty".into()));
        }
        if config.ttl < Duration::from_secs(60) {
            return Err(TurnError::Invalid("ttl must be at least 1m".into()));
        }
        let server = IceServer {
            urls: config.urls.clone(),
            username: Some(format!("{}:{}", u64::MAX, "x".repeat(64))),
            credential: Some("x".repeat(28)),
        };
        tuber_proto::descriptor::validate_ice_servers(std::slice::from_ref(&server))
            .map_err(|e| TurnError::Invalid(format!("urls: {e}")))?;
        if !config
            .urls
            .iter()
            .all(|u| u.starts_with("turn:") || u.starts_with("turns:"))
        {
            return Err(TurnError::Invalid(
                "urls must be turn: or turns: URLs".into(),
            ));
        }
        Ok(Self {
            urls: config.urls.clone(),
            secret: secret.into_bytes(),
            ttl: config.ttl,
            permanent_peers: config.permanent_peers,
        })
    }

    /// Whether a client of `role` gets credentials.
    pub fn serves(&self, role: tuber_proto::signal::Role) -> bool {
        role == tuber_proto::signal::Role::Browser || self.permanent_peers
    }

    /// The ICE server for a client of swarm `tag` at `now_unix` (seconds).
    pub fn ice_server(&self, tag: &str, now_unix: u64) -> IceServer {
        let step = EXPIRY_STEP.as_secs();
        let expiry = (now_unix.saturating_add(self.ttl.as_secs())).div_ceil(step) * step;
        let username = format!("{expiry}:{tag}");
        IceServer {
            urls: self.urls.clone(),
            credential: Some(credential(&self.secret, &username)),
            username: Some(username),
        }
    }
}

/// base64(HMAC-SHA1(secret, username)): coturn's `use-auth-secret` check.
pub fn credential(secret: &[u8], username: &str) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(urls: &[&str]) -> TurnConfig {
        TurnConfig {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            secret: Some("north-sea".into()),
            ..TurnConfig::default()
        }
    }

    #[test]
    fn credential_is_the_turn_rest_hmac() {
        // The value in the protocol vectors' "welcome with TURN
        // credentials" (checked against Python's hmac + base64).
        assert_eq!(
            credential(b"north-sea", "1767229200:video.example.org"),
            "I6d/36oR0uaff635vsUibHt7+ss="
        );
    }

    #[test]
    fn one_swarm_shares_a_username_within_a_step() {
        let issuer = TurnIssuer::new(&config(&["turn:10.0.0.1:3478?transport=udp"])).unwrap();
        let a = issuer.ice_server("video.example.org", 1_767_225_001);
        let b = issuer.ice_server("video.example.org", 1_767_225_001 + 500);
        assert_eq!(a.username.as_deref(), Some("1767229200:video.example.org"));
        assert_eq!(a, b);
        let later = issuer.ice_server("video.example.org", 1_767_225_601);
        assert_eq!(
            later.username.as_deref(),
            Some("1767229800:video.example.org")
        );
        assert_eq!(a.urls, vec!["turn:10.0.0.1:3478?transport=udp".to_string()]);
    }

    #[test]
    fn bad_tables_are_refused() {
        assert!(TurnIssuer::new(&config(&[])).is_err());
        assert!(TurnIssuer::new(&config(&["stun:10.0.0.1:3478"])).is_err());
        assert!(TurnIssuer::new(&config(&["turn:a b"])).is_err());
        let mut c = config(&["turn:10.0.0.1"]);
        c.secret = None;
        assert!(TurnIssuer::new(&c).is_err());
        c.secret = Some(String::new());
        assert!(TurnIssuer::new(&c).is_err());
        let mut c = config(&["turn:10.0.0.1"]);
        c.ttl = Duration::from_secs(1);
        assert!(TurnIssuer::new(&c).is_err());
    }

    #[test]
    fn the_commented_example_names_real_keys() {
        // hub.example.toml documents [turn] commented out (the default is
        // none): its key lines, uncommented, must parse.
        let text = include_str!("../hub.example.toml");
        let table: String = text
            .lines()
            .skip_while(|l| *l != "# [turn]")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.split(' ').nth(1) == Some("="))
            .map(|l| l.split("  #").next().unwrap_or(l).to_string() + "\n")
            .collect();
        let parsed: TurnConfig = toml::from_str(&table).unwrap();
        assert_eq!(parsed.urls.len(), 2);
        assert_eq!(parsed.ttl, Duration::from_secs(3600));
        assert!(parsed.secret.is_some() && parsed.secret_file.is_some());
    }

    #[test]
    fn the_secret_comes_from_a_file_and_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "north-sea\n").unwrap();
        let mut c = config(&["turn:10.0.0.1"]);
        c.secret = None;
        c.secret_file = Some(path);
        let issuer = TurnIssuer::new(&c).unwrap();
        assert_eq!(
            issuer.ice_server("s", 0).credential,
            Some(credential(b"north-sea", "3600:s"))
        );
        assert!(!format!("{issuer:?}").contains("north-sea"));
    }
}
