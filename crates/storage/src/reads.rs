//! Point and range reads of items, tombstones and index entries, straight from the engine.

use crate::error::StoreError;
use crate::keys::{self};
use crate::record::{self, StoredItem};
use crate::store::Store;
use meridian_model::table::TableMeta;
use std::ops::Bound;

impl Store {
    /// Reads one item. Blocking.
    pub fn get(&self, table: &TableMeta, key: &[u8]) -> Result<Option<StoredItem>, StoreError> {
        self.inner.check()?;
        match self.inner.items.get(keys::item_key(table.id, key))? {
            Some(v) => Ok(Some(record::decode_item_record(&v)?)),
            None => Ok(None),
        }
    }

    /// Iterates a table's items with storage keys in `(lower, upper)`, ascending or descending.
    /// Keys are returned without the table prefix. Blocking.
    pub fn range(
        &self,
        table: &TableMeta,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Result<impl Iterator<Item = Result<(Vec<u8>, StoredItem), StoreError>> + use<>, StoreError>
    {
        self.inner.check()?;
        let (lo, hi) = prefixed_bounds(table.id, lower, upper);
        let n = keys::prefix_len(table.id);
        let iter = self.inner.items.range::<Vec<u8>, _>((lo, hi));
        let iter: Box<dyn Iterator<Item = fjall::Guard> + Send> = if reverse {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        Ok(iter.map(move |g| {
            let (k, v) = g.into_inner()?;
            let key = k.get(n..).unwrap_or_default().to_vec();
            Ok((key, record::decode_item_record(&v)?))
        }))
    }

    /// The version of an item's current state, live or tombstone (for anti-entropy). Blocking.
    pub fn item_version(
        &self,
        table: &TableMeta,
        key: &[u8],
    ) -> Result<Option<meridian_core::Version>, StoreError> {
        self.inner.check()?;
        let full = keys::item_key(table.id, key);
        if let Some(v) = self.inner.items.get(&full)? {
            return Ok(Some(record::decode_item_record(&v)?.version));
        }
        match self.inner.tombstones.get(&full)? {
            Some(v) => Ok(Some(record::decode_tombstone(&v)?.0)),
            None => Ok(None),
        }
    }

    /// Iterates a table's tombstones: `(storage key, version, local sequence)`. Blocking.
    pub fn tombstones(
        &self,
        table: &TableMeta,
    ) -> Result<Vec<(Vec<u8>, meridian_core::Version, u64)>, StoreError> {
        self.inner.check()?;
        let mut out = Vec::new();
        let n = keys::prefix_len(table.id);
        for kv in self.inner.tombstones.prefix(keys::table_prefix(table.id)) {
            let (k, v) = kv.into_inner()?;
            let (version, seq) = record::decode_tombstone(&v)?;
            out.push((k.get(n..).unwrap_or_default().to_vec(), version, seq));
        }
        Ok(out)
    }

    /// Iterates an index's entries with index storage keys (`index key ‖ base key`) in
    /// `(lower, upper)`, ascending or descending. Keys are returned without the index id. Blocking.
    pub fn index_range(
        &self,
        index_id: u64,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Result<
        impl Iterator<Item = Result<(Vec<u8>, meridian_model::Item), StoreError>> + use<>,
        StoreError,
    > {
        self.inner.check()?;
        let (lo, hi) = prefixed_bounds(index_id, lower, upper);
        let n = keys::prefix_len(index_id);
        let iter = self.inner.index.range::<Vec<u8>, _>((lo, hi));
        let iter: Box<dyn Iterator<Item = fjall::Guard> + Send> = if reverse {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        Ok(iter.map(move |g| {
            let (k, v) = g.into_inner()?;
            let key = k.get(n..).unwrap_or_default().to_vec();
            Ok((key, record::decode_index_entry(&v)?))
        }))
    }
}

/// Bounds over `varint(id) ‖ key` for key bounds within one table or index.
fn prefixed_bounds(
    id: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = match lower {
        Bound::Included(k) => Bound::Included(keys::item_key(id, &k)),
        Bound::Excluded(k) => Bound::Excluded(keys::item_key(id, &k)),
        Bound::Unbounded => Bound::Included(keys::table_prefix(id)),
    };
    let hi = match upper {
        Bound::Included(k) => Bound::Included(keys::item_key(id, &k)),
        Bound::Excluded(k) => Bound::Excluded(keys::item_key(id, &k)),
        Bound::Unbounded => Bound::Excluded(keys::table_end(id)),
    };
    (lo, hi)
}
