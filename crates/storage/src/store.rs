//! Opening and recovering the store, and the read side.

use crate::error::StoreError;
use crate::layout;
use crate::record::{self, ChangeEntry, StoredItem};
use crate::writer::{self, Job, WriterMetrics};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use meridian_core::{Clock, Hlc, Timestamp};
use meridian_model::table::TableMeta;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use tokio::sync::oneshot;

pub(crate) const META_TABLE: &[u8] = b"t/";
pub(crate) const META_STATS: &[u8] = b"s/";
pub(crate) const META_DROPPED: &[u8] = b"d/";
pub(crate) const META_HLC: &[u8] = b"hlc";
pub(crate) const META_NEXT_TABLE_ID: &[u8] = b"next_table_id";
/// Present while a new region has not yet installed a snapshot from a peer.
pub(crate) const META_BOOTSTRAP: &[u8] = b"bootstrap";
/// The highest change-log sequence purged by garbage collection.
pub(crate) const META_GC: &[u8] = b"gc";
/// The highest purged sequence of a change this region originated.
pub(crate) const META_GC_OWN: &[u8] = b"gc_own";

/// How to open a store.
#[derive(Clone)]
pub struct StoreOptions {
    /// Data directory.
    pub path: PathBuf,
    /// This region's name (stamped into every version and GTID).
    pub region: String,
    /// The physical clock under the HLC.
    pub clock: Arc<dyn Clock>,
    /// Block cache size in bytes.
    pub cache_bytes: u64,
    /// Largest memtable of each keyspace before it is flushed to disk. Memtables dominate the
    /// resident memory of a loaded region (measured: 1M items of 200 B take ~290 MB RSS with
    /// 64 MiB memtables, ~120 MB with 16 MiB — `scripts/bench-rss.sh`).
    pub memtable_bytes: u64,
    /// Most requests committed by one group commit.
    pub max_group: usize,
    /// Whether changes received from other regions are written to this region's change log
    /// too (default `true`). Only a region that forwards others' changes needs them there — a
    /// star's hub; in a mesh each region ships only its own changes, so a receiver that logged
    /// them would pay for an entry (and its flush, compaction and purge) nobody reads.
    pub log_remote: bool,
    /// Largest amount, in milliseconds, by which a version received from another region
    /// (replication, anti-entropy, a snapshot) may be ahead of this region's clock; a batch
    /// holding one further ahead is refused whole ([`StoreError::ClockAhead`]).
    pub max_clock_offset_ms: u64,
    /// Open a store whose journal is damaged before its tail (`StoreError::JournalDamaged`
    /// otherwise): the engine truncates the journal at the damage and the store recovers its
    /// sequences from its peers (`recovery.rs`).
    pub recover: bool,
    /// Fault-injection switches (tests and drills only).
    pub faults: Arc<StoreFaults>,
}

/// Default of [`StoreOptions::max_clock_offset_ms`] (CockroachDB's default `--max-offset`).
pub const DEFAULT_MAX_CLOCK_OFFSET_MS: u64 = 500;

/// Switches that make the store fail on purpose, to test fail-stop behaviour.
#[derive(Debug, Default)]
pub struct StoreFaults {
    /// The next group commit's fsync fails.
    pub fail_next_sync: AtomicBool,
    /// The next group commit waits this many milliseconds between its engine commit and its
    /// fsync (0: none) — holds a commit in the state a crash could still undo.
    pub hold_next_sync_ms: AtomicU64,
}

impl StoreOptions {
    /// Defaults for a data directory and region.
    pub fn new(path: impl Into<PathBuf>, region: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            path: path.into(),
            region: region.into(),
            clock,
            cache_bytes: 32 * 1024 * 1024,
            memtable_bytes: 16 * 1024 * 1024,
            max_group: 1024,
            log_remote: true,
            max_clock_offset_ms: DEFAULT_MAX_CLOCK_OFFSET_MS,
            recover: false,
            faults: Arc::new(StoreFaults::default()),
        }
    }
}

/// Approximate size of one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Number of live items.
    pub item_count: i64,
    /// Sum of item sizes (DynamoDB's count), in bytes.
    pub size_bytes: i64,
}

