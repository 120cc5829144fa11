//! HTTPS for a listener: a certificate chain and its key from PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

/// *ring*, as everywhere in Meridian (builds with the C compiler the machine has).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Loads a PEM certificate chain and its PEM private key (refused when every user of the
    /// machine may read it). Serves HTTP/1.1 over TLS 1.3 (rustls is built without 1.2).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        use std::os::unix::fs::PermissionsExt;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| err(cert, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(cert, e))?;
        if chain.is_empty() {
            return Err(err(cert, "no certificate in the file"));
        }
        let mode = std::fs::metadata(key)
            .map_err(|e| err(key, e))?
            .permissions()
            .mode();
        if mode & 0o004 != 0 {
            return Err(err(
                key,
                format!(
                    "the private key is readable by every user (mode {:o}); run `chmod 600 {}`",
                    mode & 0o777,
                    key.display()
                ),
            ));
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| err(key, e))?;
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(cert, e))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| err(cert, e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}
