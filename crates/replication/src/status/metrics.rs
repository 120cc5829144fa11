//! The replication metrics (Prometheus) and their label sets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label set of a directed link as seen from this region.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabel {
    /// The other region.
    pub peer: String,
    /// `out` (sync-out, this region sends) or `in` (sync-in, this region applies).
    pub direction: String,
}

/// Label set of one peer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    /// The other region.
    pub peer: String,
}

/// Labels of [`Metrics::refused_batches`]: a configured peer and a fixed reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabel {
    /// The peer.
    pub peer: String,
    /// `invalid` or `clock`.
    pub reason: &'static str,
}

/// Replication metrics of a region.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Entries behind, per link.
    pub lag_entries: Family<LinkLabel, Gauge>,
    /// Milliseconds behind, per link.
    pub lag_ms: Family<LinkLabel, Gauge>,
    /// 1 while the link's lag is over the alarm threshold.
    pub lag_alarm: Family<LinkLabel, Gauge>,
    /// 1 while the link is connected and authenticated.
    pub link_up: Family<LinkLabel, Gauge>,
    /// Highest sequence acknowledged on the link (the sender's local sequence).
    pub acked_seq: Family<LinkLabel, Gauge>,
    /// Batch round trip (send → ack), sync-out.
    pub ack_rtt_ms: Family<PeerLabel, Gauge>,
    /// Entries shipped, sync-out.
    pub shipped: Family<PeerLabel, Counter>,
    /// Entries applied, sync-in.
    pub applied: Family<PeerLabel, Counter>,
    /// Entries skipped as duplicates, sync-in.
    pub duplicates: Family<PeerLabel, Counter>,
    /// Entries that lost last-writer-wins, sync-in.
    pub stale: Family<PeerLabel, Counter>,
    /// Batches received, sync-in.
    pub received_batches: Family<PeerLabel, Counter>,
    /// Durable applies of received batches, sync-in: batches that arrived together are applied
    /// in one.
    pub applies: Family<PeerLabel, Counter>,
    /// Batches received again (already applied on this stream), acknowledged only, sync-in.
    pub repeated_batches: Family<PeerLabel, Counter>,
    /// Batches received out of order (a gap before them), refused with a gap ack, sync-in.
    pub gap_batches: Family<PeerLabel, Counter>,
    /// Connections established, per link.
    pub connects: Family<LinkLabel, Counter>,
    /// Handshakes refused (bad secret, unknown or disallowed peer), per claimed peer.
    pub refused: Family<PeerLabel, Counter>,
    /// Batches from a peer refused unapplied, sync-in: `invalid` (a malformed entry, or one
    /// whose origin the peer may not send) or `clock` (a version too far ahead of this
    /// region's clock).
    pub refused_batches: Family<RefusalLabel, Counter>,
    /// Entries set aside because they can never apply, sync-in (`quarantine.rs`).
    pub quarantined: Family<PeerLabel, Counter>,
    /// Snapshot entries sent (`out`) or installed (`in`), per link.
    pub snapshot_entries: Family<LinkLabel, Counter>,
    /// Snapshots completed, sent (`out`) or installed (`in`), per link.
    pub snapshots: Family<LinkLabel, Counter>,
    /// Change-log entries purged by garbage collection.
    pub purged_entries: Counter,
    /// Tombstones purged by garbage collection.
    pub purged_tombstones: Counter,
    /// Garbage-collection passes completed.
    pub gc_passes: Counter,
    /// Lowest change-log sequence still kept (the purge point + 1).
    pub changelog_first: Gauge,
    /// 1 while the region catches up with its peers after coming back (`catch_up.rs`).
    pub catching_up: Gauge,
}

impl Metrics {
    /// Registers every family.
    pub fn register(&self, r: &mut Registry) {
        let p = "meridian_replication_";
        r.register(
            format!("{p}lag_entries"),
            "Change-log entries not yet acknowledged on the link",
            self.lag_entries.clone(),
        );
        r.register(
            format!("{p}lag_ms"),
            "Replication lag of the link in milliseconds (origin commit to applied)",
            self.lag_ms.clone(),
        );
        r.register(
            format!("{p}lag_alarm"),
            "1 while the link's lag is above the alarm threshold",
            self.lag_alarm.clone(),
        );
        r.register(
            format!("{p}link_up"),
            "1 while the link is connected and authenticated",
            self.link_up.clone(),
        );
        r.register(
            format!("{p}acked_seq"),
            "Highest sender sequence acknowledged on the link",
            self.acked_seq.clone(),
        );
        r.register(
            format!("{p}ack_rtt_ms"),
            "Round trip of the last acknowledged batch",
            self.ack_rtt_ms.clone(),
        );
        r.register(
            format!("{p}shipped_entries"),
            "Entries shipped to the peer",
            self.shipped.clone(),
        );
        r.register(
            format!("{p}applied_entries"),
            "Entries from the peer applied here",
            self.applied.clone(),
        );
        r.register(
            format!("{p}duplicate_entries"),
            "Entries from the peer skipped by the dedup watermark",
            self.duplicates.clone(),
        );
        r.register(
            format!("{p}stale_entries"),
            "Entries from the peer that lost last-writer-wins",
            self.stale.clone(),
        );
        r.register(
            format!("{p}received_batches"),
            "Batches received from the peer",
            self.received_batches.clone(),
        );
        r.register(
            format!("{p}applies"),
            "Durable applies of batches from the peer (batches that arrived together share one)",
            self.applies.clone(),
        );
        r.register(
            format!("{p}repeated_batches"),
            "Batches from the peer already applied on this stream (acknowledged, not applied)",
            self.repeated_batches.clone(),
        );
        r.register(
            format!("{p}gap_batches"),
            "Batches from the peer that arrived after a gap (refused; the sender rewinds)",
            self.gap_batches.clone(),
        );
        r.register(
            format!("{p}connects"),
            "Link connections established",
            self.connects.clone(),
        );
        r.register(
            format!("{p}refused"),
            "Replication handshakes refused",
            self.refused.clone(),
        );
        r.register(
            format!("{p}quarantined_entries"),
            "Entries from the peer set aside because they can never apply",
            self.quarantined.clone(),
        );
        r.register(
            format!("{p}refused_batches"),
            "Batches from the peer refused unapplied (invalid, or a version ahead of the clock)",
            self.refused_batches.clone(),
        );
        r.register(
            format!("{p}snapshot_entries"),
            "Snapshot entries sent (out) or installed (in)",
            self.snapshot_entries.clone(),
        );
        r.register(
            format!("{p}snapshots"),
            "Snapshots completed, sent (out) or installed (in)",
            self.snapshots.clone(),
        );
        r.register(
            format!("{p}changelog_purged_entries"),
            "Change-log entries purged once every peer acknowledged them and the retention passed",
            self.purged_entries.clone(),
        );
        r.register(
            format!("{p}purged_tombstones"),
            "Tombstones purged once the delete was delivered everywhere and causally stable",
            self.purged_tombstones.clone(),
        );
        r.register(
            format!("{p}gc_passes"),
            "Garbage-collection passes completed",
            self.gc_passes.clone(),
        );
        r.register(
            format!("{p}changelog_first_seq"),
            "Lowest change-log sequence still kept",
            self.changelog_first.clone(),
        );
        r.register(
            format!("{p}catching_up"),
            "1 while the region catches up with its peers after coming back, 0 when serving",
            self.catching_up.clone(),
        );
    }
}
