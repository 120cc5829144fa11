//! The sync-out state machine of one directed link `me → peer`. Pure: no I/O, no clock — the
//! driver (`sync_out.rs`) or a simulation feeds it events and does what it asks.
//!
//! ```text
//!            open(window)                     read → cut batch → send
//!  Closed ─────────────────► Open ──┬─ poll_read() ─► on_read() ─► Cut ─┐
//!     ▲                             │                                   │ (≤ window unacked)
//!     └──── on_closed() ◄───────────┴── on_ack(): acked ↑, persist ◄────┘
//! ```
//!
//! Invariants (checked by the unit tests and the simulation):
//! - `acked` only grows, and only to a sequence the receiver acknowledged, i.e. durably
//!   applied; the persisted checkpoint never exceeds `acked`.
//! - After open (or a rewind), the stream restarts at `acked + 1`: nothing acknowledged is
//!   resent needlessly and nothing unacknowledged is skipped.
//! - Batches are contiguous: each covers `next..=last` and the next starts at `last + 1`.
//! - At most `window` batches/bytes are unacknowledged.

use crate::protocol::{Ack, ProtocolError, Window};
use crate::topology::Topology;
use std::collections::VecDeque;

/// What the state machine needs to know about a change-log entry.
pub trait LogEntry {
    /// Local sequence in the sender's log.
    fn seq(&self) -> u64;
    /// Region where the change originated.
    fn origin(&self) -> &str;
    /// Commit time at the origin (ms, HLC physical part).
    fn commit_ms(&self) -> u64;
    /// The change's HLC timestamp (its version's).
    fn version_ts(&self) -> u64;
    /// Approximate encoded size.
    fn wire_bytes(&self) -> usize;
}

impl LogEntry for meridian_storage::ChangeEntry {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn origin(&self) -> &str {
        &self.gtid.origin
    }
    fn commit_ms(&self) -> u64 {
        self.version.ts.physical_ms()
    }
    fn version_ts(&self) -> u64 {
        self.version.ts.0
    }
    fn wire_bytes(&self) -> usize {
        let item = match &self.op {
            meridian_storage::ChangeOp::Put(i) => meridian_model::size::item_size(i),
            meridian_storage::ChangeOp::PutEncoded(i) => i.size(),
            _ => 0,
        };
        48 + self.table.len() + self.key.len() + 2 * self.gtid.origin.len() + item
    }
}

impl LogEntry for meridian_storage::LogRead {
    fn seq(&self) -> u64 {
        meridian_storage::LogRead::seq(self)
    }
    fn origin(&self) -> &str {
        match self {
            Self::Entry(e) => e.origin(),
            Self::Skipped { origin, .. } => origin,
        }
    }
    fn commit_ms(&self) -> u64 {
        match self {
            Self::Entry(e) => e.commit_ms(),
            // never shipped; 0 for a sequence of a recovery's gap, which a hub's link passes
            Self::Skipped { .. } => 0,
        }
    }
    fn version_ts(&self) -> u64 {
        match self {
            Self::Entry(e) => e.version_ts(),
            Self::Skipped { .. } => 0,
        }
    }
    fn wire_bytes(&self) -> usize {
        match self {
            Self::Entry(e) => e.record().len(),
            Self::Skipped { bytes, .. } => *bytes,
        }
    }
}

/// Tunables of a sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Most entries read (and shipped) per batch. Default 2048: catching up after a partition
    /// moves big batches (at 512 a 150k-entry backlog drained at 17k entries/s, at 2048 at 27k;
    /// `meridian bench catchup --rate 10000 --partition-secs 15`, release, this 2-core box).
    pub max_batch_entries: usize,
    /// Most approximate bytes per batch (at least one entry is always taken).
    pub max_batch_bytes: usize,
    /// The sender's own cap on unacknowledged data; the receiver's window can lower it.
    pub window: Window,
    /// With data unacknowledged and no ack for this long, the link is stalled.
    pub ack_timeout_ms: u64,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            max_batch_entries: 2048,
            max_batch_bytes: 1024 * 1024,
            window: Window::DEFAULT,
            ack_timeout_ms: 30_000,
        }
    }
}

/// Read this range of the local change log and hand it to [`Outbound::on_read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    /// First local sequence to read.
    pub from: u64,
    /// Most entries.
    pub max_entries: usize,
}

/// A batch to send: the range it covers and the entries the topology lets through.
#[derive(Clone, Debug, PartialEq)]
pub struct Cut<E> {
    /// First local sequence covered.
    pub first: u64,
    /// Last local sequence covered.
    pub last: u64,
    /// Stream attempt.
    pub attempt: u32,
    /// The entries to ship (may be empty).
    pub entries: Vec<E>,
}

/// What an ack changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// Entries newly acknowledged (local sequences).
    pub advanced: u64,
    /// Round trip of the batch this ack completed, if it completed one.
    pub rtt_ms: Option<u64>,
    /// The receiver reported a gap: the stream was rewound to `acked + 1`.
    pub rewound: bool,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    first: u64,
    last: u64,
    bytes: u64,
    sent_ms: u64,
    oldest_commit_ms: Option<u64>,
}

