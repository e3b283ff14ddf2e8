//! The two files through which the CLI finds a running daemon, both in the
//! data dir: `api.token` (the bearer token, private, kept across runs) and
//! `api.json` (where the API listens and the daemon's pid, removed at a
//! clean exit).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The token file's name in the data dir.
pub const TOKEN_FILE: &str = "api.token";
/// The address file's name in the data dir.
pub const API_FILE: &str = "api.json";

/// The local API's bearer token: 32 random bytes as 64 hex digits. Its
/// `Debug` hides it, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

impl ApiToken {
    /// The token as sent in `Authorization: Bearer`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token, compared in constant time (the length
    /// is not secret: every token has 64 digits).
    pub fn matches(&self, given: &str) -> bool {
        let expected = self.0.as_bytes();
        given.len() == expected.len()
            && given
                .bytes()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        (t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(t.to_ascii_lowercase()))
    }
}

/// Reads the token from `dir`, or makes a new one there (0600) when there
/// is none or the file is not a well-formed token.
pub fn ensure_token(dir: &Path) -> std::io::Result<ApiToken> {
    let path = dir.join(TOKEN_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if let Some(token) = ApiToken::parse(&existing) {
            tighten(&path)?;
            return Ok(token);
        }
        tracing::warn!(path = %path.display(), "malformed API token file; made a new token");
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token = ApiToken(hex::encode(bytes));
    write_atomically(&path, token.as_str().as_bytes())?;
    Ok(token)
}

/// Reads the token a running daemon uses.
pub fn read_token(dir: &Path) -> std::io::Result<ApiToken> {
    let path = dir.join(TOKEN_FILE);
    let text = std::fs::read_to_string(&path)?;
    ApiToken::parse(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a well-formed API token", path.display()),
        )
    })
}

/// What `api.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiInfo {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The daemon's process id.
    pub pid: u32,
}

/// The path of `api.json` in `dir`.
pub fn api_file(dir: &Path) -> PathBuf {
    dir.join(API_FILE)
}

/// Writes `api.json`.
pub fn write_api_info(dir: &Path, info: &ApiInfo) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    write_atomically(&api_file(dir), &json)
}

/// Reads `api.json`; `Ok(None)` when there is none.
pub fn read_api_info(dir: &Path) -> std::io::Result<Option<ApiInfo>> {
    let path = api_file(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.len() > 4096 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is too large", path.display()),
        ));
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// Removes `api.json` if it still names this process.
pub fn remove_api_info(dir: &Path) {
    let ours = matches!(read_api_info(dir), Ok(Some(i)) if i.pid == std::process::id());
    if ours {
        if let Err(e) = std::fs::remove_file(api_file(dir)) {
            tracing::warn!(error = %e, "could not remove api.json");
        }
    }
}

/// A private temporary file beside `path`, synced, then renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = private_options().open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

fn private_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

#[cfg(unix)]
fn tighten(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_private_and_well_formed() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_token(dir.path()).unwrap();
        let b = ensure_token(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str().len(), 64);
        assert!(a.matches(a.as_str()));
        assert!(!a.matches(&a.as_str()[..63]));
        assert!(!a.matches(""));
        assert_eq!(format!("{a:?}"), "ApiToken(..)");
        assert_eq!(read_token(dir.path()).unwrap(), a);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(TOKEN_FILE), "short").unwrap();
        let c = ensure_token(dir.path()).unwrap();
        assert_ne!(c, a, "a malformed token is replaced");
        assert_eq!(c.as_str().len(), 64);
    }

    #[test]
    fn api_info_round_trips_and_is_removed_only_when_ours() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_api_info(dir.path()).unwrap(), None);
        let other = ApiInfo {
            url: "http://127.0.0.1:1".into(),
            pid: std::process::id().wrapping_add(1),
        };
        write_api_info(dir.path(), &other).unwrap();
        remove_api_info(dir.path());
        assert_eq!(read_api_info(dir.path()).unwrap(), Some(other));
        let ours = ApiInfo {
            url: "http://127.0.0.1:2".into(),
            pid: std::process::id(),
        };
        write_api_info(dir.path(), &ours).unwrap();
        remove_api_info(dir.path());
        assert_eq!(read_api_info(dir.path()).unwrap(), None);
    }
}
