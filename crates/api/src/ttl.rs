//! Time to live: where a table's TTL setting lives, which items have expired, and the
//! background expirer that deletes them.
//!
//! The setting is kept in `TableMeta.extra["TimeToLive"]` as
//! `{"AttributeName": "...", "TimeToLiveStatus": "ENABLED"}`.
//!
//! **Expiry rule** (DynamoDB's): an item expires when its TTL attribute is a number of epoch
//! seconds not after now; items without the attribute, with another type, or with a time more
//! than five years in the past are never expired.
//!
//! **The expirer** wakes every `ApiConfig::ttl_interval_ms`, and for each table with TTL
//! enabled scans at most [`SCAN_PER_TICK`] items from where it stopped last time (wrapping
//! around at the end), so a tick's work is bounded however large the table. Expired items are
//! deleted through `Store::write` as [`ChangeKind::TtlDelete`] — the normal write path, so the
//! delete is in the change log (and replicates) marked as a TTL delete — and only if the item
//! still carries the same expired TTL value when the writer decides: a concurrent update that
//! extends the TTL wins.

use crate::state::AppState;
use meridian_model::table::TableMeta;
use meridian_model::{AttributeValue, Item, Number};
use meridian_storage::{Change, ChangeKind, Store, StoreError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

/// Key of the TTL setting in `TableMeta.extra`.
pub const TTL_KEY: &str = "TimeToLive";
/// Items examined per table per tick.
pub const SCAN_PER_TICK: usize = 1000;
/// Items deleted per table per tick (one `Store::write`).
pub const DELETE_PER_TICK: usize = 100;
/// TTL values further in the past than this are ignored, as DynamoDB does.
pub const MAX_AGE_SECS: i64 = 5 * 366 * 24 * 3600;

/// The TTL attribute of a table, when TTL is enabled.
pub fn ttl_attribute(t: &TableMeta) -> Option<&str> {
    let spec = t.extra.get(TTL_KEY)?;
    if spec.get("TimeToLiveStatus").and_then(Value::as_str) != Some("ENABLED") {
        return None;
    }
    spec.get("AttributeName").and_then(Value::as_str)
}

/// The stored setting for "enabled on `attr`".
pub fn enabled(attr: &str) -> Value {
    json!({"AttributeName": attr, "TimeToLiveStatus": "ENABLED"})
}

/// The item's TTL value if the item has expired at `now` (epoch seconds).
pub fn expired(item: &Item, attr: &str, now: i64) -> Option<Number> {
    let AttributeValue::N(n) = item.get(attr)? else {
        return None;
    };
    let now_n = Number::from(now);
    let oldest = Number::from(now.saturating_sub(MAX_AGE_SECS));
    (*n <= now_n && *n >= oldest).then(|| n.clone())
}

/// Starts the `ttl-expirer` worker in the store's registry.
pub fn spawn_ttl_expirer(state: AppState) {
    let interval = Duration::from_millis(state.inner.config.ttl_interval_ms.max(10));
    let workers = state.store().workers().clone();
    workers.spawn(
        "ttl-expirer",
        TtlExpirer {
            state,
            interval,
            cursors: HashMap::new(),
        },
    );
}

/// Deletes expired items, a bounded scan per table every interval.
struct TtlExpirer {
    state: AppState,
    interval: Duration,
    /// Where each table's scan goes on, by table id.
    cursors: HashMap<u64, Vec<u8>>,
}

impl meridian_worker::Worker for TtlExpirer {
    async fn step(&mut self) -> Result<meridian_worker::Next, String> {
        if self.state.store().is_poisoned() {
            return Ok(meridian_worker::Next::Done);
        }
        let deleted = tick(self.state.store(), &mut self.cursors).await;
        if deleted > 0 {
            tracing::debug!(deleted, "ttl expirer deleted expired items");
        }
        Ok(meridian_worker::Next::After(self.interval))
    }
}

/// One pass over every TTL-enabled table; returns how many items were deleted.
async fn tick(store: &Store, cursors: &mut HashMap<u64, Vec<u8>>) -> usize {
    let tables: Vec<Arc<TableMeta>> = store
        .table_names()
        .iter()
        .filter_map(|n| store.table(n))
        .filter(|t| ttl_attribute(t).is_some())
        .collect();
    cursors.retain(|id, _| tables.iter().any(|t| t.id == *id));
    let mut deleted = 0;
    for t in tables {
        let Some(attr) = ttl_attribute(&t).map(str::to_owned) else {
            continue;
        };
        let now = (store.wall_ms() / 1000) as i64;
        let from = cursors.remove(&t.id);
        let s = store.clone();
        let t2 = t.clone();
        let a2 = attr.clone();
        let scanned = tokio::task::spawn_blocking(move || scan(&s, &t2, &a2, from, now)).await;
        let (found, next) = match scanned {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(table = %t.name, error = %e, "ttl scan failed");
                continue;
            }
            Err(e) => {
                tracing::warn!(table = %t.name, error = %e, "ttl scan task failed");
                continue;
            }
        };
        if let Some(k) = next {
            cursors.insert(t.id, k);
        }
        if found.is_empty() {
            continue;
        }
        match delete_expired(store, t.clone(), &attr, found).await {
            Ok(n) => deleted += n,
            Err(StoreError::NoSuchTable(_)) => {}
            Err(e) => tracing::warn!(table = %t.name, error = %e, "ttl delete failed"),
        }
    }
    deleted
}

