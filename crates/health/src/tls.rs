//! The HTTP client connector of health checks and of the gateway's proxy: `http://` as is, and
//! `https://` verified against a CA bundle the operator names (TLS 1.3, rustls on *ring*) —
//! for regions that serve their DynamoDB port over HTTPS on another machine.

use std::path::Path;
use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;

use crate::HealthError;

/// A connector for `http://` and, with `ca` (a PEM bundle), `https://` URLs (without `ca` an
/// `https://` URL fails its certificate check: no root is trusted). A TCP connect not done
/// within `connect_timeout` fails.
pub fn connector(
    ca: Option<&Path>,
    connect_timeout: Option<std::time::Duration>,
) -> Result<HttpsConnector<HttpConnector>, HealthError> {
    let roots = match ca {
        Some(ca) => meridian_serve::load_roots(ca)
            .map_err(|e| HealthError::Config(format!("CA bundle {e}")))?,
        None => RootCertStore::empty(),
    };
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
