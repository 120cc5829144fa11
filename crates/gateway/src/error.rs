//! Errors of the gateway, and the one place they become DynamoDB-format responses (through
//! the API's wire table, `meridian_model::ApiError`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};
use meridian_model::ApiError;

use crate::proxy::ProxyBody;

/// Gateway errors.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Invalid configuration.
    #[error("gateway config: {0}")]
    Config(String),
    /// The user's home region is down and writes may not move (`write_failover = "refuse"`).
    #[error("home region {0} is unavailable and write failover is disabled")]
    HomeUnavailable(String),
    /// Every region failed or is unavailable.
    #[error("no region could serve the request")]
    NoRegion,
    /// Every region tried either has not applied the session's writes yet or could not be
    /// reached (the regions that took them are named).
    #[error("no reachable region has applied this session's writes yet (made in {0}); retry")]
    SessionNotApplied(String),
    /// A write failed after it may have reached a region; retrying elsewhere could apply it twice.
    #[error("the region failed while processing the write; it may or may not have been applied")]
    WriteInDoubt,
    /// The request body could not be read or is too large.
    #[error("request body: {0}")]
    Body(String),
    /// The request bodies being received at once use the whole body budget.
    #[error("too many request bytes being received; retry with backoff")]
    Throttled,
    /// Not the DynamoDB API: the gateway forwards only `POST /`, never a region's admin,
    /// anti-entropy or metrics routes.
    #[error("the gateway serves only the DynamoDB API (POST /), not {0}")]
    NotProxied(String),
}

impl From<meridian_traffic::ConfigError> for GatewayError {
    fn from(e: meridian_traffic::ConfigError) -> Self {
        GatewayError::Config(e.message)
    }
}

impl GatewayError {
    /// The DynamoDB error this is, from the one wire table (`meridian_model::ApiError`).
    fn api(&self) -> ApiError {
        let message = self.to_string();
        match self {
            GatewayError::HomeUnavailable(_)
            | GatewayError::NoRegion
            | GatewayError::SessionNotApplied(_) => ApiError::ServiceUnavailable(message),
            // Configuration details are internal: logged, never sent.
            GatewayError::Config(_) => ApiError::InternalServerError("internal error".into()),
            GatewayError::WriteInDoubt => ApiError::InternalServerError(message),
            GatewayError::Body(_) => ApiError::Serialization(message),
            GatewayError::Throttled => ApiError::Throttling(message),
            GatewayError::NotProxied(_) => ApiError::UnknownOperation,
        }
    }

    /// The DynamoDB JSON error response (`{"__type": ..., "message": ...}`). A path other than
    /// the API's is a 404, as for any HTTP server; everything else has DynamoDB's status.
    pub fn to_response(&self) -> Response<ProxyBody> {
        let api = self.api();
        let status = match self {
            GatewayError::NotProxied(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::from_u16(api.status()).unwrap_or(StatusCode::BAD_REQUEST),
        };
        let mut resp = Response::new(
            Full::new(Bytes::from(api.to_body()))
                .map_err(|never| match never {})
                .boxed(),
        );
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        resp
    }
}
