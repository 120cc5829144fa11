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
use prometheus_client::metrics::counter::Counter;
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
    }
}

/// Post-commit work: acknowledgements and cache updates, run only once the group is durable.
enum Done {
    Write(Box<dyn FnOnce(Result<(), StoreError>) + Send>),
    Table(Reply<Arc<TableMeta>>, Arc<TableMeta>),
}

struct Group<'a> {
    inner: &'a Inner,
    batch: fjall::OwnedWriteBatch,
    /// Item state as of the changes so far in this group (full key → state).
    overlay: HashMap<Vec<u8>, Option<StoredItem>>,
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

    /// Applies a change accepted from a local client: new version, next sequence.
    fn apply_local(&mut self, change: &Change, hlc: &mut Hlc) -> Result<(), StoreError> {
        let region = self.inner.region.clone();
        let version = Version {
            ts: hlc.now(),
            region: region.clone(),
        };
        self.head += 1;
        let seq = self.head;
        let full = record::item_key(change.table.id, &change.key);
        let old = self.current(&full)?;
        let old_size = old.as_ref().map(|s| item_size(&s.item) as i64);
        let (op, new_state) = match &change.kind {
            ChangeKind::Put(item) => {
                let stored = StoredItem {
                    version: version.clone(),
                    item: item.clone(),
                };
                self.batch.insert(
                    &self.inner.items,
                    full.clone(),
                    record::encode_item_record(&stored),
                );
                if self.inner.tombstones.contains_key(&full)? {
                    self.batch.remove(&self.inner.tombstones, full.clone());
                }
                let new_size = item_size(item) as i64;
                let st = self.stats_for(change.table.id);
                match old_size {
                    Some(s) => st.size_bytes += new_size - s,
                    None => {
                        st.item_count += 1;
                        st.size_bytes += new_size;
                    }
                }
                (ChangeOp::Put(item.clone()), Some(stored))
            }
            ChangeKind::Delete | ChangeKind::TtlDelete => {
                self.batch.remove(&self.inner.items, full.clone());
                self.batch.insert(
                    &self.inner.tombstones,
                    full.clone(),
                    record::encode_tombstone(&version),
                );
                if let Some(s) = old_size {
                    let st = self.stats_for(change.table.id);
                    st.item_count -= 1;
                    st.size_bytes -= s;
                }
                let op = if change.kind == ChangeKind::Delete {
                    ChangeOp::Delete
                } else {
                    ChangeOp::TtlDelete
                };
                (op, None)
            }
        };
        let entry = ChangeEntry {
            seq,
            gtid: Gtid {
                origin: region,
                seq,
            },
            table: change.table.name.clone(),
            key: change.key.clone(),
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
