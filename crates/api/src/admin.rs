//! Health, metrics and operator/test endpoints.

use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use meridian_storage::ChangeOp;
use serde::Deserialize;
use serde_json::json;

/// `GET /health`: 200 while serving, 503 when draining or the store has failed.
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let mut detail = serde_json::Value::Null;
    let (code, status) = if state.store().is_poisoned() {
        (StatusCode::SERVICE_UNAVAILABLE, "failed")
    } else if state.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if state.store().recovery().is_some() {
        // Takes no writes until its peers said how far they hold its changes.
        (StatusCode::SERVICE_UNAVAILABLE, "recovering")
    } else if let Some((why, d)) = state.not_ready() {
        // Caught up with its peers only partly: reads sent here directly still work.
        detail = d;
        (StatusCode::SERVICE_UNAVAILABLE, why)
    } else {
        (StatusCode::OK, "serving")
    };
    let mut body = json!({"status": status, "region": state.region()});
    if let (Some(b), Some(d)) = (body.as_object_mut(), detail.as_object()) {
        b.extend(d.clone());
    }
    (code, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &state.inner.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct ChangelogQuery {
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /admin/workers`: every background worker of the region with its state, steps and
/// last failure.
pub(crate) async fn workers(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({"workers": state.store().workers().report()}))
}

/// `GET /admin/changelog?from=N&limit=M`: change-log entries, for operators and tests.
pub(crate) async fn changelog(
    State(state): State<AppState>,
    Query(q): Query<ChangelogQuery>,
) -> Response {
    let store = state.store().clone();
    let from = q.from.unwrap_or(1);
    let limit = q.limit.unwrap_or(1000).min(100_000);
    let res = tokio::task::spawn_blocking(move || {
        let summary = store.changelog_summary()?;
        let entries = store.changes(from, limit)?;
        Ok::<_, meridian_storage::StoreError>((summary, entries))
    })
    .await;
    match res {
        Ok(Ok((summary, entries))) => {
            let entries: Vec<_> = entries
                .iter()
                .map(|e| {
                    let (op, item) = match &e.op {
                        ChangeOp::Put(_) | ChangeOp::PutEncoded(_) => (
                            "put",
                            e.op.item()
                                .ok()
                                .flatten()
                                .map(|i| meridian_model::value::item_to_json(&i)),
                        ),
                        ChangeOp::Delete => ("delete", None),
                        ChangeOp::TtlDelete => ("ttl-delete", None),
                        ChangeOp::TableUpsert(_) => ("table-upsert", None),
                        ChangeOp::TableDrop => ("table-drop", None),
                    };
                    json!({
                        "seq": e.seq, "origin": e.gtid.origin, "origin_seq": e.gtid.seq,
                        "table": e.table, "op": op, "item": item,
                        "version": {"ts": e.version.ts.0, "region": e.version.region},
                    })
                })
                .collect();
            Json(json!({"first": summary.first, "head": summary.last, "entries": entries}))
                .into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `POST /admin/drain`: health answers 503 so routers move traffic away; requests still served.
pub(crate) async fn drain(State(state): State<AppState>) -> Response {
    state.set_draining(true);
    Json(json!({"draining": true})).into_response()
}

/// `POST /admin/undrain`.
pub(crate) async fn undrain(State(state): State<AppState>) -> Response {
    state.set_draining(false);
    Json(json!({"draining": false})).into_response()
}