type Found = Vec<(Vec<u8>, Number)>;

/// Scans up to [`SCAN_PER_TICK`] items after `from`; returns the expired ones and where to go
/// on next time (`None`: the end was reached, start over).
fn scan(
    store: &Store,
    t: &TableMeta,
    attr: &str,
    from: Option<Vec<u8>>,
    now: i64,
) -> Result<(Found, Option<Vec<u8>>), StoreError> {
    let lower = from.map_or(Bound::Unbounded, Bound::Excluded);
    let mut found = Vec::new();
    let mut last = None;
    let mut n = 0;
    for entry in store.range(t, lower, Bound::Unbounded, false)? {
        let (key, stored) = entry?;
        n += 1;
        if let Some(v) = expired(&stored.item, attr, now) {
            found.push((key.clone(), v));
        }
        if n >= SCAN_PER_TICK || found.len() >= DELETE_PER_TICK {
            last = Some(key);
            break;
        }
    }
    Ok((found, last))
}

/// Deletes the items that still carry the expired TTL value seen by the scan.
async fn delete_expired(
    store: &Store,
    t: Arc<TableMeta>,
    attr: &str,
    found: Found,
) -> Result<usize, StoreError> {
    let reads = found.iter().map(|(k, _)| (t.clone(), k.clone())).collect();
    let attr = attr.to_owned();
    let now = (store.wall_ms() / 1000) as i64;
    store
        .write(reads, move |cur| {
            let changes: Vec<Change> = found
                .into_iter()
                .zip(cur)
                .filter(|((_, seen), c)| {
                    c.as_ref()
                        .and_then(|s| expired(&s.item, &attr, now))
                        .is_some_and(|v| v == *seen)
                })
                .map(|((key, _), _)| Change {
                    table: t.clone(),
                    key,
                    kind: ChangeKind::TtlDelete,
                })
                .collect();
            let n = changes.len();
            (changes, n)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: AttributeValue) -> Item {
        let mut i = Item::new();
        i.insert("exp".into(), v);
        i
    }

    fn n(s: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(s).unwrap())
    }

    #[test]
    fn expiry_rule() {
        let now = 1_700_000_000;
        assert!(expired(&item(n("1699999999")), "exp", now).is_some());
        assert!(expired(&item(n("1700000000")), "exp", now).is_some());
        assert!(expired(&item(n("1699999999.5")), "exp", now).is_some());
        assert!(expired(&item(n("1700000001")), "exp", now).is_none());
        // Older than five years: never expired.
        assert!(expired(&item(n("1000")), "exp", now).is_none());
        // Not a number, or absent.
        assert!(expired(&item(AttributeValue::S("1".into())), "exp", now).is_none());
        assert!(expired(&item(n("1")), "other", now).is_none());
    }
}
