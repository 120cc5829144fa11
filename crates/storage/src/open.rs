//! Opening a store: the engine's keyspaces, the layout upgrade, a damaged journal's check and
//! recovery, the state the writer starts from.

use crate::error::StoreError;
use crate::inner::{Inner, TableStats};
use crate::keys::u64_suffix;
use crate::keys::{META_BOOTSTRAP, META_DROPPED, META_GC, META_HLC, META_STATS, META_TABLE};
use crate::layout;
use crate::metrics::WriterMetrics;
use crate::record::{self};
use crate::store::{Store, StoreOptions};
use crate::writer;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use meridian_core::{Hlc, Timestamp};
use meridian_model::table::TableMeta;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// L0 tables a point-read keyspace gathers before fjall compacts them into L1 (fjall's default:
/// 4). Keys of a table land all over its key range, so every L0 → L1 compaction rewrites the
/// L1 tables of that range; gathering 8 halves how often, at the price of up to 8 Bloom-filter
/// checks per missing key in L0 instead of 4: it shortens catch-up on a loaded cluster and does
/// not move the replication lag's p99 (measured in `docs/benchmarks.md`). fjall keeps a keyspace's compaction settings from its creation: this holds for stores
/// created since.
const L0_THRESHOLD: u8 = 8;

fn open_ks(db: &Database, name: &str, memtable_bytes: u64) -> Result<Keyspace, StoreError> {
    Ok(db.keyspace(name, || {
        KeyspaceCreateOptions::default()
            .max_memtable_size(memtable_bytes)
            .compaction_strategy(std::sync::Arc::new(
                fjall::compaction::Leveled::default().with_l0_threshold(L0_THRESHOLD),
            ))
    })?)
}

/// The change log's keyspace. It is only ever scanned by sequence, never point-read, so its
/// tables carry no Bloom filters: building them cost ~5 % of a region's CPU while it applied a
/// replicated backlog (`cargo bench -p meridian-storage --bench apply`). fjall keeps a
/// keyspace's options from its creation, so this holds for stores created since.
fn open_log_ks(db: &Database, memtable_bytes: u64) -> Result<Keyspace, StoreError> {
    Ok(db.keyspace("changelog", || {
        KeyspaceCreateOptions::default()
            .max_memtable_size(memtable_bytes)
            .filter_policy(fjall::config::FilterPolicy::disabled())
    })?)
}

