//! The CLI's TLS to its own running hub (`tuber-hub invite create` while the
//! hub holds the database): the hub is reached on loopback, where its
//! certificate (issued for the public name) cannot match the address, so the
//! CLI instead trusts exactly the certificate the hub serves, read from the
//! files the hub serves it from: `tls.cert`, or the ACME certificate in the
//! data dir. Anything else presenting itself on that port is refused, and
//! the admin token is not sent to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::config::TlsConfig;

/// The file holding the certificate a hub with `tls` in `data_dir` serves.
pub fn served_cert_file(tls: &TlsConfig, data_dir: &Path) -> Option<PathBuf> {
    if let Some(cert) = &tls.cert {
        return Some(cert.clone());
    }
    let domain = tls.acme.as_ref()?.domains.first()?;
    Some(data_dir.join("acme").join(domain).join("cert.pem"))
}

/// A client configuration that accepts only the leaf certificate in
/// `cert_file`.
pub fn client_config(cert_file: &Path) -> Result<ClientConfig, String> {
    let leaf = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("{}: {e}", cert_file.display()))?
        .next()
        .ok_or_else(|| format!("{}: no certificate in it", cert_file.display()))?
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned {
        leaf: leaf.into_owned(),
        provider: Arc::clone(&provider),
    });
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name cannot match a loopback address; the exact certificate
        // the hub serves is the stronger check.
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "this is not the certificate the hub serves".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
