//! Byte formats of every stored record. Each record starts with a format byte; readers refuse
//! formats they do not know instead of guessing. See `docs/design/storage.md`.

use crate::error::StoreError;
use meridian_core::{Gtid, Timestamp, Version};
use meridian_model::Item;
use meridian_model::codec::{
    Reader, canonical_item_size, decode_item, encode_item, put_len_bytes, put_varint, read_item,
};
use meridian_model::crdt::{Crdt, State, codec as crdt_codec};
use meridian_model::table::TableMeta;

/// Format byte of records this version writes (all but item records).
pub const FORMAT_V1: u8 = 1;
/// Format byte of item records with counter metadata (format 1 item records are still read).
pub const FORMAT_V2: u8 = 2;

/// An item as stored: its version, attributes and counter metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredItem {
    /// Version of the write that produced this state.
    pub version: Version,
    /// Attributes.
    pub item: Item,
    /// Counter metadata (`None`: no counters; see `meridian_model::crdt`).
    pub crdt: Option<Crdt>,
}

impl StoredItem {
    /// As a mergeable state.
    pub fn to_state(&self) -> State {
        State {
            version: self.version.clone(),
            item: self.item.clone(),
            crdt: self.crdt.clone(),
        }
    }
}

/// What a change did to its item.
#[derive(Clone, Debug, PartialEq)]
pub enum ChangeOp {
    /// The item now has these attributes.
    Put(Item),
    /// A put received from another region, its item still encoded (see [`EncodedItem`]).
    PutEncoded(EncodedItem),
    /// The item was deleted by a client.
    Delete,
    /// The item was deleted by the TTL expirer.
    TtlDelete,
    /// The table was created or its metadata changed (replicated DDL; `key` is empty).
    TableUpsert(Box<TableMeta>),
    /// The table was deleted (replicated DDL; `key` is empty).
    TableDrop,
}

impl ChangeOp {
    /// The item a put leaves (decoded if it arrived encoded); `None` for other operations.
    pub fn item(&self) -> Result<Option<std::borrow::Cow<'_, Item>>, StoreError> {
        Ok(match self {
            ChangeOp::Put(item) => Some(std::borrow::Cow::Borrowed(item)),
            ChangeOp::PutEncoded(e) => Some(std::borrow::Cow::Owned(e.decode()?)),
            _ => None,
        })
    }
}

/// A put's item as a received change record carries it: checked, not decoded. The bytes are
/// exactly what `encode_item` writes for the item (so the item record can be built from them
/// without decoding and encoding it again); made only by [`decode_received_change`].
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedItem {
    bytes: Vec<u8>,
    size: usize,
}

