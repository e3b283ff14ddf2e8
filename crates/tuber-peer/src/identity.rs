//! The installation's identity: one ed25519 key, whose public half is the
//! peer id (protocol §2) and whose secret half signs the `hello` challenge
//! (§5.3).
//!
//! The key lives in one file, `identity.key`, in a directory the caller
//! chooses ([`default_config_dir`] is the OS's config dir). The file is
//! 80 bytes: a 16-byte magic, the 32-byte secret, and the 32-byte public key.
//! The public key is redundant on purpose: a flipped bit in the secret shows
//! up as a mismatch, so a damaged file is refused instead of silently
//! becoming another identity (which would lose the peer's trust at every hub).
//!
//! The secret never leaves this module except as signatures: [`Identity`]'s
//! `Debug` prints the peer id only, and buffers that held secret bytes are
//! wiped.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use tuber_proto::signal::{hello_signing_payload, Signature, TrustProof};
use tuber_proto::{Nonce, PeerId};
use zeroize::Zeroizing;

/// Name of the key file inside the identity directory.
pub const KEY_FILE: &str = "identity.key";

/// First bytes of the key file: names the format and its version.
const MAGIC: &[u8; 16] = b"tuber-peer-key1\n";
/// Magic, secret, public key.
const FILE_LEN: usize = 16 + 32 + 32;

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading, writing or renaming the key file failed.
    #[error("identity key file {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The key file exists but is not a valid key. It is left untouched:
    /// replacing it would silently change this installation's identity.
    #[error("identity key file {path} is corrupt ({why}); move it away to create a new identity")]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The OS random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// This installation's ed25519 key. Cheap to share behind an `Arc`.
pub struct Identity {
    key: SigningKey,
    peer_id: PeerId,
}

impl std::fmt::Debug for Identity {
    // The peer id only: the secret must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

/// The OS config directory for this app (`~/.config/tuber-peer` on Linux),
/// or None when the OS names no home directory.
pub fn default_config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "tuber", "tuber-peer").map(|p| p.config_dir().into())
}

impl Identity {
    /// Loads the key from `dir`, or creates one there if there is none.
    /// A key file that exists but does not parse is an error, never replaced.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        let path = dir.join(KEY_FILE);
        match File::open(&path) {
            Ok(file) => Self::read(file, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(dir, &path),
            Err(source) => Err(IdentityError::Io { path, source }),
        }
    }

    /// The peer id: the ed25519 public key.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Signs a hub's challenge for `swarm_id` at `origin`, the origin the
    /// user joined (protocol §5.3): a proof is good for that hub only.
    pub fn sign_hello(&self, origin: &str, swarm_id: &str, nonce: &Nonce) -> TrustProof {
        let signature = self
            .key
            .sign(&hello_signing_payload(origin, swarm_id, nonce));
        TrustProof {
            public_key: self.peer_id,
            origin: origin.to_string(),
            signature: Signature(signature.to_bytes()),
        }
    }

    fn from_secret(secret: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(secret);
        let peer_id = PeerId::from_bytes(key.verifying_key().to_bytes());
        Self { key, peer_id }
    }

    fn read(file: File, path: &Path) -> Result<Self, IdentityError> {
        let corrupt = |why| IdentityError::Corrupt {
            path: path.to_path_buf(),
            why,
        };
        let mut bytes = Zeroizing::new(Vec::with_capacity(FILE_LEN + 1));
        // One byte more than a key file, so a longer file is seen as such
        // without reading an arbitrarily large one.
        file.take(FILE_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| IdentityError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if bytes.len() != FILE_LEN {
            return Err(corrupt("wrong length"));
        }
        if &bytes[..16] != MAGIC {
            return Err(corrupt("not a tuber-peer key"));
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&bytes[16..48]);
        let identity = Self::from_secret(&secret);
        if identity.peer_id.as_bytes()[..] != bytes[48..] {
            return Err(corrupt("the secret does not match the public key"));
        }
        tighten_permissions(path)?;
        Ok(identity)
    }

    fn create(dir: &Path, path: &Path) -> Result<Self, IdentityError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut secret[..]).map_err(IdentityError::Random)?;
        let identity = Self::from_secret(&secret);
        let mut bytes = Zeroizing::new(Vec::with_capacity(FILE_LEN));
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&secret[..]);
        bytes.extend_from_slice(identity.peer_id.as_bytes());
        write_atomically(dir, path, &bytes)?;
        tracing::info!(peer_id = %identity.peer_id, "created a new identity");
        Ok(identity)
    }
}

