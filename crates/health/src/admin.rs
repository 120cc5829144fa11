//! A small HTTP admin API over a [`HealthMonitor`], shared by the DNS server and the gateway:
//!
//! | request | effect |
//! |---|---|
//! | `GET /admin/status` | JSON snapshot of every endpoint |
//! | `GET /metrics` | Prometheus text |
//! | `POST /admin/regions/{name}/drain` / `undrain` | weight 0 while others can serve / back |
//! | `POST /admin/regions/{name}/down` / `up` | force unhealthy / follow checks again |
//! | `POST /admin/regions/{name}/weight/{0-100}` | gradual traffic shift |
//! | `GET /admin/config` | the config version the role runs (when a config hook is set) |
//!
//! Every route but `/metrics` is an admin endpoint: it passes the [`RoleAdmin::guard`] first
//! (the cluster's admin token, or loopback clients only without one).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::HealthError;
use crate::monitor::HealthMonitor;
use crate::snapshot::AdminState;
use meridian_auth::AdminGuard;

/// The admin listener's bounds: a few operators and monitors, never thousands of clients.
pub const ADMIN_LIMITS: meridian_serve::Limits = meridian_serve::Limits {
    max_connections: 256,
    header_timeout: std::time::Duration::from_secs(10),
    drain_timeout: std::time::Duration::from_secs(1),
};

/// Extra JSON a caller adds to `/admin/status` (e.g. the DNS server's query counters).
pub type StatusHook = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// What the binary adds to a role's admin API.
#[derive(Clone, Default)]
pub struct RoleAdmin {
    /// Who may call it.
    pub guard: AdminGuard,
    /// Served as `GET /admin/config`: which config version the role runs and where it came
    /// from (set by the binary's control-plane agent).
    pub config_hook: Option<StatusHook>,
}

/// What the admin API serves.
#[derive(Clone)]
pub struct AdminApi {
    /// The monitor the API reads and overrides.
    pub monitor: HealthMonitor,
    /// Registry rendered on `/metrics`.
    pub registry: Arc<Registry>,
    /// Extra status, rendered under `"extra"`.
    pub status_hook: Option<StatusHook>,
    /// Its guard and config hook.
    pub role: RoleAdmin,
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    reply(status, "application/json", value.to_string())
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message.to_string() }))
}

impl AdminApi {
    /// Handles one request (exposed so the gateway can mount it beside its proxy).
    pub fn handle(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (&Method::GET, ["admin", "status"]) => {
                let snapshot = self.monitor.snapshot();
                let c = self.monitor.config();
                let mut body = serde_json::json!({
                    "health": &*snapshot,
                    "checks": {"interval_ms": c.interval_ms, "timeout_ms": c.timeout_ms,
                               "fall": c.fall, "rise": c.rise},
                });
                if let Some(hook) = &self.status_hook {
                    body["extra"] = hook();
                }
                json(StatusCode::OK, &body)
            }
            (&Method::GET, ["admin", "config"]) => match &self.role.config_hook {
                Some(hook) => json(StatusCode::OK, &hook()),
                None => error(StatusCode::NOT_FOUND, "no config agent"),
            },
            (&Method::GET, ["metrics"]) => {
                let mut out = String::new();
                match prometheus_client::encoding::text::encode(&mut out, &self.registry) {
                    Ok(()) => reply(StatusCode::OK, "text/plain; version=0.0.4", out),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
                }
            }
            (&Method::POST, ["admin", "regions", name, action @ ..]) => {
                let result = match action {
                    ["drain"] => self.monitor.set_admin(name, AdminState::Drain),
                    ["undrain"] | ["up"] => self.monitor.set_admin(name, AdminState::Auto),
                    ["down"] => self.monitor.set_admin(name, AdminState::Down),
                    ["weight", pct] => match pct.parse::<u8>() {
                        Ok(pct) => self.monitor.set_weight(name, pct),
                        Err(_) => Err(HealthError::InvalidWeightText(pct.to_string())),
                    },
                    _ => return error(StatusCode::NOT_FOUND, "unknown admin action"),
                };
                match result {
                    Ok(()) => {
                        let status = self.monitor.snapshot().endpoints.get(*name).cloned();
                        json(
                            StatusCode::OK,
                            &serde_json::json!({ "region": name, "status": status }),
                        )
                    }
                    Err(e @ HealthError::UnknownEndpoint(_)) => error(StatusCode::NOT_FOUND, e),
                    Err(e) => error(StatusCode::BAD_REQUEST, e),
                }
            }
            _ => error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// Serves the API on `listener` until `shutdown` completes, on the bounded accept loop
    /// ([`ADMIN_LIMITS`]).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let api = self;
        let served = meridian_serve::serve_fn(
            listener,
            ADMIN_LIMITS,
            shutdown,
            move |req: Request<Incoming>, client: std::net::SocketAddr| {
                let path = req.uri().path();
                let auth = req
                    .headers()
                    .get(hyper::header::AUTHORIZATION)
                    .map(|v| v.as_bytes());
                let resp = match api.role.guard.check(auth, Some(client.ip())) {
                    Err(denied) if path != "/metrics" => {
                        tracing::warn!(%path, %client, %denied, "admin request refused");
                        let status = StatusCode::from_u16(denied.status())
                            .unwrap_or(StatusCode::UNAUTHORIZED);
                        error(status, denied)
                    }
                    _ => api.handle(req.method(), path),
                };
                async move { Ok::<_, Infallible>(resp) }
            },
        )
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "admin listener failed");
        }
    }
}
