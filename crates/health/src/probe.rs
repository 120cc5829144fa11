//! Running one check: the only code here that touches the network.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::CheckFailure;
use crate::config::Check;

/// Largest health body read when matching `expect_body`.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// An HTTP client for checks. Connections are not pooled: each check opens a fresh one, so a
/// region whose listener died is noticed even if an old keep-alive connection still works.
#[derive(Clone)]
pub struct Prober {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Prober {
    /// A prober with its own connector; `https://` checks trust the PEM bundle `ca`.
    pub fn new(ca: Option<&std::path::Path>) -> Result<Self, crate::HealthError> {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(crate::tls::connector(ca, None)?);
        Ok(Prober { client })
    }

    /// Runs `check` within `timeout`. `Err` carries a short human-readable reason, and whether
    /// the endpoint refused traffic itself (an HTTP 503).
    pub async fn probe(&self, check: &Check, timeout: Duration) -> Result<(), CheckFailure> {
        match tokio::time::timeout(timeout, self.probe_inner(check)).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {} ms", timeout.as_millis()).into()),
        }
    }

    async fn probe_inner(&self, check: &Check) -> Result<(), CheckFailure> {
        match check {
            Check::Tcp { addr } => tokio::net::TcpStream::connect(addr.as_str())
                .await
                .map(drop)
                .map_err(|e| format!("connect {addr}: {e}").into()),
            Check::Http { uri, expect_body } => {
                let resp = self
                    .client
                    .get(uri.clone())
                    .await
                    .map_err(|e| CheckFailure::from(format!("GET {uri}: {e}")))?;
                let status = resp.status();
                if !status.is_success() {
                    return Err(CheckFailure {
                        reason: format!("GET {uri}: status {status}"),
                        refused: status == hyper::StatusCode::SERVICE_UNAVAILABLE,
                    });
                }
                if let Some(needle) = expect_body {
                    let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
                        .collect()
                        .await
                        .map_err(|e| CheckFailure::from(format!("GET {uri}: body: {e}")))?
                        .to_bytes();
                    if !String::from_utf8_lossy(&body).contains(needle.as_str()) {
                        return Err(format!("GET {uri}: body does not contain {needle:?}").into());
                    }
                }
                Ok(())
            }
        }
    }
}
