//! The store's shared state: what the writer thread and every reader hold (`Arc<Inner>`), and
//! the small types it is made of.

use crate::error::StoreError;
use crate::metrics::WriterMetrics;
use crate::record;
use fjall::{Database, Keyspace};
use meridian_core::Clock;
use meridian_model::table::TableMeta;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// Switches that make the store fail on purpose, to test fail-stop behaviour.
#[derive(Debug, Default)]
pub struct StoreFaults {
    /// The next group commit's fsync fails.
    pub fail_next_sync: AtomicBool,
    /// The next group commit waits this many milliseconds between its engine commit and its
    /// fsync (0: none) — holds a commit in the state a crash could still undo.
    pub hold_next_sync_ms: AtomicU64,
}

/// Approximate size of one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Number of live items.
    pub item_count: i64,
    /// Sum of item sizes (DynamoDB's count), in bytes.
    pub size_bytes: i64,
}

/// An unfinished recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The change-log head that survived: the next local sequence must come after every
    /// sequence of this region a peer holds.
    pub from: u64,
    /// The highest change-log sequence found in the batches dropped with the damaged journal
    /// (`None`: none could be read).
    pub lost_through: Option<u64>,
    /// Why: where the journal was damaged, or which peer held more of ours than survived.
    pub damage: String,
}

impl Recovery {
    pub(crate) fn encode(&self) -> Vec<u8> {
        record::encode_json(&json!({
            "from": self.from,
            "lost_through": self.lost_through,
            "damage": self.damage,
        }))
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let v = record::decode_json(b)?;
        Ok(Self {
            from: v["from"]
                .as_u64()
                .ok_or_else(|| StoreError::Corrupt("recovery record without `from`".into()))?,
            lost_through: v["lost_through"].as_u64(),
            damage: v["damage"].as_str().unwrap_or_default().to_owned(),
        })
    }
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
    /// The HLC timestamp of this region's latest durable change of its own (0: none since
    /// start): what a session token of a write made here names.
    pub(crate) own_ts: std::sync::atomic::AtomicU64,
    /// Signalled (with `mark` held) whenever the durable head advances.
    pub(crate) durable: Condvar,
    /// The physical clock under the HLC (skewed by fault injection, if it is).
    pub(crate) clock: Arc<dyn Clock>,
    /// An unfinished recovery (`recovery.rs`): local writes are refused while there is one.
    pub(crate) recovery: RwLock<Option<Recovery>>,
    /// Skipped sequence ranges `(from, to]` of the change log (`recovery.rs`).
    pub(crate) gaps: RwLock<Vec<(u64, u64)>>,
    /// Dropped tables and indexes whose entries the purge worker is still to remove.
    pub(crate) purges: Mutex<std::collections::VecDeque<u64>>,
    /// Wakes the purge worker when `purges` grows.
    pub(crate) purge_wanted: Arc<tokio::sync::Notify>,
    /// The background workers of the store (and of whoever else registers with it).
    pub(crate) workers: meridian_worker::Workers,
    /// Stops the store's own workers: at shutdown, or when the last handle is dropped.
    pub(crate) workers_stop: tokio_util::sync::CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.workers_stop.cancel();
    }
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

impl Inner {
    pub(crate) fn check_writable(&self) -> Result<(), StoreError> {
        self.check()?;
        let recovering = self.recovery.read().map(|r| r.is_some()).unwrap_or(false);
        if recovering {
            Err(StoreError::Recovering)
        } else {
            Ok(())
        }
    }
}
