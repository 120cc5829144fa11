//! Reads and writes racing flushes and the compactions they trigger. With 32 KiB memtables the
//! store flushes every few dozen writes (asserted: table files on disk), so every read and write
//! below runs against version changes of the LSM trees — the code Meridian patches in `vendor/lsm-tree` (a flush or
//! compaction persists its new version without holding the tree's version lock). Checked: no
//! read ever sees an item older than a write already acknowledged, and after a reopen every item
//! holds its last write and the change log is gapless. A second test writes table files larger
//! than the writeback step of the other patch (1 MiB, `sync_file_range` while a table is written).
#![allow(clippy::unwrap_used)]

use meridian_core::SystemClock;
use meridian_model::value::item_from_json;
use meridian_model::{AttributeValue, Item, Number};
use meridian_storage::{Store, StoreOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

mod common;
use common::{meta, put};

const WRITERS: usize = 4;
const KEYS_PER_WRITER: usize = 100;
const WRITES_PER_WRITER: i64 = 1500;

fn key_name(w: usize, k: usize) -> String {
    format!("w{w}-k{k:03}")
}

/// Padding makes each write a few hundred bytes, so the memtables fill quickly.
fn item(pk: &str, v: i64) -> Item {
    item_from_json(&serde_json::json!({
        "pk": {"S": pk},
        "v": {"N": v.to_string()},
        "pad": {"S": "x".repeat(200)},
    }))
    .unwrap()
}

fn value_of(it: &Item) -> Number {
    match it.get("v") {
        Some(AttributeValue::N(n)) => n.clone(),
        other => panic!("item without a number v: {other:?}"),
    }
}

fn open(dir: &std::path::Path) -> Store {
    let mut opts = StoreOptions::new(dir, "r1", SystemClock::new());
    opts.memtable_bytes = 32 * 1024;
    Store::open(opts).unwrap()
}

/// Sizes of the table files of all trees under the store's directory.
fn table_files(dir: &std::path::Path) -> Vec<u64> {
    fn walk(p: &std::path::Path, in_tables: bool, out: &mut Vec<u64>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                let tables = in_tables || e.file_name() == "tables";
                walk(&path, tables, out);
            } else if in_tables {
                out.push(e.metadata().map(|m| m.len()).unwrap_or(0));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, false, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_stay_consistent_while_tiny_memtables_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = store.create_table(meta("t")).await.unwrap();
    // acked[w * KEYS_PER_WRITER + k]: the last acknowledged value of that key (-1: none yet).
    let acked: Arc<Vec<AtomicI64>> = Arc::new(
        (0..WRITERS * KEYS_PER_WRITER)
            .map(|_| AtomicI64::new(-1))
            .collect(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));

    let mut readers = Vec::new();
    for r in 0..2usize {
        let (s, t, acked, done, reads) = (
            store.clone(),
            t.clone(),
            acked.clone(),
            done.clone(),
            reads.clone(),
        );
        readers.push(tokio::task::spawn_blocking(move || {
            let mut slot = r * 7;
            while !done.load(Ordering::Acquire) {
                slot = (slot + 13) % acked.len();
                let floor = acked[slot].load(Ordering::Acquire);
                let name = key_name(slot / KEYS_PER_WRITER, slot % KEYS_PER_WRITER);
                let key = t.key_schema.encode(&item(&name, 0)).unwrap();
                let got = s.get(&t, &key).unwrap();
                if floor >= 0 {
                    let got = got.unwrap_or_else(|| panic!("{name}: acknowledged, not found"));
                    assert!(
                        value_of(&got.item) >= Number::from(floor),
                        "{name}: read {} after {floor} was acknowledged",
                        value_of(&got.item)
                    );
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (s, t, acked) = (store.clone(), t.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..WRITES_PER_WRITER {
                let k = (i as usize * 37) % KEYS_PER_WRITER;
                let it = item(&key_name(w, k), i);
                put(&s, &t, it).await;
                acked[w * KEYS_PER_WRITER + k].store(i, Ordering::Release);
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.await.unwrap();
    }
    let total = WRITERS as u64 * WRITES_PER_WRITER as u64;
    assert_eq!(store.head(), 1 + total);
    assert!(
        reads.load(Ordering::Relaxed) > 1000,
        "the readers ran {} reads only",
        reads.load(Ordering::Relaxed)
    );
    let files = table_files(dir.path()).len();
    eprintln!(
        "{total} writes, {} concurrent reads, {files} table files on disk",
        reads.load(Ordering::Relaxed)
    );
    // ~1 MB of items and as much change log through 32 KiB memtables: dozens of flushes.
    assert!(
        files >= 4,
        "only {files} table files: the memtables did not flush"
    );
    store.shutdown();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.head(), 1 + total);
    let t = store.table("t").unwrap();
    let seqs: Vec<u64> = store
        .changes(1, 100_000)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=1 + total).collect::<Vec<_>>());
    for (slot, last) in acked.iter().enumerate() {
        let name = key_name(slot / KEYS_PER_WRITER, slot % KEYS_PER_WRITER);
        let key = t.key_schema.encode(&item(&name, 0)).unwrap();
        let got = store.get(&t, &key).unwrap().unwrap();
        assert_eq!(
            value_of(&got.item),
            Number::from(last.load(Ordering::Acquire)),
            "{name} after reopen"
        );
    }
    assert_eq!(
        store.stats(t.id).item_count,
        (WRITERS * KEYS_PER_WRITER) as i64
    );
}

/// Table files of several MiB (4 MiB memtables, ~3.2 KiB items): the vendored lsm-tree starts
/// their writeback every 1 MiB while it writes them. Every item reads back after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_files_larger_than_the_writeback_step_read_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let open_big = |dir: &std::path::Path| {
        let mut opts = StoreOptions::new(dir, "r1", SystemClock::new());
        opts.memtable_bytes = 4 * 1024 * 1024;
        Store::open(opts).unwrap()
    };
    // The padding is pseudo-random hex (xorshift from the item number), so the table blocks
    // do not compress to nothing.
    let big = |i: usize| {
        let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let pad: String = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{x:016x}")
            })
            .collect();
        item_from_json(&serde_json::json!({
            "pk": {"S": format!("big-{i:05}")},
            "v": {"N": i.to_string()},
            "pad": {"S": pad},
        }))
        .unwrap()
    };
    const N: usize = 4_000;
    let store = open_big(dir.path());
    let t = store.create_table(meta("big")).await.unwrap();
    for i in 0..N {
        put(&store, &t, big(i)).await;
    }
    // ~13 MB of items and as much change log through 4 MiB memtables: flushed while writing.
    store.shutdown();
    drop(store);
    let largest = table_files(dir.path()).into_iter().max().unwrap_or(0);
    assert!(
        largest > 2 * 1024 * 1024,
        "largest table file {largest} B: none spans two writeback steps"
    );

    let store = open_big(dir.path());
    let t = store.table("big").unwrap();
    for i in 0..N {
        let key = t.key_schema.encode(&big(i)).unwrap();
        let got = store.get(&t, &key).unwrap().unwrap();
        assert_eq!(got.item, big(i), "item {i} after reopen");
    }
    assert_eq!(store.stats(t.id).item_count, N as i64);
}
