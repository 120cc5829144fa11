//! The region's single writer: read-modify-write under one thread, group commit, fail-stop.

use crate::error::StoreError;
use crate::record::{self, ChangeEntry, ChangeOp, StoredItem};
use crate::store::{
    Inner, META_DROPPED, META_HLC, META_NEXT_TABLE_ID, META_STATS, META_TABLE, TableStats,
};
use fjall::PersistMode;
use meridian_core::{Gtid, Hlc, Version};
use meridian_model::Item;
use meridian_model::size::item_size;
use meridian_model::table::TableMeta;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Instant;
use tokio::sync::oneshot;

/// What a change does to one item.
#[derive(Clone, Debug, PartialEq)]
pub enum ChangeKind {
    /// Store these attributes.
    Put(Item),
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
    ApplyRemote {
        entries: Vec<ChangeEntry>,
        reply: Reply<ApplyReport>,
    },
    SetCheckpoint {
        link: String,
        seq: u64,
        reply: Reply<()>,
    },
    Shutdown,
}

/// Writer metrics (group commit sizes, fsync latency, change-log head).
#[derive(Clone)]
pub(crate) struct WriterMetrics {
    group_size: Histogram,
    fsync_seconds: Histogram,
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
    Unit(Reply<()>),
}

struct Group<'a> {
    inner: &'a Inner,
    batch: fjall::OwnedWriteBatch,
    /// Item state as of the changes so far in this group (full key → state).
    overlay: HashMap<Vec<u8>, Option<StoredItem>>,
    /// Tombstones written by this group (full key → version).
    tomb_overlay: HashMap<Vec<u8>, Version>,
    /// Dedup watermarks read or advanced by this group (origin → sequence).
    watermarks: HashMap<String, u64>,
    stats: HashMap<u64, TableStats>,
    dropped: HashSet<u64>,
    /// Table metadata changed by this group (name → new meta or None if deleted).
    tables: HashMap<String, Option<Arc<TableMeta>>>,
    next_table_id: Option<u64>,
    head: u64,
    done: Vec<Done>,
    requests: usize,
}

impl<'a> Group<'a> {
    fn new(inner: &'a Inner) -> Self {
        Self {
            inner,
            batch: inner.db.batch(),
            overlay: HashMap::new(),
            tomb_overlay: HashMap::new(),
            watermarks: HashMap::new(),
            stats: HashMap::new(),
            dropped: HashSet::new(),
            tables: HashMap::new(),
            next_table_id: None,
            head: inner.head.load(Ordering::Acquire),
            done: Vec::new(),
            requests: 0,
        }
    }

