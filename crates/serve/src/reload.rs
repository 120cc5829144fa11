//! A certificate and key that follow their files: rustls asks for them at every handshake, and
//! they are read again (at most once a second) when either file's modification time changed.
//! A new pair that does not load — a half-written file, a key that does not match — is logged
//! and the one in use stays, so an operator's `mv new.pem cert.pem` never takes a listener down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::TlsError;

/// How often the files' modification times are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

struct Loaded {
    key: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

/// A certificate chain and its key, read from PEM files and read again when they change.
pub struct ReloadingKey {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for ReloadingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingKey")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

fn err(path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError {
        path: path.to_owned(),
        why: why.to_string(),
    }
}

fn stamp(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads a PEM chain and a PEM private key (refused when every user may read it).
fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
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
    let certified = CertifiedKey::from_der(chain, private, provider).map_err(|e| err(cert, e))?;
    Ok(Arc::new(certified))
}

impl ReloadingKey {
    /// Loads the pair now (an error names the file at fault).
    pub fn new(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamps = (stamp(cert), stamp(key));
        let loaded = load(cert, key, &provider)?;
        Ok(ReloadingKey {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            loaded: Mutex::new(Loaded {
                key: loaded,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The pair to present: the loaded one, read again first if the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut l = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if l.checked.elapsed() >= CHECK_EVERY {
            l.checked = Instant::now();
            let stamps = (stamp(&self.cert), stamp(&self.key));
            if stamps != l.stamps {
                match load(&self.cert, &self.key, &self.provider) {
                    Ok(k) => {
                        tracing::info!(cert = %self.cert.display(), "certificate reloaded");
                        l.key = k;
                        l.stamps = stamps;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "new certificate not loaded; keeping the one in use")
                    }
                }
            }
        }
        l.key.clone()
    }
}

impl rustls::server::ResolvesServerCert for ReloadingKey {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl rustls::client::ResolvesClientCert for ReloadingKey {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
