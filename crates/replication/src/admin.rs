//! Admin routes merged into the region's HTTP server:
//!
//! - `GET  /admin/replication` — per link: connected/paused, acked sequence, lag in entries and
//!   ms, alarm flag, and (sync-in) `apply_lag_ms` percentiles of every applied entry's lag
//!   (origin commit → durable here) with `receive_lag_ms`, the same entries' lag when their
//!   batch was received, before the apply;
//!   per-origin dedup watermarks; outbound checkpoints; the change log's purge point and
//!   whether this region still waits for its first snapshot; snapshots installed.
//! - `POST /admin/replication/reset-lag` — clears the lag histograms.
//! - `POST /admin/links/{peer}/pause` | `/resume` | `/drop` | `/delay?ms=N` |
//!   `/duplicate?on=BOOL` | `/reorder?on=BOOL` | `/byzantine?on=BOOL` — fault hooks (the last
//!   three act on the batches this region sends to `peer`).
//! - `POST /admin/clock/skew?ms=N` — skews the region's wall clock (under its HLC).
//!
//! The link actions and the clock skew are fault hooks: they exist only on a region started
//! with `--enable-fault-injection` (`meridian up` and `meridian drill` set it for the local
//! clusters they run).

use crate::Ctx;
use crate::topology::Topology;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use meridian_core::SystemClock;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest clock skew the fault hook sets (one hour).
const MAX_SKEW_MS: u64 = 3_600_000;
/// Largest emulated one-way link delay the fault hook sets (one minute).
const MAX_DELAY_MS: u64 = 60_000;

#[derive(Clone)]
struct AdminState {
    ctx: Arc<Ctx>,
    clock: Option<Arc<SystemClock>>,
}

/// The replication admin routes (state already attached). The fault hooks — link actions and
/// clock skew — exist only with `faults` on (`--enable-fault-injection`); without it they
/// answer 404 saying so.
pub(crate) fn router(ctx: Arc<Ctx>, clock: Option<Arc<SystemClock>>, faults: bool) -> Router {
    let routes = Router::new()
        .route("/admin/replication", get(status))
        .route("/admin/replication/reset-lag", post(reset_lag));
    let routes = if faults {
        routes
            .route("/admin/links/{peer}/{action}", post(link_action))
            .route("/admin/clock/skew", post(skew))
    } else {
        routes
            .route("/admin/links/{peer}/{action}", post(faults_off))
            .route("/admin/clock/skew", post(faults_off))
    };
    routes.with_state(AdminState { ctx, clock })
}

async fn faults_off() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "fault injection is off: start the region with --enable-fault-injection",
    )
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({"error": msg.into()}))).into_response()
}

