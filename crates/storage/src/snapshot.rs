//! Consistent snapshots of a region's replicated state, for a region that joins (or rejoins
//! after its peers' change logs were purged): the receiving region installs the snapshot's
//! states, then takes each origin's change stream from the snapshot's watermarks on — no gap,
//! and nothing applied twice.
//!
//! A snapshot is one fjall cross-keyspace snapshot, so the table list, every item and
//! tombstone, the dedup watermarks and the change-log head are read as of the same commit. It
//! is handed out as change entries in repair form (the state an item is in, as anti-entropy
//! ships it), tables first, so the receiver applies it with the merge and last-writer-wins
//! rules of every other path (`Store::repair`).

use crate::error::StoreError;
use crate::inner::Inner;
use crate::keys::u64_suffix;
use crate::keys::{self, META_GC, META_TABLE};
use crate::record::{self, ChangeEntry, ChangeOp};
use fjall::Readable;
use meridian_core::{Gtid, Timestamp, Version};
use meridian_model::table::TableMeta;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A point-in-time view of the store. Reading it is blocking; keep it short-lived (fjall keeps
/// the versions it references until it is dropped).
pub struct StoreSnapshot {
    inner: Arc<Inner>,
    snap: fjall::Snapshot,
    /// The change-log head as of the snapshot: every local change up to it is in the snapshot.
    pub head: u64,
    /// Per origin, the highest sequence applied as of the snapshot — this region's own
    /// included (its head), so a receiver can resume every origin's stream right after it.
    pub watermarks: BTreeMap<String, u64>,
    tables: Vec<TableMeta>,
}

impl StoreSnapshot {
    pub(crate) fn take(inner: Arc<Inner>) -> Result<StoreSnapshot, StoreError> {
        inner.check()?;
        let snap = inner.db.snapshot();
        let logged = match snap.last_key_value(&inner.log) {
            Some(kv) => u64_suffix(&kv.key()?, 0)?,
            None => 0,
        };
        let purged = match snap.get(&inner.meta, META_GC)? {
            Some(v) => record::decode_u64(&v)?,
            None => 0,
        };
        let head = logged.max(purged);
        let mut watermarks = BTreeMap::new();
        for kv in snap.prefix(&inner.meta, crate::keys::META_WATERMARK) {
            let (k, v) = kv.into_inner()?;
            let origin = String::from_utf8_lossy(k.get(2..).unwrap_or_default()).into_owned();
            watermarks.insert(origin, record::decode_u64(&v)?);
        }
        watermarks.insert(inner.region.clone(), head);
        let mut tables = Vec::new();
        for kv in snap.prefix(&inner.meta, META_TABLE) {
            let (_, v) = kv.into_inner()?;
            let t: TableMeta = serde_json::from_value(record::decode_json(&v)?)
                .map_err(|e| StoreError::Corrupt(format!("table meta: {e}")))?;
            tables.push(t);
        }
        Ok(StoreSnapshot {
            inner,
            snap,
            head,
            watermarks,
            tables,
        })
    }

    /// Every replicated state in the snapshot, as entries in repair form: first each live
    /// table (`TableUpsert` at its version), then each table's items (`Put`, with counters) and
    /// tombstones (`Delete` at the tombstone's version). Entry sequences and GTIDs are a running
    /// count under this region's name (they only order the stream; receivers apply the states).
    pub fn entries(&self) -> impl Iterator<Item = Result<ChangeEntry, StoreError>> + '_ {
        let me = self.inner.region.clone();
        let tables = self.tables.iter().map(move |t| {
            let version = t.version.clone().unwrap_or(Version {
                ts: Timestamp(1),
                region: me.clone(),
            });
            let op = ChangeOp::TableUpsert(Box::new(t.clone()));
            Ok(ChangeEntry::repair_form(
                &t.name,
                Vec::new(),
                version,
                op,
                None,
            ))
        });
        let states = self.tables.iter().flat_map(move |t| {
            let n = keys::prefix_len(t.id);
            let items = self
                .snap
                .prefix(&self.inner.items, keys::table_prefix(t.id))
                .map(move |kv| {
                    let (k, v) = kv.into_inner()?;
                    let key = k.get(n..).unwrap_or_default().to_vec();
                    let s = record::decode_item_record(&v)?;
                    Ok(ChangeEntry::live_state(&t.name, key, s))
                });
            let tombstones = self
                .snap
                .prefix(&self.inner.tombstones, keys::table_prefix(t.id))
                .map(move |kv| {
                    let (k, v) = kv.into_inner()?;
                    let key = k.get(n..).unwrap_or_default().to_vec();
                    let (version, _) = record::decode_tombstone(&v)?;
                    Ok(ChangeEntry::tombstone_state(&t.name, key, version))
                });
            items.chain(tombstones)
        });
        let origin = self.inner.region.clone();
        tables.chain(states).zip(1u64..).map(
            move |(e, n): (Result<ChangeEntry, StoreError>, u64)| {
                let mut e = e?;
                e.seq = n;
                e.gtid = Gtid {
                    origin: origin.clone(),
                    seq: n,
                };
                Ok(e)
            },
        )
    }
}