/// First and last sequence of the change log, and how many entries it holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChangeLogSummary {
    /// Lowest sequence present (0 if empty).
    pub first: u64,
    /// Highest sequence present (0 if empty).
    pub last: u64,
}

pub(crate) struct Inner {
    pub(crate) region: String,
    pub(crate) db: Database,
    pub(crate) meta: Keyspace,
    pub(crate) items: Keyspace,
    pub(crate) tombstones: Keyspace,
    pub(crate) log: Keyspace,
    pub(crate) index: Keyspace,
    pub(crate) tables: RwLock<BTreeMap<String, Arc<TableMeta>>>,
    pub(crate) stats: Mutex<HashMap<u64, TableStats>>,
    pub(crate) poisoned: AtomicBool,
    pub(crate) head: AtomicU64,
    /// Jobs sent to the writer, and jobs it has taken: their difference is the queue depth.
    pub(crate) submitted: AtomicU64,
    pub(crate) taken: AtomicU64,
    pub(crate) metrics: WriterMetrics,
    pub(crate) faults: Arc<StoreFaults>,
    /// See `StoreOptions::log_remote`.
    pub(crate) log_remote: bool,
    /// See `StoreOptions::max_clock_offset_ms`.
    pub(crate) max_clock_offset_ms: u64,
    /// The change-log head after each commit, for senders that tail the log.
    pub(crate) head_tx: tokio::sync::watch::Sender<u64>,
    /// `(head, hlc)` after the last commit: every change this region makes later gets a
    /// higher sequence than `head` and a higher timestamp than `hlc`.
    pub(crate) mark: Mutex<(u64, u64)>,
    /// Signalled (with `mark` held) whenever the durable head advances.
    pub(crate) durable: Condvar,
    /// The physical clock under the HLC (skewed by fault injection, if it is).
    pub(crate) clock: Arc<dyn Clock>,
    /// An unfinished recovery (`recovery.rs`): local writes are refused while there is one.
    pub(crate) recovery: RwLock<Option<crate::recovery::Recovery>>,
    /// Skipped sequence ranges `(from, to]` of the change log (`recovery.rs`).
    pub(crate) gaps: RwLock<Vec<(u64, u64)>>,
}

impl Inner {
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(StoreError::Poisoned)
        } else {
            Ok(())
        }
    }

    pub(crate) fn poison(&self, why: &dyn std::fmt::Display) {
        if !self.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %why, "store failed: refusing all further work (fail-stop)");
        }
        // Wake whoever waits for durability: it never comes now.
        self.durable.notify_all();
    }
}

/// A region's store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    tx: std::sync::mpsc::Sender<Job>,
    writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("region", &self.inner.region)
            .finish()
    }
}

/// L0 tables a point-read keyspace gathers before fjall compacts them into L1 (fjall's default:
/// 4). Keys of a table land all over its key range, so every L0 → L1 compaction rewrites the
/// L1 tables of that range; gathering 8 halves how often, at the price of up to 8 Bloom-filter
/// checks per missing key in L0 instead of 4. Catch-up after a 60 s partition at 10k writes/s
/// on a cluster loaded by the Netflix suite (`meridian bench all`, 3 interleaved pairs): median
/// 10.5 → 7.95 s; the replication lag's p99 did not move (docs/benchmarks.md, session 12).
/// fjall keeps a keyspace's compaction settings from its creation: this holds for stores
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

/// A change-log entry as stored: its local sequence and its record (what [`record::encode_change`]
/// wrote), with the origin and commit time read from the header. Replication ships the record
/// as it is, without decoding and re-encoding the item.
#[derive(Clone, Debug)]
pub struct RawChange {
    seq: u64,
    origin: String,
    commit_ms: u64,
    record: fjall::Slice,
}

impl RawChange {
    /// Reads the header of `record`, stored at sequence `seq`.
    pub fn new(seq: u64, record: fjall::Slice) -> Result<Self, StoreError> {
        let (origin, ts) = record::change_header(&record)?;
        Ok(Self {
            seq,
            origin: origin.to_owned(),
            commit_ms: ts.physical_ms(),
            record,
        })
    }

