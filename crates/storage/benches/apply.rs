//! How fast a region applies changes replicated from another region: the receiver's side of a
//! catch-up (`meridian bench catchup`), without the network, the other regions or the HTTP
//! front competing for the CPU.
//!
//! `cargo bench -p meridian-storage --bench apply [-- ENTRIES [BATCH [new|both [decoded]]]]`
//! (defaults 600000 and 2048: the backlog of a 60 s partition at 10k writes/s, in the sync-in's
//! largest apply).
//! Applies `ENTRIES` puts of new items from region `a` (the benchmark's items: `pk` plus a
//! 180-byte string) into a fresh store of region `b`, one `Store::apply_remote` per batch, then
//! the same number of puts again over the same keys (every item then has a current state to
//! decide against) unless the third argument is `new`. Each entry is encoded as a sync-out
//! ships it and decoded as a sync-in does (`record::decode_received_change`: the item stays
//! encoded), or, with the fourth argument `decoded`, in full (`record::decode_change`, what
//! the received-change decoding saves). Prints, for each pass, entries per second of wall time and microseconds
//! of CPU (user + system) per entry: of the process (every thread: the writer, fjall's flushes
//! and compactions) and of the store's writer thread alone. Compare builds by running each in
//! turn on the same machine: the writer's CPU per entry is the steadiest number on a shared box
//! (the background work a run ends with varies). Last, it reads the whole change log back as a
//! sync-out does (records as stored, what replication ships) and, for comparison, decoded.

use std::time::Instant;

use meridian_core::{Gtid, SystemClock, Timestamp, Version};
use meridian_model::{AttributeValue, Item};
use meridian_storage::{ChangeEntry, ChangeOp, LogRead, Store, StoreOptions, record};

#[path = "../tests/common/mod.rs"]
#[allow(
    dead_code,
    clippy::unwrap_used,
    reason = "the store tests' fixtures (test code); this benchmark uses the table only"
)]
mod common;

/// The region binary's allocator (`crates/meridian/src/main.rs`), so the profile is the region's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Characters of generated values, as `meridian bench load` uses.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let entries: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(600_000);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2048);
    let passes = match args.next().as_deref() {
        Some("new") => 1,
        _ => 2,
    };
    let decoded = args.next().as_deref() == Some("decoded");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(entries, batch.max(1), passes, decoded));
}

async fn run(entries: u64, batch: usize, passes: usize, decoded: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(StoreOptions::new(dir.path(), "b", SystemClock::new())).expect("open");
    let table = store
        .create_table(common::meta("bench"))
        .await
        .expect("create table");
    let form = if decoded {
        "decoded in full"
    } else {
        "received (items kept encoded)"
    };
    println!(
        "apply: {entries} entries from region a, {batch} per apply, {form}, into a fresh store"
    );
    let mut seq = 0;
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    for pass in ["new items", "overwrites"].into_iter().take(passes) {
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let mut applied = 0;
        let mut key = 0;
        while key < entries {
            let n = (entries - key).min(batch as u64);
            let chunk: Vec<ChangeEntry> = (key..key + n)
                .map(|k| {
                    seq += 1;
                    let record = record::encode_change(&entry(&table.key_schema, k, seq, &mut rng));
                    if decoded {
                        record::decode_change(seq, &record)
                    } else {
                        record::decode_received_change(seq, &record)
                    }
                    .expect("decode")
                })
                .collect();
            key += n;
            let report = store.apply_remote(chunk).await.expect("apply");
            applied += report.applied;
        }
        let wall = t0.elapsed().as_secs_f64();
        let (cpu1, writer1) = cpu_seconds();
        let (cpu, writer) = (cpu1 - cpu0.0, writer1 - cpu0.1);
        assert_eq!(
            applied, entries,
            "every entry is newer than the last: all apply"
        );
        println!(
            "{pass:>10}: {:>7.0} entries/s; CPU per entry {:>5.2} µs, writer thread {:>5.2} µs \
             ({wall:.2} s wall, {cpu:.2} s CPU)",
            entries as f64 / wall,
            cpu * 1e6 / entries as f64,
            writer * 1e6 / entries as f64,
        );
    }
    // What a sync-out does with the log: read every entry of the link's origins in chunks of
    // `batch`, as stored (what it ships), and for comparison decoded in full.
    let head = store.head();
    for (what, decode) in [("log, as stored", false), ("log, decoded", true)] {
        let t0 = Instant::now();
        let (mut from, mut read) = (1, 0usize);
        while from <= head {
            let chunk = store
                .changes_for(from, batch, |_| true)
                .expect("read the log");
            let Some(last) = chunk.last() else { break };
            from = last.seq() + 1;
            for r in chunk.into_iter().filter_map(LogRead::into_entry) {
                read += if decode {
                    usize::from(r.decode().is_ok())
                } else {
                    usize::from(!r.record().is_empty())
                };
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        println!(
            "{what:>14}: {read} entries read in {wall:.2} s, {:.2} µs per entry",
            wall * 1e6 / read.max(1) as f64
        );
    }
}

/// Put number `seq` of region `a`: item `k<key>` with a fresh random value, versioned after
/// every earlier one.
fn entry(
    schema: &meridian_model::key::KeySchema,
    key: u64,
    seq: u64,
    rng: &mut u64,
) -> ChangeEntry {
    let mut value = String::with_capacity(180);
    for _ in 0..180 {
        *rng ^= *rng >> 12;
        *rng ^= *rng << 25;
        *rng ^= *rng >> 27;
        let i = (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % ALPHABET.len() as u64) as usize;
        value.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'x')));
    }
    let item: Item = [
        ("pk".to_owned(), AttributeValue::S(format!("k{key}"))),
        ("v".to_owned(), AttributeValue::S(value)),
    ]
    .into_iter()
    .collect();
    let version = Version {
        ts: Timestamp::new(1_700_000_000_000 + seq / 10, (seq % 10) as u16),
        region: "a".into(),
    };
    ChangeEntry {
        seq,
        gtid: Gtid {
            origin: "a".into(),
            seq,
        },
        table: "bench".into(),
        key: schema.encode(&item).expect("key"),
        version,
        op: ChangeOp::Put(item),
        crdt: None,
    }
}

/// User + system CPU so far, in seconds, of this process and of its store's writer thread
/// (Linux `/proc`; 0 elsewhere).
fn cpu_seconds() -> (f64, f64) {
    let process = stat_cpu("/proc/self/stat");
    let writer = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .find(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim() == "meridian-writer")
        })
        .map_or(0.0, |t| stat_cpu(t.path().join("stat")));
    (process, writer)
}

/// utime + stime of a `/proc` stat file, in seconds.
fn stat_cpu(path: impl AsRef<std::path::Path>) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    (ticks(11) + ticks(12)) / 100.0
}
