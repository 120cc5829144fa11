//! The link registry, and what operators see of it: per-link status (for
//! `GET /admin/replication`), Prometheus metrics ([`metrics`]), lag histograms ([`lag`]), the
//! per-peer controls ([`control`]) and the snapshot bookkeeping ([`snapshots`]).
//!
//! Every directed link has a [`LinkStatus`] updated by its driver after each event and on every
//! heartbeat tick, so lag keeps growing (and the alarm rises) even while nothing flows.

pub mod control;
pub mod lag;
pub mod metrics;
pub mod snapshots;

pub use control::Control;
pub use lag::LagHistogram;
pub use metrics::{LinkLabel, Metrics, PeerLabel, RefusalLabel};
pub use snapshots::{InstalledSnapshot, Snapshots};

use crate::inbound::InboundStatus;
use crate::outbound::OutboundStatus;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

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

    /// Whether every write of `origin` with an HLC timestamp up to `ts` is applied here: from
    /// a peer's own stream (`PeerLinks::stable_ts`) or through a hub (`origin_stable`). What
    /// session tokens are checked against.
    pub fn applied_through(&self, origin: &str, ts: u64) -> bool {
        let direct = self
            .peers
            .get(origin)
            .is_some_and(|p| p.stable_ts.load(std::sync::atomic::Ordering::Acquire) >= ts);
        direct
            || self
                .origin_stable
                .lock()
                .is_ok_and(|m| m.get(origin).is_some_and(|t| *t >= ts))
    }

    /// The control switches of a peer.
    pub fn control(&self, peer: &str) -> Option<watch::Receiver<Control>> {
        self.peers.get(peer).map(|p| p.control.subscribe())
    }
}
