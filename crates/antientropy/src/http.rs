//! The anti-entropy HTTP endpoints.

use crate::digest::{BUCKETS, bucket_states, table_digest};
use crate::repair::{decode_states, encode_states, run_repair};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use meridian_auth::AdminToken;
use meridian_storage::Store;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The peer regions a repair may run against: name → DynamoDB endpoint (`http://HOST:PORT`),
/// and the admin token presented to them.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    /// Name → endpoint.
    pub endpoints: BTreeMap<String, String>,
    /// The cluster's admin token.
    pub token: Option<Arc<AdminToken>>,
}

/// The endpoints, over this region's store; repairs run against `peers` only.
pub fn router(store: Store, peers: Peers) -> Router {
    Router::new()
        .route("/admin/ae/digest", get(digest))
        .route("/admin/ae/bucket", get(bucket))
        .route("/admin/ae/apply", post(apply))
        .with_state(store.clone())
        .route(
            "/admin/anti-entropy",
            post(anti_entropy).with_state((store, Arc::new(peers))),
        )
}

#[derive(Deserialize)]
struct TableQuery {
    table: String,
    #[serde(default)]
    bucket: Option<usize>,
}

fn error(code: StatusCode, msg: impl ToString) -> Response {
    (code, axum::Json(json!({"error": msg.to_string()}))).into_response()
}

async fn digest(State(store): State<Store>, Query(q): Query<TableQuery>) -> Response {
    let Some(t) = store.table(&q.table) else {
        return error(StatusCode::NOT_FOUND, format!("no table {}", q.table));
    };
    match tokio::task::spawn_blocking(move || table_digest(&store, &t)).await {
        Ok(Ok(d)) => axum::Json(json!({
            "table": q.table,
            "digest": hex::encode(d.root()),
            "items": d.items,
            "tombstones": d.tombstones,
            "buckets": d.buckets.iter().map(hex::encode).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn bucket(State(store): State<Store>, Query(q): Query<TableQuery>) -> Response {
    let Some(t) = store.table(&q.table) else {
        return error(StatusCode::NOT_FOUND, format!("no table {}", q.table));
    };
    let Some(b) = q.bucket.filter(|b| *b < BUCKETS) else {
        return error(StatusCode::BAD_REQUEST, "bucket must be 0..255");
    };
    match tokio::task::spawn_blocking(move || bucket_states(&store, &t, b as u8)).await {
        Ok(Ok(states)) => axum::Json(json!({"entries": encode_states(&states)})).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn apply(State(store): State<Store>, Query(q): Query<TableQuery>, body: Bytes) -> Response {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let states = match parsed
        .map_err(anyhow::Error::from)
        .and_then(|v| decode_states(v.get("entries").unwrap_or(&Value::Null)))
    {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    // Only states of the named table are accepted.
    if states.iter().any(|s| s.table != q.table) {
        return error(StatusCode::BAD_REQUEST, "entries for another table");
    }
    match store.repair(states).await {
        Ok(r) => axum::Json(
            json!({"applied": r.applied, "stale": r.stale, "missing_table": r.missing_table}),
        )
        .into_response(),
        // A version too far ahead of this region's clock: nothing was applied.
        Err(e @ meridian_storage::StoreError::ClockAhead { .. }) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, e)
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
struct RepairQuery {
    peer: String,
    #[serde(default)]
    table: Option<String>,
}

async fn anti_entropy(
    State((store, peers)): State<(Store, Arc<Peers>)>,
    Query(q): Query<RepairQuery>,
) -> Response {
    let Some(endpoint) = peers.endpoints.get(&q.peer) else {
        let known: Vec<&String> = peers.endpoints.keys().collect();
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown peer {:?}: name a configured one ({known:?}, --ae-peer NAME=URL)",
                q.peer
            ),
        );
    };
    let tables: Vec<String> = q.table.into_iter().collect();
    match run_repair(&store, endpoint, peers.token.as_deref(), &tables).await {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => error(StatusCode::BAD_GATEWAY, format!("{e:#}")),
    }
}
