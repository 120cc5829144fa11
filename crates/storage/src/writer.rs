//! The region's single writer: read-modify-write under one thread, group commit, fail-stop.

use crate::error::StoreError;
use crate::record::{self, ChangeEntry, ChangeOp, StoredItem};
use crate::store::{
    Inner, META_DROPPED, META_HLC, META_NEXT_TABLE_ID, META_STATS, META_TABLE, TableStats,
};
use fjall::PersistMode;
use meridian_core::{Gtid, Hlc, Version};
use meridian_model::Item;
use meridian_model::crdt::{Crdt, creation_epoch, merge};
use meridian_model::size::item_size;
use meridian_model::table::TableMeta;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
// The group's maps are keyed by item keys and hashed several times per applied change; foldhash
// (seeded per process) costs a fraction of std's SipHash there (`docs/benchmarks.md`,
// "Session 11").
use foldhash::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Instant;
use tokio::sync::oneshot;

/// Test-only sabotage (cargo feature `broken-apply`): remote changes are applied in arrival
/// order, without the dedup watermark or the last-writer-wins check. Exists so the failure
/// drills can show they catch a replication bug (`tests/python/test_drill.py`); never enabled
/// in a real build.
const BROKEN_APPLY: bool = cfg!(feature = "broken-apply");

/// What a change does to one item.
#[derive(Clone, Debug, PartialEq)]
pub enum ChangeKind {
    /// Store these attributes (a whole-item replace: counters reset).
    Put(Item),
    /// Store these attributes with this counter metadata (an update; `None` epochs are the
    /// version of this write). See `meridian_model::crdt`.
    Update(Item, Crdt),
    /// Delete the item (client request).
    Delete,
    /// Delete the item (TTL expiry).
    TtlDelete,
}

/// One change decided by a write request.
#[derive(Clone, Debug)]
pub struct Change {
    /// Table of the item.
    pub table: Arc<TableMeta>,
    /// Storage key of the item.
    pub key: Vec<u8>,
    /// What to do.
    pub kind: ChangeKind,
}

/// What `decide` hands back to the writer: the changes, and how to tell the caller.
pub struct Decision {
    pub(crate) changes: Vec<Change>,
    pub(crate) complete: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

/// Items indexed per backfill step (keeps each step's share of the writer short).
pub const BACKFILL_CHUNK: usize = 500;

/// One step of an index backfill.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Backfilled {
    /// The storage key to continue after; `None` when the table is done.
    pub next: Option<Vec<u8>>,
    /// Items left out because a value of theirs cannot be an index key.
    pub skipped: u64,
}

/// What [`crate::Store::apply_remote`] did with a batch of replicated changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Changes applied (they won last-writer-wins).
    pub applied: u64,
    /// Changes at or below their origin's watermark: already applied, skipped.
    pub duplicates: u64,
    /// Changes that lost last-writer-wins against a newer local version.
    pub stale: u64,
    /// Changes that originated here and came back (loop prevention).
    pub own: u64,
    /// Changes for tables this region does not have.
    pub missing_table: u64,
    /// Conflicts by table: a write from another region replaced, or lost to, a version from a
    /// different region.
    pub conflicts: std::collections::BTreeMap<String, u64>,
    /// Tables this region became a replica of (`ReplicaUpdates` Create elsewhere): their
    /// earlier items never reached this region, so it must be seeded from a snapshot.
    pub replicas_added: Vec<String>,
    /// When the batch became durable: its group's fsync returned (set by the writer). The
    /// replication lag is measured to this instant, not to whenever the caller's task next
    /// runs after it.
    pub durable_at: Option<Instant>,
}

/// What a change from another region does to its item: the state it leaves the item in and
/// the version it replaces — or `None` when it has no effect.
type Resolved = Option<(After, Option<Version>)>;

/// The state a change leaves its item in.
enum After {
    /// The change's own: its put's item and counters, or deleted. Taken from the change when
    /// it is recorded, so the item is moved, not copied.
    Change,
    /// The change merged into the item's current state (counters joined).
    Merged(StoredItem),
}

/// An item state in a group's overlay.
enum Cached {
    /// Decoded: read from the store, or written by a local request or a counter merge.
    Item(StoredItem),
    /// A received put written as it arrived ([`ChangeOp::PutEncoded`]): its item record as
    /// stored, version and size. Decoded only if something in the group needs its attributes.
    Record {
        version: Version,
        size: usize,
        record: Vec<u8>,
    },
}

impl Cached {
    fn version(&self) -> &Version {
        match self {
            Cached::Item(s) => &s.version,
            Cached::Record { version, .. } => version,
        }
    }

    /// The item's size as DynamoDB counts it.
    fn size(&self) -> usize {
        match self {
            Cached::Item(s) => item_size(&s.item),
            Cached::Record { size, .. } => *size,
        }
    }

    fn has_counters(&self) -> bool {
        match self {
            Cached::Item(s) => s.crdt.is_some(),
            Cached::Record { .. } => false,
        }
    }

    /// Decoded.
    fn into_item(self) -> Result<StoredItem, StoreError> {
        match self {
            Cached::Item(s) => Ok(s),
            Cached::Record { record, .. } => record::decode_item_record(&record),
        }
    }

    fn as_item(&self) -> Option<&StoredItem> {
        match self {
            Cached::Item(s) => Some(s),
            Cached::Record { .. } => None,
        }
    }
}

type DecideFn = Box<dyn FnOnce(Vec<Option<StoredItem>>) -> Decision + Send>;
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(crate) enum Job {
    Write {
        reads: Vec<(Arc<TableMeta>, Vec<u8>)>,
        decide: DecideFn,
    },
    CreateTable {
        meta: Box<TableMeta>,
        reply: Reply<Arc<TableMeta>>,
    },
    DeleteTable {
        name: String,
        reply: Reply<Arc<TableMeta>>,
    },
    UpdateTable {
        name: String,
        update: Box<dyn FnOnce(&mut TableMeta) + Send>,
        reply: Reply<Arc<TableMeta>>,
    },
    BackfillChunk {
        table: String,
        index_id: u64,
        after: Option<Vec<u8>>,
        reply: Reply<Backfilled>,
    },
    ApplyRemote {
        entries: Vec<ChangeEntry>,
        repair: bool,
        reply: Reply<ApplyReport>,
    },
    SetCheckpoint {
        link: String,
        seq: u64,
        reply: Reply<()>,
    },
    FinishSnapshot {
        watermarks: std::collections::BTreeMap<String, u64>,
        reply: Reply<()>,
    },
    /// Ends a recovery (`recovery.rs`): the head moves to `to`, the sequences skipped are
    /// recorded as a gap.
    SkipSequences {
        to: u64,
        reply: Reply<()>,
    },
    PurgeLog {
        upto: u64,
        older_than_ms: u64,
        limit: usize,
        reply: Reply<u64>,
    },
    PurgeTombstones {
        before_ts: u64,
        upto_seq: u64,
        older_than_ms: u64,
        after: Option<Vec<u8>>,
        limit: usize,
        reply: Reply<(u64, Option<Vec<u8>>)>,
    },
    Shutdown,
}

