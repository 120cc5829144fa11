//! The control plane's HTTP API.
//!
//! | request | answer |
//! |---|---|
//! | `POST /v1/specs[?if_changed=true]` (TOML body) | `201 {version, created}`; `400 {error, path, line, column}` |
//! | `GET /v1/specs/latest[?newer_than=N]` | `200 {version, spec}`; `204` when nothing newer; `404` before the first |
//! | `GET /v1/specs/{n}` | `200 {version, spec}` or `404` |
//! | `POST /v1/report` (JSON [`Report`]) | `204`; components report the version they run |
//! | `GET /v1/status` | latest version and every component's last report |
//! | `GET /health` | `200` |
//!
//! Every route but `/health` is an admin endpoint (`meridian_auth`): specs carry the cluster's
//! secrets and decide where traffic goes.
//!
//! The data plane never waits on this server: agents poll it and keep their last version when
//! it is gone (static stability).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::client::Report;
use crate::error::ControlError;
use crate::store::{SpecStore, StoredSpec};
use meridian_auth::AdminGuard;

/// A report as received, with when.
#[derive(Debug, Clone)]
struct Received {
    report: Report,
    at_unix_ms: u64,
}

/// The server's shared state.
#[derive(Clone)]
pub struct ControlState {
    store: Arc<SpecStore>,
    // A std Mutex: held only to update a small map, never across `.await`.
    reports: Arc<Mutex<BTreeMap<String, Received>>>,
    admin: AdminGuard,
    clock: Arc<dyn meridian_core::Clock>,
}

impl ControlState {
    /// State over an opened store, answering loopback clients only.
    pub fn new(store: SpecStore) -> Self {
        ControlState {
            store: Arc::new(store),
            reports: Arc::new(Mutex::new(BTreeMap::new())),
            admin: AdminGuard::LoopbackOnly,
            clock: meridian_core::SystemClock::new(),
        }
    }

    /// The same state, with the admin guard its API answers under.
    pub fn with_admin(mut self, admin: AdminGuard) -> Self {
        self.admin = admin;
        self
    }
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": message.to_string() }))).into_response()
}

fn internal(e: &ControlError) -> Response {
    tracing::error!(error = %e, "control plane failure");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

fn spec_body(s: &StoredSpec) -> Response {
    axum::Json(json!({ "version": s.version, "spec": s.text })).into_response()
}

/// The API's routes.
pub fn router(state: ControlState) -> Router {
    let admin = state.admin.clone();
    let routes = Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(json!({ "status": "serving" })) }),
        )
        .route("/v1/specs", post(post_spec))
        .route("/v1/specs/latest", get(latest))
        .route("/v1/specs/{version}", get(by_version))
        .route("/v1/report", post(report))
        .route("/v1/status", get(status))
        .with_state(state);
    meridian_auth::protect(routes, admin, |path| path != "/health")
}

/// Serves the API until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ControlState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    meridian_serve::serve(
        listener,
        router(state),
        meridian_serve::Limits::default(),
        shutdown,
    )
    .await
}

#[derive(Deserialize)]
struct PutQuery {
    #[serde(default)]
    if_changed: bool,
    /// Every component starts from this version (`meridian up`): fields a running cluster
    /// cannot apply live are accepted.
    #[serde(default)]
    restart: bool,
}

async fn post_spec(
    State(state): State<ControlState>,
    Query(q): Query<PutQuery>,
    body: Bytes,
) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the spec must be UTF-8 TOML");
    };
    let text = text.to_owned();
    let store = state.store.clone();
    let result =
        tokio::task::spawn_blocking(move || store.put(&text, q.if_changed, q.restart)).await;
    match result {
        Ok(Ok((version, created))) => {
            if created {
                tracing::info!(version, "spec stored");
            }
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (
                code,
                axum::Json(json!({ "version": version, "created": created })),
            )
                .into_response()
        }
        Ok(Err(ControlError::Spec(e))) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "error": e.message, "path": e.path, "line": e.line, "column": e.column,
                "detail": e.to_string(),
            })),
        )
            .into_response(),
        Ok(Err(e)) => internal(&e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
struct LatestQuery {
    #[serde(default)]
    newer_than: Option<u64>,
}

async fn latest(State(state): State<ControlState>, Query(q): Query<LatestQuery>) -> Response {
    match state.store.latest() {
        Ok(Some(s)) if q.newer_than.is_some_and(|n| s.version <= n) => {
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Some(s)) => spec_body(&s),
        Ok(None) => error(StatusCode::NOT_FOUND, ControlError::NoSpec),
        Err(e) => internal(&e),
    }
}

async fn by_version(State(state): State<ControlState>, Path(version): Path<u64>) -> Response {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.read(version)).await {
        Ok(Ok(s)) => spec_body(&s),
        Ok(Err(e @ ControlError::UnknownVersion(_))) => error(StatusCode::NOT_FOUND, e),
        Ok(Err(e)) => internal(&e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn report(State(state): State<ControlState>, body: Bytes) -> Response {
    let report: Report = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Ok(mut reports) = state.reports.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "state lock poisoned");
    };
    reports.insert(
        report.component.clone(),
        Received {
            report,
            at_unix_ms: state.clock.now_ms(),
        },
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn status(State(state): State<ControlState>) -> Response {
    let latest = match state.store.latest() {
        Ok(l) => l.map(|s| s.version),
        Err(e) => return internal(&e),
    };
    let Ok(reports) = state.reports.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "state lock poisoned");
    };
    let now = state.clock.now_ms();
    let components: serde_json::Map<String, serde_json::Value> = reports
        .iter()
        .map(|(name, r)| {
            (
                name.clone(),
                json!({
                    "version": r.report.version,
                    "source": r.report.source,
                    "pid": r.report.pid,
                    "error": r.report.error,
                    "reported_ms_ago": now.saturating_sub(r.at_unix_ms),
                }),
            )
        })
        .collect();
    axum::Json(json!({ "latest_version": latest, "components": components })).into_response()
}
