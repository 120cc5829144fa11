//! Errors of the gateway, and the one place they become DynamoDB-format responses.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};

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

impl GatewayError {
    /// The DynamoDB `__type` and HTTP status of this error.
    fn wire(&self) -> (StatusCode, &'static str) {
        match self {
            GatewayError::HomeUnavailable(_) | GatewayError::NoRegion => (
                StatusCode::SERVICE_UNAVAILABLE,
                "com.amazonaws.dynamodb.v20120810#ServiceUnavailableException",
            ),
            GatewayError::WriteInDoubt | GatewayError::Config(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
            ),
            GatewayError::Body(_) => (
                StatusCode::BAD_REQUEST,
                "com.amazon.coral.service#SerializationException",
            ),
            GatewayError::Throttled => (
                StatusCode::BAD_REQUEST,
                "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            ),
            GatewayError::NotProxied(_) => (
                StatusCode::NOT_FOUND,
                "com.amazon.coral.service#UnknownOperationException",
            ),
        }
    }

    /// The DynamoDB JSON error response (`{"__type": ..., "message": ...}`).
    pub fn to_response(&self) -> Response<ProxyBody> {
        let (status, kind) = self.wire();
        let message = match self {
            // Configuration details are internal: log them, never send them.
            GatewayError::Config(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
        let mut resp = Response::new(
            Full::new(Bytes::from(body))
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
