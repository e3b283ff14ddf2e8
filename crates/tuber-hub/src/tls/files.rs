//! Files mode: the certificate chain and key come from two PEM files that
//! something else renews (certbot, say). Their modification times and
//! sizes are checked every `reload_interval`; a change is loaded and
//! served from the next handshake on. A pair that does not load (the
//! chain already replaced, the key not yet) is logged and retried at the
//! next check, and the previous certificate stays in service meanwhile.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::cert::{load_pem, CertResolver, Loaded};

/// Why the files could not be served.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The contents are not a usable pair.
    #[error("{cert} and {key}: {source}")]
    Pair {
        /// The chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What is wrong.
        source: super::cert::CertError,
    },
}

/// What identifies a version of the two files.
type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    [cert, key].map(|p| match std::fs::metadata(p) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    })
}

/// Reads and checks the pair (blocking).
pub fn load_files(cert: &Path, key: &Path) -> Result<Loaded, FilesError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| FilesError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let (chain, key_pem) = (read(cert)?, read(key)?);
    load_pem(&chain, &key_pem).map_err(|source| FilesError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })
}

/// Loads the pair into `resolver` now (an error stops the hub from
/// starting) and returns the task that reloads it when the files change.
pub async fn start(
    cert: PathBuf,
    key: PathBuf,
    interval: Duration,
    resolver: Arc<CertResolver>,
    cancel: CancellationToken,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static, FilesError> {
    let (first, mut last) = {
        let (c, k) = (cert.clone(), key.clone());
        tokio::task::spawn_blocking(move || {
            let s = stamp(&c, &k);
            load_files(&c, &k).map(|l| (l, s))
        })
        .await
        .map_err(|e| FilesError::Read {
            path: cert.clone(),
            source: std::io::Error::other(e.to_string()),
        })??
    };
    log_loaded(&first, &cert);
    resolver.set(first);
    Ok(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let (c, k) = (cert.clone(), key.clone());
            let checked = tokio::task::spawn_blocking(move || {
                let now = stamp(&c, &k);
                if now == last {
                    return (last, None);
                }
                (now, Some(load_files(&c, &k)))
            })
            .await;
            let Ok((now, loaded)) = checked else { continue };
            match loaded {
                None => {}
                Some(Ok(l)) => {
                    last = now;
                    log_loaded(&l, &cert);
                    resolver.set(l);
                }
                Some(Err(e)) => tracing::warn!(
                    "the TLS certificate files changed but cannot be used yet ({e}); \
                     still serving the previous certificate, checking again in {interval:?}"
                ),
            }
        }
    })
}

fn log_loaded(l: &Loaded, path: &Path) {
    let until = humantime::format_rfc3339_seconds(l.info.not_after);
    tracing::info!(
        file = %path.display(),
        serial = %l.info.serial,
        "serving the TLS certificate for {:?}, valid until {until}",
        l.info.names
    );
}