/// Writer metrics (group commit sizes, fsync latency, change-log head).
#[derive(Clone)]
pub(crate) struct WriterMetrics {
    group_size: Histogram,
    fsync_seconds: Histogram,
    /// Time a write spends with the writer: queued, decided, committed, synced.
    pub(crate) write_seconds: Histogram,
    /// Time of the engine commit (journal append + memtables), before the fsync: long ones
    /// are the engine's own stalls (flushes and compactions holding its locks).
    commit_seconds: Histogram,
    commits: Counter,
    changes: Counter,
    head: Gauge,
    pub(crate) conflicts: Family<TableLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TableLabel {
    pub(crate) table: String,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        Self {
            group_size: Histogram::new([
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ]),
            fsync_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 16),
            ),
            write_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.00005, 2.0, 16),
            ),
            commit_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.00005, 2.0, 16),
            ),
            commits: Counter::default(),
            changes: Counter::default(),
            head: Gauge::default(),
            conflicts: Family::default(),
        }
    }
}

impl WriterMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "meridian_commit_group_size",
            "Requests acknowledged by one group commit",
            self.group_size.clone(),
        );
        r.register(
            "meridian_fsync_seconds",
            "Latency of the group commit's fsync",
            self.fsync_seconds.clone(),
        );
        r.register(
            "meridian_write_seconds",
            "Time a write spends with the writer: queued, decided, committed and fsynced",
            self.write_seconds.clone(),
        );
        r.register(
            "meridian_commit_seconds",
            "Time of a group's engine commit (journal append and memtables) before its fsync",
            self.commit_seconds.clone(),
        );
        r.register("meridian_commits", "Group commits", self.commits.clone());
        r.register(
            "meridian_changes",
            "Changes written to the change log",
            self.changes.clone(),
        );
        r.register(
            "meridian_changelog_head",
            "Highest change-log sequence",
            self.head.clone(),
        );
        r.register(
            "meridian_replication_conflicts",
            "Replicated writes that replaced, or lost to, a concurrent version from another region",
            self.conflicts.clone(),
        );
    }
}

/// Post-commit work: acknowledgements and cache updates, run only once the group is durable.
enum Done {
    Write(Box<dyn FnOnce(Result<(), StoreError>) + Send>),
    Table(Reply<Arc<TableMeta>>, Arc<TableMeta>),
    Applied(Reply<ApplyReport>, ApplyReport),
    Cursor(Reply<Backfilled>, Backfilled),
    Unit(Reply<()>),
    Count(Reply<u64>, u64),
    Purged(Reply<(u64, Option<Vec<u8>>)>, (u64, Option<Vec<u8>>)),
}

struct Group<'a> {
    inner: &'a Inner,
    batch: fjall::OwnedWriteBatch,
    /// Item state as of the changes so far in this group (full key → state, `None` = deleted).
    overlay: HashMap<Vec<u8>, Option<Cached>>,
    /// Keys read from the items keyspace and found absent (not written by this group since).
    absent: HashSet<Vec<u8>>,
    /// Tombstones as of the changes so far in this group, read or written (full key → its
    /// version, `None` = no tombstone).
    tombs: HashMap<Vec<u8>, Option<Version>>,
    /// Dedup watermarks read or advanced by this group (origin → sequence).
    watermarks: HashMap<String, u64>,
    stats: HashMap<u64, TableStats>,
    dropped: HashSet<u64>,
    /// Index ids whose entries must be purged after the commit.
    dropped_indexes: Vec<u64>,
    /// Table metadata changed by this group (name → new meta or None if deleted).
    tables: HashMap<String, Option<Arc<TableMeta>>>,
    next_table_id: Option<u64>,
    head: u64,
    done: Vec<Done>,
    requests: usize,
    /// Whether a job in the group needs it durable before its reply: all but link checkpoints
    /// (see [`Job::needs_sync`]).
    needs_sync: bool,
}

impl<'a> Group<'a> {
    fn new(inner: &'a Inner) -> Self {
        Self {
            inner,
            batch: inner.db.batch(),
            overlay: HashMap::default(),
            absent: HashSet::default(),
            tombs: HashMap::default(),
            watermarks: HashMap::default(),
            stats: HashMap::default(),
            dropped: HashSet::default(),
            dropped_indexes: Vec::new(),
            tables: HashMap::default(),
            next_table_id: None,
            head: inner.head.load(Ordering::Acquire),
            done: Vec::new(),
            requests: 0,
            needs_sync: false,
        }
    }

    /// The item's current state as of this group (a copy; see [`Group::load`]).
    fn current(&mut self, full_key: &[u8]) -> Result<Option<StoredItem>, StoreError> {
        Ok(self.load(full_key)?.cloned())
    }

    /// The item's current state as of this group, decoded (see [`Group::peek`]).
    fn load(&mut self, full_key: &[u8]) -> Result<Option<&StoredItem>, StoreError> {
        if let Some(Some(c)) = self.overlay.get_mut(full_key)
            && let Cached::Record { record, .. } = c
        {
            let item = record::decode_item_record(record)?;
            *c = Cached::Item(item);
        }
        Ok(self.peek(full_key)?.and_then(Cached::as_item))
    }

    /// The item's current state as of this group, read once from the store and then kept in
    /// the group's overlay (or its set of absent keys); a received put written in this group
    /// is still encoded.
    fn peek(&mut self, full_key: &[u8]) -> Result<Option<&Cached>, StoreError> {
        if !self.overlay.contains_key(full_key) && !self.absent.contains(full_key) {
            // Remember what was read: the write that follows reads it again. (An overlay
            // `None` means "deleted in this group", so absent keys have a set of their own.)
            match self.inner.items.get(full_key)? {
                Some(v) => {
                    let state = record::decode_item_record(&v)?;
                    self.overlay
                        .insert(full_key.to_vec(), Some(Cached::Item(state)));
                }
                None => {
                    self.absent.insert(full_key.to_vec());
                }
            }
        }
        Ok(self.overlay.get(full_key).and_then(Option::as_ref))
    }

    /// The version of the item's tombstone, if it has one, as of this group.
    fn tombstone(&mut self, full_key: &[u8]) -> Result<Option<Version>, StoreError> {
        if let Some(t) = self.tombs.get(full_key) {
            return Ok(t.clone());
        }
        let t = match self.inner.tombstones.get(full_key)? {
            Some(v) => Some(record::decode_tombstone(&v)?.0),
            None => None,
        };
        self.tombs.insert(full_key.to_vec(), t.clone());
        Ok(t)
    }

    fn table_live(&self, t: &TableMeta) -> bool {
        if self.dropped.contains(&t.id) {
            return false;
        }
        match self.tables.get(&t.name) {
            Some(Some(m)) => m.id == t.id,
            Some(None) => false,
            None => self
                .inner
                .tables
                .read()
                .map(|m| m.get(&t.name).is_some_and(|m| m.id == t.id))
                .unwrap_or(false),
        }
    }

    fn stats_for(&mut self, id: u64) -> &mut TableStats {
        let inner = self.inner;
        self.stats.entry(id).or_insert_with(|| {
            inner
                .stats
                .lock()
                .ok()
                .and_then(|s| s.get(&id).copied())
                .unwrap_or_default()
        })
    }

    fn write(
        &mut self,
        reads: Vec<(Arc<TableMeta>, Vec<u8>)>,
        decide: DecideFn,
        hlc: &mut Hlc,
    ) -> Result<(), StoreError> {
        self.requests += 1;
        let mut current = Vec::with_capacity(reads.len());
        for (t, k) in &reads {
            if !self.table_live(t) {
                let d = decide(vec![None; reads.len()]);
                (d.complete)(Err(StoreError::NoSuchTable(t.name.clone())));
                return Ok(());
            }
            current.push(self.current(&record::item_key(t.id, k))?);
        }
        let decision = decide(current);
        if let Some(dead) = decision.changes.iter().find(|c| !self.table_live(&c.table)) {
            let name = dead.table.name.clone();
            (decision.complete)(Err(StoreError::NoSuchTable(name)));
            return Ok(());
        }
        for change in &decision.changes {
            self.apply_local(change, hlc)?;
        }
        self.done.push(Done::Write(decision.complete));
        Ok(())
    }

