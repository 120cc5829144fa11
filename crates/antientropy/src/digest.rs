//! Bucket digests of a table (pure functions over its states, plus the store scan).

use meridian_model::table::TableMeta;
use meridian_storage::record::encode_change;
use meridian_storage::{ChangeEntry, ChangeOp, Store, StoreError};
use sha2::{Digest as _, Sha256};
use std::ops::Bound;

/// Number of buckets per table (the first byte of the partition hash).
pub const BUCKETS: usize = 256;

/// The states of one bucket, as change entries: `Put` (item, with counters) or `Delete`
/// (tombstone), each at its version, in key order.
pub fn bucket_states(
    store: &Store,
    table: &TableMeta,
    bucket: u8,
) -> Result<Vec<ChangeEntry>, StoreError> {
    let lo = Bound::Included(vec![bucket]);
    let hi = match bucket.checked_add(1) {
        Some(n) => Bound::Excluded(vec![n]),
        None => Bound::Unbounded,
    };
    let mut out: Vec<ChangeEntry> = Vec::new();
    for r in store.range(table, lo, hi, false)? {
        let (key, s) = r?;
        out.push(ChangeEntry::live_state(&table.name, key, s));
    }
    for (key, version, _) in store.tombstones(table)? {
        if key.first() == Some(&bucket) {
            out.push(ChangeEntry::tombstone_state(&table.name, key, version));
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// SHA-256 over the encoded states, in key order.
pub fn digest_of(states: &[ChangeEntry]) -> [u8; 32] {
    let mut h = Sha256::new();
    for s in states {
        let b = encode_change(s);
        h.update((b.len() as u64).to_be_bytes());
        h.update(&b);
    }
    h.finalize().into()
}

/// Every bucket's digest, and counts of items and tombstones.
pub struct TableDigest {
    /// Per-bucket digests.
    pub buckets: Vec<[u8; 32]>,
    /// Live items.
    pub items: usize,
    /// Tombstones.
    pub tombstones: usize,
}

impl TableDigest {
    /// One digest for the whole table.
    pub fn root(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for b in &self.buckets {
            h.update(b);
        }
        h.finalize().into()
    }

    /// Buckets whose digests differ from `other`'s.
    pub fn differing(&self, other: &[[u8; 32]]) -> Vec<u8> {
        (0..BUCKETS)
            .filter(|&i| self.buckets.get(i) != other.get(i))
            .map(|i| i as u8)
            .collect()
    }
}

/// Digests a whole table. Blocking.
pub fn table_digest(store: &Store, table: &TableMeta) -> Result<TableDigest, StoreError> {
    let mut buckets = Vec::with_capacity(BUCKETS);
    let (mut items, mut tombstones) = (0, 0);
    for b in 0..BUCKETS {
        let states = bucket_states(store, table, b as u8)?;
        items += states
            .iter()
            .filter(|s| matches!(s.op, ChangeOp::Put(_) | ChangeOp::PutEncoded(_)))
            .count();
        tombstones += states
            .iter()
            .filter(|s| matches!(s.op, ChangeOp::Delete))
            .count();
        buckets.push(digest_of(&states));
    }
    Ok(TableDigest {
        buckets,
        items,
        tombstones,
    })
}
