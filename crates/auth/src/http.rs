//! The guard as axum middleware, for the components that serve their admin API with axum.

use crate::AdminGuard;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// Which paths of a router are admin endpoints.
type IsAdmin = fn(&str) -> bool;

/// Wraps `router` so that every request whose path `is_admin` names passes `guard` first.
/// The server must be started with `into_make_service_with_connect_info::<SocketAddr>()` for
/// loopback-only guards to see their clients (without it, every client counts as remote).
pub fn protect<S>(router: Router<S>, guard: AdminGuard, is_admin: IsAdmin) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(axum::middleware::from_fn_with_state(
        (guard, is_admin),
        require_admin,
    ))
}

/// The middleware behind [`protect`].
pub async fn require_admin(
    State((guard, is_admin)): State<(AdminGuard, IsAdmin)>,
    req: Request,
    next: Next,
) -> Response {
    if !is_admin(req.uri().path()) {
        return next.run(req).await;
    }
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match guard.check(auth, client) {
        Ok(()) => next.run(req).await,
        Err(denied) => {
            tracing::warn!(path = %req.uri().path(), ?client, %denied, "admin request refused");
            let status = StatusCode::from_u16(denied.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let body = format!("{{\"error\":\"{denied}\"}}");
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    }
}