    /// Local sequence.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Region where the change originated.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Commit time at the origin (ms, the HLC's physical part).
    pub fn commit_ms(&self) -> u64 {
        self.commit_ms
    }

    /// The encoded record.
    pub fn record(&self) -> &[u8] {
        &self.record
    }

    /// Decodes the record in full.
    pub fn decode(&self) -> Result<ChangeEntry, StoreError> {
        record::decode_change(self.seq, &self.record)
    }
}

/// A change-log entry as read for one link ([`Store::changes_for`]).
#[derive(Debug, Clone)]
pub enum LogRead {
    /// A change of an origin the link carries, as stored (decode it with
    /// [`RawChange::decode`]).
    Entry(RawChange),
    /// Not decoded: a change of another origin the link does not carry.
    Skipped {
        /// Local sequence.
        seq: u64,
        /// Region where the change originated.
        origin: String,
        /// Encoded size.
        bytes: usize,
    },
}

impl LogRead {
    /// Local sequence.
    pub fn seq(&self) -> u64 {
        match self {
            LogRead::Entry(e) => e.seq(),
            LogRead::Skipped { seq, .. } => *seq,
        }
    }

    /// The change, if the link carries it.
    pub fn into_entry(self) -> Option<RawChange> {
        match self {
            LogRead::Entry(e) => Some(e),
            LogRead::Skipped { .. } => None,
        }
    }
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
            durable: Condvar::new(),
            clock: opts.clock.clone(),
            recovery: RwLock::new(recovery),
            gaps: RwLock::new(gaps),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let hlc = Hlc::resume(opts.clock.clone(), hlc_last);
        let w_inner = inner.clone();
        let max_group = opts.max_group.max(1);
        let handle = std::thread::Builder::new()
            .name("meridian-writer".into())
            .spawn(move || writer::run(w_inner, rx, hlc, max_group))
            .map_err(|e| StoreError::Corrupt(format!("cannot start writer: {e}")))?;
        for id in dropped {
            writer::spawn_purge(inner.clone(), id);
        }
        Ok(Store {
            inner,
            tx,
            writer: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// This region's name.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// This region's wall clock in ms (the physical clock under its HLC, skew included): what
    /// it tells peers its time is.
    pub fn wall_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Whether the store has failed (fail-stop).
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire)
    }

    /// The fault-injection switches of this store.
    pub fn faults(&self) -> Arc<StoreFaults> {
        self.inner.faults.clone()
    }

