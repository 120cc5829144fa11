//! A read-only check of the engine's write-ahead journals, run before the engine opens them.
//!
//! fjall's recovery ends a journal at the first entry that does not decode and truncates the
//! file there. That is right for a torn tail — a batch cut short by a crash before its fsync,
//! which was never acknowledged — and silently loses acknowledged writes when the damage is
//! anywhere before the tail. This module tells the two apart: damage is **before the tail** when
//! a complete batch (start marker, its items, an end marker whose checksum matches) follows the
//! bad bytes in the same journal, or when the journal is not the newest one. Only then does
//! [`check`] report a [`Damage`]; a torn tail is left to fjall's truncation.
//!
//! The format read here is fjall 3.1's journal (`fjall/src/journal/entry.rs`): a batch is
//! `Start{count:u32, seqno:u64}`, `count` × (`Item` | `Clear`), `End{xxh3_64 of the items'
//! bytes, "FJL\x03"}`, little-endian, one tag byte each; files are preallocated with zeros. The
//! storage contract tests write real journals with fjall and damage them, so a format change in
//! an upgrade fails there first.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

const TAG_START: u8 = 1;
const TAG_ITEM: u8 = 2;
const TAG_END: u8 = 3;
const TAG_CLEAR: u8 = 4;
const TRAILER: &[u8; 4] = b"FJL\x03";

/// Damage before a journal's tail: starting the engine on it would drop the batches after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The journal file.
    pub file: PathBuf,
    /// Byte offset of the first batch that does not decode.
    pub offset: u64,
    /// What was wrong there.
    pub reason: String,
    /// Complete batches after the damage (in this journal and the newer ones) that recovery
    /// would drop.
    pub batches_after: u64,
    /// Items (writes of any keyspace) in those batches.
    pub items_after: u64,
    /// Per keyspace id, the largest 8-byte key written in those batches, read as a big-endian
    /// number (the change log's keys are local sequences).
    pub max_u64_key_after: BTreeMap<u64, u64>,
}

impl Damage {
    /// The highest change-log sequence among the dropped batches, given the change log's
    /// keyspace id.
    pub fn lost_log_seq(&self, log_keyspace: u64) -> Option<u64> {
        self.max_u64_key_after.get(&log_keyspace).copied()
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "journal {} is damaged at byte {} ({}), and {} complete batches ({} writes) follow the \
             damage; opening it would silently drop them",
            self.file.display(),
            self.offset,
            self.reason,
            self.batches_after,
            self.items_after
        )
    }
}

/// One decoded batch.
struct Batch {
    end: usize,
    items: u64,
    keys: Vec<(u64, u64)>,
}

/// Reads the batch starting at `at`; `Err` says why it is not a complete, intact batch.
fn read_batch(buf: &[u8], at: usize) -> Result<Batch, String> {
    let mut r = Cursor { buf, pos: at };
    match r.u8()? {
        TAG_START => {}
        0 => return Err("end of data".into()),
        t => return Err(format!("expected a batch start, found tag {t}")),
    }
    let count = r.u32()?;
    let _seqno = r.u64()?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut keys = Vec::new();
    for _ in 0..count {
        let entry_start = r.pos;
        match r.u8()? {
            TAG_ITEM => {
                let value_type = r.u8()?;
                if !matches!(value_type, 0 | 1 | 2 | 4) {
                    return Err(format!("item with an unknown value type {value_type}"));
                }
                let compression = r.u8()?;
                if compression > 1 {
                    return Err(format!("item with an unknown compression {compression}"));
                }
                let keyspace = r.u64()?;
                let key_len = usize::from(r.u16()?);
                let _value_len = r.u32()?;
                let stored_len = r.u32()? as usize;
                let key = r.take(key_len)?;
                r.take(stored_len)?;
                if let Ok(k) = <[u8; 8]>::try_from(key) {
                    keys.push((keyspace, u64::from_be_bytes(k)));
                }
            }
            TAG_CLEAR => {
                r.u64()?;
            }
            t => return Err(format!("expected an item, found tag {t}")),
        }
        hasher.update(&buf[entry_start..r.pos]);
    }
    match r.u8()? {
        TAG_END => {}
        t => return Err(format!("expected a batch end, found tag {t}")),
    }
    let checksum = r.u64()?;
    if r.take(TRAILER.len())? != TRAILER {
        return Err("batch end without its trailer".into());
    }
    if hasher.digest() != checksum {
        return Err("batch checksum mismatch".into());
    }
    Ok(Batch {
        end: r.pos,
        items: u64::from(count),
        keys,
    })
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err("cut short by the end of the file".into());
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
}