    /// Applies a change accepted from a local client: a new version and the next sequence,
    /// with this region as the GTID origin.
    fn apply_local(&mut self, change: &Change, hlc: &mut Hlc) -> Result<(), StoreError> {
        let version = Version {
            ts: hlc.now().map_err(StoreError::Clock)?,
            region: self.inner.region.clone(),
        };
        let (op, crdt) = match &change.kind {
            ChangeKind::Put(item) => (ChangeOp::Put(item.clone()), None),
            ChangeKind::Update(item, crdt) => {
                let mut crdt = crdt.clone();
                if crdt.epoch.is_none() {
                    // The update creates the item: its counters start at the epoch of the
                    // tombstone it replaces (or the smallest), so concurrent creations in
                    // other regions add up instead of resetting each other.
                    let full = record::item_key(change.table.id, &change.key);
                    let tombstone = self.current_version(&full)?;
                    crdt.stamp(&creation_epoch(tombstone.as_ref()));
                } else {
                    crdt.stamp(&version);
                }
                (ChangeOp::Put(item.clone()), Some(crdt))
            }
            ChangeKind::Delete => (ChangeOp::Delete, None),
            ChangeKind::TtlDelete => (ChangeOp::TtlDelete, None),
        };
        let entry = ChangeEntry {
            seq: 0,
            gtid: Gtid {
                origin: self.inner.region.clone(),
                seq: self.head + 1,
            },
            table: change.table.name.clone(),
            key: change.key.clone(),
            version,
            op,
            crdt,
        };
        self.record_change(&change.table, After::Change, entry)
    }

    /// The version of an item's current state: its live version, or its tombstone's.
    fn current_version(&mut self, full: &[u8]) -> Result<Option<Version>, StoreError> {
        match self.peek(full)? {
            Some(s) => Ok(Some(s.version().clone())),
            None => self.tombstone(full),
        }
    }

    /// Writes one change: the item's new state (or a tombstone at `entry.version`), its index
    /// entries, stats, and `entry` in the change log at the next local sequence. The caller has
    /// decided the change has an effect.
    fn record_change(
        &mut self,
        table: &TableMeta,
        after: After,
        mut entry: ChangeEntry,
    ) -> Result<(), StoreError> {
        self.head += 1;
        let seq = self.head;
        entry.seq = seq;
        self.batch.insert(
            &self.inner.log,
            seq.to_be_bytes().to_vec(),
            record::encode_change(&entry),
        );
        let (key, version, state) = state_after(entry, after);
        self.write_state(table, &key, state, &version, seq)
    }

    /// Writes an item's new state — the live item, or a tombstone at `version` recorded at
    /// change-log sequence `seq` — with its index entries and the table's stats, into the batch
    /// and the group's overlay.
    fn write_state(
        &mut self,
        table: &TableMeta,
        key: &[u8],
        mut state: Option<Cached>,
        version: &Version,
        seq: u64,
    ) -> Result<(), StoreError> {
        let full = record::item_key(table.id, key);
        // Index entries change in the same batch as the item (with the table's latest indexes),
        // which needs both states decoded.
        let indexed = self
            .lookup_table(&table.name)
            .filter(|t| t.id == table.id && !t.indexes.is_empty());
        if indexed.is_some() {
            self.load(&full)?;
            if let Some(c @ Cached::Record { .. }) = state {
                state = Some(Cached::Item(c.into_item()?));
            }
        } else {
            self.peek(&full)?;
        }
        // The old state is taken out of the overlay, not copied: the new one replaces it there
        // below. (A failure in between fails the whole group.)
        let old = self.overlay.remove(&full).flatten();
        let old_size = old.as_ref().map(|s| s.size() as i64);
        if let Some(live) = indexed {
            self.maintain_indexes(
                &live,
                key,
                old.as_ref().and_then(Cached::as_item).map(|s| &s.item),
                state.as_ref().and_then(Cached::as_item).map(|s| &s.item),
            );
        }
        match &state {
            Some(cached) => {
                match cached {
                    Cached::Item(stored) => self.batch.insert(
                        &self.inner.items,
                        full.clone(),
                        record::encode_item_record(stored),
                    ),
                    Cached::Record { record, .. } => {
                        self.batch
                            .insert(&self.inner.items, full.clone(), record.as_slice());
                    }
                }
                if self.tombstone(&full)?.is_some() {
                    self.batch.remove(&self.inner.tombstones, full.clone());
                    self.tombs.insert(full.clone(), None);
                }
                let new_size = cached.size() as i64;
                let st = self.stats_for(table.id);
                match old_size {
                    Some(s) => st.size_bytes += new_size - s,
                    None => {
                        st.item_count += 1;
                        st.size_bytes += new_size;
                    }
                }
            }
            None => {
                self.batch.remove(&self.inner.items, full.clone());
                self.batch.insert(
                    &self.inner.tombstones,
                    full.clone(),
                    record::encode_tombstone(version, seq),
                );
                self.tombs.insert(full.clone(), Some(version.clone()));
                if let Some(s) = old_size {
                    let st = self.stats_for(table.id);
                    st.item_count -= 1;
                    st.size_bytes -= s;
                }
            }
        }
        self.absent.remove(&full);
        self.overlay.insert(full, state);
        Ok(())
    }

    /// Replaces an item's entries in every index of its table.
    fn maintain_indexes(
        &mut self,
        table: &TableMeta,
        key: &[u8],
        old: Option<&Item>,
        new: Option<&Item>,
    ) {
        for idx in &table.indexes {
            let old_key = old.and_then(|o| index_entry_key(idx, o, key));
            let new_entry = new.and_then(|n| {
                let k = index_entry_key(idx, n, key)?;
                Some((k, idx.entry_of(&table.key_schema, n)?))
            });
            if let Some(k) = old_key
                && new_entry.as_ref().is_none_or(|(nk, _)| *nk != k)
            {
                self.batch.remove(&self.inner.index, k);
            }
            if let Some((k, entry)) = new_entry {
                self.batch
                    .insert(&self.inner.index, k, record::encode_index_entry(&entry));
            }
        }
    }

    /// Decides what an item state or change from another region does here: two live states
    /// merge (counters join), otherwise last writer wins against the live or tombstone version.
    /// Returns the new state (`None` = tombstone) and the version it replaces, or `None` when
    /// the incoming change has no effect (stale or already reflected).
    fn resolve(&mut self, table: &TableMeta, e: &ChangeEntry) -> Result<Resolved, StoreError> {
        let full = record::item_key(table.id, &e.key);
        let current = self.current_version(&full)?;
        // A put over a live item merges if either has counters: only then are both decoded.
        let merges = self
            .peek(&full)?
            .is_some_and(|c| c.has_counters() || e.crdt.is_some());
        let incoming = if merges { e.op.item()? } else { None };
        if let Some(item) = incoming
            && let Some(cur) = self.load(&full)?
        {
            let incoming = StoredItem {
                version: e.version.clone(),
                item: item.into_owned(),
                crdt: e.crdt.clone(),
            };
            let m = merge(&cur.to_state(), &incoming.to_state());
            let m = StoredItem {
                version: m.version,
                item: m.item,
                crdt: m.crdt,
            };
            return Ok((m != *cur).then_some((After::Merged(m), current)));
        }
        let after = (BROKEN_APPLY || meridian_core::lww_wins(&e.version, current.as_ref()))
            .then_some(After::Change);
        Ok(after.map(|a| (a, current)))
    }

