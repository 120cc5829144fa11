//! What operators see: per-link status (for `GET /admin/replication`), Prometheus metrics, and
//! the per-peer fault controls (pause, delay, drop).
//!
//! Every directed link has a [`LinkStatus`] updated by its driver after each event and on every
//! heartbeat tick, so lag keeps growing (and the alarm rises) even while nothing flows.

use crate::inbound::InboundStatus;
use crate::outbound::OutboundStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

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
    /// Entries set aside because they can never apply, sync-in (`crate::quarantine`).
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
    }
}

/// The operator's switches for the links with one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Control {
    /// Sync-out sends nothing new; sync-in closes the peer's window.
    pub paused: bool,
    /// Extra one-way delay added to every batch before it is sent.
    pub delay_ms: u64,
    /// Bumped by every drop request: drivers close their connection when it changes.
    pub drops: u64,
    /// Fault hook: sync-out sends every batch frame twice.
    pub duplicate: bool,
    /// Fault hook: sync-out swaps consecutive batch frames (a held-back batch is released
    /// after the next one, or at the next heartbeat tick).
    pub reorder: bool,
    /// Fault hook: sync-out turns Byzantine — its batches claim changes of another origin, or
    /// carry versions an hour ahead, by turns (`byzantine.rs`); the peer must refuse them.
    pub byzantine: bool,
}

/// Status of one directed link.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LinkStatus {
    /// Connected and authenticated.
    pub connected: bool,
    /// Paused by an operator.
    pub paused: bool,
    /// Highest sender sequence acknowledged.
    pub acked_seq: u64,
    /// Entries behind.
    pub lag_entries: u64,
    /// Milliseconds behind.
    pub lag_ms: u64,
    /// Lag above the threshold, or a batch from the peer refused (`refused`).
    pub alarm: bool,
    /// Sync-in: why the peer's last batch was refused unapplied, naming the peer and what was
    /// wrong; cleared when one of its batches applies again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Sync-out: last batch round trip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<u64>,
    /// Sync-out: the durable checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<u64>,
    /// Sync-in: the sender's clock minus ours (ms), as last observed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_clock_offset_ms: Option<i64>,
    /// The last connection error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Both directions with one peer, and its controls.
pub struct PeerLinks {
    /// Name of the peer.
    pub peer: String,
    /// Sync-out status (if this region sends to the peer).
    pub outbound: Mutex<Option<LinkStatus>>,
    /// Sync-in status (if this region accepts from the peer).
    pub inbound: Mutex<Option<LinkStatus>>,
    /// Fault controls.
    pub control: watch::Sender<Control>,
    /// Bumped by every accepted sync-in connection: an older one sees the change and closes.
    pub inbound_generation: AtomicU64,
    /// Sync-in: lag of every applied entry (origin commit → durable here: the instant the
    /// writer's fsync returned, `ApplyReport::durable_at`), in ms.
    pub apply_lag: Mutex<LagHistogram>,
    /// Sync-in: lag of the same entries when their batch was received and checked, just before
    /// the apply (origin commit → here, not yet applied), in ms. `apply_lag` minus this is the
    /// receiver's own share: its apply and fsync.
    pub receive_lag: Mutex<LagHistogram>,
    /// Sync-in: every write of the peer's own with an HLC timestamp below this is applied
    /// here (0: nothing known since start).
    pub stable_ts: AtomicU64,
    /// Sync-in: why the peer's last batch was refused, until one applies (see
    /// [`LinkStatus::refused`]).
    pub refused: Mutex<Option<String>>,
}

/// Per-entry replication lag: a histogram from 1 ms to 1 hour at 3 significant digits.
pub struct LagHistogram(hdrhistogram::Histogram<u64>);

impl Default for LagHistogram {
    fn default() -> Self {
        Self(
            hdrhistogram::Histogram::new_with_bounds(1, 3_600_000, 3)
                .expect("constant histogram bounds are valid"),
        )
    }
}

impl LagHistogram {
    /// Records one entry's lag (clamped into the histogram's range).
    pub fn record(&mut self, lag_ms: u64) {
        self.0.saturating_record(lag_ms.max(1));
    }

    /// Forgets everything recorded.
    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// `{count, p50, p90, p99, p999, max}` in ms.
    pub fn summary(&self) -> serde_json::Value {
        let h = &self.0;
        serde_json::json!({
            "count": h.len(),
            "p50": h.value_at_quantile(0.50),
            "p90": h.value_at_quantile(0.90),
            "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999),
            "max": h.max(),
        })
    }
}