async fn status(State(s): State<AdminState>) -> Response {
    let ctx = s.ctx.clone();
    let store = ctx.store.clone();
    let peers: Vec<String> = ctx.links.peers.keys().cloned().collect();
    let durable = tokio::task::spawn_blocking(move || {
        let watermarks = store.watermarks()?;
        let checkpoints = peers
            .iter()
            .map(|p| Ok((p.clone(), json!(store.checkpoint(p)?))))
            .collect::<Result<serde_json::Map<String, Value>, meridian_storage::StoreError>>()?;
        let gc = json!({
            "purged_through": store.purged_through()?,
            "bootstrap_pending": store.bootstrap_pending()?,
        });
        Ok::<_, meridian_storage::StoreError>((watermarks, checkpoints, store.head(), gc))
    })
    .await;
    let quarantine_dir = ctx.config.quarantine_dir.clone();
    let quarantined = tokio::task::spawn_blocking(move || {
        quarantine_dir
            .as_deref()
            .map(crate::quarantine::count)
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let (watermarks, checkpoints, head, gc) = match durable {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut links = Vec::new();
    let mut alarm = false;
    for (name, p) in &ctx.links.peers {
        let control = *p.control.borrow();
        for (direction, slot) in [("out", &p.outbound), ("in", &p.inbound)] {
            let Some(st) = slot.lock().ok().and_then(|g| g.clone()) else {
                continue;
            };
            alarm |= st.alarm;
            let mut v = serde_json::to_value(&st).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("peer".into(), json!(name));
                o.insert("direction".into(), json!(direction));
                o.insert(
                    "state".into(),
                    json!(if control.paused {
                        "paused"
                    } else if st.connected {
                        "connected"
                    } else {
                        "disconnected"
                    }),
                );
                o.insert("delay_ms".into(), json!(control.delay_ms));
                // The operator's switch as it is now (the driver's last snapshot may predate
                // a pause or resume).
                o.insert("paused".into(), json!(control.paused));
                if direction == "in" {
                    // Entries set aside and not yet cleared by an operator keep the alarm up.
                    let kept = quarantined.get(name).copied().unwrap_or(0);
                    o.insert("quarantined".into(), json!(kept));
                    if kept > 0 {
                        o.insert("alarm".into(), json!(true));
                        alarm = true;
                    }
                    let lag = p.apply_lag.lock().map(|h| h.summary()).unwrap_or_default();
                    o.insert("apply_lag_ms".into(), lag);
                    let lag = p
                        .receive_lag
                        .lock()
                        .map(|h| h.summary())
                        .unwrap_or_default();
                    o.insert("receive_lag_ms".into(), lag);
                    o.insert(
                        "stable_ts".into(),
                        json!(p.stable_ts.load(std::sync::atomic::Ordering::Acquire)),
                    );
                }
            }
            links.push(v);
        }
    }
    let (snapshots, stale) = ctx
        .links
        .snapshots
        .lock()
        .map(|s| {
            (
                serde_json::to_value(&*s).unwrap_or_default(),
                !s.stale_from.is_empty(),
            )
        })
        .unwrap_or_default();
    let hub = match &ctx.config.topology {
        Topology::Star { hub } => Some(hub.clone()),
        Topology::Mesh => None,
    };
    // A damaged journal's recovery: unfinished (what it waits for) or finished (what it did).
    let recovery = match ctx.store.recovery() {
        Some(r) => json!({
            "state": "waiting",
            "surviving_head": r.from,
            "lost_through": r.lost_through,
            "damage": r.damage,
            "waiting_for": crate::recover::waiting_for(&ctx, &ctx.holds_ours.borrow()),
        }),
        None => match &*ctx.recovered.borrow() {
            Some(done) => json!({
                "state": "finished",
                "skipped": [done.skipped.0, done.skipped.1],
                "recovered_from_peers": done.skipped.1 - done.skipped.0,
                "gone": done.gone(),
            }),
            None => Value::Null,
        },
    };
    alarm |= !recovery.is_null();
    Json(json!({
        "region": ctx.config.region,
        "topology": ctx.config.topology.kind(),
        "recovery": recovery,
        "hub": hub,
        "listen": ctx.local_addr.to_string(),
        "lag_alarm_ms": ctx.links.lag_alarm_ms,
        "alarm": alarm,
        "head": head,
        "links": links,
        "watermarks": watermarks,
        "checkpoints": checkpoints,
        "changelog": gc,
        "snapshots": snapshots,
        "stale": stale,
    }))
    .into_response()
}

/// Clears every inbound link's lag histograms (benchmarks measure from a clean start).
async fn reset_lag(State(s): State<AdminState>) -> Response {
    for p in s.ctx.links.peers.values() {
        for h in [&p.apply_lag, &p.receive_lag] {
            if let Ok(mut h) = h.lock() {
                h.reset();
            }
        }
    }
    Json(json!({"reset": true})).into_response()
}

#[derive(Deserialize)]
struct MsQuery {
    ms: Option<i64>,
    on: Option<bool>,
}

async fn link_action(
    State(s): State<AdminState>,
    Path((peer, action)): Path<(String, String)>,
    Query(q): Query<MsQuery>,
) -> Response {
    let Some(p) = s.ctx.links.peers.get(&peer) else {
        return error(StatusCode::NOT_FOUND, format!("no link with {peer}"));
    };
    match action.as_str() {
        "pause" => p.control.send_modify(|c| c.paused = true),
        "resume" => p.control.send_modify(|c| c.paused = false),
        "drop" => p.control.send_modify(|c| c.drops += 1),
        "delay" => {
            let Some(ms) = q.ms.filter(|m| (0..=MAX_DELAY_MS as i64).contains(m)) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("delay needs ?ms=N (0..={MAX_DELAY_MS})"),
                );
            };
            p.control.send_modify(|c| c.delay_ms = ms as u64);
        }
        "duplicate" | "reorder" | "byzantine" => {
            let Some(on) = q.on else {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("{action} needs ?on=true|false"),
                );
            };
            p.control.send_modify(|c| match action.as_str() {
                "duplicate" => c.duplicate = on,
                "reorder" => c.reorder = on,
                _ => c.byzantine = on,
            });
        }
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown link action {other:?} (pause | resume | drop | delay | duplicate | reorder | byzantine)"
                ),
            );
        }
    }
    tracing::info!(peer = %peer, action = %action, ms = ?q.ms, on = ?q.on, "link fault hook");
    let c = *p.control.borrow();
    Json(json!({
        "peer": peer, "paused": c.paused, "delay_ms": c.delay_ms, "drops": c.drops,
        "duplicate": c.duplicate, "reorder": c.reorder, "byzantine": c.byzantine,
    }))
    .into_response()
}

async fn skew(State(s): State<AdminState>, Query(q): Query<MsQuery>) -> Response {
    let Some(clock) = &s.clock else {
        return error(
            StatusCode::NOT_FOUND,
            "this region's clock cannot be skewed",
        );
    };
    let Some(ms) = q.ms else {
        return error(StatusCode::BAD_REQUEST, "skew needs ?ms=N");
    };
    if ms.unsigned_abs() > MAX_SKEW_MS {
        return error(
            StatusCode::BAD_REQUEST,
            format!("skew is at most ±{MAX_SKEW_MS} ms"),
        );
    }
    clock.set_skew_ms(ms);
    tracing::warn!(skew_ms = ms, "wall clock skewed by operator");
    Json(json!({"skew_ms": clock.skew_ms()})).into_response()
}
