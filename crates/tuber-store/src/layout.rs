//! The store directory: which sled database inside it is live.
//!
//! ```text
//! <root>/CURRENT   "db.<n>": the live database
//! <root>/db.<n>/   a sled database
//! ```
//!
//! A rebuild (see `repair`) writes a complete new `db.<n+1>`, then switches
//! `CURRENT` by an atomic rename, then deletes the old directory. Whatever
//! the moment of a crash, `CURRENT` names a complete database, and any other
//! `db.*` directory is debris to delete at the next open.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::warn;

const CURRENT: &str = "CURRENT";
const CURRENT_TMP: &str = "CURRENT.tmp";
const DB_PREFIX: &str = "db.";

/// The directory of database `generation`.
pub(crate) fn db_dir(root: &Path, generation: u64) -> PathBuf {
    root.join(format!("{DB_PREFIX}{generation}"))
}

/// The live generation; `None` for a new store.
pub(crate) fn read_current(root: &Path) -> io::Result<Option<u64>> {
    let text = match fs::read_to_string(root.join(CURRENT)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    text.trim()
        .strip_prefix(DB_PREFIX)
        .and_then(|n| n.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{CURRENT} holds {text:?}"),
            )
        })
}

/// Makes `generation` the live database, durably.
pub(crate) fn write_current(root: &Path, generation: u64) -> io::Result<()> {
    let tmp = root.join(CURRENT_TMP);
    let mut f = fs::File::create(&tmp)?;
    writeln!(f, "{DB_PREFIX}{generation}")?;
    f.sync_all()?;
    fs::rename(&tmp, root.join(CURRENT))?;
    // The rename is durable only once the directory is.
    fs::File::open(root)?.sync_all()
}

/// Deletes every database directory but the live one.
pub(crate) fn remove_stale(root: &Path, live: u64) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let live = format!("{DB_PREFIX}{live}");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(DB_PREFIX) && name != live {
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                warn!(dir = %entry.path().display(), error = %e, "cannot remove a stale database");
            }
        }
    }
}