/// Snapshot bookkeeping of the sync-in side.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshots {
    /// The peer a snapshot is being installed from (one at a time).
    pub installing_from: Option<String>,
    /// The sync-in connection (generation) installing it.
    #[serde(skip)]
    pub claim: u64,
    /// Peers whose next connection starts with a snapshot: this region became a replica of
    /// an existing table, or it is new and the peer purged what it needs.
    pub wanted_from: std::collections::BTreeSet<String>,
    /// Peers that purged changes this region (not new) never received: its data is stale —
    /// items deleted meanwhile may have lost their tombstones — so it must not be patched up
    /// from a snapshot. The remedy is to restart it with an empty data directory (it is then
    /// seeded from a snapshot like a new region). Peer → the peer's message.
    pub stale_from: BTreeMap<String, String>,
    /// Snapshots installed since start.
    pub installed: Vec<InstalledSnapshot>,
    /// Peers that have linked to this region since it started (a new region waits for all of
    /// them before it takes its first snapshot).
    pub linked: std::collections::BTreeSet<String>,
}

/// One installed snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct InstalledSnapshot {
    /// The peer it came from.
    pub peer: String,
    /// Entries (tables, items and tombstones) in it.
    pub entries: u64,
    /// The peer's change-log head it corresponds to.
    pub head: u64,
    /// Per origin, the highest sequence whose effect it held: each origin's stream resumed
    /// right after it.
    pub watermarks: std::collections::BTreeMap<String, u64>,
    /// How long it took to receive and install, in ms.
    pub millis: u64,
}

/// Every link of the region: shared by the drivers, the admin routes and metrics.
pub struct Links {
    /// This region.
    pub region: String,
    /// Lag alarm threshold.
    pub lag_alarm_ms: u64,
    /// Metrics.
    pub metrics: Metrics,
    /// Per peer.
    pub peers: BTreeMap<String, Arc<PeerLinks>>,
    /// Snapshots in and out of this region.
    pub snapshots: Mutex<Snapshots>,
    /// Regions this one hears only through a star's hub: per origin, a timestamp up to which
    /// all of its writes are applied here (from the hub's heartbeats and forwarded entries).
    pub origin_stable: Mutex<BTreeMap<String, u64>>,
}

impl Links {
    /// Links with these peers.
    pub fn new(region: &str, lag_alarm_ms: u64, peers: impl IntoIterator<Item = String>) -> Self {
        let peers = peers
            .into_iter()
            .map(|p| {
                let links = Arc::new(PeerLinks {
                    peer: p.clone(),
                    outbound: Mutex::new(None),
                    inbound: Mutex::new(None),
                    control: watch::Sender::new(Control::default()),
                    inbound_generation: AtomicU64::new(0),
                    apply_lag: Mutex::new(LagHistogram::default()),
                    receive_lag: Mutex::new(LagHistogram::default()),
                    stable_ts: AtomicU64::new(0),
                    refused: Mutex::new(None),
                });
                (p, links)
            })
            .collect();
        Self {
            region: region.to_owned(),
            lag_alarm_ms,
            metrics: Metrics::default(),
            peers,
            snapshots: Mutex::new(Snapshots::default()),
            origin_stable: Mutex::new(BTreeMap::new()),
        }
    }

    fn label(peer: &str, direction: &str) -> LinkLabel {
        LinkLabel {
            peer: peer.to_owned(),
            direction: direction.to_owned(),
        }
    }

    fn publish(&self, peer: &str, direction: &str, s: &LinkStatus) {
        let l = Self::label(peer, direction);
        let m = &self.metrics;
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        m.lag_entries.get_or_create(&l).set(g(s.lag_entries));
        m.lag_ms.get_or_create(&l).set(g(s.lag_ms));
        m.lag_alarm.get_or_create(&l).set(i64::from(s.alarm));
        m.link_up.get_or_create(&l).set(i64::from(s.connected));
        m.acked_seq.get_or_create(&l).set(g(s.acked_seq));
        if let Some(rtt) = s.rtt_ms {
            m.ack_rtt_ms
                .get_or_create(&PeerLabel {
                    peer: peer.to_owned(),
                })
                .set(g(rtt));
        }
    }

