//! The HTTP client connector of health checks and of the gateway's proxy: `http://` as is, and
//! `https://` verified against a CA bundle the operator names (TLS 1.3, rustls on *ring*) —
//! for regions that serve their DynamoDB port over HTTPS on another machine.

use std::path::Path;
use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::HealthError;

/// A connector for `http://` and, with `ca` (a PEM bundle), `https://` URLs (without `ca` an
/// `https://` URL fails its certificate check: no root is trusted). A TCP connect not done
/// within `connect_timeout` fails.
pub fn connector(
    ca: Option<&Path>,
    connect_timeout: Option<std::time::Duration>,
) -> Result<HttpsConnector<HttpConnector>, HealthError> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = ca {
        let bad = |e: &dyn std::fmt::Display| {
            HealthError::Config(format!("CA bundle {}: {e}", ca.display()))
        };
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(&e))? {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
        if roots.is_empty() {
            return Err(bad(&"no certificate in the file"));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(meridian_serve::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| HealthError::Config(e.to_string()))?
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(connect_timeout);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}