    fn current(&mut self, full_key: &[u8]) -> Result<Option<StoredItem>, StoreError> {
        if let Some(s) = self.overlay.get(full_key) {
            return Ok(s.clone());
        }
        match self.inner.items.get(full_key)? {
            Some(v) => Ok(Some(record::decode_item_record(&v)?)),
            None => Ok(None),
        }
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
            ts: hlc.now(),
            region: self.inner.region.clone(),
        };
        let op = match &change.kind {
            ChangeKind::Put(item) => ChangeOp::Put(item.clone()),
            ChangeKind::Delete => ChangeOp::Delete,
            ChangeKind::TtlDelete => ChangeOp::TtlDelete,
        };
        let gtid = Gtid {
            origin: self.inner.region.clone(),
            seq: self.head + 1,
        };
        self.record_change(&change.table, &change.key, version, gtid, op)
    }

    /// The version of an item's current state: its live version, or its tombstone's.
    fn current_version(&mut self, full: &[u8]) -> Result<Option<Version>, StoreError> {
        if let Some(state) = self.overlay.get(full) {
            return Ok(match state {
                Some(s) => Some(s.version.clone()),
                None => self.tomb_overlay.get(full).cloned(),
            });
        }
        if let Some(v) = self.inner.items.get(full)? {
            return Ok(Some(record::decode_item_record(&v)?.version));
        }
        match self.inner.tombstones.get(full)? {
            Some(v) => Ok(Some(record::decode_tombstone(&v)?.0)),
            None => Ok(None),
        }
    }

    /// Writes one change: item or tombstone, stats, and a change-log entry at the next local
    /// sequence. The caller has decided the change wins.
    fn record_change(
        &mut self,
        table: &TableMeta,
        key: &[u8],
        version: Version,
        gtid: Gtid,
        op: ChangeOp,
    ) -> Result<(), StoreError> {
        self.head += 1;
        let seq = self.head;
        let full = record::item_key(table.id, key);
        let old = self.current(&full)?;
        let old_size = old.as_ref().map(|s| item_size(&s.item) as i64);
        let new_state = match &op {
            ChangeOp::Put(item) => {
                let stored = StoredItem {
                    version: version.clone(),
                    item: item.clone(),
                };
                self.batch.insert(
                    &self.inner.items,
                    full.clone(),
                    record::encode_item_record(&stored),
                );
                if self.tomb_overlay.remove(&full).is_some()
                    || self.inner.tombstones.contains_key(&full)?
                {
                    self.batch.remove(&self.inner.tombstones, full.clone());
                }
                let new_size = item_size(item) as i64;
                let st = self.stats_for(table.id);
                match old_size {
                    Some(s) => st.size_bytes += new_size - s,
                    None => {
                        st.item_count += 1;
                        st.size_bytes += new_size;
                    }
                }
                Some(stored)
            }
            ChangeOp::Delete | ChangeOp::TtlDelete => {
                self.batch.remove(&self.inner.items, full.clone());
                self.batch.insert(
                    &self.inner.tombstones,
                    full.clone(),
                    record::encode_tombstone(&version, seq),
                );
                self.tomb_overlay.insert(full.clone(), version.clone());
                if let Some(s) = old_size {
                    let st = self.stats_for(table.id);
                    st.item_count -= 1;
                    st.size_bytes -= s;
                }
                None
            }
        };
        let entry = ChangeEntry {
            seq,
            gtid,
            table: table.name.clone(),
            key: key.to_vec(),
            version,
            op,
        };
        self.batch.insert(
            &self.inner.log,
            seq.to_be_bytes().to_vec(),
            record::encode_change(&entry),
        );
        self.overlay.insert(full, new_state);
        Ok(())
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
    /// tombstone), and advances the watermark in the same commit.
    fn apply_remote(
        &mut self,
        entries: Vec<ChangeEntry>,
        hlc: &mut Hlc,
    ) -> Result<ApplyReport, StoreError> {
        self.requests += 1;
        let mut report = ApplyReport::default();
        for e in entries {
            if e.gtid.origin == self.inner.region {
                report.own += 1;
                continue;
            }
            let wm = self.watermark(&e.gtid.origin)?;
            if e.gtid.seq <= wm {
                report.duplicates += 1;
                continue;
            }
            self.watermarks.insert(e.gtid.origin.clone(), e.gtid.seq);
            self.batch.insert(
                &self.inner.meta,
                watermark_key(&e.gtid.origin),
                record::encode_u64(e.gtid.seq),
            );
            hlc.observe(e.version.ts);
            let Some(table) = self.lookup_table(&e.table) else {
                report.missing_table += 1;
                continue;
            };
            let full = record::item_key(table.id, &e.key);
            let current = self.current_version(&full)?;
            if !meridian_core::lww_wins(&e.version, current.as_ref()) {
                report.stale += 1;
                *report.conflicts.entry(table.name.clone()).or_default() += 1;
                continue;
            }
            if current.as_ref().is_some_and(|c| c.region != e.version.region) {
                *report.conflicts.entry(table.name.clone()).or_default() += 1;
            }
            self.record_change(&table, &e.key, e.version, e.gtid, e.op)?;
            report.applied += 1;
        }
        Ok(report)
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

    fn create_table(
        &mut self,
        meta: Box<TableMeta>,
        reply: Reply<Arc<TableMeta>>,
    ) -> Result<(), StoreError> {
        self.requests += 1;
        let mut meta = *meta;
        if self.lookup_table(&meta.name).is_some() {
            let _ = reply.send(Err(StoreError::TableExists(meta.name)));
            return Ok(());
        }
        meta.id = self.next_table_id()?;
        self.put_table_meta(&meta)?;
        let meta = Arc::new(meta);
        self.tables.insert(meta.name.clone(), Some(meta.clone()));
        self.done.push(Done::Table(reply, meta));
        Ok(())
    }

    fn delete_table(
        &mut self,
        name: String,
        reply: Reply<Arc<TableMeta>>,
    ) -> Result<(), StoreError> {
        self.requests += 1;
        let Some(meta) = self.lookup_table(&name) else {
            let _ = reply.send(Err(StoreError::NoSuchTable(name)));
            return Ok(());
        };
        self.batch.remove(&self.inner.meta, table_meta_key(&name));
        self.batch
            .remove(&self.inner.meta, id_key(META_STATS, meta.id));
        self.batch.insert(
            &self.inner.meta,
            id_key(META_DROPPED, meta.id),
            record::encode_u64(meta.id),
        );
        self.dropped.insert(meta.id);
        self.stats.remove(&meta.id);
        self.tables.insert(name, None);
        self.done.push(Done::Table(reply, meta));
        Ok(())
    }

    fn update_table(
        &mut self,
        name: String,
        update: Box<dyn FnOnce(&mut TableMeta) + Send>,
        reply: Reply<Arc<TableMeta>>,
    ) -> Result<(), StoreError> {
        self.requests += 1;
        let Some(meta) = self.lookup_table(&name) else {
            let _ = reply.send(Err(StoreError::NoSuchTable(name)));
            return Ok(());
        };
        let mut meta = (*meta).clone();
        let id = meta.id;
        update(&mut meta);
        meta.id = id;
        meta.name = name.clone();
        self.put_table_meta(&meta)?;
        let meta = Arc::new(meta);
        self.tables.insert(name, Some(meta.clone()));
        self.done.push(Done::Table(reply, meta));
        Ok(())
    }

    /// Commits and fsyncs the group, then acknowledges it. On failure nothing is acknowledged.
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
        if let Err(e) = self.batch.commit() {
            return Err((e.into(), done));
        }
        let started = Instant::now();
        if let Err(e) = sync(inner) {
            return Err((e, done));
        }
        inner
            .metrics
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        inner.metrics.group_size.observe(self.requests as f64);
        inner.metrics.commits.inc();
        inner.metrics.changes.inc_by(changes);
        inner.metrics.head.set(self.head as i64);
        inner.head.store(self.head, Ordering::Release);
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
        for d in done {
            match d {
                Done::Write(f) => f(Ok(())),
                Done::Table(reply, meta) => {
                    let _ = reply.send(Ok(meta));
                }
                Done::Applied(reply, report) => {
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
            }
        }
        Ok(())
    }
}

fn sync(inner: &Inner) -> Result<(), StoreError> {
    if inner.faults.fail_next_sync.swap(false, Ordering::AcqRel) {
        return Err(StoreError::Injected("fsync failure"));
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
        }
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
        Job::SetCheckpoint { reply, .. } => {
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
            let r = match job {
                Job::Write { reads, decide } => group.write(reads, decide, &mut hlc),
                Job::CreateTable { meta, reply } => group.create_table(meta, reply),
                Job::DeleteTable { name, reply } => group.delete_table(name, reply),
                Job::UpdateTable {
                    name,
                    update,
                    reply,
                } => group.update_table(name, update, reply),
                Job::ApplyRemote { entries, reply } => {
                    group.apply_remote(entries, &mut hlc).map(|report| {
                        group.done.push(Done::Applied(reply, report));
                    })
                }
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
    let meta = inner.meta.clone();
    let db = inner.db.clone();
    let _ = std::thread::Builder::new()
        .name(format!("meridian-purge-{id}"))
        .spawn(move || {
            if let Err(e) = purge(&db, &items, &tombstones, &meta, id) {
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
fn purge(
    db: &fjall::Database,
    items: &fjall::Keyspace,
    tombstones: &fjall::Keyspace,
    meta: &fjall::Keyspace,
    id: u64,
) -> Result<(), StoreError> {
    let prefix = id.to_be_bytes();
    let mut removed = 0usize;
    for ks in [items, tombstones] {
        loop {
            let keys: Vec<_> = ks
                .prefix(prefix)
                .take(1000)
                .map(|g| g.key())
                .collect::<Result<_, _>>()?;
            if keys.is_empty() {
                break;
            }
            let mut b = db.batch();
            for k in &keys {
                b.remove(ks, k.clone());
            }
            b.commit()?;
            removed += keys.len();
        }
    }
    let mut b = db.batch();
    b.remove(meta, id_key(META_DROPPED, id));
    b.commit()?;
    db.persist(PersistMode::SyncData)?;
    tracing::info!(table_id = id, removed, "deleted table purged");
    Ok(())
}
