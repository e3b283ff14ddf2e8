//! Automatic certificates over ACME (RFC 8555) with HTTP-01 challenges,
//! through `instant-acme`. The account lives in `<data_dir>/acme/account.json`
//! and the certificate in `<data_dir>/acme/<first domain>/{cert.pem,key.pem}`,
//! all written atomically, the secrets with mode 0600.
//!
//! At start a stored certificate that covers the domains and is not yet
//! due for renewal is served at once; otherwise one is ordered (the hub
//! serves meanwhile, but handshakes fail until it arrives). One task then
//! sleeps until the renewal time, orders, swaps the served certificate
//! (connections already open are not touched) and sleeps again. A failure
//! is logged in words and retried after 30 s, 1 min, 2 min … at most 1 h
//! apart, for as long as it takes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, ChallengeType, Identifier,
    NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::cert::{load_pem, CertInfo, CertResolver, Loaded};
use super::http::Challenges;
use crate::config::AcmeConfig;
use crate::upstream_client::{self, UpstreamTls, DEFAULT_CONNECT_TIMEOUT};

/// One whole order (account, challenges, finalization, download) at most.
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);
/// Waiting for the CA to validate, or to issue.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(120));
const FIRST_RETRY: Duration = Duration::from_secs(30);
const MAX_RETRY: Duration = Duration::from_secs(3600);

/// Why ACME could not be set up or an order failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// From the ACME client or the CA.
    #[error("{0}")]
    Acme(String),
    /// A file in the data directory.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn acme_err(e: impl std::error::Error + 'static) -> AcmeError {
    AcmeError::Acme(upstream_client::error_chain(&e))
}

/// `account.json`: the credentials and the directory they belong to.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// The certificate manager of one `[tls.acme]` section.
pub struct Acme {
    config: AcmeConfig,
    dir: PathBuf,
    resolver: Arc<CertResolver>,
    challenges: Challenges,
    tls: UpstreamTls,
    account: Option<Account>,
}

impl Acme {
    /// Prepares the manager (reads the CA file; blocking) for `data_dir`.
    pub fn new(
        config: AcmeConfig,
        data_dir: &Path,
        resolver: Arc<CertResolver>,
        challenges: Challenges,
    ) -> Result<Self, AcmeError> {
        let tls = UpstreamTls::load(config.directory_ca_file.as_deref())
            .map_err(|e| AcmeError::Acme(format!("tls.acme.directory_ca_file: {e}")))?;
        Ok(Self {
            config,
            dir: data_dir.join("acme"),
            resolver,
            challenges,
            tls,
            account: None,
        })
    }

    fn cert_dir(&self) -> PathBuf {
        // Domains are checked DNS names, so this is one plain path component.
        self.dir.join(
            self.config
                .domains
                .first()
                .map_or("default", String::as_str),
        )
    }

