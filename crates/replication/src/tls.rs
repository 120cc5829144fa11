//! TLS 1.3 with mutual authentication on the replication links.
//!
//! Every region holds a certificate, signed by the cluster's CA, whose subject alternative name
//! is its region name. A sync-out verifies that the receiver's certificate names the peer it
//! dialled; a sync-in requires a client certificate from the CA and accepts the link only when
//! that certificate names the region the `Hello` claims — so the link identity is the
//! certificate, and a region holding only its own key cannot pose as another. Frames then
//! travel encrypted and integrity-protected: a byte changed on the wire fails the record's
//! authentication tag and closes the connection before anything in it is applied.
//!
//! `meridian up` makes the CA and the certificates (`DIR/secrets/tls/`); operators bring their
//! own with `--tls-cert`, `--tls-key` and `--tls-ca`.

use meridian_serve::provider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where a region's link certificate, its key and the cluster's CA are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The region's certificate chain (PEM), naming the region.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA every region's certificate is signed by (PEM).
    pub ca: PathBuf,
}

/// Why the link TLS settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// rustls refused the combination.
    #[error("link TLS: {0}")]
    Config(String),
}

/// Both ends' TLS configuration of a region's links.
#[derive(Clone)]
pub struct LinkTls {
    connector: TlsConnector,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for LinkTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkTls")
    }
}

impl From<meridian_serve::TlsError> for TlsError {
    fn from(e: meridian_serve::TlsError) -> Self {
        TlsError::File {
            path: e.path,
            why: e.why,
        }
    }
}

impl LinkTls {
    /// Loads the region's certificate and key (refused when every user may read it) and the
    /// CA; TLS 1.3 only.
    pub fn load(files: &TlsFiles) -> Result<LinkTls, TlsError> {
        // The certificate and key are read again when their files change (a renewed
        // certificate needs no restart); the CA is read once.
        let own = Arc::new(meridian_serve::ReloadingKey::new(
            &files.cert,
            &files.key,
            provider(),
        )?);
        let roots = Arc::new(meridian_serve::load_roots(&files.ca)?);
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(own.clone());
        let client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config)?
            .with_root_certificates(roots)
            .with_client_cert_resolver(own);
        Ok(LinkTls {
            connector: TlsConnector::from(Arc::new(client)),
            acceptor: TlsAcceptor::from(Arc::new(server)),
        })
    }

    /// Opens TLS to `peer` over `tcp`, verifying that the receiver's certificate names `peer`.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        peer: &str,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = ServerName::try_from(peer.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.connector.connect(name, tcp).await
    }

    /// Accepts TLS over `tcp`: the client must present a certificate from the CA. Returns the
    /// stream and that certificate (to be matched against the region the peer claims).
    pub async fn accept(
        &self,
        tcp: TcpStream,
    ) -> std::io::Result<(
        tokio_rustls::server::TlsStream<TcpStream>,
        CertificateDer<'static>,
    )> {
        let stream = self.acceptor.accept(tcp).await?;
        let cert = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .cloned()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "no client certificate",
                )
            })?;
        Ok((stream, cert))
    }
}

/// Whether `cert` (already verified against the CA) names `region` among its subject
/// alternative names.
pub fn names_region(cert: &CertificateDer<'_>, region: &str) -> bool {
    let Ok(name) = ServerName::try_from(region) else {
        return false;
    };
    webpki::EndEntityCert::try_from(cert)
        .is_ok_and(|c| c.verify_is_valid_for_subject_name(&name).is_ok())
}