/// Writes `bytes` to `path` so that a crash leaves either no file or the
/// whole file: a private temporary file beside it, synced, then renamed.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IdentityError::Io { path, source }
    };
    create_private_dir(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".{KEY_FILE}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = private_options().open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    // The rename is durable only once the directory entry is.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn private_options() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true).mode(0o600);
    o
}

#[cfg(not(unix))]
fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    o
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// A key file others can read (restored from a backup, copied by hand) is
/// made private again rather than refused: the key is still this peer's.
#[cfg(unix)]
fn tighten_permissions(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mode = fs::metadata(path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "identity key file was readable by others; made it private");
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten_permissions(_path: &Path) -> Result<(), IdentityError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::VerifyingKey;

    #[test]
    fn the_key_persists_across_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.peer_id(), b.peer_id());
        let other = tempfile::tempdir().unwrap();
        let c = Identity::load_or_create(other.path()).unwrap();
        assert_ne!(
            a.peer_id(),
            c.peer_id(),
            "each installation has its own key"
        );
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(KEY_FILE)]);
    }

    #[test]
    fn a_missing_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let a = Identity::load_or_create(&nested).unwrap();
        assert_eq!(
            Identity::load_or_create(&nested).unwrap().peer_id(),
            a.peer_id()
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "tightened on load");
    }

    #[test]
    fn a_corrupt_key_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        let good = fs::read(&path).unwrap();

        let mut flipped = good.clone();
        flipped[20] ^= 1;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..40].to_vec(), "wrong length"),
            (Vec::new(), "wrong length"),
            ([good.clone(), vec![0]].concat(), "wrong length"),
            (
                [b"x".repeat(16), good[16..].to_vec()].concat(),
                "not a tuber-peer key",
            ),
            (flipped, "does not match"),
        ];
        for (bytes, expected) in cases {
            fs::write(&path, &bytes).unwrap();
            let err = Identity::load_or_create(dir.path()).unwrap_err();
            assert!(matches!(err, IdentityError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
            assert_eq!(fs::read(&path).unwrap(), bytes, "never replaced");
        }
    }

    #[test]
    fn the_hello_signature_verifies_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap();
        let nonce = Nonce::from_bytes([7u8; 32]);
        let origin = "https://video.example.org";
        let proof = id.sign_hello(origin, "video.example.org", &nonce);
        assert_eq!(proof.public_key, id.peer_id());
        assert_eq!(proof.origin, origin);
        let key = VerifyingKey::from_bytes(proof.public_key.as_bytes()).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&proof.signature.0);
        let payload = hello_signing_payload(origin, "video.example.org", &nonce);
        assert!(key.verify_strict(&payload, &sig).is_ok());
        // Bound to the swarm: the same proof fails for another one.
        let other = hello_signing_payload(origin, "other.example.org", &nonce);
        assert!(key.verify_strict(&other, &sig).is_err());
        // And to the hub: it fails for the same swarm id at another origin.
        let relayed = hello_signing_payload("https://evil.example", "video.example.org", &nonce);
        assert!(key.verify_strict(&relayed, &sig).is_err());
    }

    #[test]
    fn debug_shows_the_peer_id_only() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap();
        let bytes = fs::read(dir.path().join(KEY_FILE)).unwrap();
        let secret_hex = hex_of(&bytes[16..48]);
        let shown = format!("{id:?}");
        assert!(shown.contains("peer_id"), "{shown}");
        assert!(!shown.contains(&secret_hex[..12]), "{shown}");
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
