//! Every key the store writes, in one place: the keyspaces' key builders and the `meta`
//! keyspace's prefixes and names. `docs/design/storage.md`, "Keyspaces and keys", draws the same
//! table.

use crate::error::StoreError;

// ---- `meta` keyspace ----

/// `t/<table name>` → table record (JSON).
pub(crate) const META_TABLE: &[u8] = b"t/";
/// `s/<table id:u64be>` → stats record.
pub(crate) const META_STATS: &[u8] = b"s/";
/// `d/<table id:u64be>`: a dropped table whose items are still being purged.
pub(crate) const META_DROPPED: &[u8] = b"d/";
/// `tt/<table name>` → the version that dropped the table (a table tombstone).
pub(crate) const META_TABLE_TOMBSTONE: &[u8] = b"tt/";
/// `w/<origin region>` → dedup watermark: the highest origin sequence applied.
pub(crate) const META_WATERMARK: &[u8] = b"w/";
/// `l/<link>` → outbound link checkpoint: the last local sequence the peer acknowledged.
pub(crate) const META_CHECKPOINT: &[u8] = b"l/";
/// The last HLC timestamp issued or observed.
pub(crate) const META_HLC: &[u8] = b"hlc";
/// The next table id.
pub(crate) const META_NEXT_TABLE_ID: &[u8] = b"next_table_id";
/// Present while a new region has not yet installed a snapshot from a peer.
pub(crate) const META_BOOTSTRAP: &[u8] = b"bootstrap";
/// The highest change-log sequence purged by garbage collection.
pub(crate) const META_GC: &[u8] = b"gc";
/// The highest purged sequence of a change this region originated.
pub(crate) const META_GC_OWN: &[u8] = b"gc_own";
/// The layout version (a u64 record). Missing in a store written before layouts had
/// versions: layout 1.
pub(crate) const META_LAYOUT: &[u8] = b"layout";
/// An unfinished recovery from a damaged journal (`recovery.rs`).
pub(crate) const META_RECOVERY: &[u8] = b"recovery";
/// `gap/<to:u64be>` → `from`: change-log sequences `(from, to]` skipped by a recovery.
pub(crate) const META_GAP: &[u8] = b"gap/";

/// Meta key of a recovery's gap ending at `to`.
pub(crate) fn gap_key(to: u64) -> Vec<u8> {
    let mut k = META_GAP.to_vec();
    k.extend(to.to_be_bytes());
    k
}

/// Meta key of the dedup watermark of an origin: `w/<origin>`.
pub(crate) fn watermark_key(origin: &str) -> Vec<u8> {
    let mut k = META_WATERMARK.to_vec();
    k.extend_from_slice(origin.as_bytes());
    k
}

/// Meta key of an outbound link's checkpoint (last sequence the peer acknowledged): `l/<link>`.
pub(crate) fn checkpoint_key(link: &str) -> Vec<u8> {
    let mut k = META_CHECKPOINT.to_vec();
    k.extend_from_slice(link.as_bytes());
    k
}

/// Key of an item's entry in an index: `varint(index_id) ‖ index storage key ‖ base storage key`
/// (`None` when the item has no value, or a value of the wrong type, for an index key).
pub(crate) fn index_entry_key(
    idx: &meridian_model::table::IndexMeta,
    item: &meridian_model::Item,
    base_key: &[u8],
) -> Option<Vec<u8>> {
    let ik = idx.key_schema.encode(item).ok()?;
    let mut k = table_prefix(idx.id);
    k.reserve(ik.len() + base_key.len());
    k.extend_from_slice(&ik);
    k.extend_from_slice(base_key);
    Some(k)
}

/// Meta key of a dropped table name's tombstone: `tt/<name>`.
pub(crate) fn table_tombstone_key(name: &str) -> Vec<u8> {
    let mut k = META_TABLE_TOMBSTONE.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// Meta key of a table's record: `t/<name>`.
pub(crate) fn table_meta_key(name: &str) -> Vec<u8> {
    let mut k = META_TABLE.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// A meta key of a table id: `prefix ‖ id:u64be` (stats, dropped-table markers).
pub(crate) fn id_key(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The big-endian u64 at `at` in a key (a sequence, a table id).
pub(crate) fn u64_suffix(k: &[u8], at: usize) -> Result<u64, StoreError> {
    let b: [u8; 8] = k
        .get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("short key".into()))?;
    Ok(u64::from_be_bytes(b))
}

// ---- `items`, `tombstones`, `index` keyspaces ----

/// The prefix of every key of one table (or index) in `items`, `tombstones` and `index`: the id
/// as LEB128 (`varint(id)`, one byte below 128).
///
/// LEB128 is prefix-free (the last byte is the only one below `0x80`), so one table's prefix
/// never starts another's and a prefix scan sees exactly one table. It is short so that the first
/// four bytes of a key, which the engine's memtables compare inline before following a pointer,
/// are mostly the partition hash: with an 8-byte id they were always `00 00 00 00`.
pub fn table_prefix(id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    let mut v = id;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// The smallest key greater than every key that starts with [`table_prefix`]`(id)`.
///
/// The prefix's last byte is below `0x80`, so adding one to it cannot carry.
pub fn table_end(id: u64) -> Vec<u8> {
    let mut out = table_prefix(id);
    if let Some(last) = out.last_mut() {
        *last += 1;
    }
    out
}

/// Key of a table's item or tombstone (or, with an index id, an index entry):
/// [`table_prefix`]`(id) ‖ storage key`.
pub fn item_key(table_id: u64, key: &[u8]) -> Vec<u8> {
    let mut k = table_prefix(table_id);
    k.extend_from_slice(key);
    k
}

/// The length of [`table_prefix`]`(id)`: where a full key's storage key starts.
pub fn prefix_len(id: u64) -> usize {
    (64 - id.leading_zeros()).max(1).div_ceil(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_prefixes_are_short_prefix_free_and_bound_their_keys() {
        let ids = [0, 1, 2, 126, 127, 128, 129, 300, 16_383, 16_384, u64::MAX];
        for &id in &ids {
            let p = table_prefix(id);
            assert_eq!(p.len(), prefix_len(id), "id {id}");
            assert!(p.len() <= 10);
            let key = item_key(id, b"\xff\xff\xff");
            assert!(key.starts_with(&p));
            assert!(p < table_end(id) && key < table_end(id), "id {id}");
            for &other in &ids {
                if other != id {
                    assert!(
                        !item_key(other, b"").starts_with(&p),
                        "{other} starts with {id}"
                    );
                    let o = item_key(other, b"\x00");
                    assert!(
                        o < p || o >= table_end(id),
                        "{other}'s keys inside {id}'s range"
                    );
                }
            }
        }
        assert_eq!(table_prefix(1), vec![1]);
        assert_eq!(table_prefix(300), vec![0xac, 0x02]);
    }
}