impl EncodedItem {
    /// The encoded item.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The item's size as DynamoDB counts it (`meridian_model::size::item_size`).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The item.
    pub fn decode(&self) -> Result<Item, StoreError> {
        decode_item(&self.bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// One entry of the change log.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeEntry {
    /// Position in this region's change log (1, 2, 3, … without gaps).
    pub seq: u64,
    /// Global id: origin region and the entry's position in the origin's log.
    pub gtid: Gtid,
    /// Table name.
    pub table: String,
    /// Storage key of the item within the table.
    pub key: Vec<u8>,
    /// Version of the change.
    pub version: Version,
    /// The change.
    pub op: ChangeOp,
    /// Counter metadata of a `Put` whose item has counters.
    pub crdt: Option<Crdt>,
}

impl ChangeEntry {
    /// A live item's state in repair form (what anti-entropy and snapshots ship and
    /// `Store::repair` applies): a `Put` with its counters at the item's version. Not a
    /// change-log entry: `seq` is 0 and the GTID names the version's region with sequence 0.
    pub fn live_state(table: &str, key: Vec<u8>, s: StoredItem) -> Self {
        Self::repair_form(table, key, s.version, ChangeOp::Put(s.item), s.crdt)
    }

    /// A tombstone in repair form: a `Delete` at the tombstone's version (see
    /// [`ChangeEntry::live_state`]).
    pub fn tombstone_state(table: &str, key: Vec<u8>, version: Version) -> Self {
        Self::repair_form(table, key, version, ChangeOp::Delete, None)
    }

    /// A state of `table` (an item, a tombstone or the table's metadata) in repair form.
    pub(crate) fn repair_form(
        table: &str,
        key: Vec<u8>,
        version: Version,
        op: ChangeOp,
        crdt: Option<Crdt>,
    ) -> Self {
        ChangeEntry {
            seq: 0,
            gtid: Gtid {
                origin: version.region.clone(),
                seq: 0,
            },
            table: table.to_owned(),
            key,
            version,
            op,
            crdt,
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn check_format(r: &mut Reader<'_>, what: &str) -> Result<(), StoreError> {
    match r.u8() {
        Ok(FORMAT_V1) => Ok(()),
        Ok(other) => Err(StoreError::Corrupt(format!(
            "{what}: unknown record format {other}"
        ))),
        Err(_) => Err(corrupt(what)),
    }
}

fn put_version(out: &mut Vec<u8>, v: &Version) {
    out.extend_from_slice(&v.ts.0.to_be_bytes());
    put_len_bytes(out, v.region.as_bytes());
}

fn read_version(r: &mut Reader<'_>) -> Result<Version, StoreError> {
    let ts = r.u64_be().map_err(|_| corrupt("version"))?;
    let region = r.string().map_err(|_| corrupt("version region"))?;
    Ok(Version {
        ts: Timestamp(ts),
        region,
    })
}

/// `02 ‖ ts:u64be ‖ len(region) region ‖ item ‖ (00 | 01 crdt)`
pub fn encode_item_record(s: &StoredItem) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_V2);
    put_version(&mut out, &s.version);
    encode_item(&s.item, &mut out);
    put_crdt(&mut out, s.crdt.as_ref());
    out
}

/// The item record (format 2, no counters) of a received put at `version`, built from its
/// encoded item without decoding it: the bytes [`encode_item_record`] writes for that state.
pub fn encoded_item_record(version: &Version, item: &EncodedItem) -> Vec<u8> {
    let mut out = Vec::with_capacity(item.bytes.len() + version.region.len() + 11);
    out.push(FORMAT_V2);
    put_version(&mut out, version);
    out.extend_from_slice(&item.bytes);
    out.push(0);
    out
}

fn put_crdt(out: &mut Vec<u8>, c: Option<&Crdt>) {
    match c {
        None => out.push(0),
        Some(c) => {
            out.push(1);
            crdt_codec::encode(c, out);
        }
    }
}

fn read_crdt(r: &mut Reader<'_>) -> Result<Option<Crdt>, StoreError> {
    match r.u8().map_err(|_| corrupt("crdt"))? {
        0 => Ok(None),
        1 => crdt_codec::read(r)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.to_string())),
        _ => Err(corrupt("crdt tag")),
    }
}

/// Decodes an item record (format 1: no counter metadata; format 2: with it).
pub fn decode_item_record(b: &[u8]) -> Result<StoredItem, StoreError> {
    let mut r = Reader::new(b);
    let format = r.u8().map_err(|_| corrupt("item"))?;
    if format != FORMAT_V1 && format != FORMAT_V2 {
        return Err(StoreError::Corrupt(format!(
            "item: unknown record format {format}"
        )));
    }
    let version = read_version(&mut r)?;
    let item = read_item(&mut r, 0).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let crdt = if format == FORMAT_V2 {
        read_crdt(&mut r)?
    } else {
        None
    };
    if !r.remaining().is_empty() {
        return Err(corrupt("item: trailing bytes"));
    }
    Ok(StoredItem {
        version,
        item,
        crdt,
    })
}

/// `01 ‖ item_body`: an index entry (the projected attributes).
pub fn encode_index_entry(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_V1);
    encode_item(item, &mut out);
    out
}

