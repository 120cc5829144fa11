//! HTTPS for a listener: a certificate chain and its key from PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{RootCertStore, ServerConfig};

/// A listener's certificate, ready to accept TLS connections. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {why}", path.display())]
pub struct TlsError {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub why: String,
}

fn err(path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError {
        path: path.to_owned(),
        why: why.to_string(),
    }
}

/// The crypto provider of every TLS endpoint in Meridian: *ring*. It builds with the C compiler
/// the machine has, where rustls' default (aws-lc-rs) needs cmake and minutes more of build.
/// Its key exchange (X25519, ECDHE) has no post-quantum hybrid, which is why rustls marks it
/// deprecated; `docs/security.md` says so.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Serves a PEM certificate chain and its PEM private key (refused when every user of the
    /// machine may read it), read again when the files change (`ReloadingKey`). HTTP/1.1 over
    /// TLS 1.3 (rustls is built without 1.2).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let resolver = Arc::new(crate::ReloadingKey::new(cert, key, provider())?);
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(cert, e))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// The certificates of a PEM CA bundle, as trust roots (an empty bundle is an error).
pub fn load_roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| err(ca, e))? {
        roots
            .add(cert.map_err(|e| err(ca, e))?)
            .map_err(|e| err(ca, e))?;
    }
    if roots.is_empty() {
        return Err(err(ca, "no CA certificate in the file"));
    }
    Ok(roots)
}
