//! `GET /ids?count=N`: unique, time-ordered 64-bit IDs issued by this region (Snowflake layout,
//! region bits from config — see `meridian_core::snowflake`). The seeds' answer to
//! auto-increment keys colliding when every region accepts writes.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use meridian_core::{Clock, Snowflake, SnowflakeError};
use serde::Deserialize;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// Most IDs one request may ask for.
pub const MAX_COUNT: usize = 10_000;

// A std Mutex is right here: it is held for a few arithmetic steps per ID, never across
// `.await`.
type Generator = Arc<Mutex<Snowflake>>;

/// The `/ids` route for a region with id `region_id` (0–1023).
pub fn router(region_id: u16, clock: Arc<dyn Clock>) -> Result<Router, SnowflakeError> {
    let generator = Arc::new(Mutex::new(Snowflake::new(region_id)?));
    Ok(Router::new()
        .route("/ids", get(ids))
        .with_state((generator, clock)))
}

#[derive(Deserialize)]
struct IdsQuery {
    #[serde(default)]
    count: Option<usize>,
}

async fn ids(
    State((generator, clock)): State<(Generator, Arc<dyn Clock>)>,
    Query(q): Query<IdsQuery>,
) -> Response {
    let count = q.count.unwrap_or(1);
    if !(1..=MAX_COUNT).contains(&count) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": format!("count must be 1..={MAX_COUNT}") })),
        )
            .into_response();
    }
    let Ok(mut g) = generator.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let now = clock.now_ms();
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        match g.next_id(now) {
            Ok(id) => out.push(id),
            Err(e) => {
                tracing::error!(error = %e, "issuing an id failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    axum::Json(json!({ "region_id": g.region_id(), "ids": out })).into_response()
}
