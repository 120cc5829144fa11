//! The on-disk key layout's version, and the upgrade from older layouts, run by
//! [`Store::open`](crate::Store::open) before the writer starts.
//!
//! - Layout 1 keyed `items`, `tombstones` and `index` by `id:u64be ‖ key`.
//! - Layout 2 keys them by `varint(id) ‖ key` ([`keys::table_prefix`]): the memtables compare a
//!   key's first four bytes inline before they follow a pointer to the rest, and in layout 1 those
//!   were always `00 00 00 00` (docs/design/storage.md, "Table prefix and layout versions").
//!
//! Table ids start at 1, so every layout-1 key starts with `00` and no layout-2 key does. The
//! upgrade moves the `00…` keys chunk by chunk, each chunk one atomic batch (remove the old key,
//! insert the new one), so a crash leaves every entry under exactly one of its two keys and the
//! next open goes on where it stopped. The layout mark is written, synced, only once no `00…` key
//! is left.

use crate::StoreError;
use crate::keys;
use crate::record;
use fjall::{Database, Keyspace, PersistMode};
use std::ops::Bound;
use std::time::{Duration, Instant};

use crate::keys::META_LAYOUT;

/// The layout this build writes.
pub(crate) const LAYOUT: u64 = 2;

/// Entries moved per atomic batch.
const CHUNK: usize = 2_000;

/// How often a long upgrade logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Brings a store to [`LAYOUT`]. `fresh` is a store with nothing in it yet, which is marked and
/// needs no upgrade. Refuses a layout newer than this build's.
pub(crate) fn ensure(
    db: &Database,
    meta: &Keyspace,
    keyspaces: &[(&str, &Keyspace)],
    fresh: bool,
) -> Result<(), StoreError> {
    let found = match meta.get(META_LAYOUT)? {
        Some(v) => record::decode_u64(&v)?,
        None if fresh => {
            // Like the bootstrap mark, written without a sync: if it is lost, the store is still
            // empty at the next start and is marked again.
            meta.insert(META_LAYOUT, record::encode_u64(LAYOUT))?;
            return Ok(());
        }
        None => 1,
    };
    match found {
        LAYOUT => Ok(()),
        1 => upgrade_from_1(db, meta, keyspaces),
        newer => Err(StoreError::Layout(format!(
            "the data directory has on-disk layout {newer}, newer than this build's ({LAYOUT}); \
             run a newer meridian on it"
        ))),
    }
}

fn upgrade_from_1(
    db: &Database,
    meta: &Keyspace,
    keyspaces: &[(&str, &Keyspace)],
) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut moved = 0u64;
    for &(name, ks) in keyspaces {
        moved += move_layout_1_keys(db, name, ks)?;
    }
    db.persist(PersistMode::SyncAll)?;
    meta.insert(META_LAYOUT, record::encode_u64(LAYOUT))?;
    db.persist(PersistMode::SyncAll)?;
    tracing::info!(
        entries = moved,
        seconds = started.elapsed().as_secs_f64(),
        "store upgraded from on-disk layout 1 to {LAYOUT}"
    );
    Ok(())
}

/// Moves every `id:u64be ‖ key` entry of `ks` to `varint(id) ‖ key`; returns how many.
fn move_layout_1_keys(db: &Database, name: &str, ks: &Keyspace) -> Result<u64, StoreError> {
    let mut moved = 0u64;
    let mut last_log = Instant::now();
    let mut after: Option<Vec<u8>> = None;
    loop {
        // Resume after the last moved key instead of rescanning from `00`: the scan would
        // otherwise step over every removed key again.
        let lo = match after.take() {
            Some(k) => Bound::Excluded(k),
            None => Bound::Included(vec![0u8]),
        };
        let chunk: Vec<(fjall::Slice, fjall::Slice)> = ks
            .range::<Vec<u8>, _>((lo, Bound::Excluded(vec![1u8])))
            .take(CHUNK)
            .map(|g| g.into_inner())
            .collect::<Result<_, _>>()?;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        after = Some(last.to_vec());
        let mut b = db.batch();
        for (k, v) in &chunk {
            let id_bytes: [u8; 8] =
                k.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| {
                    StoreError::Corrupt(format!("{name}: a layout-1 key shorter than its table id"))
                })?;
            let id = u64::from_be_bytes(id_bytes);
            b.insert(ks, keys::item_key(id, &k[8..]), v.clone());
            b.remove(ks, k.clone());
        }
        b.commit()?;
        moved += chunk.len() as u64;
        if last_log.elapsed() >= PROGRESS_EVERY {
            last_log = Instant::now();
            tracing::info!(
                keyspace = name,
                moved,
                "upgrading the store to on-disk layout {LAYOUT}"
            );
        }
    }
    Ok(moved)
}
