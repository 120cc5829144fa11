//! Opening and recovering the store, and the read side.

use crate::error::StoreError;
use crate::inner::{Inner, StoreFaults, TableStats};
use crate::record::{self, ChangeEntry, StoredItem};
use crate::writer::Job;
use fjall::PersistMode;
use meridian_core::Clock;
use meridian_model::table::TableMeta;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

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
    /// The registry the store's background workers (dropped-table purge, index builder) run
    /// in; the region binary registers its other workers in the same one.
    pub workers: meridian_worker::Workers,
}

/// Default of [`StoreOptions::max_clock_offset_ms`] (CockroachDB's default `--max-offset`).
pub const DEFAULT_MAX_CLOCK_OFFSET_MS: u64 = 500;

impl StoreOptions {
    /// Defaults for a data directory and region.
    pub fn new(path: impl Into<PathBuf>, region: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            path: path.into(),
            region: region.into(),
            workers: meridian_worker::Workers::new(clock.clone()),
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

/// First and last sequence of the change log, and how many entries it holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChangeLogSummary {
    /// Lowest sequence present (0 if empty).
    pub first: u64,
    /// Highest sequence present (0 if empty).
    pub last: u64,
}

/// A region's store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    pub(crate) tx: std::sync::mpsc::Sender<Job>,
    pub(crate) writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("region", &self.inner.region)
            .finish()
    }
}

impl Store {
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
    pub(crate) fn meta_u64(&self, key: Vec<u8>) -> Result<u64, StoreError> {
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
        let job = Job::write(
            reads,
            Box::new(move |current: Vec<Option<StoredItem>>| {
                let (changes, out) = decide(&current);
                crate::writer::Decision {
                    changes,
                    complete: Box::new(move |res| {
                        let _ = tx.send(res.map(|()| out));
                    }),
                }
            }),
        );
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
        self.call(|reply| Job::create_table(meta, reply)).await
    }

    /// Deletes a table; its items are purged in the background. Durable when this returns.
    pub async fn delete_table(&self, name: &str) -> Result<Arc<TableMeta>, StoreError> {
        self.inner.check_writable()?;
        self.call(|reply| Job::delete_table(name.to_owned(), reply))
            .await
    }

    /// Replaces a table's metadata (same id). Durable when this returns.
    pub async fn update_table(
        &self,
        name: &str,
        update: Box<dyn FnOnce(&mut TableMeta) + Send>,
    ) -> Result<Arc<TableMeta>, StoreError> {
        self.inner.check_writable()?;
        self.call(|reply| Job::update_table(name.to_owned(), update, reply))
            .await
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

    /// Applies changes received from other regions (see the crate docs): durable when this
    /// returns, with each origin's dedup watermark advanced in the same commit.
    pub async fn apply_remote(
        &self,
        entries: Vec<ChangeEntry>,
    ) -> Result<crate::writer::ApplyReport, StoreError> {
        self.call(|reply| Job::apply_remote(entries, false, reply))
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
        self.call(|reply| Job::apply_remote(entries, true, reply))
            .await
    }

    /// The highest sequence of `origin` applied here (0 if none).
    pub fn watermark(&self, origin: &str) -> Result<u64, StoreError> {
        self.meta_u64(crate::keys::watermark_key(origin))
    }

    /// Every origin's watermark.
    pub fn watermarks(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for kv in self.inner.meta.prefix(crate::keys::META_WATERMARK) {
            let (k, v) = kv.into_inner()?;
            let origin = String::from_utf8_lossy(k.get(2..).unwrap_or_default()).into_owned();
            out.insert(origin, record::decode_u64(&v)?);
        }
        Ok(out)
    }

    /// The last sequence an outbound link's peer acknowledged (0 if none).
    pub fn checkpoint(&self, link: &str) -> Result<u64, StoreError> {
        self.meta_u64(crate::keys::checkpoint_key(link))
    }

    /// Persists an outbound link's checkpoint: written to the journal when this returns, and
    /// durable with the next fsync of any write after it (not fsynced on its own: a checkpoint
    /// lost in a crash only makes the link resend entries the receiver already has).
    pub async fn set_checkpoint(&self, link: &str, seq: u64) -> Result<(), StoreError> {
        self.call(|reply| Job::set_checkpoint(link.to_owned(), seq, reply))
            .await
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
        self.call(|reply| {
            Job::purge_tombstones(before_ts, upto_seq, older_than_ms, after, limit, reply)
        })
        .await
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
        self.call(|reply| Job::finish_snapshot(watermarks, reply))
            .await
    }

    /// Stops the writer after it has committed everything queued, and syncs. Blocking.
    pub fn shutdown(&self) {
        self.inner.workers_stop.cancel();
        let _ = self.tx.send(Job::shutdown());
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