/// What one journal holds.
#[derive(Debug)]
pub struct Scan {
    /// Where the intact prefix ends, and why it ends there (`None`: it runs to the end of the
    /// data, the preallocated zeros or the end of the file).
    pub bad: Option<(u64, String)>,
    /// Complete batches after `bad`.
    pub batches_after: u64,
    /// Items in those batches.
    pub items_after: u64,
    keys_after: Vec<(u64, u64)>,
}

/// Reads one journal's bytes (what [`check`] does for each file). Never panics, whatever the
/// bytes.
pub fn scan(buf: &[u8]) -> Scan {
    let mut pos = 0;
    let mut out = Scan {
        bad: None,
        batches_after: 0,
        items_after: 0,
        keys_after: Vec::new(),
    };
    loop {
        if buf[pos..].iter().all(|b| *b == 0) {
            return out;
        }
        match read_batch(buf, pos) {
            Ok(b) => pos = b.end,
            Err(reason) => {
                out.bad = Some((pos as u64, reason));
                break;
            }
        }
    }
    // Look for complete batches after the bad bytes: any start tag that begins one.
    let mut at = pos + 1;
    while at < buf.len() {
        if buf[at] == TAG_START
            && let Ok(b) = read_batch(buf, at)
        {
            out.batches_after += 1;
            out.items_after += b.items;
            out.keys_after.extend(b.keys);
            at = b.end;
            continue;
        }
        at += 1;
    }
    out
}

