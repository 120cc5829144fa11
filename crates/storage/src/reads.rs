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
        Ok(scan(&self.inner.items, table.id, lower, upper, reverse)
            .map(|kv| kv.and_then(|(k, v)| Ok((k, record::decode_item_record(&v)?)))))
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
        Ok(scan(&self.inner.index, index_id, lower, upper, reverse)
            .map(|kv| kv.and_then(|(k, v)| Ok((k, record::decode_index_entry(&v)?)))))
    }
}

/// The entries of one table (or index) `id` of keyspace `ks` with keys in `(lower, upper)`,
/// ascending or descending: each key without the table prefix, and its value as stored.
fn scan(
    ks: &fjall::Keyspace,
    id: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
) -> impl Iterator<Item = Result<(Vec<u8>, fjall::Slice), StoreError>> + use<> {
    let (lo, hi) = prefixed_bounds(id, lower, upper);
    let n = keys::prefix_len(id);
    let iter = ks.range::<Vec<u8>, _>((lo, hi));
    let iter: Box<dyn Iterator<Item = fjall::Guard> + Send> = if reverse {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    };
    iter.map(move |g| {
        let (k, v) = g.into_inner()?;
        Ok((k.get(n..).unwrap_or_default().to_vec(), v))
    })
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