    /// Applies one item state received by anti-entropy repair: merge or last-writer-wins, as for
    /// replicated changes, then stores the result without a change-log entry.
    fn repair_one(
        &mut self,
        e: ChangeEntry,
        hlc: &mut Hlc,
        report: &mut ApplyReport,
    ) -> Result<(), StoreError> {
        hlc.observe(e.version.ts);
        let Some(table) = self.lookup_table(&e.table) else {
            report.missing_table += 1;
            return Ok(());
        };
        let Some((after, _)) = self.resolve(&table, &e)? else {
            report.stale += 1;
            return Ok(());
        };
        let (key, version, state) = state_after(e, after);
        self.write_state(&table, &key, state, &version, self.head)?;
        report.applied += 1;
        Ok(())
    }

    /// Writes the index entries of up to [`BACKFILL_CHUNK`] items after `after` (a storage
    /// key), reading each item as of this group (so entries match the latest state). Returns
    /// the cursor to continue from (`None` when the table is done) and how many items were
    /// skipped because a value of theirs cannot be an index key (DynamoDB's index key
    /// violations: the wrong type, or an empty or oversized string or binary).
    fn backfill_chunk(
        &mut self,
        table: &str,
        index_id: u64,
        after: Option<Vec<u8>>,
    ) -> Result<Backfilled, StoreError> {
        self.requests += 1;
        let done = Backfilled::default();
        let Some(t) = self.lookup_table(table) else {
            return Ok(done);
        };
        let Some(idx) = t.indexes.iter().find(|i| i.id == index_id).cloned() else {
            return Ok(done);
        };
        let lo = match &after {
            Some(k) => std::ops::Bound::Excluded(record::item_key(t.id, k)),
            None => std::ops::Bound::Included(record::table_prefix(t.id)),
        };
        let hi = std::ops::Bound::Excluded(record::table_end(t.id));
        let n = record::prefix_len(t.id);
        let keys: Vec<Vec<u8>> = self
            .inner
            .items
            .range::<Vec<u8>, _>((lo, hi))
            .take(BACKFILL_CHUNK)
            .map(|g| g.key().map(|k| k.to_vec()))
            .collect::<Result<_, _>>()?;
        let mut skipped = 0;
        for full in &keys {
            let base = full.get(n..).unwrap_or_default();
            let Some(state) = self.current(full)? else {
                continue;
            };
            // An item with no value for an index key attribute is simply not in the index.
            let Some(entry) = idx.entry_of(&t.key_schema, &state.item) else {
                continue;
            };
            match index_entry_key(&idx, &state.item, base) {
                Some(k) => {
                    self.batch
                        .insert(&self.inner.index, k, record::encode_index_entry(&entry))
                }
                None => skipped += 1,
            }
        }
        let next = if keys.len() < BACKFILL_CHUNK {
            None
        } else {
            keys.last().map(|k| k.get(n..).unwrap_or_default().to_vec())
        };
        Ok(Backfilled { next, skipped })
    }

    /// The highest sequence of `origin` applied here (dedup watermark).
    fn watermark(&mut self, origin: &str) -> Result<u64, StoreError> {
        if let Some(w) = self.watermarks.get(origin) {
            return Ok(*w);
        }
        let w = match self.inner.meta.get(watermark_key(origin))? {
            Some(v) => record::decode_u64(&v)?,
            None => 0,
        };
        self.watermarks.insert(origin.to_owned(), w);
        Ok(w)
    }

    /// Applies changes received from other regions: skips this region's own changes (loop
    /// prevention) and anything at or below the origin's watermark (dedup), decides each
    /// remaining change by last-writer-wins against the item's current version (live or
    /// tombstone), and advances the watermark in the same commit. Applied changes are logged
    /// only when `log_remote` is set (a star's hub, which forwards them).
    fn apply_remote(
        &mut self,
        entries: Vec<ChangeEntry>,
        repair: bool,
        hlc: &mut Hlc,
    ) -> Result<ApplyReport, StoreError> {
        self.requests += 1;
        let mut report = ApplyReport::default();
        // Origins whose watermark this apply advanced: written once each, after the loop.
        let mut advanced: Vec<String> = Vec::new();
        for e in entries {
            // Repairs (anti-entropy) carry item states, not change-log entries: no loop or
            // dedup bookkeeping, and nothing is logged (repair is between two regions).
            if repair {
                if matches!(e.op, ChangeOp::TableUpsert(_) | ChangeOp::TableDrop) {
                    hlc.observe(e.version.ts);
                    if self.apply_table_change(&e)? {
                        report.applied += 1;
                    } else {
                        report.stale += 1;
                    }
                } else {
                    self.repair_one(e, hlc, &mut report)?;
                }
                continue;
            }
            if e.gtid.origin == self.inner.region {
                report.own += 1;
                continue;
            }
            let wm = self.watermark(&e.gtid.origin)?;
            if e.gtid.seq <= wm && !BROKEN_APPLY {
                report.duplicates += 1;
                continue;
            }
            // `watermark` above cached this origin's entry: update it in place (no new key).
            match self.watermarks.get_mut(e.gtid.origin.as_str()) {
                Some(w) => *w = e.gtid.seq,
                None => {
                    self.watermarks.insert(e.gtid.origin.clone(), e.gtid.seq);
                }
            }
            if !advanced.contains(&e.gtid.origin) {
                advanced.push(e.gtid.origin.clone());
            }
            hlc.observe(e.version.ts);
            if matches!(e.op, ChangeOp::TableUpsert(_) | ChangeOp::TableDrop) {
                // A table this region lacks arriving by a change other than its creation is
                // an existing table this region became a replica of (`ReplicaUpdates`).
                let added = self.lookup_table(&e.table).is_none()
                    && matches!(&e.op, ChangeOp::TableUpsert(m)
                        if m.created.as_ref() != Some(&e.version)
                            && m.replicas.as_ref().is_none_or(|r| r.contains(&self.inner.region)));
                if self.apply_table_change(&e)? {
                    if added {
                        report.replicas_added.push(e.table.clone());
                    }
                    if self.inner.log_remote {
                        self.log_only(e);
                    }
                    report.applied += 1;
                } else {
                    report.stale += 1;
                }
                continue;
            }
            let Some(table) = self.lookup_table(&e.table) else {
                report.missing_table += 1;
                continue;
            };
            let Some((after, current)) = self.resolve(&table, &e)? else {
                report.stale += 1;
                *report.conflicts.entry(table.name.clone()).or_default() += 1;
                continue;
            };
            if current
                .as_ref()
                .is_some_and(|c| c.region != e.version.region)
            {
                *report.conflicts.entry(table.name.clone()).or_default() += 1;
            }
            if self.inner.log_remote {
                self.record_change(&table, after, e)?;
            } else {
                // Not logged: no link of this region carries it. A tombstone is recorded at
                // sequence 0, delivered by definition (nothing of ours ships it).
                let (key, version, state) = state_after(e, after);
                self.write_state(&table, &key, state, &version, 0)?;
            }
            report.applied += 1;
        }
        for origin in advanced {
            let seq = self.watermarks.get(&origin).copied().unwrap_or_default();
            self.batch.insert(
                &self.inner.meta,
                watermark_key(&origin),
                record::encode_u64(seq),
            );
        }
        Ok(report)
    }

