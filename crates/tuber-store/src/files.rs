//! Piece bytes as content-addressed files beside the database.
//!
//! ```text
//! <root>/pieces/<h0h1>/<64 hex digits>   one file per piece, named by its hash
//! <root>/pieces/tmp/                       writes in flight
//! ```
//!
//! A piece is written to `tmp/` in full, then renamed into place, and only
//! then does the sled transaction that records it commit. So whatever the
//! moment of a kill, a file under its final name is complete, and a piece
//! the database knows has its file. The opposite orphan (a file the
//! database does not know, because its transaction was lost or its removal
//! committed and the unlink had not happened yet) is debris, deleted by the
//! sweep at open and by scrub.
//!
//! Nothing here calls fsync unless [`crate::Config::sync_pieces`] asks for
//! it: a kill -9 cannot lose data the kernel already has, and after a power
//! cut a piece whose bytes had not reached the disk fails verification on
//! its next read or scrub, is deleted and counted as corrupt, and is fetched
//! again, as with any other damaged piece.
//!
//! Sizes on disk: every file occupies whole filesystem blocks, so the store
//! charges each piece [`PieceFiles::footprint`] (its size rounded up to the
//! block measured at open) against the budget.

use std::fs;
use std::io::{self, Read as _, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tracing::warn;
use tuber_proto::PieceHash;

use crate::MAX_PIECE_BYTES;

pub(crate) const PIECES_DIR: &str = "pieces";
const TMP_DIR: &str = "tmp";
const PROBE: &str = ".probe";
/// Largest allocation unit believed; a bigger probe result is an odd
/// filesystem whose figure would starve the budget.
const MAX_BLOCK: u64 = 1 << 20;

/// The piece files of one store.
#[derive(Debug)]
pub(crate) struct PieceFiles {
    dir: PathBuf,
    /// Allocation unit charged per piece: what one byte costs on disk.
    block: u64,
    sync: bool,
}

/// What reading a piece file found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    Bytes(Vec<u8>),
    Missing,
    /// Truncated, or grown by damage.
    WrongLength,
}

/// What a sweep found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sweep {
    /// Piece files the database does not know, deleted.
    pub(crate) orphans: u64,
    /// Leftovers of interrupted writes and names that are not pieces, deleted.
    pub(crate) debris: u64,
}

fn hex(hash: &PieceHash) -> String {
    hash.to_hex()
}

/// A file name back to a hash: only the canonical lowercase spelling.
fn parse_hex(name: &str) -> Option<PieceHash> {
    PieceHash::from_hex(name).ok()
}