    /// Records a sync-out snapshot (`pending_since_ms`: commit time of the oldest change the
    /// peer has not acknowledged, if known).
    pub fn update_outbound(
        &self,
        peer: &str,
        s: &OutboundStatus,
        pending_since_ms: Option<u64>,
        now_ms: u64,
        last_error: Option<String>,
    ) {
        let lag_ms = pending_since_ms.map_or(0, |p| now_ms.saturating_sub(p));
        let status = LinkStatus {
            connected: s.open,
            paused: s.paused,
            acked_seq: s.acked,
            lag_entries: s.lag_entries(),
            lag_ms,
            alarm: lag_ms > self.lag_alarm_ms,
            refused: None,
            rtt_ms: s.rtt_ms,
            checkpoint: Some(s.persisted),
            peer_clock_offset_ms: None,
            last_error,
        };
        self.publish(peer, "out", &status);
        if let Some(p) = self.peers.get(peer)
            && let Ok(mut o) = p.outbound.lock()
        {
            let keep_error = o.as_ref().and_then(|x| x.last_error.clone());
            *o = Some(LinkStatus {
                last_error: status.last_error.clone().or(keep_error),
                ..status
            });
        }
    }

    /// Records a sync-in snapshot.
    pub fn update_inbound(&self, peer: &str, s: Option<&InboundStatus>, paused: bool) {
        let refused = self
            .peers
            .get(peer)
            .and_then(|p| p.refused.lock().ok().and_then(|r| r.clone()));
        let status = match s {
            Some(s) => LinkStatus {
                connected: true,
                paused,
                acked_seq: s.acked,
                lag_entries: s.lag_entries,
                lag_ms: s.lag_ms,
                alarm: s.lag_ms > self.lag_alarm_ms || refused.is_some(),
                refused,
                rtt_ms: None,
                checkpoint: None,
                peer_clock_offset_ms: Some(s.peer_clock_offset_ms),
                last_error: None,
            },
            None => {
                // disconnected: keep the last numbers, mark down
                let prev = self
                    .peers
                    .get(peer)
                    .and_then(|p| p.inbound.lock().ok().and_then(|i| i.clone()))
                    .unwrap_or_default();
                LinkStatus {
                    connected: false,
                    paused,
                    alarm: prev.alarm || refused.is_some(),
                    refused,
                    ..prev
                }
            }
        };
        self.publish(peer, "in", &status);
        if let Some(p) = self.peers.get(peer)
            && let Ok(mut i) = p.inbound.lock()
        {
            *i = Some(status);
        }
    }

    /// Counts a refused handshake, under the claimed peer when it is a configured one and
    /// `?` otherwise (anonymous callers choose the names they claim: they must not choose the
    /// metric's labels).
    pub fn refused(&self, claimed_peer: &str) {
        let peer = if self.peers.contains_key(claimed_peer) {
            claimed_peer
        } else {
            "?"
        };
        self.metrics
            .refused
            .get_or_create(&PeerLabel {
                peer: peer.to_owned(),
            })
            .inc();
    }

    /// Records that a batch from `peer` was refused unapplied: counted by `reason` (`invalid`
    /// or `clock`), and the link's alarm raised with `why` until a batch applies again.
    pub fn refuse_batch(&self, peer: &str, reason: &'static str, why: &str) {
        tracing::error!(peer = %peer, reason, why, "replicated batch refused");
        self.metrics
            .refused_batches
            .get_or_create(&RefusalLabel {
                peer: peer.to_owned(),
                reason,
            })
            .inc();
        if let Some(p) = self.peers.get(peer)
            && let Ok(mut r) = p.refused.lock()
        {
            *r = Some(format!("{reason}: {why}"));
        }
    }

    /// Clears the refusal alarm of `peer` (one of its batches applied).
    pub fn clear_refusal(&self, peer: &str) {
        if let Some(p) = self.peers.get(peer)
            && let Ok(mut r) = p.refused.lock()
        {
            *r = None;
        }
    }

    /// Counts a connection.
    pub fn connected(&self, peer: &str, direction: &str) {
        self.metrics
            .connects
            .get_or_create(&Self::label(peer, direction))
            .inc();
    }

    /// Raises what is known to be applied here of `origin`'s writes (see `origin_stable`).
    pub fn raise_origin_stable(&self, origin: &str, ts: u64) {
        if let Ok(mut m) = self.origin_stable.lock() {
            let v = m.entry(origin.to_owned()).or_insert(0);
            *v = (*v).max(ts);
        }
    }

    /// The control switches of a peer.
    pub fn control(&self, peer: &str) -> Option<watch::Receiver<Control>> {
        self.peers.get(peer).map(|p| p.control.subscribe())
    }
}