    /// Raises each origin's watermark to a snapshot's (never this region's own, never lower)
    /// and clears the new-region mark, in this group's commit.
    fn finish_snapshot(
        &mut self,
        watermarks: std::collections::BTreeMap<String, u64>,
    ) -> Result<(), StoreError> {
        self.requests += 1;
        for (origin, seq) in watermarks {
            if origin == self.inner.region || seq <= self.watermark(&origin)? {
                continue;
            }
            self.watermarks.insert(origin.clone(), seq);
            self.batch.insert(
                &self.inner.meta,
                watermark_key(&origin),
                record::encode_u64(seq),
            );
        }
        self.batch
            .remove(&self.inner.meta, crate::store::META_BOOTSTRAP.to_vec());
        Ok(())
    }

    /// Ends a recovery: the next local sequence is `to + 1`; `(head, to]` is recorded as a gap.
    fn skip_sequences(&mut self, to: u64) {
        self.requests += 1;
        if to > self.head {
            self.batch.insert(
                &self.inner.meta,
                crate::recovery::gap_key(to),
                record::encode_u64(self.head),
            );
            self.head = to;
        }
        self.batch
            .remove(&self.inner.meta, crate::recovery::META_RECOVERY.to_vec());
    }

    /// Removes the oldest change-log entries up to `upto` committed before `older_than_ms`
    /// (at most `limit`), and records the purge point. Returns how many were removed.
    fn purge_log(
        &mut self,
        upto: u64,
        older_than_ms: u64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.requests += 1;
        let upto = upto.min(self.head);
        let mut last = None;
        let mut last_own = None;
        let mut n = 0;
        for kv in self.inner.log.range(..=upto.to_be_bytes()).take(limit) {
            let (k, v) = kv.into_inner()?;
            let seq = crate::store::u64_suffix(&k, 0)?;
            let entry = record::decode_change(seq, &v)?;
            if entry.version.ts.physical_ms() >= older_than_ms {
                break;
            }
            self.batch.remove(&self.inner.log, k.to_vec());
            last = Some(seq);
            if entry.gtid.origin == self.inner.region {
                last_own = Some(seq);
            }
            n += 1;
        }
        if let Some(seq) = last {
            self.batch.insert(
                &self.inner.meta,
                crate::store::META_GC.to_vec(),
                record::encode_u64(seq),
            );
        }
        if let Some(seq) = last_own {
            self.batch.insert(
                &self.inner.meta,
                crate::store::META_GC_OWN.to_vec(),
                record::encode_u64(seq),
            );
        }
        Ok(n)
    }

    /// Removes the tombstones after `after` (at most `limit` scanned) whose timestamp is at or
    /// below `before_ts`, that were committed before `older_than_ms` and recorded at or below
    /// `upto_seq`. Keys this group already touched are left alone (their state in the batch is
    /// newer than what is read).
    fn purge_tombstones(
        &mut self,
        before_ts: u64,
        upto_seq: u64,
        older_than_ms: u64,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        self.requests += 1;
        let lo = match after {
            Some(k) => std::ops::Bound::Excluded(k),
            None => std::ops::Bound::Unbounded,
        };
        let mut purged = 0;
        let mut scanned = 0;
        let mut last = None;
        for kv in self
            .inner
            .tombstones
            .range::<Vec<u8>, _>((lo, std::ops::Bound::Unbounded))
            .take(limit)
        {
            let (k, v) = kv.into_inner()?;
            scanned += 1;
            let (version, seq) = record::decode_tombstone(&v)?;
            let key = k.to_vec();
            if version.ts.0 <= before_ts
                && seq <= upto_seq
                && version.ts.physical_ms() < older_than_ms
                && !self.overlay.contains_key(&key)
                && !self.tombs.contains_key(&key)
            {
                self.batch.remove(&self.inner.tombstones, key.clone());
                self.tombs.insert(key.clone(), None);
                purged += 1;
            }
            last = Some(key);
        }
        Ok((purged, if scanned < limit { None } else { last }))
    }

    fn next_table_id(&mut self) -> Result<u64, StoreError> {
        let id = match self.next_table_id {
            Some(id) => id,
            None => match self.inner.meta.get(META_NEXT_TABLE_ID)? {
                Some(v) => record::decode_u64(&v)?,
                None => 1,
            },
        };
        self.next_table_id = Some(id + 1);
        self.batch.insert(
            &self.inner.meta,
            META_NEXT_TABLE_ID.to_vec(),
            record::encode_u64(id + 1),
        );
        Ok(id)
    }

    fn lookup_table(&self, name: &str) -> Option<Arc<TableMeta>> {
        match self.tables.get(name) {
            Some(t) => t.clone(),
            None => self
                .inner
                .tables
                .read()
                .ok()
                .and_then(|t| t.get(name).cloned()),
        }
    }