    /// Serves the stored certificate if it is still good; returns it.
    pub fn load_stored(&self) -> Option<CertInfo> {
        let dir = self.cert_dir();
        let chain = std::fs::read(dir.join("cert.pem")).ok()?;
        let key = std::fs::read(dir.join("key.pem")).ok()?;
        let loaded = match load_pem(&chain, &key) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(
                    "the stored certificate in {} is unusable ({e}); ordering a new one",
                    dir.display()
                );
                return None;
            }
        };
        let info = loaded.info.clone();
        if !info.covers(&self.config.domains) {
            tracing::info!(
                "the stored certificate names {:?}, not all of {:?}; ordering a new one",
                info.names,
                self.config.domains
            );
            return None;
        }
        if info.renew_at(self.config.renew_before) <= SystemTime::now() {
            tracing::info!("the stored certificate is due for renewal; ordering a new one");
            return None;
        }
        log_serving(&loaded, "stored");
        self.resolver.set(loaded);
        Some(info)
    }

    /// Runs until `cancel`: orders when there is no good certificate,
    /// then renews each one in time.
    pub async fn run(mut self, mut current: Option<CertInfo>, cancel: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let due = match &current {
                Some(i) if failures == 0 => i.renew_at(self.config.renew_before),
                // No certificate yet, or retrying after a failure: now.
                _ => SystemTime::now(),
            };
            if !sleep_until(due, &cancel).await {
                return;
            }
            let started = Instant::now();
            let result = tokio::select! {
                () = cancel.cancelled() => return,
                r = tokio::time::timeout(ORDER_TIMEOUT, self.order()) => r
                    .unwrap_or_else(|_| Err(AcmeError::Acme(format!("no certificate within {ORDER_TIMEOUT:?}")))),
            };
            match result {
                Ok(loaded) => {
                    failures = 0;
                    let what = if current.is_some() {
                        "renewed"
                    } else {
                        "issued"
                    };
                    let info = loaded.info.clone();
                    tracing::info!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "certificate {what} for {:?} in {:.1} s by {}; renewing at {}",
                        self.config.domains,
                        started.elapsed().as_secs_f64(),
                        self.config.directory,
                        humantime::format_rfc3339_seconds(info.renew_at(self.config.renew_before)),
                    );
                    log_serving(&loaded, what);
                    self.resolver.set(loaded);
                    current = Some(info);
                }
                Err(e) => {
                    failures += 1;
                    // The account may be the problem (deactivated, another CA).
                    self.account = None;
                    let wait = FIRST_RETRY
                        .saturating_mul(1 << (failures - 1).min(7))
                        .min(MAX_RETRY);
                    let served = match &current {
                        Some(i) => format!(
                            "the certificate in service expires at {}",
                            humantime::format_rfc3339_seconds(i.not_after)
                        ),
                        None => "HTTPS has no certificate until then".into(),
                    };
                    tracing::warn!(
                        "could not get a certificate for {:?} from {} (attempt {failures}): {e}; \
                         {served}; trying again in {}",
                        self.config.domains,
                        self.config.directory,
                        humantime::format_duration(wait),
                    );
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn account(&mut self) -> Result<Account, AcmeError> {
        if let Some(a) = &self.account {
            return Ok(a.clone());
        }
        let path = self.dir.join("account.json");
        let builder = || {
            let http =
                upstream_client::client::<BodyWrapper<Bytes>>(&self.tls, DEFAULT_CONNECT_TIMEOUT);
            Account::builder_with_http(Box::new(http))
        };
        let stored = tokio::fs::read(&path)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<StoredAccount>(&b).ok())
            .filter(|s| s.directory == self.config.directory);
        let account = match stored {
            Some(s) => builder()
                .from_credentials(s.credentials)
                .await
                .map_err(acme_err)?,
            None => {
                let contact: Vec<&str> = self.config.contact.iter().map(String::as_str).collect();
                let (account, credentials) = builder()
                    .create(
                        &NewAccount {
                            contact: &contact,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        self.config.directory.clone(),
                        None,
                    )
                    .await
                    .map_err(acme_err)?;
                let text = serde_json::to_vec_pretty(&StoredAccount {
                    directory: self.config.directory.clone(),
                    credentials,
                })
                .map_err(acme_err)?;
                write_atomic(&path, &text, 0o600).await?;
                tracing::info!(
                    id = account.id(),
                    "ACME account created at {}",
                    self.config.directory
                );
                account
            }
        };
        self.account = Some(account.clone());
        Ok(account)
    }

    /// One order, start to finish; stores and returns the certificate.
    async fn order(&mut self) -> Result<Loaded, AcmeError> {
        let account = self.account().await?;
        let ids: Vec<Identifier> = self
            .config
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&ids))
            .await
            .map_err(acme_err)?;
        let mut published = Published(self.challenges.clone(), vec![]);
        {
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz = authz.map_err(acme_err)?;
                match authz.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => {
                        return Err(AcmeError::Acme(format!(
                            "the CA says the authorization for {} is {other:?}",
                            authz.identifier()
                        )))
                    }
                }
                let mut challenge = authz
                    .challenge(ChallengeType::Http01)
                    .ok_or_else(|| AcmeError::Acme("the CA offers no HTTP-01 challenge".into()))?;
                let token = challenge.token.clone();
                let answer = challenge.key_authorization().as_str().to_string();
                if !self.challenges.insert(&token, answer) {
                    return Err(AcmeError::Acme(format!(
                        "the CA's challenge token {token:?} is malformed, or too many are pending"
                    )));
                }
                published.1.push(token);
                challenge.set_ready().await.map_err(acme_err)?;
            }
        }
        let status = order.poll_ready(&POLL).await.map_err(acme_err)?;
        if status != OrderStatus::Ready {
            let mut why = vec![];
            let mut authorizations = order.authorizations();
            while let Some(Ok(mut authz)) = authorizations.next().await {
                if let Ok(state) = authz.refresh().await {
                    why.extend(
                        state
                            .challenges
                            .iter()
                            .filter_map(|c| c.error.as_ref())
                            .map(|p| p.to_string()),
                    );
                }
            }
            return Err(AcmeError::Acme(format!(
                "the order is {status:?}: {}",
                if why.is_empty() {
                    "no reason given".into()
                } else {
                    why.join("; ")
                }
            )));
        }
        drop(published);
        let key_pem = order.finalize().await.map_err(acme_err)?;
        let chain_pem = order.poll_certificate(&POLL).await.map_err(acme_err)?;
        let loaded = load_pem(chain_pem.as_bytes(), key_pem.as_bytes())
            .map_err(|e| AcmeError::Acme(format!("the CA's certificate: {e}")))?;
        let dir = self.cert_dir();
        write_atomic(&dir.join("key.pem"), key_pem.as_bytes(), 0o600).await?;
        write_atomic(&dir.join("cert.pem"), chain_pem.as_bytes(), 0o644).await?;
        Ok(loaded)
    }
}

