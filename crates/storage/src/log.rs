//! Reading the change log: what links ship (only durable entries, gaps of a recovery passed
//! over), the durable head and the stability mark, and its purge.

use crate::error::StoreError;
use crate::keys::u64_suffix;
use crate::keys::{META_BOOTSTRAP, META_GC, META_GC_OWN};
use crate::record::{self, ChangeEntry};
use crate::store::{ChangeLogSummary, Store};
use crate::writer::Job;
use std::sync::atomic::Ordering;

/// A change-log entry as stored: its local sequence and its record (what [`record::encode_change`]
/// wrote), with the origin and commit time read from the header. Replication ships the record
/// as it is, without decoding and re-encoding the item.
#[derive(Clone, Debug)]
pub struct RawChange {
    seq: u64,
    origin: String,
    ts: meridian_core::Timestamp,
    record: fjall::Slice,
}

impl RawChange {
    /// Reads the header of `record`, stored at sequence `seq`.
    pub fn new(seq: u64, record: fjall::Slice) -> Result<Self, StoreError> {
        let (origin, ts) = record::change_header(&record)?;
        Ok(Self {
            seq,
            origin: origin.to_owned(),
            ts,
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
        self.ts.physical_ms()
    }

    /// The change's HLC timestamp.
    pub fn version_ts(&self) -> u64 {
        self.ts.0
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

    /// The HLC timestamp of this region's latest durable change of its own (0: none since
    /// start). A peer that has applied this region's changes up to it holds every write this
    /// region answered before the call: the mark of a session token.
    pub fn own_ts(&self) -> u64 {
        self.inner.own_ts.load(std::sync::atomic::Ordering::Acquire)
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
        self.call(|reply| Job::purge_log(upto, older_than_ms, limit, reply))
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

    /// A receiver of the change-log head, updated after every group commit.
    pub fn subscribe_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.head_tx.subscribe()
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
}