    fn put_table_meta(&mut self, meta: &TableMeta) -> Result<(), StoreError> {
        let json = serde_json::to_value(meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.batch.insert(
            &self.inner.meta,
            table_meta_key(&meta.name),
            record::encode_json(&json),
        );
        Ok(())
    }

    /// Gives a table (and its indexes) local storage ids and records its metadata.
    fn install_table(&mut self, mut meta: TableMeta) -> Result<Arc<TableMeta>, StoreError> {
        meta.id = self.next_table_id()?;
        for idx in &mut meta.indexes {
            idx.id = self.next_table_id()?;
        }
        self.batch
            .remove(&self.inner.meta, table_tombstone_key(&meta.name));
        self.put_table_meta(&meta)?;
        let meta = Arc::new(meta);
        self.tables.insert(meta.name.clone(), Some(meta.clone()));
        Ok(meta)
    }

    /// Removes a table's metadata (its items are purged after the commit) and remembers the
    /// version of the drop, so an older replicated create cannot bring it back.
    fn remove_table(&mut self, meta: &TableMeta, version: &Version) {
        self.batch
            .remove(&self.inner.meta, table_meta_key(&meta.name));
        self.batch
            .remove(&self.inner.meta, id_key(META_STATS, meta.id));
        self.batch.insert(
            &self.inner.meta,
            id_key(META_DROPPED, meta.id),
            record::encode_u64(meta.id),
        );
        self.batch.insert(
            &self.inner.meta,
            table_tombstone_key(&meta.name),
            record::encode_tombstone(version, self.head),
        );
        self.dropped.insert(meta.id);
        self.dropped_indexes
            .extend(meta.indexes.iter().map(|i| i.id));
        self.stats.remove(&meta.id);
        self.tables.insert(meta.name.clone(), None);
    }

    /// Replaces a table's metadata, keeping its storage id; indexes keep their ids by name, new
    /// ones get ids (and start `CREATING` until backfilled), removed ones are purged.
    fn replace_table(
        &mut self,
        old: &TableMeta,
        mut meta: TableMeta,
        remote: bool,
    ) -> Result<Arc<TableMeta>, StoreError> {
        meta.id = old.id;
        meta.name = old.name.clone();
        for idx in &mut meta.indexes {
            match old
                .indexes
                .iter()
                .find(|o| o.name == idx.name && o.kind == idx.kind)
            {
                Some(o) if idx.id == 0 || idx.id == o.id || o.key_schema == idx.key_schema => {
                    idx.id = o.id;
                    if remote {
                        // another region's build state says nothing about ours
                        idx.status = o.status;
                    }
                }
                _ => {
                    idx.id = self.next_table_id()?;
                    idx.status = meridian_model::table::IndexStatus::Creating;
                }
            }
        }
        for o in &old.indexes {
            if !meta.indexes.iter().any(|i| i.id == o.id) {
                self.dropped_indexes.push(o.id);
            }
        }
        self.put_table_meta(&meta)?;
        let meta = Arc::new(meta);
        self.tables.insert(meta.name.clone(), Some(meta.clone()));
        Ok(meta)
    }

    /// Logs a table change (local DDL) so it replicates.
    fn log_table_change(
        &mut self,
        name: &str,
        version: Version,
        op: ChangeOp,
    ) -> Result<(), StoreError> {
        let gtid = Gtid {
            origin: self.inner.region.clone(),
            seq: self.head + 1,
        };
        self.log_only(ChangeEntry {
            seq: 0,
            gtid,
            table: name.to_owned(),
            key: Vec::new(),
            version,
            op,
            crdt: None,
        });
        Ok(())
    }

    /// Appends an entry to the change log at the next local sequence (no item state changes).
    fn log_only(&mut self, mut entry: ChangeEntry) {
        self.head += 1;
        entry.seq = self.head;
        self.batch.insert(
            &self.inner.log,
            self.head.to_be_bytes().to_vec(),
            record::encode_change(&entry),
        );
    }

    fn create_table(
        &mut self,
        meta: Box<TableMeta>,
        hlc: &mut Hlc,
        reply: Reply<Arc<TableMeta>>,
    ) -> Result<(), StoreError> {
        self.requests += 1;
        let mut meta = *meta;
        if self.lookup_table(&meta.name).is_some() {
            let _ = reply.send(Err(StoreError::TableExists(meta.name)));
            return Ok(());
        }
        let version = Version {
            ts: hlc.now().map_err(StoreError::Clock)?,
            region: self.inner.region.clone(),
        };
        meta.version = Some(version.clone());
        meta.created = Some(version.clone());
        let meta = self.install_table(meta)?;
        self.log_table_change(
            &meta.name,
            version,
            ChangeOp::TableUpsert(Box::new((*meta).clone())),
        )?;
        self.done.push(Done::Table(reply, meta));
        Ok(())
    }

    fn delete_table(
        &mut self,
        name: String,
        hlc: &mut Hlc,
        reply: Reply<Arc<TableMeta>>,
    ) -> Result<(), StoreError> {
        self.requests += 1;
        let Some(meta) = self.lookup_table(&name) else {
            let _ = reply.send(Err(StoreError::NoSuchTable(name)));
            return Ok(());
        };
        let version = Version {
            ts: hlc.now().map_err(StoreError::Clock)?,
            region: self.inner.region.clone(),
        };
        self.remove_table(&meta, &version);
        self.log_table_change(&name, version, ChangeOp::TableDrop)?;
        self.done.push(Done::Table(reply, meta));
        Ok(())
    }

    fn update_table(
        &mut self,
        name: String,
        update: Box<dyn FnOnce(&mut TableMeta) + Send>,
        hlc: &mut Hlc,
        reply: Reply<Arc<TableMeta>>,
    ) -> Result<(), StoreError> {
        self.requests += 1;
        let Some(old) = self.lookup_table(&name) else {
            let _ = reply.send(Err(StoreError::NoSuchTable(name)));
            return Ok(());
        };
        let mut meta = (*old).clone();
        update(&mut meta);
        let version = Version {
            ts: hlc.now().map_err(StoreError::Clock)?,
            region: self.inner.region.clone(),
        };
        meta.version = Some(version.clone());
        let meta = self.replace_table(&old, meta, false)?;
        self.log_table_change(
            &name,
            version,
            ChangeOp::TableUpsert(Box::new((*meta).clone())),
        )?;
        self.done.push(Done::Table(reply, meta));
        Ok(())
    }

    /// The version of the last drop of a table name, if any.
    fn table_tombstone(&self, name: &str) -> Result<Option<Version>, StoreError> {
        match self.inner.meta.get(table_tombstone_key(name))? {
            Some(v) => Ok(Some(record::decode_tombstone(&v)?.0)),
            None => Ok(None),
        }
    }

    /// Applies a replicated table change by last-writer-wins on the metadata's version.
    /// Returns whether it had an effect.
    fn apply_table_change(&mut self, e: &ChangeEntry) -> Result<bool, StoreError> {
        let local = self.lookup_table(&e.table);
        match &e.op {
            ChangeOp::TableUpsert(remote) => {
                let mut meta = (**remote).clone();
                meta.version = Some(e.version.clone());
                let here = meta
                    .replicas
                    .as_ref()
                    .is_none_or(|r| r.contains(&self.inner.region));
                match local {
                    Some(l) if l.version.as_ref().is_some_and(|v| *v >= e.version) => Ok(false),
                    Some(l) if !here => {
                        self.remove_table(&l, &e.version);
                        Ok(true)
                    }
                    Some(l) => {
                        self.replace_table(&l, meta, true)?;
                        Ok(true)
                    }
                    None if !here => Ok(false),
                    None => {
                        if self
                            .table_tombstone(&e.table)?
                            .is_some_and(|v| v >= e.version)
                        {
                            return Ok(false);
                        }
                        meta.id = 0;
                        for idx in &mut meta.indexes {
                            idx.id = 0;
                        }
                        self.install_table(meta)?;
                        Ok(true)
                    }
                }
            }
            ChangeOp::TableDrop => match local {
                Some(l) if l.version.as_ref().is_none_or(|v| *v < e.version) => {
                    self.remove_table(&l, &e.version);
                    Ok(true)
                }
                _ => Ok(false),
            },
            _ => Ok(false),
        }
    }

    /// Commits the group and fsyncs it (unless no job in it needs that), then acknowledges it.
    /// On failure nothing is acknowledged.
    fn commit(mut self, hlc: &Hlc) -> Result<(), (StoreError, Vec<Done>)> {
        let inner = self.inner;
        for (id, st) in &self.stats {
            self.batch.insert(
                &inner.meta,
                id_key(META_STATS, *id),
                record::encode_stats(st.item_count, st.size_bytes),
            );
        }
        self.batch.insert(
            &inner.meta,
            META_HLC.to_vec(),
            record::encode_u64(hlc.last().0),
        );
        let changes = self.head - inner.head.load(Ordering::Acquire);
        let done = std::mem::take(&mut self.done);
        let committing = Instant::now();
        if let Err(e) = self.batch.commit() {
            return Err((e.into(), done));
        }
        inner
            .metrics
            .commit_seconds
            .observe(committing.elapsed().as_secs_f64());
        if self.needs_sync {
            let started = Instant::now();
            if let Err(e) = sync(inner) {
                return Err((e, done));
            }
            inner
                .metrics
                .fsync_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        let durable_at = Instant::now();
        inner.metrics.group_size.observe(self.requests as f64);
        inner.metrics.commits.inc();
        inner.metrics.changes.inc_by(changes);
        inner.metrics.head.set(self.head as i64);
        {
            // Under the mark's lock, so `Store::wait_durable` cannot miss the wake-up.
            let mut m = inner
                .mark
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *m = (self.head, hlc.last().0);
            inner.head.store(self.head, Ordering::Release);
            inner.durable.notify_all();
        }
        inner.head_tx.send_replace(self.head);
        if let Ok(mut s) = inner.stats.lock() {
            for id in &self.dropped {
                s.remove(id);
            }
            s.extend(self.stats.drain());
        }
        if let Ok(mut t) = inner.tables.write() {
            for (name, meta) in self.tables.drain() {
                match meta {
                    Some(m) => t.insert(name, m),
                    None => t.remove(&name),
                };
            }
        }
        for id in &self.dropped {
            spawn_purge_arc(inner, *id);
        }
        for id in &self.dropped_indexes {
            spawn_purge_arc(inner, *id);
        }
        for d in done {
            match d {
                Done::Write(f) => f(Ok(())),
                Done::Table(reply, meta) => {
                    let _ = reply.send(Ok(meta));
                }
                Done::Applied(reply, mut report) => {
                    report.durable_at = Some(durable_at);
                    for (table, n) in &report.conflicts {
                        inner
                            .metrics
                            .conflicts
                            .get_or_create(&TableLabel {
                                table: table.clone(),
                            })
                            .inc_by(*n);
                    }
                    let _ = reply.send(Ok(report));
                }
                Done::Unit(reply) => {
                    let _ = reply.send(Ok(()));
                }
                Done::Cursor(reply, cursor) => {
                    let _ = reply.send(Ok(cursor));
                }
                Done::Count(reply, n) => {
                    let _ = reply.send(Ok(n));
                }
                Done::Purged(reply, r) => {
                    let _ = reply.send(Ok(r));
                }
            }
        }
        Ok(())
    }
}

fn sync(inner: &Inner) -> Result<(), StoreError> {
    if inner.faults.fail_next_sync.swap(false, Ordering::AcqRel) {
        return Err(StoreError::Injected("fsync failure"));
    }
    let hold = inner.faults.hold_next_sync_ms.swap(0, Ordering::AcqRel);
    if hold > 0 {
        std::thread::sleep(std::time::Duration::from_millis(hold));
    }
    inner.db.persist(PersistMode::SyncData).map_err(Into::into)
}

fn fail_all(done: Vec<Done>, err: impl Fn() -> StoreError) {
    for d in done {
        match d {
            Done::Write(f) => f(Err(err())),
            Done::Table(reply, _) => {
                let _ = reply.send(Err(err()));
            }
            Done::Applied(reply, _) => {
                let _ = reply.send(Err(err()));
            }
            Done::Unit(reply) => {
                let _ = reply.send(Err(err()));
            }
            Done::Cursor(reply, _) => {
                let _ = reply.send(Err(err()));
            }
            Done::Count(reply, _) => {
                let _ = reply.send(Err(err()));
            }
            Done::Purged(reply, _) => {
                let _ = reply.send(Err(err()));
            }
        }
    }
}

impl Job {
    /// Whether the job's reply must wait for an fsync. Only a link checkpoint need not: a
    /// checkpoint lost in a crash is an older one after the restart, and the link then resends
    /// entries the receiver drops by its dedup watermark. Its write still lands in the journal
    /// in commit order, so the next fsync of any later group makes it durable too: a log purge,
    /// which is fsynced, can never outlive the checkpoint it was based on. A group of
    /// checkpoints alone is therefore not fsynced; they were about two in five of a replicating
    /// region's fsyncs (one per acknowledgement and link; docs/benchmarks.md, session 15).
    fn needs_sync(&self) -> bool {
        !matches!(self, Job::SetCheckpoint { .. })
    }
}

/// Refuses a job because the store is poisoned; returns whether it asked the writer to stop.
fn fail_job(job: Job) -> bool {
    match job {
        Job::Write { reads, decide } => {
            let d = decide(vec![None; reads.len()]);
            (d.complete)(Err(StoreError::Poisoned));
            false
        }
        Job::CreateTable { reply, .. }
        | Job::DeleteTable { reply, .. }
        | Job::UpdateTable { reply, .. } => {
            let _ = reply.send(Err(StoreError::Poisoned));
            false
        }
        Job::ApplyRemote { reply, .. } => {
            let _ = reply.send(Err(StoreError::Poisoned));
            false
        }
        Job::SetCheckpoint { reply, .. }
        | Job::FinishSnapshot { reply, .. }
        | Job::SkipSequences { reply, .. } => {
            let _ = reply.send(Err(StoreError::Poisoned));
            false
        }
        Job::PurgeLog { reply, .. } => {
            let _ = reply.send(Err(StoreError::Poisoned));
            false
        }
        Job::PurgeTombstones { reply, .. } => {
            let _ = reply.send(Err(StoreError::Poisoned));
            false
        }
        Job::BackfillChunk { reply, .. } => {
            let _ = reply.send(Err(StoreError::Poisoned));
            false
        }
        Job::Shutdown => true,
    }
}

pub(crate) fn run(inner: Arc<Inner>, rx: Receiver<Job>, mut hlc: Hlc, max_group: usize) {
    let mut shutdown = false;
    while !shutdown {
        let Ok(first) = rx.recv() else { break };
        let mut jobs = vec![first];
        while jobs.len() < max_group {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        inner.taken.fetch_add(jobs.len() as u64, Ordering::AcqRel);
        if inner.poisoned.load(Ordering::Acquire) {
            // `|` rather than `any`: every job must be answered.
            shutdown = jobs.into_iter().map(fail_job).fold(false, |a, b| a | b);
            continue;
        }
        let mut group = Group::new(&inner);
        let mut failed: Option<StoreError> = None;
        let mut rest = jobs.into_iter();
        for job in rest.by_ref() {
            group.needs_sync |= job.needs_sync();
            let r = match job {
                Job::Write { reads, decide } => group.write(reads, decide, &mut hlc),
                Job::CreateTable { meta, reply } => group.create_table(meta, &mut hlc, reply),
                Job::DeleteTable { name, reply } => group.delete_table(name, &mut hlc, reply),
                Job::UpdateTable {
                    name,
                    update,
                    reply,
                } => group.update_table(name, update, &mut hlc, reply),
                Job::ApplyRemote {
                    entries,
                    repair,
                    reply,
                } => match admit(&entries, &hlc, inner.max_clock_offset_ms) {
                    // Refused before anything of it is written: the group goes on.
                    Err(refused) => {
                        let _ = reply.send(Err(refused));
                        Ok(())
                    }
                    Ok(()) => group.apply_remote(entries, repair, &mut hlc).map(|report| {
                        group.done.push(Done::Applied(reply, report));
                    }),
                },
                Job::BackfillChunk {
                    table,
                    index_id,
                    after,
                    reply,
                } => group.backfill_chunk(&table, index_id, after).map(|cursor| {
                    group.done.push(Done::Cursor(reply, cursor));
                }),
                Job::SetCheckpoint { link, seq, reply } => {
                    group.requests += 1;
                    group.batch.insert(
                        &group.inner.meta,
                        checkpoint_key(&link),
                        record::encode_u64(seq),
                    );
                    group.done.push(Done::Unit(reply));
                    Ok(())
                }
                Job::FinishSnapshot { watermarks, reply } => {
                    group.finish_snapshot(watermarks).map(|()| {
                        group.done.push(Done::Unit(reply));
                    })
                }
                Job::SkipSequences { to, reply } => {
                    group.skip_sequences(to);
                    group.done.push(Done::Unit(reply));
                    Ok(())
                }
                Job::PurgeLog {
                    upto,
                    older_than_ms,
                    limit,
                    reply,
                } => group
                    .purge_log(upto, older_than_ms, limit)
                    .map(|n| group.done.push(Done::Count(reply, n))),
                Job::PurgeTombstones {
                    before_ts,
                    upto_seq,
                    older_than_ms,
                    after,
                    limit,
                    reply,
                } => group
                    .purge_tombstones(before_ts, upto_seq, older_than_ms, after, limit)
                    .map(|r| group.done.push(Done::Purged(reply, r))),
                Job::Shutdown => {
                    shutdown = true;
                    Ok(())
                }
            };
            if let Err(e) = r {
                failed = Some(e);
                break;
            }
        }
        let result = match failed {
            Some(e) => Err((e, std::mem::take(&mut group.done))),
            None => group.commit(&hlc),
        };
        if let Err((e, done)) = result {
            inner.poison(&e);
            fail_all(done, || StoreError::Poisoned);
            shutdown |= rest.map(fail_job).fold(false, |a, b| a | b);
        }
    }
    tracing::info!("writer stopped");
}

/// Checks every version of a batch from another region against the maximum clock offset
/// before any of it is applied: one version too far ahead refuses the whole batch.
fn admit(entries: &[ChangeEntry], hlc: &Hlc, max_offset_ms: u64) -> Result<(), StoreError> {
    for e in entries {
        hlc.admit(e.version.ts, max_offset_ms)
            .map_err(|error| StoreError::ClockAhead {
                origin: e.version.region.clone(),
                error,
            })?;
    }
    Ok(())
}

/// Takes a change apart into its item's storage key, its version and the state it leaves the
/// item in (`None` = deleted): the merge, or else the put's own item and counters.
fn state_after(e: ChangeEntry, after: After) -> (Vec<u8>, Version, Option<Cached>) {
    let ChangeEntry {
        key,
        version,
        op,
        crdt,
        ..
    } = e;
    let state = match (after, op) {
        (After::Merged(m), _) => Some(Cached::Item(m)),
        (After::Change, ChangeOp::Put(item)) => Some(Cached::Item(StoredItem {
            version: version.clone(),
            item,
            crdt,
        })),
        (After::Change, ChangeOp::PutEncoded(item)) => Some(Cached::Record {
            version: version.clone(),
            size: item.size(),
            record: record::encoded_item_record(&version, &item),
        }),
        (
            After::Change,
            ChangeOp::Delete | ChangeOp::TtlDelete | ChangeOp::TableUpsert(_) | ChangeOp::TableDrop,
        ) => None,
    };
    (key, version, state)
}

/// Meta key of the dedup watermark of an origin: `w/<origin>`.
pub(crate) fn watermark_key(origin: &str) -> Vec<u8> {
    let mut k = b"w/".to_vec();
    k.extend_from_slice(origin.as_bytes());
    k
}

/// Meta key of an outbound link's checkpoint (last sequence the peer acknowledged): `l/<link>`.
pub(crate) fn checkpoint_key(link: &str) -> Vec<u8> {
    let mut k = b"l/".to_vec();
    k.extend_from_slice(link.as_bytes());
    k
}

/// Key of an item's entry in an index: `varint(index_id) ‖ index storage key ‖ base storage key`
/// (`None` when the item has no value, or a value of the wrong type, for an index key).
pub(crate) fn index_entry_key(
    idx: &meridian_model::table::IndexMeta,
    item: &Item,
    base_key: &[u8],
) -> Option<Vec<u8>> {
    let ik = idx.key_schema.encode(item).ok()?;
    let mut k = record::table_prefix(idx.id);
    k.reserve(ik.len() + base_key.len());
    k.extend_from_slice(&ik);
    k.extend_from_slice(base_key);
    Some(k)
}

/// Meta key of a dropped table name's tombstone: `tt/<name>`.
fn table_tombstone_key(name: &str) -> Vec<u8> {
    let mut k = b"tt/".to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

fn table_meta_key(name: &str) -> Vec<u8> {
    let mut k = META_TABLE.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

fn id_key(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn spawn_purge_arc(inner: &Inner, id: u64) {
    // The purge thread needs an owned handle to the keyspaces; fjall handles are cheap clones.
    let items = inner.items.clone();
    let tombstones = inner.tombstones.clone();
    let index = inner.index.clone();
    let meta = inner.meta.clone();
    let db = inner.db.clone();
    let _ = std::thread::Builder::new()
        .name(format!("meridian-purge-{id}"))
        .spawn(move || {
            if let Err(e) = purge(&db, &[&items, &tombstones, &index], &meta, id) {
                tracing::error!(table_id = id, error = %e, "purging a deleted table failed; retried at next start");
            }
        });
}

/// Starts purging the items of a deleted table (also at start, for unfinished purges).
pub(crate) fn spawn_purge(inner: Arc<Inner>, id: u64) {
    spawn_purge_arc(&inner, id);
}

/// Removes a deleted table's items and tombstones in chunks, then its drop marker. Safe to
/// interrupt: the marker stays until everything is gone, and the purge restarts at open.
///
/// Each chunk's scan starts after the last key the previous chunk removed. Restarting at the
/// table's first key instead would step over the engine's tombstones of every key removed so
/// far, until compaction drops them: the purge of n items took O(n²) (200 000 items 9.6 s,
/// 400 000 items 37.4 s; now 0.25 s and 0.5 s: `scripts/bench_purge.py`, docs/benchmarks.md,
/// session 12).
fn purge(
    db: &fjall::Database,
    keyspaces: &[&fjall::Keyspace],
    meta: &fjall::Keyspace,
    id: u64,
) -> Result<(), StoreError> {
    const CHUNK: usize = 1000;
    const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    let started = Instant::now();
    let mut last_log = started;
    let end = record::table_end(id);
    let mut removed = 0usize;
    for ks in keyspaces.iter().copied() {
        let mut from = Bound::Included(record::table_prefix(id));
        loop {
            let keys: Vec<fjall::UserKey> = ks
                .range::<Vec<u8>, _>((from.clone(), Bound::Excluded(end.clone())))
                .take(CHUNK)
                .map(|g| g.key())
                .collect::<Result<_, _>>()?;
            let Some(last) = keys.last() else {
                break;
            };
            from = Bound::Excluded(last.to_vec());
            let mut b = db.batch();
            for k in &keys {
                b.remove(ks, k.clone());
            }
            b.commit()?;
            removed += keys.len();
            if last_log.elapsed() >= PROGRESS_EVERY {
                last_log = Instant::now();
                tracing::info!(
                    table_id = id,
                    removed,
                    seconds = started.elapsed().as_secs_f64(),
                    "purging a deleted table"
                );
            }
        }
    }
    let mut b = db.batch();
    b.remove(meta, id_key(META_DROPPED, id));
    b.commit()?;
    db.persist(PersistMode::SyncData)?;
    tracing::info!(
        table_id = id,
        removed,
        seconds = started.elapsed().as_secs_f64(),
        "deleted table purged"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A purge of more keys than one chunk removes every key of its table, in every keyspace,
    /// and nothing of the tables beside it — the next one (3) and one whose first varint byte
    /// has the same low seven bits (130 = `82 01`, 2 = `02`) — then its drop marker.
    #[test]
    fn purge_removes_exactly_the_dropped_tables_keys_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let ks = |n: &str| {
            db.keyspace(n, fjall::KeyspaceCreateOptions::default)
                .unwrap()
        };
        let (meta, items, index) = (ks("meta"), ks("items"), ks("index"));
        let key = |id: u64, k: &str| [record::table_prefix(id), k.as_bytes().to_vec()].concat();
        for id in [1u64, 2, 3, 130] {
            let n = if id == 2 { 2_500 } else { 10 };
            for i in 0..n {
                items.insert(key(id, &format!("k{i}")), b"v").unwrap();
            }
            index.insert(key(id, "ix"), b"").unwrap();
        }
        meta.insert(id_key(META_DROPPED, 2), b"").unwrap();
        purge(&db, &[&items, &index], &meta, 2).unwrap();
        let count = |ks: &fjall::Keyspace, id: u64| ks.prefix(record::table_prefix(id)).count();
        assert_eq!(count(&items, 2), 0);
        assert_eq!(count(&index, 2), 0);
        for id in [1u64, 3, 130] {
            assert_eq!(count(&items, id), 10, "table {id} untouched");
            assert_eq!(count(&index, id), 1, "table {id} untouched");
        }
        assert!(meta.get(id_key(META_DROPPED, 2)).unwrap().is_none());
    }
}
