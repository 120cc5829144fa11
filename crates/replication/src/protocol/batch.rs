//! The entries inside a [`Batch`]: encoding, compression, and the checks every batch passes
//! before anything in it is applied.
//!
//! ```text
//! payload (before compression) := entry*          exactly `count` of them
//! entry := varint(seq) ‖ varint(len) ‖ change     change = storage change record, format 01
//! ```
//!
//! The change record is the one the change log stores (`meridian_storage::record`), with its own
//! format byte: replication ships what was committed, byte for byte.

use super::ProtocolError;
use super::frame::{Batch, Compression, Payload};
use meridian_model::codec::{Reader, put_len_bytes, put_varint};
use meridian_storage::record::{decode_received_change, encode_change};
use meridian_storage::{ChangeEntry, ChangeOp};
use std::collections::HashMap;

/// Most entries in one batch.
pub const MAX_BATCH_ENTRIES: u32 = 100_000;
/// Largest payload before compression.
pub const MAX_RAW_BYTES: u32 = 32 * 1024 * 1024;
/// Payloads smaller than this are sent uncompressed.
pub const COMPRESS_MIN_BYTES: usize = 512;
/// Longest storage key accepted (DynamoDB: 2048-byte partition + 1024-byte sort key, encoded).
pub const MAX_KEY_BYTES: usize = 4096;

/// Where a batch sits in the sender's stream, and the sender's state when it was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// First local sequence covered.
    pub first: u64,
    /// Last local sequence covered.
    pub last: u64,
    /// Stream attempt.
    pub attempt: u32,
    /// Sender's change-log head.
    pub head: u64,
    /// Sender's HLC.
    pub hlc_now: u64,
}

/// Builds a batch frame from the entries of `header.first..=header.last` the link carries.
pub fn build(header: BatchHeader, entries: &[ChangeEntry]) -> Result<Batch, ProtocolError> {
    let records: Vec<(u64, Vec<u8>)> = entries.iter().map(|e| (e.seq, encode_change(e))).collect();
    build_records(header, records.iter().map(|(seq, r)| (*seq, r.as_slice())))
}

/// Builds a batch frame from change records as the change log stores them, each with its local
/// sequence: what the sync-out ships, without decoding and re-encoding the items.
pub fn build_records<'a>(
    header: BatchHeader,
    records: impl ExactSizeIterator<Item = (u64, &'a [u8])>,
) -> Result<Batch, ProtocolError> {
    let n = records.len();
    let mut raw = Vec::new();
    for (seq, record) in records {
        if raw.is_empty() {
            raw.reserve(n * (record.len() + 4));
        }
        put_varint(&mut raw, seq);
        put_len_bytes(&mut raw, record);
    }
    let raw_len = u32::try_from(raw.len())
        .ok()
        .filter(|n| *n <= MAX_RAW_BYTES)
        .ok_or(ProtocolError::TooLarge(raw.len()))?;
    let count = u32::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_BATCH_ENTRIES)
        .ok_or(ProtocolError::TooLarge(n))?;
    let (compression, payload) = if raw.len() >= COMPRESS_MIN_BYTES {
        let c = lz4_flex::block::compress(&raw);
        if c.len() < raw.len() {
            (Compression::Lz4, c)
        } else {
            (Compression::None, raw)
        }
    } else {
        (Compression::None, raw)
    };
    Ok(Batch {
        first: header.first,
        last: header.last,
        attempt: header.attempt,
        head: header.head,
        hlc_now: header.hlc_now,
        count,
        compression,
        raw_len,
        payload: Payload(payload),
    })
}

fn invalid(msg: impl Into<String>) -> ProtocolError {
    ProtocolError::Invalid(msg.into())
}

/// Whether `name` is a valid region name: 1–64 of `[A-Za-z0-9._-]`.
pub fn check_region_name(name: &str) -> Result<(), ProtocolError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("invalid region name {name:?}")))
    }
}

/// An entry of a well-framed batch that cannot be applied: its record could not be decoded or
/// breaks a rule of its own (names, key size, timestamp). It is set aside with its bytes —
/// `Quarantine` in the sync-in — and the rest of the stream goes on without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// The sender's local sequence of the entry.
    pub seq: u64,
    /// What is wrong with it.
    pub reason: String,
    /// The change record as received.
    pub record: Vec<u8>,
}

