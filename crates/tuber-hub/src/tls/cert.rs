//! The certificate the hub serves, swappable at run time, and what the hub
//! reads from a certificate (validity, serial, names).

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// No `CERTIFICATE` block, or a broken one.
    #[error("certificate chain: {0}")]
    Chain(String),
    /// No private key block, or a broken one.
    #[error("private key: {0}")]
    Key(String),
    /// rustls refused the pair (unsupported key type, key not the
    /// certificate's).
    #[error("certificate and key: {0}")]
    Pair(rustls::Error),
    /// The leaf certificate is not parsable X.509.
    #[error("certificate: {0}")]
    X509(String),
}

/// What the hub needs to know of a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// DNS names of its subjectAltName extension, lowercase.
    pub names: Vec<String>,
}

impl CertInfo {
    /// Reads a DER certificate.
    pub fn parse(der: &[u8]) -> Result<Self, CertError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| CertError::X509(e.to_string()))?;
        let time = |t: x509_parser::time::ASN1Time| {
            let secs = t.timestamp();
            if secs >= 0 {
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
            } else {
                SystemTime::UNIX_EPOCH
            }
        };
        let validity = cert.validity();
        let mut names = vec![];
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                    names.push(n.to_ascii_lowercase());
                }
            }
        }
        Ok(Self {
            not_before: time(validity.not_before),
            not_after: time(validity.not_after),
            serial: hex::encode(cert.raw_serial()),
            names,
        })
    }

    /// Whether the certificate names every one of `domains`.
    pub fn covers(&self, domains: &[String]) -> bool {
        domains
            .iter()
            .all(|d| self.names.iter().any(|n| n.eq_ignore_ascii_case(d)))
    }

    /// When to renew: `renew_before` ahead of expiry (at most half the
    /// lifetime, so a short-lived certificate is not renewed over and over),
    /// or by default when a third of the lifetime is left.
    pub fn renew_at(&self, renew_before: Option<Duration>) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        let before = renew_before.map_or(lifetime / 3, |b| b.min(lifetime / 2));
        self.not_after
            .checked_sub(before)
            .unwrap_or(self.not_before)
    }
}

/// A certificate chain with its key, ready to serve.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// What the leaf says.
    pub info: CertInfo,
}

/// Parses a PEM chain (leaf first) and its PEM private key, and checks
/// that the key is the leaf's.
pub fn load_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, CertError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Chain(e.to_string()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| CertError::Chain("no PEM certificate in it".into()))?;
    let info = CertInfo::parse(leaf)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| CertError::Key(e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider).map_err(CertError::Pair)?;
    Ok(Loaded {
        key: Arc::new(key),
        info,
    })
}

/// The server's certificate resolver: every handshake gets the current
/// certificate; [`CertResolver::set`] swaps it for handshakes to come,
/// leaving established connections alone. None until the first
/// certificate (handshakes then fail).
#[derive(Debug, Default)]
pub struct CertResolver {
    current: RwLock<Option<Loaded>>,
}

impl CertResolver {
    /// Serves `loaded` from now on.
    pub fn set(&self, loaded: Loaded) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(loaded);
    }

    /// What is served now, if anything.
    pub fn current(&self) -> Option<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|l| Arc::clone(&l.key))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate for `names`, as PEM (chain, key).
    pub(crate) fn self_signed(names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        let c = rcgen::generate_simple_self_signed(names).expect("rcgen");
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn the_resolver_serves_the_latest_certificate() {
        let resolver = CertResolver::default();
        assert!(resolver.current().is_none());
        let (c1, k1) = self_signed(&["a.example"]);
        let (c2, k2) = self_signed(&["a.example", "b.example"]);
        let first = load_pem(c1.as_bytes(), k1.as_bytes()).expect("first");
        let second = load_pem(c2.as_bytes(), k2.as_bytes()).expect("second");
        assert_ne!(first.info.serial, second.info.serial);
        resolver.set(first.clone());
        assert!(Arc::ptr_eq(
            &resolver.current().expect("set").key,
            &first.key
        ));
        resolver.set(second.clone());
        let now = resolver.current().expect("set");
        assert!(Arc::ptr_eq(&now.key, &second.key));
        assert!(now.info.covers(&["b.example".into(), "A.example".into()]));
        assert!(!first.info.covers(&["b.example".into()]));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (c1, _) = self_signed(&["a.example"]);
        let (_, k2) = self_signed(&["a.example"]);
        let err = load_pem(c1.as_bytes(), k2.as_bytes()).expect_err("mismatch");
        assert!(matches!(err, CertError::Pair(_)), "{err}");
        assert!(load_pem(b"", k2.as_bytes()).is_err());
        assert!(load_pem(c1.as_bytes(), b"junk").is_err());
    }

    #[test]
    fn renewal_is_due_with_a_third_of_the_lifetime_left_by_default() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let info = CertInfo {
            not_before: t0,
            not_after: t0 + Duration::from_secs(90),
            serial: "01".into(),
            names: vec![],
        };
        assert_eq!(info.renew_at(None), t0 + Duration::from_secs(60));
        assert_eq!(
            info.renew_at(Some(Duration::from_secs(30))),
            t0 + Duration::from_secs(60)
        );
        assert_eq!(
            info.renew_at(Some(Duration::from_secs(900))),
            t0 + Duration::from_secs(45)
        );
    }
}
