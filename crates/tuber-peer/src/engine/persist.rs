//! What the engine keeps in its data dir besides the key and the store:
//! `settings.json`, `swarms.json` (joined swarm URLs, never invites) and
//! `meter.json` (totals and the graphs' history). Each is written to a temp
//! file, synced and renamed, so a crash leaves the old or the new file,
//! never half of one. A file that does not parse is moved aside (`.bad`)
//! and defaults are used, with a warning: losing a graph must not stop a
//! peer from starting.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest state file read (a week of history is ~0.5 MB of JSON).
const MAX_STATE_FILE: u64 = 16 * 1024 * 1024;

/// The joined swarms, in join order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSwarms {
    /// Swarm URLs.
    pub urls: Vec<String>,
}

/// Where each file lives.
#[derive(Debug, Clone)]
pub struct Paths {
    pub settings: PathBuf,
    pub swarms: PathBuf,
    pub meter: PathBuf,
    pub store: PathBuf,
}

impl Paths {
    pub fn new(dir: &Path) -> Self {
        Self {
            settings: dir.join("settings.json"),
            swarms: dir.join("swarms.json"),
            meter: dir.join("meter.json"),
            store: dir.join("store"),
        }
    }
}

/// Reads `path` as JSON; `None` if it does not exist or could not be read
/// (then it is moved aside and the reason logged).
pub fn load<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read state file");
            return None;
        }
    };
    let parsed = if meta.len() > MAX_STATE_FILE {
        Err(format!("larger than {MAX_STATE_FILE} bytes"))
    } else {
        std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    };
    match parsed {
        Ok(v) => Some(v),
        Err(why) => {
            let aside = path.with_extension("json.bad");
            tracing::warn!(
                path = %path.display(), error = %why, moved_to = %aside.display(),
                "state file unreadable; starting from defaults"
            );
            let _ = std::fs::rename(path, aside);
            None
        }
    }
}

/// Writes `value` to `path` atomically (temp file, fsync, rename).
pub fn save<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    write_bytes(path, &bytes)
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // The rename itself is durable only once the directory is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_a_bad_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("swarms.json");
        assert_eq!(load::<SavedSwarms>(&p), None);
        let s = SavedSwarms {
            urls: vec!["http://a/".into()],
        };
        save(&p, &s).unwrap();
        assert_eq!(load::<SavedSwarms>(&p), Some(s));
        std::fs::write(&p, b"{not json").unwrap();
        assert_eq!(load::<SavedSwarms>(&p), None);
        assert!(!p.exists());
        assert!(dir.path().join("swarms.json.bad").exists());
    }
}
