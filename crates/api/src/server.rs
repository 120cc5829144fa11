//! HTTP serving: the `POST /` DynamoDB endpoint and the one place errors become responses.

use crate::admin;
use crate::dispatch;
use crate::metrics::{OpLabel, OpOutcome};
use crate::session;
use crate::state::AppState;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use meridian_auth::AdminGuard;
use meridian_model::ApiError;
use meridian_model::session::{BEHIND_HEADER, SESSION_HEADER};
use meridian_sigv4::{RequestParts, SigV4Error};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const TARGET_PREFIX: &str = "DynamoDB_20120810.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The region server's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", post(dynamodb).get(root))
        .route("/health", get(admin::health))
        .route("/metrics", get(admin::metrics))
        .route("/admin/changelog", get(admin::changelog))
        .route("/admin/workers", get(admin::workers))
        .route("/admin/drain", post(admin::drain))
        .route("/admin/undrain", post(admin::undrain))
        .with_state(state)
}

/// Whether a path of the region's server is an admin endpoint: everything under `/admin`
/// (change log, anti-entropy, replication, fault hooks, drain, config). The DynamoDB API,
/// `/health`, `/metrics` and `/ids` are not.
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish and
/// returns. The caller then shuts the store down (final sync). Admin endpoints answer loopback
/// clients only.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        state,
        Router::new(),
        AdminGuard::LoopbackOnly,
        meridian_serve::Limits::default(),
        None,
        shutdown,
    )
    .await
}

/// [`serve`], with `extra` routes (already given their state) merged in — e.g. replication's
/// `/admin/replication` and link fault hooks — every admin endpoint behind `guard`, and the
/// listener within `limits` (connections, header time), over HTTPS when `tls` is given.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: Router,
    guard: AdminGuard,
    limits: meridian_serve::Limits,
    tls: Option<meridian_serve::Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = meridian_auth::protect(router(state).merge(extra), guard, is_admin_path);
    meridian_serve::serve_with(listener, app, limits, tls, shutdown).await
}

async fn root(State(state): State<AppState>) -> impl IntoResponse {
    format!("healthy: meridian {}", state.region())
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(0);

fn request_id() -> String {
    let n = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{t:016X}{n:020X}")
}

/// A DynamoDB JSON response with `x-amz-crc32` over the exact body bytes.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let crc = crc32fast::hash(&body);
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(&crc.to_string()) {
        h.insert("x-amz-crc32", v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// The one place an [`ApiError`] becomes an HTTP response.
pub fn error_response(err: &ApiError) -> Response {
    if let ApiError::InternalServerError(detail) = err {
        tracing::error!(error = %detail, "internal error");
    }
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = json_response(status, err.to_body());
    if let ApiError::SessionBehind { origin, .. } = err
        && let Ok(v) = HeaderValue::from_str(origin)
    {
        resp.headers_mut().insert(BEHIND_HEADER, v);
    }
    resp
}

fn sigv4_error(e: SigV4Error) -> ApiError {
    let msg = e.to_string();
    match e {
        SigV4Error::MissingAuthenticationToken => ApiError::MissingAuthenticationToken(msg),
        SigV4Error::UnrecognizedClient => ApiError::UnrecognizedClient(msg),
        SigV4Error::IncompleteSignature(_) => ApiError::IncompleteSignature(msg),
        SigV4Error::SignatureDoesNotMatch | SigV4Error::InvalidSignature(_) => {
            ApiError::InvalidSignature(msg)
        }
    }
}

fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let hs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let parts = RequestParts {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &hs,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    meridian_sigv4::verify(
        &parts,
        body,
        &state.inner.config.keys,
        now,
        meridian_sigv4::DYNAMODB,
    )
    .map(|_| ())
    .map_err(sigv4_error)
}

async fn dynamodb(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or("").to_owned();
    let metrics = &state.inner.metrics;

    let result = match read_body(&state, &headers, body).await {
        Ok(body) => {
            // Load shedding: refuse at once rather than queue without bound. Taken once the
            // body is here, so clients slow to send theirs hold no permit.
            match state.inner.in_flight.clone().try_acquire_owned() {
                Ok(_permit) => {
                    metrics.in_flight.inc();
                    let r = handle(&state, &method, &uri, &headers, body, &operation).await;
                    metrics.in_flight.dec();
                    r
                }
                Err(_) => Err(ApiError::Throttling(
                    "Too many requests in flight; retry with backoff".into(),
                )),
            }
        }
        Err(e) => Err(e),
    };
    if matches!(result, Err(ApiError::Throttling(_))) {
        metrics.throttled.inc();
    }

    let label = if dispatch::is_known(&operation) {
        operation.clone()
    } else {
        "unknown".to_owned()
    };
    let outcome = match &result {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.code().to_owned(),
    };
    metrics
        .requests
        .get_or_create(&OpOutcome {
            operation: label.clone(),
            outcome,
        })
        .inc();
    metrics
        .latency
        .get_or_create(&OpLabel { operation: label })
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok((body, mark)) => {
            let mut resp = json_response(StatusCode::OK, body);
            if let Some(mark) = mark {
                resp.headers_mut().insert(SESSION_HEADER, mark);
            }
            resp
        }
        Err(e) => error_response(&e),
    }
}

/// Receives a request body: at most `max_body_bytes`, within `body_timeout`, and only while
/// the bytes of all bodies being received fit the body budget (claimed by `Content-Length`, or
/// the largest body when the client sends none) — so neither huge nor slow bodies can take
/// the memory or the in-flight permits that other clients' requests need.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let config = &state.inner.config;
    let limit = config.max_body_bytes;
    let too_large = || ApiError::validation(format!("Request size exceeded {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let kib = u32::try_from(declared.unwrap_or(limit).div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let Ok(_claim) = state.inner.body_budget.clone().try_acquire_many_owned(kib) else {
        return Err(ApiError::Throttling(
            "Too many request bytes being received; retry with backoff".into(),
        ));
    };
    match tokio::time::timeout(config.body_timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(ApiError::validation(format!(
            "The request body was not received within {} s",
            config.body_timeout.as_secs()
        ))),
    }
}

async fn handle(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    operation: &str,
) -> Result<(Vec<u8>, Option<HeaderValue>), ApiError> {
    authenticate(state, method, uri, headers, &body)?;
    if state.store().is_poisoned() {
        return Err(ApiError::ServiceUnavailable(
            "The region's store is unavailable".into(),
        ));
    }
    session::check(state, operation, headers)?;
    let value = dispatch::dispatch(state, operation, body).await?;
    let body =
        serde_json::to_vec(&value).map_err(|e| ApiError::InternalServerError(e.to_string()))?;
    Ok((body, session::mark(state, operation)))
}