/// A snapshot for status and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboundStatus {
    /// The link is open (authenticated, welcomed).
    pub open: bool,
    /// Paused by an operator.
    pub paused: bool,
    /// Highest local sequence the peer acknowledged.
    pub acked: u64,
    /// Highest acknowledged sequence checkpointed (durable with the store's next fsync).
    pub persisted: u64,
    /// The local change-log head.
    pub head: u64,
    /// Next local sequence to read.
    pub next: u64,
    /// Batches unacknowledged.
    pub inflight_batches: usize,
    /// Bytes unacknowledged.
    pub inflight_bytes: u64,
    /// Last batch round trip.
    pub rtt_ms: Option<u64>,
    /// Stream attempt.
    pub attempt: u32,
}

impl OutboundStatus {
    /// Local entries the peer has not acknowledged yet.
    pub fn lag_entries(&self) -> u64 {
        self.head.saturating_sub(self.acked)
    }
}

/// The sync-out state machine.
#[derive(Debug)]
pub struct Outbound {
    me: String,
    peer: String,
    topology: Topology,
    cfg: OutboundConfig,
    open: bool,
    paused: bool,
    reading: bool,
    acked: u64,
    persisted: u64,
    persisting: bool,
    next: u64,
    head: u64,
    max_sent: u64,
    attempt: u32,
    peer_window: Window,
    inflight: VecDeque<InFlight>,
    inflight_bytes: u64,
    last_progress_ms: u64,
    rtt_ms: Option<u64>,
}

impl Outbound {
    /// A closed link that will resume after `checkpoint` (the durable last acked sequence).
    pub fn new(
        me: &str,
        peer: &str,
        topology: Topology,
        cfg: OutboundConfig,
        checkpoint: u64,
        head: u64,
    ) -> Self {
        Self {
            me: me.to_owned(),
            peer: peer.to_owned(),
            topology,
            cfg,
            open: false,
            paused: false,
            reading: false,
            acked: checkpoint,
            persisted: checkpoint,
            persisting: false,
            next: checkpoint + 1,
            head,
            max_sent: checkpoint,
            attempt: 0,
            peer_window: Window::CLOSED,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            last_progress_ms: 0,
            rtt_ms: None,
        }
    }

    /// The peer's name.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Where the stream resumes: sent in the handshake's `Auth`.
    pub fn resume_from(&self) -> u64 {
        self.acked + 1
    }

    /// The receiver already holds everything up to `seq` (its watermark of us, or a snapshot
    /// it installed): the stream starts after it. Never moves backwards.
    pub fn skip_to(&mut self, seq: u64) {
        if seq > self.acked {
            self.acked = seq;
            self.next = self.next.max(seq + 1);
            self.max_sent = self.max_sent.max(seq);
        }
    }

    /// The handshake succeeded; the receiver offers `window`.
    pub fn on_open(&mut self, window: Window, now_ms: u64) {
        self.open = true;
        self.reading = false;
        self.peer_window = window;
        self.attempt = self.attempt.wrapping_add(1);
        self.rewind(now_ms);
    }

    /// The connection ended (error, drop, peer restart): forget everything in flight.
    pub fn on_closed(&mut self) {
        self.open = false;
        self.reading = false;
        self.inflight.clear();
        self.inflight_bytes = 0;
        self.next = self.acked + 1;
        self.max_sent = self.acked;
    }

    fn rewind(&mut self, now_ms: u64) {
        self.inflight.clear();
        self.inflight_bytes = 0;
        self.next = self.acked + 1;
        self.max_sent = self.max_sent.max(self.acked);
        self.last_progress_ms = now_ms;
    }

    /// The local change-log head moved.
    pub fn on_head(&mut self, head: u64) {
        self.head = self.head.max(head);
    }

    /// The receiver changed its window (`Credit`).
    pub fn on_credit(&mut self, window: Window) {
        self.peer_window = window;
    }