    /// Registers the store's metrics.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.inner.metrics.register(registry);
    }

    /// Sends the writer a job that answers on a oneshot, and waits for the answer.
    pub(crate) async fn call<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(job(tx))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Reads a `u64` record from `meta` (0 when absent).
    fn meta_u64(&self, key: Vec<u8>) -> Result<u64, StoreError> {
        match self.inner.meta.get(key)? {
            Some(v) => record::decode_u64(&v),
            None => Ok(0),
        }
    }

    pub(crate) fn send(&self, job: Job) -> Result<(), StoreError> {
        self.inner.check()?;
        self.inner.submitted.fetch_add(1, Ordering::AcqRel);
        self.tx.send(job).map_err(|_| StoreError::Closed)
    }

    /// Write requests queued and not yet taken by the writer.
    pub fn queue_depth(&self) -> usize {
        let s = self.inner.submitted.load(Ordering::Acquire);
        let t = self.inner.taken.load(Ordering::Acquire);
        s.saturating_sub(t) as usize
    }

    /// Read-modify-write of items, serialized with every other write of the region and
    /// durably committed before this returns.
    ///
    /// `decide` receives the current state of each `(table, key)` in `reads` (in order, seeing
    /// every earlier write) and returns the changes to make and a value handed back to the
    /// caller once the changes are durable. Returning no changes writes nothing.
    pub async fn write<T, F>(
        &self,
        reads: Vec<(Arc<TableMeta>, Vec<u8>)>,
        decide: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&[Option<StoredItem>]) -> (Vec<crate::writer::Change>, T) + Send + 'static,
    {
        self.inner.check_writable()?;
        let (tx, rx) = oneshot::channel();
        let job = Job::Write {
            reads,
            decide: Box::new(move |current: Vec<Option<StoredItem>>| {
                let (changes, out) = decide(&current);
                crate::writer::Decision {
                    changes,
                    complete: Box::new(move |res| {
                        let _ = tx.send(res.map(|()| out));
                    }),
                }
            }),
        };
        let sent = std::time::Instant::now();
        self.send(job)?;
        let out = rx.await.map_err(|_| StoreError::Closed)?;
        self.inner
            .metrics
            .write_seconds
            .observe(sent.elapsed().as_secs_f64());
        out
    }

    /// Creates a table (its `id` is assigned here). Durable when this returns.
    pub async fn create_table(&self, meta: TableMeta) -> Result<Arc<TableMeta>, StoreError> {
        self.inner.check_writable()?;
        self.call(|reply| Job::CreateTable {
            meta: Box::new(meta),
            reply,
        })
        .await
    }

    /// Deletes a table; its items are purged in the background. Durable when this returns.
    pub async fn delete_table(&self, name: &str) -> Result<Arc<TableMeta>, StoreError> {
        self.inner.check_writable()?;
        self.call(|reply| Job::DeleteTable {
            name: name.to_owned(),
            reply,
        })
        .await
    }

    /// Replaces a table's metadata (same id). Durable when this returns.
    pub async fn update_table(
        &self,
        name: &str,
        update: Box<dyn FnOnce(&mut TableMeta) + Send>,
    ) -> Result<Arc<TableMeta>, StoreError> {
        self.inner.check_writable()?;
        self.call(|reply| Job::UpdateTable {
            name: name.to_owned(),
            update,
            reply,
        })
        .await
    }

    /// Builds a new index's entries from the table's items, a chunk per writer turn (writes
    /// that happen meanwhile maintain the index themselves), then marks it `ACTIVE`. Items whose
    /// value cannot be an index key stay out of the index and are counted in the log, as
    /// DynamoDB's index key violations are.
    pub async fn backfill_index(&self, table: &str, index_name: &str) -> Result<(), StoreError> {
        let t = self
            .table(table)
            .ok_or_else(|| StoreError::NoSuchTable(table.to_owned()))?;
        let Some(index_id) = t.index(index_name).map(|i| i.id) else {
            return Ok(());
        };
        let mut after = None;
        let mut skipped = 0;
        loop {
            let step = self
                .call(|reply| Job::BackfillChunk {
                    table: table.to_owned(),
                    index_id,
                    after,
                    reply,
                })
                .await?;
            skipped += step.skipped;
            match step.next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        if skipped > 0 {
            tracing::warn!(
                %table, index = %index_name, items = skipped,
                "index key violations: items whose value for an index key attribute has the \
                 wrong type or an empty or oversized value are not in the index"
            );
        }
        let name = index_name.to_owned();
        self.update_table(
            table,
            Box::new(move |m: &mut TableMeta| {
                for i in &mut m.indexes {
                    if i.name == name && i.id == index_id {
                        i.status = meridian_model::table::IndexStatus::Active;
                    }
                }
            }),
        )
        .await?;
        Ok(())
    }

    /// Starts the index builder: a task that backfills every `CREATING` index (added by
    /// `UpdateTable` here or replicated from another region), then marks it `ACTIVE`. It
    /// checks after every commit, at most every 200 ms. Call from within a tokio runtime.
    pub fn spawn_index_builder(&self) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut head = store.subscribe_head();
            loop {
                let pending: Vec<(String, String)> = store
                    .inner
                    .tables
                    .read()
                    .map(|t| {
                        t.values()
                            .flat_map(|m| {
                                m.indexes
                                    .iter()
                                    .filter(|i| {
                                        i.status == meridian_model::table::IndexStatus::Creating
                                    })
                                    .map(|i| (m.name.clone(), i.name.clone()))
                                    .collect::<Vec<_>>()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                for (table, index) in pending {
                    if let Err(e) = store.backfill_index(&table, &index).await {
                        tracing::warn!(%table, %index, error = %e, "index backfill failed; retrying");
                    }
                }
                if store.is_poisoned() || head.changed().await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<Arc<TableMeta>> {
        self.inner
            .tables
            .read()
            .ok()
            .and_then(|t| t.get(name).cloned())
    }

    /// All table names, sorted.
    pub fn table_names(&self) -> Vec<String> {
        self.inner
            .tables
            .read()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Item count and size of a table.
    pub fn stats(&self, table_id: u64) -> TableStats {
        self.inner
            .stats
            .lock()
            .ok()
            .and_then(|s| s.get(&table_id).copied())
            .unwrap_or_default()
    }

    /// Reads one item. Blocking.
    pub fn get(&self, table: &TableMeta, key: &[u8]) -> Result<Option<StoredItem>, StoreError> {
        self.inner.check()?;
        match self.inner.items.get(record::item_key(table.id, key))? {
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
        let n = record::prefix_len(table.id);
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

    /// Applies changes received from other regions (see the crate docs): durable when this
    /// returns, with each origin's dedup watermark advanced in the same commit.
    pub async fn apply_remote(
        &self,
        entries: Vec<ChangeEntry>,
    ) -> Result<crate::writer::ApplyReport, StoreError> {
        self.call(|reply| Job::ApplyRemote {
            entries,
            repair: false,
            reply,
        })
        .await
    }

    /// Applies item states from anti-entropy repair: each entry's `op` is the item's state at
    /// the peer (`Put` with counters, or `Delete` = tombstone) at `version`; merged or decided
    /// by last-writer-wins like replicated changes, with no dedup bookkeeping and no change-log
    /// entry. Durable when this returns.
    pub async fn repair(
        &self,
        entries: Vec<ChangeEntry>,
    ) -> Result<crate::writer::ApplyReport, StoreError> {
        self.call(|reply| Job::ApplyRemote {
            entries,
            repair: true,
            reply,
        })
        .await
    }

    /// The highest sequence of `origin` applied here (0 if none).
    pub fn watermark(&self, origin: &str) -> Result<u64, StoreError> {
        self.meta_u64(crate::writer::watermark_key(origin))
    }

    /// Every origin's watermark.
    pub fn watermarks(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for kv in self.inner.meta.prefix(b"w/") {
            let (k, v) = kv.into_inner()?;
            let origin = String::from_utf8_lossy(k.get(2..).unwrap_or_default()).into_owned();
            out.insert(origin, record::decode_u64(&v)?);
        }
        Ok(out)
    }

    /// The last sequence an outbound link's peer acknowledged (0 if none).
    pub fn checkpoint(&self, link: &str) -> Result<u64, StoreError> {
        self.meta_u64(crate::writer::checkpoint_key(link))
    }

    /// Persists an outbound link's checkpoint: written to the journal when this returns, and
    /// durable with the next fsync of any write after it (not fsynced on its own: a checkpoint
    /// lost in a crash only makes the link resend entries the receiver already has).
    pub async fn set_checkpoint(&self, link: &str, seq: u64) -> Result<(), StoreError> {
        self.call(|reply| Job::SetCheckpoint {
            link: link.to_owned(),
            seq,
            reply,
        })
        .await
    }

    /// A receiver of the change-log head, updated after every group commit.
    pub fn subscribe_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.head_tx.subscribe()
    }

    /// The version of an item's current state, live or tombstone (for anti-entropy). Blocking.
    pub fn item_version(
        &self,
        table: &TableMeta,
        key: &[u8],
    ) -> Result<Option<meridian_core::Version>, StoreError> {
        self.inner.check()?;
        let full = record::item_key(table.id, key);
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
        let n = record::prefix_len(table.id);
        for kv in self.inner.tombstones.prefix(record::table_prefix(table.id)) {
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
        let n = record::prefix_len(index_id);
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

    /// Blocks until every change-log entry up to `seq` is durable (at most `timeout`); returns
    /// whether it is. Blocking.
    pub fn wait_durable(&self, seq: u64, timeout: std::time::Duration) -> Result<bool, StoreError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut mark = self.inner.mark.lock().map_err(|_| StoreError::Poisoned)?;
        loop {
            self.inner.check()?;
            if mark.0 >= seq {
                return Ok(true);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            mark = self
                .inner
                .durable
                .wait_timeout(mark, deadline - now)
                .map_err(|_| StoreError::Poisoned)?
                .0;
        }
    }

    /// The highest durable change-log sequence (what readers of the log and senders see).
    pub fn head(&self) -> u64 {
        self.inner.head.load(Ordering::Acquire)
    }

    /// Change-log entries from `from_seq` (inclusive), at most `limit`. Blocking.
    pub fn changes(&self, from_seq: u64, limit: usize) -> Result<Vec<ChangeEntry>, StoreError> {
        let read = self.changes_for(from_seq, limit, |_| true)?;
        read.into_iter()
            .filter_map(LogRead::into_entry)
            .map(|raw| raw.decode())
            .collect()
    }

    /// Like [`Store::changes`], for one replication link, and not decoded: the entries of
    /// origins `wanted` accepts as stored, the others only stepped over ([`LogRead::Skipped`]).
    /// A region's log holds the changes it applied from every other region, which most links
    /// do not carry.
    pub fn changes_for(
        &self,
        from_seq: u64,
        limit: usize,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<LogRead>, StoreError> {
        self.inner.check()?;
        let mut out = Vec::new();
        // Only durable entries: a change committed but not yet fsynced must not reach a peer
        // (after a crash its sequence would be reused for another change).
        let head = self.head();
        let gaps = self
            .inner
            .gaps
            .read()
            .map(|g| g.clone())
            .unwrap_or_default();
        let mut from = from_seq;
        while from <= head && out.len() < limit {
            if let Some((_, to)) = crate::recovery::gap_at(&gaps, from) {
                // Sequences lost with a damaged journal (`recovery.rs`): passed over.
                let to = to.min(from + (limit - out.len()) as u64 - 1);
                out.extend((from..=to).map(|seq| LogRead::Skipped {
                    seq,
                    origin: String::new(),
                    bytes: 0,
                }));
                from = to + 1;
                continue;
            }
            let upto = gaps
                .iter()
                .map(|g| g.0)
                .filter(|f| *f >= from)
                .min()
                .unwrap_or(head)
                .min(head);
            let before = out.len();
            for kv in self
                .inner
                .log
                .range(from.to_be_bytes()..=upto.to_be_bytes())
                .take(limit - before)
            {
                let (k, v) = kv.into_inner()?;
                let seq = u64_suffix(&k, 0)?;
                let origin = record::change_origin(&v)?;
                out.push(if wanted(origin) {
                    LogRead::Entry(RawChange::new(seq, v)?)
                } else {
                    LogRead::Skipped {
                        seq,
                        origin: origin.to_owned(),
                        bytes: v.len(),
                    }
                });
            }
            if out.len() == before || upto == head {
                break;
            }
            from = upto + 1;
        }
        Ok(out)
    }

    /// `(head, hlc)` as of the last commit: every change of this region's own with a timestamp
    /// at or below `hlc` is at or below `head` in its change log. A peer that has applied this
    /// region's stream through `head` therefore holds every write of ours older than `hlc`
    /// (what tombstone garbage collection needs to know).
    pub fn stable_mark(&self) -> (u64, u64) {
        self.inner.mark.lock().map(|m| *m).unwrap_or((0, 0))
    }

    /// Purges tombstones of every table whose timestamp is at or below `before_ts` (every
    /// write with a timestamp up to it has been applied here, so no older write can still
    /// arrive), recorded at a change-log sequence at or below
    /// `upto_seq` (every peer has the delete) and committed before `older_than_ms`. Scans at
    /// most `limit` tombstones after the cursor `after` (a full tombstone key); returns how many
    /// were purged and where to continue (`None`: the end was reached).
    pub async fn purge_tombstones(
        &self,
        before_ts: u64,
        upto_seq: u64,
        older_than_ms: u64,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        self.call(|reply| Job::PurgeTombstones {
            before_ts,
            upto_seq,
            older_than_ms,
            after,
            limit,
            reply,
        })
        .await
    }

    /// Whether this region is new and still waits for its first snapshot from a peer.
    pub fn bootstrap_pending(&self) -> Result<bool, StoreError> {
        Ok(self.inner.meta.contains_key(META_BOOTSTRAP)?)
    }

    /// The highest change-log sequence garbage collection has purged (0: none).
    pub fn purged_through(&self) -> Result<u64, StoreError> {
        self.meta_u64(META_GC.to_vec())
    }

    /// The highest purged sequence of a change this region originated (0: none): what a link
    /// that carries only this region's own changes can no longer ship.
    pub fn purged_own_through(&self) -> Result<u64, StoreError> {
        self.meta_u64(META_GC_OWN.to_vec())
    }

    /// A consistent snapshot of every table, item and tombstone with the watermarks and head
    /// it corresponds to (see [`crate::StoreSnapshot`]). Reading it is blocking.
    pub fn snapshot(&self) -> Result<crate::StoreSnapshot, StoreError> {
        let snap = crate::snapshot::StoreSnapshot::take(self.inner.clone())?;
        // The fjall snapshot may include the group being synced: hand it out only once that
        // is durable, so a peer never holds a change this region could still lose.
        if !self.wait_durable(snap.head, std::time::Duration::from_secs(30))? {
            return Err(StoreError::Timeout(format!(
                "change-log entry {} not durable after 30 s",
                snap.head
            )));
        }
        Ok(snap)
    }

    /// Completes the installation of a snapshot whose states were applied with
    /// [`Store::repair`]: raises each origin's dedup watermark to the snapshot's (never lowers
    /// it; this region's own is skipped) and clears the new-region mark. Durable when this
    /// returns. Only then may the origins' streams resume from those watermarks: every change
    /// at or below them is in the installed states.
    pub async fn finish_snapshot(
        &self,
        watermarks: BTreeMap<String, u64>,
    ) -> Result<(), StoreError> {
        self.call(|reply| Job::FinishSnapshot { watermarks, reply })
            .await
    }

    /// Purges change-log entries up to `upto` (inclusive) whose commit time is before
    /// `older_than_ms`, at most `limit` of them, oldest first; the purge point is recorded so
    /// that sequences are never reused and senders know what they can no longer ship. Returns
    /// how many entries were purged. The caller decides `upto` (every peer has acknowledged it).
    pub async fn purge_changelog(
        &self,
        upto: u64,
        older_than_ms: u64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.call(|reply| Job::PurgeLog {
            upto,
            older_than_ms,
            limit,
            reply,
        })
        .await
    }

    /// First and last sequence in the change log. Blocking.
    pub fn changelog_summary(&self) -> Result<ChangeLogSummary, StoreError> {
        self.inner.check()?;
        let first = match self.inner.log.first_key_value() {
            Some(kv) => u64_suffix(&kv.key()?, 0)?,
            None => 0,
        };
        Ok(ChangeLogSummary {
            first,
            last: self.head(),
        })
    }

    /// Stops the writer after it has committed everything queued, and syncs. Blocking.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Job::Shutdown);
        if let Ok(mut w) = self.writer.lock()
            && let Some(h) = w.take()
        {
            let _ = h.join();
        }
        if let Err(e) = self.inner.db.persist(PersistMode::SyncAll) {
            tracing::error!(error = %e, "final sync failed");
        }
    }
}

/// Bounds over `varint(id) ‖ key` for key bounds within one table or index.
fn prefixed_bounds(
    id: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = match lower {
        Bound::Included(k) => Bound::Included(record::item_key(id, &k)),
        Bound::Excluded(k) => Bound::Excluded(record::item_key(id, &k)),
        Bound::Unbounded => Bound::Included(record::table_prefix(id)),
    };
    let hi = match upper {
        Bound::Included(k) => Bound::Included(record::item_key(id, &k)),
        Bound::Excluded(k) => Bound::Excluded(record::item_key(id, &k)),
        Bound::Unbounded => Bound::Excluded(record::table_end(id)),
    };
    (lo, hi)
}

pub(crate) fn u64_suffix(k: &[u8], at: usize) -> Result<u64, StoreError> {
    let b: [u8; 8] = k
        .get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("short key".into()))?;
    Ok(u64::from_be_bytes(b))
}