impl PieceFiles {
    /// Opens (creating) `<root>/pieces`, clears `tmp/`, and measures the
    /// allocation unit unless `block` fixes it.
    pub(crate) fn open(root: &Path, block: Option<u64>, sync: bool) -> io::Result<Self> {
        let dir = root.join(PIECES_DIR);
        fs::create_dir_all(dir.join(TMP_DIR))?;
        // All 256 fan-out directories up front, so a put never has to ask.
        for b in 0..=255u8 {
            let sub = dir.join(format!("{b:02x}"));
            match fs::create_dir(&sub) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        let tmp = dir.join(TMP_DIR);
        for entry in fs::read_dir(&tmp)?.flatten() {
            remove_quietly(&entry.path());
        }
        let block = match block {
            Some(b) => b.max(1),
            None => probe_block(&tmp)?,
        };
        Ok(Self { dir, block, sync })
    }

    pub(crate) fn block(&self) -> u64 {
        self.block
    }

    /// What a piece of `size` bytes occupies on disk.
    pub(crate) fn footprint(&self, size: u64) -> u64 {
        size.div_ceil(self.block).saturating_mul(self.block)
    }

    pub(crate) fn path(&self, hash: &PieceHash) -> PathBuf {
        let name = hex(hash);
        self.dir.join(&name[..2]).join(name)
    }

    /// Writes a piece under its final name, complete or not at all.
    pub(crate) fn write(&self, hash: &PieceHash, bytes: &[u8]) -> io::Result<()> {
        self.write_with(hash, bytes, self.sync)
    }

    /// [`PieceFiles::write`], fsynced whatever the configuration says.
    pub(crate) fn write_synced(&self, hash: &PieceHash, bytes: &[u8]) -> io::Result<()> {
        self.write_with(hash, bytes, true)
    }

    fn write_with(&self, hash: &PieceHash, bytes: &[u8], sync: bool) -> io::Result<()> {
        let tmp = self.dir.join(TMP_DIR).join(hex(hash));
        let written = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            if sync {
                f.sync_data()?;
            }
            fs::rename(&tmp, self.path(hash))
        })();
        if written.is_err() {
            remove_quietly(&tmp);
        }
        written
    }

    /// A piece's file, if it holds exactly `size` bytes. Never reads more
    /// than `size` bytes of a hostile file.
    pub(crate) fn read(&self, hash: &PieceHash, size: u64) -> io::Result<Read> {
        read_file(&self.path(hash), size)
    }

    /// The length of a piece's file, if it has one.
    pub(crate) fn len(&self, hash: &PieceHash) -> io::Result<Option<u64>> {
        match fs::metadata(self.path(hash)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a piece's file; a missing one is not an error.
    pub(crate) fn remove(&self, hash: &PieceHash) -> io::Result<()> {
        match fs::remove_file(self.path(hash)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Deletes every piece file for which `known` says no, and anything in
    /// the piece directories that is not a piece file. Bounded by the
    /// directory contents; an unreadable entry is logged and left.
    pub(crate) fn sweep(&self, mut known: impl FnMut(&PieceHash) -> bool) -> io::Result<Sweep> {
        let mut sweep = Sweep::default();
        for b in 0..=255u8 {
            let prefix = format!("{b:02x}");
            for entry in fs::read_dir(self.dir.join(&prefix))? {
                let entry = entry?;
                let name = entry.file_name();
                match name.to_str().and_then(parse_hex) {
                    Some(hash) if name.to_str().is_some_and(|n| n.starts_with(&prefix)) => {
                        if !known(&hash) {
                            remove_quietly(&entry.path());
                            sweep.orphans += 1;
                        }
                    }
                    _ => {
                        remove_quietly(&entry.path());
                        sweep.debris += 1;
                    }
                }
            }
        }
        Ok(sweep)
    }
}

impl PieceFiles {
    /// What the piece directories themselves occupy (entries, not files):
    /// 258 stats.
    pub(crate) fn dirs_disk_bytes(&self) -> u64 {
        let own = |p: &Path| {
            fs::symlink_metadata(p)
                .map(|m| m.blocks().saturating_mul(512))
                .unwrap_or(0)
        };
        let mut sum = own(&self.dir) + own(&self.dir.join(TMP_DIR));
        for b in 0..=255u8 {
            sum += own(&self.dir.join(format!("{b:02x}")));
        }
        sum
    }
}

/// The file at `path`, if it holds exactly `size` bytes.
fn read_file(path: &Path, size: u64) -> io::Result<Read> {
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Read::Missing),
        Err(e) => return Err(e),
    };
    if size > MAX_PIECE_BYTES || f.metadata()?.len() != size {
        return Ok(Read::WrongLength);
    }
    // Bounded by the size check above. One `read_exact` of the known
    // length, not `read_to_end`: through `Take` that reads in 8 KiB steps
    // and probes for the end, three reads for a 16 KiB piece where one does
    // (by perf, the file read took 40 % more than `fs::read`'s). A file
    // that grew after the length check yields its first `size` bytes,
    // which the hash judges.
    let mut out = vec![0; usize::try_from(size).unwrap_or(0)];
    match f.read_exact(&mut out) {
        Ok(()) => Ok(Read::Bytes(out)),
        // Shrunk under us: as damaged as a wrong length.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Read::WrongLength),
        Err(e) => Err(e),
    }
}

/// A piece's bytes read from `path` outside the store thread, if they are
/// exactly `size` bytes that hash to `hash`; `None` for anything else
/// (missing, damaged, or deleted by an eviction meanwhile), which the caller
/// takes back to the store thread to sort out.
pub(crate) fn read_verified(path: &Path, size: u64, hash: &PieceHash) -> Option<Vec<u8>> {
    match read_file(path, size) {
        Ok(Read::Bytes(bytes)) if hash.verifies(&bytes) => Some(bytes),
        _ => None,
    }
}

fn remove_quietly(path: &Path) {
    let removed = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    if let Err(e) = removed {
        if e.kind() != io::ErrorKind::NotFound {
            warn!(path = %path.display(), error = %e, "cannot remove a stray file");
        }
    }
}

/// The allocation unit of the filesystem under `dir`: what a one-byte file
/// occupies. Filesystems that store tiny files inline report 0; their
/// `st_blksize` is used instead.
fn probe_block(dir: &Path) -> io::Result<u64> {
    let path = dir.join(PROBE);
    fs::write(&path, b"x")?;
    let meta = fs::metadata(&path);
    remove_quietly(&path);
    let meta = meta?;
    let allocated = meta.blocks().saturating_mul(512);
    let block = if allocated > 0 {
        allocated
    } else {
        meta.blksize()
    };
    Ok(block.clamp(1, MAX_BLOCK))
}

/// What `du` would report for `path`: allocated bytes of every file and
/// directory under it, hard links counted once per visit. Bounded by the
/// tree; unreadable entries count as zero.
pub fn du(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks().saturating_mul(512);
    if !meta.is_dir() {
        return own;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return own;
    };
    entries
        .flatten()
        .map(|e| du(&e.path()))
        .fold(own, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_junk_does_not_parse() {
        let h = PieceHash::of(b"abc");
        assert_eq!(parse_hex(&hex(&h)), Some(h));
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(&"g".repeat(64)), None);
        assert_eq!(parse_hex(&format!("{}.tmp", &hex(&h)[..60])), None);
    }

    #[test]
    fn footprint_rounds_up_to_the_block() {
        let dir = tempfile::tempdir().unwrap();
        let f = PieceFiles::open(dir.path(), Some(4096), false).unwrap();
        assert_eq!(f.footprint(0), 0);
        assert_eq!(f.footprint(1), 4096);
        assert_eq!(f.footprint(16384), 16384);
        assert_eq!(f.footprint(16385), 20480);
        let measured = PieceFiles::open(dir.path(), None, false).unwrap();
        assert!(measured.block() >= 512, "{}", measured.block());
    }

    #[test]
    fn a_file_of_the_wrong_length_reads_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let f = PieceFiles::open(dir.path(), None, false).unwrap();
        let h = PieceHash::of(b"hello");
        f.write(&h, b"hello").unwrap();
        assert_eq!(f.read(&h, 5).unwrap(), Read::Bytes(b"hello".to_vec()));
        assert_eq!(f.read(&h, 4).unwrap(), Read::WrongLength);
        assert_eq!(f.read(&h, 6).unwrap(), Read::WrongLength);
        f.remove(&h).unwrap();
        assert_eq!(f.read(&h, 5).unwrap(), Read::Missing);
        f.remove(&h).unwrap();
    }
}