/// What [`open`] found in a batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Opened {
    /// The entries to apply, in sequence order.
    pub entries: Vec<ChangeEntry>,
    /// The entries set aside.
    pub quarantined: Vec<Quarantined>,
}

/// Decompresses and decodes a batch's entries and checks them for the receiving region
/// `receiver`. The batch as a whole is refused (nothing of it applied) unless:
///
/// - `1 ≤ first ≤ last`, `count ≤ MAX_BATCH_ENTRIES`, `raw_len ≤ MAX_RAW_BYTES`, the payload
///   decompresses to exactly `raw_len` bytes holding exactly `count` entries;
/// - entry sequences strictly increase within `first..=last`;
/// - per origin, GTID sequences are ≥ 1 and strictly increase (the dedup watermark relies on it);
/// - no entry originated at the receiver (loop prevention is the sender's job; a violation
///   means the two ends disagree about the topology).
///
/// An entry that is framed correctly but whose record does not decode, or whose region or
/// table names are invalid, whose item key is not 1–4096 bytes (table operations carry none)
/// or whose timestamp is zero, is [`Quarantined`] instead: the sender's stream is not held
/// forever behind one entry that can never apply.
pub fn open(batch: &Batch, receiver: &str) -> Result<Opened, ProtocolError> {
    if batch.first == 0 || batch.first > batch.last {
        return Err(invalid(format!(
            "bad range {}..={}",
            batch.first, batch.last
        )));
    }
    if batch.count > MAX_BATCH_ENTRIES || batch.raw_len > MAX_RAW_BYTES {
        return Err(ProtocolError::TooLarge(batch.raw_len as usize));
    }
    let span = batch.last - batch.first + 1;
    if u64::from(batch.count) > span {
        return Err(invalid("more entries than sequences in the range"));
    }
    let raw_len = batch.raw_len as usize;
    let raw = match batch.compression {
        Compression::None => {
            if batch.payload.0.len() != raw_len {
                return Err(invalid("payload length does not match raw_len"));
            }
            std::borrow::Cow::Borrowed(batch.payload.0.as_slice())
        }
        Compression::Lz4 => {
            let out = lz4_flex::block::decompress(&batch.payload.0, raw_len)
                .map_err(|e| invalid(format!("lz4: {e}")))?;
            if out.len() != raw_len {
                return Err(invalid("decompressed length does not match raw_len"));
            }
            std::borrow::Cow::Owned(out)
        }
    };
    let mut r = Reader::new(&raw);
    let mut opened = Opened {
        entries: Vec::with_capacity(batch.count as usize),
        quarantined: Vec::new(),
    };
    let mut prev_seq = batch.first - 1;
    let mut per_origin: HashMap<String, u64> = HashMap::new();
    for _ in 0..batch.count {
        let seq = r.varint().map_err(|_| invalid("truncated entry"))?;
        let body = r.len_bytes().map_err(|_| invalid("truncated entry"))?;
        if seq <= prev_seq || seq > batch.last {
            return Err(invalid(format!(
                "entry sequence {seq} out of order or outside {}..={}",
                batch.first, batch.last
            )));
        }
        prev_seq = seq;
        let e = match decode_received_change(seq, body)
            .map_err(|e| e.to_string())
            .and_then(|e| check_entry(&e).map(|()| e))
        {
            Ok(e) => e,
            Err(reason) => {
                opened.quarantined.push(Quarantined {
                    seq,
                    reason,
                    record: body.to_vec(),
                });
                continue;
            }
        };
        if e.gtid.origin == receiver {
            return Err(invalid(format!(
                "entry {} originated at the receiver {receiver}: the ends disagree about the topology",
                e.gtid
            )));
        }
        // A batch has a few origins and many entries: look up without cloning the name.
        // (Sequences start at 1: a first sequence of 0 is refused like a repeated one.)
        let last = per_origin.get_mut(e.gtid.origin.as_str());
        if e.gtid.seq <= last.as_deref().copied().unwrap_or(0) {
            return Err(invalid(format!(
                "origin sequences not strictly increasing at {}",
                e.gtid
            )));
        }
        match last {
            Some(last) => *last = e.gtid.seq,
            None => {
                per_origin.insert(e.gtid.origin.clone(), e.gtid.seq);
            }
        }
        opened.entries.push(e);
    }
    if !r.remaining().is_empty() {
        return Err(invalid("trailing bytes after the last entry"));
    }
    Ok(opened)
}