/// Withdraws the published tokens however the order ends.
struct Published(Challenges, Vec<String>);

impl Drop for Published {
    fn drop(&mut self) {
        for t in &self.1 {
            self.0.remove(t);
        }
    }
}

fn log_serving(l: &Loaded, what: &str) {
    tracing::info!(
        serial = %l.info.serial,
        "serving the {what} certificate for {:?}, valid until {}",
        l.info.names,
        humantime::format_rfc3339_seconds(l.info.not_after)
    );
}

/// Sleeps until the wall-clock time `at` (re-checked at least hourly, so a
/// suspended machine or a changed clock is noticed); false when cancelled.
async fn sleep_until(at: SystemTime, cancel: &CancellationToken) -> bool {
    loop {
        let Ok(left) = at.duration_since(SystemTime::now()) else {
            return true;
        };
        if left.is_zero() {
            return true;
        }
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(left.min(Duration::from_secs(3600))) => {}
        }
    }
}

/// Writes `path` through a temporary file and a rename, with `mode`
/// (directories are made 0700).
async fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AcmeError> {
    let (path, bytes) = (path.to_owned(), bytes.to_vec());
    let p = path.clone();
    tokio::task::spawn_blocking(move || write_atomic_blocking(&p, &bytes, mode))
        .await
        .map_err(|e| AcmeError::Acme(e.to_string()))?
        .map_err(|source| AcmeError::Io { path, source })
}

fn write_atomic_blocking(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let tmp = path.with_extension("tmp");
    // A stale temporary file would keep its old mode.
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_keep_secrets_private() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("acme/a.example/key.pem");
        write_atomic_blocking(&path, b"one", 0o600).expect("write");
        write_atomic_blocking(&path, b"two", 0o600).expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!path.with_extension("tmp").exists());
    }
}
