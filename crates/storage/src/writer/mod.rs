//! The region's single writer: read-modify-write under one thread, group commit, fail-stop.
//!
//! This file holds the jobs, the group's state and the loop; each job family is in its own
//! file: `overlay` (the group's view of the store and how a state is written), `local` (a
//! request's read-modify-write), `remote` (changes from other regions), `ddl` (tables and
//! indexes), `purge` (log, tombstones, dropped tables), `commit` (commit, fsync, answers) and
//! `metrics`.

mod commit;
mod ddl;
mod local;

mod overlay;
mod purge;
mod remote;

use crate::metrics::TableLabel;

use overlay::state_after;
pub(crate) use purge::TablePurge;
use purge::queue_purge;

use crate::error::StoreError;
use crate::inner::{Inner, TableStats};
use crate::keys::{
    self, META_DROPPED, META_HLC, META_NEXT_TABLE_ID, META_STATS, checkpoint_key, id_key,
    index_entry_key, table_meta_key, table_tombstone_key, watermark_key,
};
use crate::record::{self, ChangeEntry, ChangeOp, StoredItem};
use fjall::PersistMode;
use meridian_core::{Gtid, Hlc, Version};
use meridian_model::Item;
use meridian_model::crdt::{Crdt, creation_epoch, merge};
use meridian_model::size::item_size;
use meridian_model::table::TableMeta;
// The group's maps are keyed by item keys and hashed several times per applied change; foldhash
// (seeded per process) costs a fraction of std's SipHash there.
use foldhash::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Instant;
use tokio::sync::oneshot;

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

/// A unit of the writer's work: a step run against the open group, carrying its own reply.
/// Jobs are built by the constructors beside the group methods they call (`Job::create_table`
/// in `ddl.rs`, …), so a new job is one constructor there and the `Store` method that sends it.
pub(crate) struct Job(Box<dyn Step>);

/// What a job does in the writer.
trait Step: Send {
    /// Runs against the open group and registers the job's reply (answered once the group is
    /// durable). `Err` fails the whole group: the store is poisoned.
    fn run(self: Box<Self>, group: &mut Group<'_>, hlc: &mut Hlc) -> Result<(), StoreError>;
    /// Answers the caller of a job that will never run (the store failed earlier).
    fn refuse(self: Box<Self>, e: StoreError);
    /// Whether its group must be fsynced before it is answered.
    fn needs_sync(&self) -> bool {
        true
    }
    /// Whether the writer stops after this job's group.
    fn stops_writer(&self) -> bool {
        false
    }
}

/// A reply waiting for its group: called with the instant the group became durable, or with
/// the error that failed it.
type Done = Box<dyn FnOnce(Result<Instant, StoreError>) + Send>;

/// What most jobs are: `work` either fails the group (outer `Err`), refuses the request at once
/// with nothing written (inner `Err`), or yields the value the caller gets once the group is
/// durable.
struct Call<T, F> {
    work: F,
    reply: Reply<T>,
    sync: bool,
}

type Outcome<T> = Result<Result<T, StoreError>, StoreError>;

impl<T, F> Step for Call<T, F>
where
    T: Send + 'static,
    F: for<'g, 'a> FnOnce(&'g mut Group<'a>, &mut Hlc) -> Outcome<T> + Send,
{
    fn run(self: Box<Self>, group: &mut Group<'_>, hlc: &mut Hlc) -> Result<(), StoreError> {
        let Call { work, reply, .. } = *self;
        match work(group, hlc) {
            Ok(Ok(value)) => {
                group.done.push(Box::new(move |durable| {
                    let _ = reply.send(durable.map(|_| value));
                }));
                Ok(())
            }
            Ok(Err(refused)) => {
                let _ = reply.send(Err(refused));
                Ok(())
            }
            Err(e) => {
                let _ = reply.send(Err(StoreError::Poisoned));
                Err(e)
            }
        }
    }

    fn refuse(self: Box<Self>, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }

    fn needs_sync(&self) -> bool {
        self.sync
    }
}

impl Job {
    /// A job whose `work` runs in the writer and whose value answers `reply` once its group is
    /// durable (or at once with a refusal).
    fn call<T, F>(reply: Reply<T>, work: F) -> Job
    where
        T: Send + 'static,
        F: for<'g, 'a> FnOnce(&'g mut Group<'a>, &mut Hlc) -> Outcome<T> + Send + 'static,
    {
        Job::call_synced(reply, true, work)
    }

    /// [`Job::call`], where `sync: false` marks a job whose group need not be fsynced for it:
    /// its write reaches the journal in commit order and becomes durable with the next fsynced
    /// group.
    fn call_synced<T, F>(reply: Reply<T>, sync: bool, work: F) -> Job
    where
        T: Send + 'static,
        F: for<'g, 'a> FnOnce(&'g mut Group<'a>, &mut Hlc) -> Outcome<T> + Send + 'static,
    {
        Job(Box::new(Call { work, reply, sync }))
    }

    /// Stops the writer once everything queued before it is committed.
    pub(crate) fn shutdown() -> Job {
        struct Shutdown;
        impl Step for Shutdown {
            fn run(self: Box<Self>, _: &mut Group<'_>, _: &mut Hlc) -> Result<(), StoreError> {
                Ok(())
            }
            fn refuse(self: Box<Self>, _: StoreError) {}
            fn stops_writer(&self) -> bool {
                true
            }
        }
        Job(Box::new(Shutdown))
    }

    /// Records a link's checkpoint (the last sequence its peer acknowledged). A checkpoint lost
    /// in a crash is an older one after the restart, and the link then resends entries the
    /// receiver drops by its dedup watermark. Its write still lands in the journal in commit
    /// order, so the next fsync of any later group makes it durable too: a log purge, which is
    /// fsynced, can never outlive the checkpoint it was based on. A group of checkpoints alone
    /// is therefore not fsynced; otherwise they would be about two in five of a replicating
    /// region's fsyncs (one per acknowledgement and link).
    pub(crate) fn set_checkpoint(link: String, seq: u64, reply: Reply<()>) -> Job {
        Job::call_synced(reply, false, move |g, _| {
            g.requests += 1;
            g.batch.insert(
                &g.inner.meta,
                checkpoint_key(&link),
                record::encode_u64(seq),
            );
            Ok(Ok(()))
        })
    }
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
    /// The latest timestamp of a change of this region's own in the group.
    own_ts: u64,
    done: Vec<Done>,
    requests: usize,
    /// Whether a job in the group needs it durable before its reply: all but link checkpoints
    /// (see [`Job::set_checkpoint`]).
    needs_sync: bool,
}

fn fail_all(done: Vec<Done>, err: impl Fn() -> StoreError) {
    for d in done {
        d(Err(err()));
    }
}

/// Refuses a job because the store is poisoned; returns whether it asked the writer to stop.
fn fail_job(job: Job) -> bool {
    let stops = job.0.stops_writer();
    job.0.refuse(StoreError::Poisoned);
    stops
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
            group.needs_sync |= job.0.needs_sync();
            shutdown |= job.0.stops_writer();
            let r = job.0.run(&mut group, &mut hlc);
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
