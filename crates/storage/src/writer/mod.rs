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
pub(crate) use purge::spawn_purge;
use purge::spawn_purge_arc;
use remote::admit;

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
// (seeded per process) costs a fraction of std's SipHash there (`docs/benchmarks.md`,
// "Session 11").
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