impl Store {
    /// Opens (or creates) the store and starts its writer thread. Blocking.
    pub fn open(opts: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(&opts.path).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let damage = crate::journal::check(&opts.path)
            .map_err(|e| StoreError::Corrupt(format!("reading the journals: {e}")))?;
        match &damage {
            Some(d) if !opts.recover => {
                return Err(StoreError::JournalDamaged(Box::new(d.clone())));
            }
            Some(d) => crate::journal::truncate_at(&opts.path, d)
                .map_err(|e| StoreError::Corrupt(format!("truncating the journal: {e}")))?,
            None => {}
        }
        let db = Database::builder(&opts.path)
            .cache_size(opts.cache_bytes)
            // One background worker, not two: with two, fjall 3.1's worker 0 hands every
            // compaction request back to the queue and takes it again at once while worker 1
            // compacts, a busy loop that took ~19 % of a replicating region's CPU
            // (docs/benchmarks.md, "Replication lag and catch-up").
            .worker_threads(1)
            .max_journaling_size(256 * 1024 * 1024)
            .open()?;
        let meta = open_ks(&db, "meta", opts.memtable_bytes)?;
        let items = open_ks(&db, "items", opts.memtable_bytes)?;
        let tombstones = open_ks(&db, "tombstones", opts.memtable_bytes)?;
        let log = open_log_ks(&db, opts.memtable_bytes)?;
        let index = open_ks(&db, "index", opts.memtable_bytes)?;
        let fresh = meta.first_key_value().is_none();
        if fresh {
            // A brand-new region: it takes a snapshot from the first peer that links to it
            // before it takes change streams (see `snapshot.rs`). Written without a sync: if it
            // is lost, the store is still empty at the next start and is marked again.
            meta.insert(META_BOOTSTRAP, record::encode_u64(1))?;
        }
        layout::ensure(
            &db,
            &meta,
            &[
                ("items", &items),
                ("tombstones", &tombstones),
                ("index", &index),
            ],
            fresh,
        )?;

        let mut tables = BTreeMap::new();
        for kv in meta.prefix(META_TABLE) {
            let (_, v) = kv.into_inner()?;
            let json = record::decode_json(&v)?;
            let t: TableMeta = serde_json::from_value(json)
                .map_err(|e| StoreError::Corrupt(format!("table meta: {e}")))?;
            tables.insert(t.name.clone(), Arc::new(t));
        }
        let mut stats = HashMap::new();
        for kv in meta.prefix(META_STATS) {
            let (k, v) = kv.into_inner()?;
            let id = u64_suffix(&k, META_STATS.len())?;
            let (item_count, size_bytes) = record::decode_stats(&v)?;
            stats.insert(
                id,
                TableStats {
                    item_count,
                    size_bytes,
                },
            );
        }
        // Sequences continue after purged ones even when the whole log was purged.
        let purged = match meta.get(META_GC)? {
            Some(v) => record::decode_u64(&v)?,
            None => 0,
        };
        let gaps = crate::recovery::load_gaps(&meta)?;
        let head = match log.last_key_value() {
            Some(kv) => u64_suffix(&kv.key()?, 0)?,
            None => 0,
        }
        .max(purged)
        .max(gaps.last().map_or(0, |g| g.1));
        let recovery = crate::recovery::on_open(&db, &meta, &log, head, damage.as_ref())?;
        let hlc_last = match meta.get(META_HLC)? {
            Some(v) => Timestamp(record::decode_u64(&v)?),
            None => Timestamp::ZERO,
        };
        let dropped: Vec<u64> = meta
            .prefix(META_DROPPED)
            .map(|kv| {
                let k = kv.key()?;
                u64_suffix(&k, META_DROPPED.len())
            })
            .collect::<Result<_, _>>()?;

        tracing::info!(
            path = %opts.path.display(),
            tables = tables.len(),
            changelog_head = head,
            "store opened"
        );
        let inner = Arc::new(Inner {
            region: opts.region.clone(),
            db,
            meta,
            items,
            tombstones,
            log,
            index,
            tables: RwLock::new(tables),
            stats: Mutex::new(stats),
            poisoned: AtomicBool::new(false),
            head: AtomicU64::new(head),
            submitted: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            metrics: WriterMetrics::default(),
            faults: opts.faults.clone(),
            log_remote: opts.log_remote,
            max_clock_offset_ms: opts.max_clock_offset_ms,
            head_tx: tokio::sync::watch::Sender::new(head),
            mark: Mutex::new((head, hlc_last.0)),
            own_ts: std::sync::atomic::AtomicU64::new(0),
            durable: Condvar::new(),
            clock: opts.clock.clone(),
            recovery: RwLock::new(recovery),
            gaps: RwLock::new(gaps),
            purges: Mutex::new(dropped.into_iter().collect()),
            purge_wanted: Arc::new(tokio::sync::Notify::new()),
            workers: opts.workers.clone(),
            workers_stop: tokio_util::sync::CancellationToken::new(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let hlc = Hlc::resume(opts.clock.clone(), hlc_last);
        let w_inner = inner.clone();
        let max_group = opts.max_group.max(1);
        let handle = std::thread::Builder::new()
            .name("meridian-writer".into())
            .spawn(move || writer::run(w_inner, rx, hlc, max_group))
            .map_err(|e| StoreError::Corrupt(format!("cannot start writer: {e}")))?;
        opts.workers
            .scoped(&inner.workers_stop)
            .spawn("table-purge", writer::TablePurge::new(&inner));
        Ok(Store {
            inner,
            tx,
            writer: Arc::new(Mutex::new(Some(handle))),
        })
    }
}