    /// An operator paused or resumed the link.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    fn window_open(&self) -> bool {
        let max_batches = self
            .peer_window
            .max_batches
            .min(self.cfg.window.max_batches) as usize;
        let max_bytes = self.peer_window.max_bytes.min(self.cfg.window.max_bytes);
        self.inflight.len() < max_batches && self.inflight_bytes < max_bytes
    }

    /// The next read to do, if the link may send more now.
    pub fn poll_read(&mut self) -> Option<ReadRequest> {
        if !self.open || self.paused || self.reading || self.next > self.head {
            return None;
        }
        if !self.window_open() {
            return None;
        }
        self.reading = true;
        Some(ReadRequest {
            from: self.next,
            max_entries: self.cfg.max_batch_entries.max(1),
        })
    }

    /// The entries read for `from` (consecutive local sequences starting at `from`). Returns
    /// the batch to send, or `None` if the read is stale or found nothing.
    pub fn on_read<E: LogEntry>(
        &mut self,
        from: u64,
        entries: Vec<E>,
        now_ms: u64,
    ) -> Option<Cut<E>> {
        self.reading = false;
        if !self.open || from != self.next {
            return None;
        }
        let mut bytes = 0usize;
        let mut last = None;
        let mut ship = Vec::new();
        let mut oldest: Option<u64> = None;
        for (expect, e) in (from..).zip(entries) {
            if e.seq() != expect {
                break; // not contiguous: stop; the rest is read again later
            }
            let size = e.wire_bytes();
            if last.is_some() && bytes + size > self.cfg.max_batch_bytes {
                break;
            }
            bytes += size;
            last = Some(e.seq());
            if self.topology.ships(&self.me, &self.peer, e.origin()) {
                // A sequence of a recovery's gap has no commit time (0) and no lag.
                if e.commit_ms() > 0 {
                    oldest = Some(oldest.map_or(e.commit_ms(), |o| o.min(e.commit_ms())));
                }
                ship.push(e);
            }
        }
        let last = last?;
        if self.inflight.is_empty() {
            self.last_progress_ms = now_ms;
        }
        let shipped_bytes = (bytes as u64).max(1);
        self.inflight.push_back(InFlight {
            first: from,
            last,
            bytes: shipped_bytes,
            sent_ms: now_ms,
            oldest_commit_ms: oldest,
        });
        self.inflight_bytes += shipped_bytes;
        self.next = last + 1;
        self.max_sent = self.max_sent.max(last);
        self.head = self.head.max(last);
        Some(Cut {
            first: from,
            last,
            attempt: self.attempt,
            entries: ship,
        })
    }

    /// An acknowledgement from the receiver.
    pub fn on_ack(&mut self, ack: &Ack, now_ms: u64) -> Result<AckOutcome, ProtocolError> {
        let mut out = AckOutcome::default();
        if !self.open {
            return Ok(out);
        }
        if ack.up_to > self.max_sent {
            return Err(ProtocolError::Invalid(format!(
                "ack up to {} but only {} was ever sent",
                ack.up_to, self.max_sent
            )));
        }
        if ack.up_to > self.acked {
            out.advanced = ack.up_to - self.acked;
            self.acked = ack.up_to;
            self.last_progress_ms = now_ms;
            while let Some(f) = self.inflight.front().copied() {
                if f.last > self.acked {
                    break;
                }
                if f.last == self.acked {
                    out.rtt_ms = Some(now_ms.saturating_sub(f.sent_ms));
                }
                self.inflight_bytes = self.inflight_bytes.saturating_sub(f.bytes);
                self.inflight.pop_front();
            }
            if let Some(f) = self.inflight.front_mut() {
                // a rewind may have cut batches differently: the front is now partly acked
                f.first = f.first.max(self.acked + 1);
            }
            if self.next <= self.acked {
                self.next = self.acked + 1;
            }
            if out.rtt_ms.is_some() {
                self.rtt_ms = out.rtt_ms;
            }
        }
        if ack.gap && ack.attempt == self.attempt {
            self.attempt = self.attempt.wrapping_add(1);
            self.rewind(now_ms);
            out.rewound = true;
        }
        Ok(out)
    }

    /// Whether unacknowledged data has waited longer than the ack timeout (the driver then
    /// drops the connection; it reconnects and resumes from the checkpoint).
    pub fn stalled(&self, now_ms: u64) -> bool {
        self.open
            && !self.inflight.is_empty()
            && now_ms.saturating_sub(self.last_progress_ms) > self.cfg.ack_timeout_ms
    }

    /// A checkpoint to persist now, if the acked position moved past the persisted one and no
    /// persist is running. Persisting lazily is safe: after a crash the stream resumes from an
    /// older checkpoint and the receiver drops the repeats by its dedup watermark.
    pub fn poll_persist(&mut self) -> Option<u64> {
        if self.persisting || self.acked <= self.persisted {
            return None;
        }
        self.persisting = true;
        Some(self.acked)
    }

    /// A persist finished (`ok = false`: it failed and will be retried).
    pub fn on_persisted(&mut self, seq: u64, ok: bool) {
        self.persisting = false;
        if ok {
            self.persisted = self.persisted.max(seq);
        }
    }

    /// Commit time of the oldest unacknowledged entry this link carries, if one is in flight.
    pub fn oldest_inflight_commit_ms(&self) -> Option<u64> {
        self.inflight
            .iter()
            .filter_map(|f| f.oldest_commit_ms)
            .min()
    }

    /// A snapshot for status and metrics.
    pub fn status(&self) -> OutboundStatus {
        OutboundStatus {
            open: self.open,
            paused: self.paused,
            acked: self.acked,
            persisted: self.persisted,
            head: self.head,
            next: self.next,
            inflight_batches: self.inflight.len(),
            inflight_bytes: self.inflight_bytes,
            rtt_ms: self.rtt_ms,
            attempt: self.attempt,
        }
    }
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