/// Decodes an index entry.
pub fn decode_index_entry(b: &[u8]) -> Result<Item, StoreError> {
    let mut r = Reader::new(b);
    check_format(&mut r, "index entry")?;
    decode_item(r.remaining()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// `01 ‖ ts:u64be ‖ len(region) region ‖ seq:u64be` — the delete's version and the local
/// change-log sequence that recorded it (the tombstone may be purged once every peer has
/// acknowledged that sequence).
pub fn encode_tombstone(v: &Version, seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.push(FORMAT_V1);
    put_version(&mut out, v);
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// Decodes a tombstone record into its version and local sequence.
pub fn decode_tombstone(b: &[u8]) -> Result<(Version, u64), StoreError> {
    let mut r = Reader::new(b);
    check_format(&mut r, "tombstone")?;
    let v = read_version(&mut r)?;
    let seq = r.u64_be().map_err(|_| corrupt("tombstone"))?;
    Ok((v, seq))
}

/// `01 ‖ len(origin) origin ‖ varint(origin_seq) ‖ len(table) table ‖ len(key) key ‖ version ‖
/// op:u8 (1 put, 2 delete, 3 ttl-delete, 4 put with counters, 5 table upsert, 6 table drop)
/// ‖ item (puts) ‖ crdt (4 only) ‖ varint(len) table-meta-json (5 only)`.
/// The local sequence is the key.
pub fn encode_change(e: &ChangeEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.push(FORMAT_V1);
    put_len_bytes(&mut out, e.gtid.origin.as_bytes());
    put_varint(&mut out, e.gtid.seq);
    put_len_bytes(&mut out, e.table.as_bytes());
    put_len_bytes(&mut out, &e.key);
    put_version(&mut out, &e.version);
    match &e.op {
        ChangeOp::Put(item) => match &e.crdt {
            None => {
                out.push(1);
                encode_item(item, &mut out);
            }
            Some(c) => {
                out.push(4);
                encode_item(item, &mut out);
                crdt_codec::encode(c, &mut out);
            }
        },
        ChangeOp::PutEncoded(item) => {
            out.push(1);
            out.extend_from_slice(&item.bytes);
        }
        ChangeOp::Delete => out.push(2),
        ChangeOp::TtlDelete => out.push(3),
        ChangeOp::TableUpsert(meta) => {
            out.push(5);
            let json = serde_json::to_vec(meta).unwrap_or_default();
            put_len_bytes(&mut out, &json);
        }
        ChangeOp::TableDrop => out.push(6),
    }
    out
}

/// The origin region of an encoded change-log entry, read without decoding the rest.
pub fn change_origin(b: &[u8]) -> Result<&str, StoreError> {
    let mut r = Reader::new(b);
    check_format(&mut r, "change")?;
    let origin = r.len_bytes().map_err(|_| corrupt("change"))?;
    std::str::from_utf8(origin).map_err(|_| corrupt("change origin"))
}

/// The origin region and the version's timestamp of an encoded change-log entry, read from
/// its header without decoding the item.
pub fn change_header(b: &[u8]) -> Result<(&str, Timestamp), StoreError> {
    let mut r = Reader::new(b);
    check_format(&mut r, "change")?;
    let bad = |_| corrupt("change");
    let origin = r.len_bytes().map_err(bad)?;
    let origin = std::str::from_utf8(origin).map_err(|_| corrupt("change origin"))?;
    r.varint().map_err(bad)?; // origin sequence
    r.len_bytes().map_err(bad)?; // table
    r.len_bytes().map_err(bad)?; // key
    let ts = r.u64_be().map_err(|_| corrupt("version"))?;
    Ok((origin, Timestamp(ts)))
}

/// Decodes a change-log entry stored at sequence `seq`.
pub fn decode_change(seq: u64, b: &[u8]) -> Result<ChangeEntry, StoreError> {
    decode_change_as(seq, b, false)
}

/// Decodes a change-log entry received from another region: as [`decode_change`], except that
/// a put without counters whose item is in canonical form keeps it encoded
/// ([`ChangeOp::PutEncoded`]). A region applying it writes the item record from those bytes,
/// and decodes the item only when it needs its attributes (indexes, a counter merge, a local
/// write to it in the same commit). Any other item is decoded, and refused if it is corrupt,
/// as before.
pub fn decode_received_change(seq: u64, b: &[u8]) -> Result<ChangeEntry, StoreError> {
    decode_change_as(seq, b, true)
}

fn decode_change_as(seq: u64, b: &[u8], keep_encoded: bool) -> Result<ChangeEntry, StoreError> {
    let mut r = Reader::new(b);
    check_format(&mut r, "change")?;
    let bad = |_| corrupt("change");
    let origin = r.string().map_err(bad)?;
    let origin_seq = r.varint().map_err(bad)?;
    let table = r.string().map_err(bad)?;
    let key = r.len_bytes().map_err(bad)?.to_vec();
    let version = read_version(&mut r)?;
    let item = |r: &mut Reader<'_>| read_item(r, 0).map_err(|e| StoreError::Corrupt(e.to_string()));
    let (op, crdt) = match r.u8().map_err(bad)? {
        1 if keep_encoded => {
            let start = r.remaining();
            match canonical_item_size(&mut r, 0) {
                Some(size) => {
                    let len = start.len() - r.remaining().len();
                    let bytes = start.get(..len).unwrap_or_default().to_vec();
                    (ChangeOp::PutEncoded(EncodedItem { bytes, size }), None)
                }
                None => {
                    r = Reader::new(start);
                    (ChangeOp::Put(item(&mut r)?), None)
                }
            }
        }
        1 => (ChangeOp::Put(item(&mut r)?), None),
        2 => (ChangeOp::Delete, None),
        3 => (ChangeOp::TtlDelete, None),
        4 => {
            let it = item(&mut r)?;
            let c = crdt_codec::read(&mut r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            (ChangeOp::Put(it), Some(c))
        }
        5 => {
            let json = r.len_bytes().map_err(bad)?;
            let meta: TableMeta = serde_json::from_slice(json)
                .map_err(|e| StoreError::Corrupt(format!("table change: {e}")))?;
            (ChangeOp::TableUpsert(Box::new(meta)), None)
        }
        6 => (ChangeOp::TableDrop, None),
        _ => return Err(corrupt("change op")),
    };
    if !r.remaining().is_empty() {
        return Err(corrupt("change: trailing bytes"));
    }
    Ok(ChangeEntry {
        seq,
        gtid: Gtid {
            origin,
            seq: origin_seq,
        },
        table,
        key,
        version,
        op,
        crdt,
    })
}

/// `01 ‖ item_count:i64be ‖ size_bytes:i64be`
pub fn encode_stats(count: i64, bytes: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    out.push(FORMAT_V1);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&bytes.to_be_bytes());
    out
}

/// Decodes a stats record.
pub fn decode_stats(b: &[u8]) -> Result<(i64, i64), StoreError> {
    let mut r = Reader::new(b);
    check_format(&mut r, "stats")?;
    let c = r.u64_be().map_err(|_| corrupt("stats"))?;
    let s = r.u64_be().map_err(|_| corrupt("stats"))?;
    Ok((c as i64, s as i64))
}

/// `01 ‖ u64be`
pub fn encode_u64(v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.push(FORMAT_V1);
    out.extend_from_slice(&v.to_be_bytes());
    out
}

/// Decodes a `u64` record.
pub fn decode_u64(b: &[u8]) -> Result<u64, StoreError> {
    let mut r = Reader::new(b);
    check_format(&mut r, "counter")?;
    r.u64_be().map_err(|_| corrupt("counter"))
}

/// `01 ‖ json`: table metadata.
pub fn encode_json(v: &serde_json::Value) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    out.extend_from_slice(v.to_string().as_bytes());
    out
}

/// Decodes a JSON record.
pub fn decode_json(b: &[u8]) -> Result<serde_json::Value, StoreError> {
    let mut r = Reader::new(b);
    check_format(&mut r, "json")?;
    serde_json::from_slice(r.remaining()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_model::value::item_from_json;

    fn item() -> Item {
        item_from_json(&serde_json::json!({"pk": {"S": "a"}, "n": {"N": "1"}})).expect("item")
    }

    fn version() -> Version {
        Version {
            ts: Timestamp::new(1_700_000_000_000, 2),
            region: "us-east".into(),
        }
    }

    #[test]
    fn item_record_round_trip_and_fixture() {
        let s = StoredItem {
            version: version(),
            item: item(),
            crdt: None,
        };
        let b = encode_item_record(&s);
        assert_eq!(decode_item_record(&b).expect("decode"), s);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        // 02 | ts 018bcfe568000002 | len 07 "us-east" | 2 attrs: "n" N "1", "pk" S "a" | 00 no crdt
        assert_eq!(
            hex,
            "02018bcfe5680000020775732d6561737402016e02013102706b01016100"
        );
        // Format 1 records (written before counters existed) still read, without counters.
        let v1 = "01018bcfe5680000020775732d6561737402016e02013102706b010161";
        let v1: Vec<u8> = (0..v1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&v1[i..i + 2], 16).expect("hex"))
            .collect();
        assert_eq!(decode_item_record(&v1).expect("decode v1"), s);
        // with counters
        let mut crdt = meridian_model::crdt::Crdt::default();
        crdt.stamp(&version());
        let with = StoredItem {
            crdt: Some(crdt),
            ..s
        };
        assert_eq!(
            decode_item_record(&encode_item_record(&with)).expect("decode"),
            with
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Change records arrive from peers: any bytes, and any change to a valid record, fail
        /// cleanly or decode to a change that re-encodes to the same change — never a panic.
        #[test]
        fn any_change_record_decodes_cleanly(
            random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            at in 0usize..200,
            byte in proptest::prelude::any::<u8>(),
            cut in 0usize..200,
        ) {
            let _ = decode_change(1, &random);
            let _ = decode_received_change(1, &random);
            let e = ChangeEntry {
                seq: 7,
                gtid: Gtid { origin: "eu-west".into(), seq: 42 },
                table: "t".into(),
                key: vec![1, 2, 3],
                version: version(),
                op: ChangeOp::Put(item()),
                crdt: None,
            };
            let mut b = encode_change(&e);
            let i = at % b.len();
            b[i] = byte;
            b.truncate(b.len() - cut % b.len());
            for d in [decode_change(7, &b), decode_received_change(7, &b)].into_iter().flatten() {
                let again = decode_change(7, &encode_change(&d)).expect("re-encoded decodes");
                proptest::prop_assert_eq!(again.seq, d.seq);
                proptest::prop_assert_eq!(again.gtid, d.gtid);
            }
        }
    }

    #[test]
    fn change_round_trip() {
        for op in [ChangeOp::Put(item()), ChangeOp::Delete, ChangeOp::TtlDelete] {
            let e = ChangeEntry {
                seq: 7,
                gtid: Gtid {
                    origin: "eu-west".into(),
                    seq: 42,
                },
                table: "t".into(),
                key: vec![1, 2, 3],
                version: version(),
                op,
                crdt: None,
            };
            assert_eq!(decode_change(7, &encode_change(&e)).expect("decode"), e);
            if matches!(e.op, ChangeOp::Put(_)) {
                let mut crdt = meridian_model::crdt::Crdt::default();
                crdt.stamp(&version());
                let e = ChangeEntry {
                    crdt: Some(crdt),
                    ..e
                };
                assert_eq!(decode_change(7, &encode_change(&e)).expect("decode"), e);
            }
        }
    }

    /// A received put without counters keeps its item encoded; the record written from it is
    /// byte for byte the one `encode_item_record` writes for the decoded item, and it ships
    /// again as the same change bytes. With counters, or not in canonical form, it is decoded.
    #[test]
    fn a_received_put_keeps_its_item_encoded_and_writes_the_same_record() {
        let e = ChangeEntry {
            seq: 7,
            gtid: Gtid {
                origin: "eu-west".into(),
                seq: 42,
            },
            table: "t".into(),
            key: vec![1, 2, 3],
            version: version(),
            op: ChangeOp::Put(item()),
            crdt: None,
        };
        let wire = encode_change(&e);
        let rx = decode_received_change(7, &wire).expect("decode");
        let ChangeOp::PutEncoded(enc) = &rx.op else {
            panic!("kept encoded: {:?}", rx.op);
        };
        assert_eq!(enc.decode().expect("item"), item());
        assert_eq!(enc.size(), meridian_model::size::item_size(&item()));
        let stored = StoredItem {
            version: version(),
            item: item(),
            crdt: None,
        };
        assert_eq!(
            encoded_item_record(&version(), enc),
            encode_item_record(&stored)
        );
        assert_eq!(encode_change(&rx), wire);
        let mut crdt = meridian_model::crdt::Crdt::default();
        crdt.stamp(&version());
        let counted = ChangeEntry {
            crdt: Some(crdt),
            ..e.clone()
        };
        let rx = decode_received_change(7, &encode_change(&counted)).expect("decode");
        assert_eq!(rx, counted, "a put with counters is decoded");
        // The same item with its two names in the wrong order: decodes, but is not canonical.
        let pos = wire
            .windows(3)
            .position(|w| w == [2, 1, b'n'])
            .expect("the item");
        let mut swapped = wire[..pos].to_vec();
        swapped.extend_from_slice(&[2, 2, b'p', b'k', 1, 1, b'a', 1, b'n', 2, 1, b'1']);
        let rx = decode_received_change(7, &swapped).expect("decode");
        assert_eq!(rx, e, "a non-canonical item is decoded in full");
    }

    #[test]
    fn unknown_format_is_refused() {
        let mut b = encode_tombstone(&version(), 3);
        assert_eq!(decode_tombstone(&b).expect("decode"), (version(), 3));
        b[0] = 9;
        assert!(matches!(decode_tombstone(&b), Err(StoreError::Corrupt(_))));
        assert!(decode_item_record(&[]).is_err());
        assert!(decode_change(1, &[1, 200]).is_err());
    }
}