/// The journals of the store at `dir`, oldest first.
fn journals(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for e in entries {
        let path = e?.path();
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jnl"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            found.push((id, path));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Checks every journal of the store at `dir`; `Some` when one is damaged before its tail.
pub fn check(dir: &Path) -> std::io::Result<Option<Damage>> {
    let files = journals(dir)?;
    let mut damage: Option<Damage> = None;
    for (i, file) in files.iter().enumerate() {
        let mut buf = Vec::new();
        std::fs::File::open(file)?.read_to_end(&mut buf)?;
        let s = scan(&buf);
        let newest = i + 1 == files.len();
        if let Some(d) = &mut damage {
            // Everything in a journal newer than the damaged one is lost with it.
            let whole = scan_intact(&buf, &s);
            d.batches_after += whole.0;
            d.items_after += whole.1;
            merge_keys(&mut d.max_u64_key_after, whole.2);
            continue;
        }
        let Some((offset, reason)) = s.bad else {
            continue;
        };
        if newest && s.batches_after == 0 {
            continue; // a torn tail: never acknowledged
        }
        let mut max_keys = BTreeMap::new();
        merge_keys(&mut max_keys, s.keys_after);
        damage = Some(Damage {
            file: file.clone(),
            offset,
            reason,
            batches_after: s.batches_after,
            items_after: s.items_after,
            max_u64_key_after: max_keys,
        });
    }
    Ok(damage)
}

/// Cuts the journals at `damage`: the damaged journal ends where the damage starts and every
/// newer journal is removed (their batches come after the damage, and replaying them over the
/// hole would apply changes without the ones before them). Synced before it returns.
pub fn truncate_at(dir: &Path, damage: &Damage) -> std::io::Result<()> {
    let files = journals(dir)?;
    let Some(i) = files.iter().position(|f| *f == damage.file) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is gone", damage.file.display()),
        ));
    };
    let f = std::fs::OpenOptions::new().write(true).open(&damage.file)?;
    f.set_len(damage.offset)?;
    f.sync_all()?;
    for newer in &files[i + 1..] {
        std::fs::remove_file(newer)?;
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Counts of a whole journal's complete batches: `(batches, items, keys)`.
fn scan_intact(buf: &[u8], s: &Scan) -> (u64, u64, Vec<(u64, u64)>) {
    let mut batches = s.batches_after;
    let mut items = s.items_after;
    let mut keys = s.keys_after.clone();
    let end = s.bad.as_ref().map_or(buf.len(), |(o, _)| *o as usize);
    let mut pos = 0;
    while pos < end {
        match read_batch(buf, pos) {
            Ok(b) => {
                batches += 1;
                items += b.items;
                keys.extend(b.keys);
                pos = b.end;
            }
            Err(_) => break,
        }
    }
    (batches, items, keys)
}

fn merge_keys(into: &mut BTreeMap<u64, u64>, keys: Vec<(u64, u64)>) {
    for (ks, k) in keys {
        let e = into.entry(ks).or_insert(k);
        *e = (*e).max(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ks: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut b = vec![TAG_ITEM, 0, 0];
        b.extend(ks.to_le_bytes());
        b.extend((key.len() as u16).to_le_bytes());
        b.extend((value.len() as u32).to_le_bytes());
        b.extend((value.len() as u32).to_le_bytes());
        b.extend(key);
        b.extend(value);
        b
    }

    fn batch(seqno: u64, items: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![TAG_START];
        b.extend((items.len() as u32).to_le_bytes());
        b.extend(seqno.to_le_bytes());
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for i in items {
            h.update(i);
            b.extend(i);
        }
        b.push(TAG_END);
        b.extend(h.digest().to_le_bytes());
        b.extend(TRAILER);
        b
    }

    fn journal(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut starts = Vec::new();
        for s in 1..=n {
            starts.push(buf.len());
            buf.extend(batch(s, &[item(7, &s.to_be_bytes(), b"value")]));
        }
        buf.extend(vec![0u8; 4096]);
        (buf, starts)
    }

    #[test]
    fn an_intact_journal_and_a_torn_tail_are_fine() {
        let (buf, starts) = journal(5);
        let s = scan(&buf);
        assert!(s.bad.is_none());
        // the last batch cut in the middle, zeros after it
        let mut torn = buf[..starts[4] + 10].to_vec();
        torn.extend(vec![0u8; 100]);
        let s = scan(&torn);
        assert_eq!(s.bad.as_ref().map(|b| b.0), Some(starts[4] as u64));
        assert_eq!(s.batches_after, 0);
    }

    #[test]
    fn damage_before_the_tail_counts_what_follows() {
        let (mut buf, starts) = journal(5);
        buf[starts[1]] = 0x7f; // the second batch's start tag
        let s = scan(&buf);
        assert_eq!(s.bad.as_ref().map(|b| b.0), Some(starts[1] as u64));
        assert_eq!(s.batches_after, 3);
        assert_eq!(s.keys_after.iter().map(|k| k.1).max(), Some(5));
        // a flipped value byte: the checksum catches it
        let (mut buf, starts) = journal(5);
        let last_value_byte = starts[3] - 4 - 8 - 1 - 1;
        buf[last_value_byte] ^= 1;
        let s = scan(&buf);
        assert_eq!(s.bad.map(|b| b.0), Some(starts[2] as u64));
        assert_eq!(s.batches_after, 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// A damaged disk is hostile input: any bytes scan without a panic, and damage is never
        /// placed past the data.
        #[test]
        fn any_bytes_scan_without_a_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Some((offset, _)) = scan(&bytes).bad {
                proptest::prop_assert!(offset <= bytes.len() as u64);
            }
        }

        /// A byte changed inside an item of any batch but the last is found there (the
        /// checksum covers every item byte) with the later batches counted.
        #[test]
        fn a_changed_item_byte_is_damage(batch in 0usize..4, at in 0usize..30, to in 1u8..=255) {
            let (mut buf, starts) = journal(5);
            let item_start = starts[batch] + 13;
            let i = item_start + at % 30;
            buf[i] ^= to;
            let s = scan(&buf);
            proptest::prop_assert_eq!(s.bad.map(|b| b.0), Some(starts[batch] as u64));
            proptest::prop_assert_eq!(s.batches_after as usize, 4 - batch);
        }
    }

    #[test]
    fn check_reports_damage_with_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (mut buf, starts) = journal(4);
        buf[starts[0] + 1] = 0xff; // item count 255: the batch cannot be complete
        std::fs::write(dir.path().join("3.jnl"), &buf).unwrap();
        let d = check(dir.path()).unwrap().expect("damage");
        assert_eq!(d.offset, 0);
        assert_eq!(d.batches_after, 3);
        assert_eq!(d.lost_log_seq(7), Some(4));
        assert!(d.to_string().contains("3.jnl is damaged at byte 0"), "{d}");
        // a newer journal makes even a damaged tail of the older one damage
        let (mut older, starts) = journal(2);
        older.truncate(starts[1] + 5);
        std::fs::write(dir.path().join("3.jnl"), &older).unwrap();
        std::fs::write(dir.path().join("4.jnl"), journal(3).0).unwrap();
        let d = check(dir.path()).unwrap().expect("damage");
        assert_eq!((d.offset, d.batches_after), (starts[1] as u64, 3));
    }
}
