//! The writer's metrics: group commit sizes, fsync latency, write time, change-log head.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Writer metrics (group commit sizes, fsync latency, change-log head).
#[derive(Clone)]
pub(crate) struct WriterMetrics {
    pub(crate) group_size: Histogram,
    pub(crate) fsync_seconds: Histogram,
    /// Time a write spends with the writer: queued, decided, committed, synced.
    pub(crate) write_seconds: Histogram,
    /// Time of the engine commit (journal append + memtables), before the fsync: long ones
    /// are the engine's own stalls (flushes and compactions holding its locks).
    pub(crate) commit_seconds: Histogram,
    pub(crate) commits: Counter,
    pub(crate) changes: Counter,
    pub(crate) head: Gauge,
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