/// The rules one decoded entry must keep on its own (see [`open`]).
fn check_entry(e: &ChangeEntry) -> Result<(), String> {
    check_region_name(&e.gtid.origin).map_err(|e| e.to_string())?;
    check_region_name(&e.version.region).map_err(|e| e.to_string())?;
    meridian_model::table::check_table_name(&e.table, "table")
        .map_err(|_| format!("invalid table name {:?}", e.table))?;
    let table_op = matches!(e.op, ChangeOp::TableUpsert(_) | ChangeOp::TableDrop);
    if e.key.len() > MAX_KEY_BYTES || (e.key.is_empty() && !table_op) {
        return Err("storage key empty or too long".into());
    }
    if e.version.ts.0 == 0 {
        return Err("zero timestamp".into());
    }
    Ok(())
}

/// Checks that `sender` may send every entry of a batch to `receiver`: its origin is one the
/// topology ships over that link (a mesh peer: only its own changes; a star's hub: any other
/// region's; a spoke: only its own). An authenticated peer that sends another region's
/// sequence would otherwise silence that region: the receiver's dedup watermark would skip the
/// real changes as already applied.
pub fn check_origins(
    entries: &[ChangeEntry],
    topology: &crate::topology::Topology,
    sender: &str,
    receiver: &str,
) -> Result<(), ProtocolError> {
    match entries
        .iter()
        .find(|e| !topology.ships(sender, receiver, &e.gtid.origin))
    {
        Some(e) => Err(invalid(format!(
            "entry {} has an origin {sender} may not send to {receiver} ({} topology)",
            e.gtid,
            topology.kind()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_core::{Gtid, Timestamp, Version};
    use meridian_model::value::item_from_json;

    fn entry(seq: u64, origin: &str, oseq: u64) -> ChangeEntry {
        ChangeEntry {
            seq,
            gtid: Gtid {
                origin: origin.into(),
                seq: oseq,
            },
            table: "users".into(),
            key: vec![0, 0, 0, 1, b'k'],
            version: Version {
                ts: Timestamp::new(1_700_000_000_000, 1),
                region: origin.into(),
            },
            op: ChangeOp::Put(
                item_from_json(&serde_json::json!({"pk": {"S": "k"}, "v": {"S": "x".repeat(40)}}))
                    .expect("item"),
            ),
            crdt: None,
        }
    }

    fn header(first: u64, last: u64) -> BatchHeader {
        BatchHeader {
            first,
            last,
            attempt: 1,
            head: last,
            hlc_now: 1,
        }
    }

    /// Opened entries with their puts' items decoded (`open` keeps canonical items encoded).
    fn opened(b: &Batch) -> Vec<ChangeEntry> {
        let o = open(b, "b").expect("open");
        assert!(o.quarantined.is_empty(), "{:?}", o.quarantined);
        let mut v = o.entries;
        for e in &mut v {
            assert!(matches!(e.op, ChangeOp::PutEncoded(_)), "kept encoded");
            let item = e.op.item().expect("item").map(std::borrow::Cow::into_owned);
            e.op = ChangeOp::Put(item.expect("a put"));
        }
        v
    }

    #[test]
    fn a_peer_may_send_only_the_origins_its_link_carries() {
        use crate::topology::Topology;
        let own = [entry(1, "a", 1), entry(2, "a", 2)];
        let forged = [entry(1, "a", 1), entry(2, "c", 7)];
        let mesh = Topology::Mesh;
        assert!(check_origins(&own, &mesh, "a", "b").is_ok());
        let err = check_origins(&forged, &mesh, "a", "b")
            .expect_err("another region's entry from a mesh peer")
            .to_string();
        assert!(
            err.contains("may not send") && err.contains("mesh"),
            "{err}"
        );
        let star = Topology::Star { hub: "h".into() };
        // the hub forwards every other region's changes to a spoke; a spoke sends only its own
        assert!(check_origins(&forged, &star, "h", "b").is_ok());
        assert!(check_origins(&own, &star, "a", "h").is_ok());
        assert!(check_origins(&forged, &star, "a", "h").is_err());
    }

    #[test]
    fn round_trip_compressed_and_plain() {
        let small = vec![entry(3, "a", 3)];
        let b = build(header(1, 3), &small).expect("build");
        assert_eq!(b.compression, Compression::None);
        assert_eq!(opened(&b), small);
        let many: Vec<_> = (1..=50).map(|i| entry(i, "a", i)).collect();
        let b = build(header(1, 50), &many).expect("build");
        assert_eq!(b.compression, Compression::Lz4);
        assert!(b.payload.0.len() < b.raw_len as usize);
        assert_eq!(opened(&b), many);
    }

    #[test]
    fn refuses_what_must_not_be_applied() {
        let own = build(header(1, 1), &[entry(1, "b", 1)]).expect("build");
        assert!(open(&own, "b").is_err(), "loop back to the receiver");
        let out_of_range = build(header(1, 2), &[entry(5, "a", 5)]).expect("build");
        assert!(open(&out_of_range, "b").is_err());
        let regress = build(header(1, 2), &[entry(1, "a", 9), entry(2, "a", 8)]).expect("build");
        assert!(open(&regress, "b").is_err(), "origin sequence went back");
        let repeat = build(header(1, 2), &[entry(1, "a", 7), entry(2, "a", 7)]).expect("build");
        assert!(open(&repeat, "b").is_err(), "origin sequence repeated");
        let zero = build(header(1, 2), &[entry(1, "a", 3), entry(2, "c", 0)]).expect("build");
        assert!(open(&zero, "b").is_err(), "an origin's first sequence is 0");
        let two = build(
            header(1, 3),
            &[entry(1, "a", 3), entry(2, "c", 1), entry(3, "a", 4)],
        );
        assert_eq!(
            opened(&two.expect("build")).len(),
            3,
            "two origins interleaved"
        );
        let mut lying = build(header(1, 1), &[entry(1, "a", 1)]).expect("build");
        lying.count = 2;
        assert!(open(&lying, "b").is_err());
        let mut empty_range = build(header(1, 1), &[]).expect("build");
        empty_range.first = 2;
        assert!(open(&empty_range, "b").is_err());
    }

    #[test]
    fn an_empty_range_batch_is_valid() {
        let b = build(header(4, 9), &[]).expect("build");
        assert_eq!(open(&b, "b").expect("open"), Opened::default());
    }

    #[test]
    fn an_entry_that_cannot_apply_is_quarantined_and_the_rest_opens() {
        let mut bad_table = entry(2, "a", 2);
        bad_table.table = "x".into();
        let mut zero_ts = entry(3, "a", 3);
        zero_ts.version.ts = Timestamp(0);
        let good = [entry(1, "a", 1), entry(4, "a", 4)];
        let b = build(
            header(1, 4),
            &[good[0].clone(), bad_table.clone(), zero_ts, good[1].clone()],
        )
        .expect("build");
        let o = open(&b, "b").expect("a well-framed batch opens");
        assert_eq!(
            o.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 4]
        );
        assert_eq!(
            o.quarantined
                .iter()
                .map(|q| (q.seq, q.reason.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, "invalid table name \"x\""), (3, "zero timestamp")]
        );
        // the record is kept as received: it decodes to the entry that was sent
        let kept = meridian_storage::record::decode_change(2, &o.quarantined[0].record)
            .expect("the record as sent");
        assert_eq!(kept.table, bad_table.table);
        // bytes that are no change record at all are quarantined too, not the batch
        let mut raw = Vec::new();
        put_varint(&mut raw, 1);
        put_len_bytes(&mut raw, &[0xff, 0x00, 0x13]);
        let garbage = Batch {
            first: 1,
            last: 1,
            attempt: 1,
            head: 1,
            hlc_now: 0,
            count: 1,
            compression: Compression::None,
            raw_len: raw.len() as u32,
            payload: Payload(raw),
        };
        let o = open(&garbage, "b").expect("framing is fine");
        assert!(o.entries.is_empty() && o.quarantined.len() == 1, "{o:?}");
    }

    #[test]
    fn region_names() {
        assert!(check_region_name("us-east-1").is_ok());
        assert!(check_region_name("").is_err());
        assert!(check_region_name("a b").is_err());
        assert!(check_region_name(&"x".repeat(65)).is_err());
    }
}
