//! One open inbound connection: gathers the batches that arrived together, applies them
//! through the sink in one commit, acknowledges, and answers heartbeats and controls.

use super::{log_purged, record_lag, window_for};
use crate::Ctx;
use crate::conn::send_error;
use crate::conn::{FrameReader, FrameWriter, LinkError};
use crate::inbound::{Gather, Inbound};
use crate::protocol::batch;
use crate::protocol::{Batch, ErrorCode, Frame, Heartbeat};
use crate::sink;
use crate::status::{Control, PeerLabel, PeerLinks};
use meridian_storage::StoreError;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// The counters of one inbound link.
struct Counters {
    applied: Counter,
    duplicates: Counter,
    stale: Counter,
    repeats: Counter,
    gaps: Counter,
    received: Counter,
    applies: Counter,
}

impl Counters {
    fn new(ctx: &Ctx, peer: &str) -> Self {
        let label = PeerLabel {
            peer: peer.to_owned(),
        };
        let m = &ctx.links.metrics;
        let get = |f: &Family<PeerLabel, Counter>| f.get_or_create(&label).clone();
        Counters {
            applied: get(&m.applied),
            duplicates: get(&m.duplicates),
            stale: get(&m.stale),
            repeats: get(&m.repeated_batches),
            gaps: get(&m.gap_batches),
            received: get(&m.received_batches),
            applies: get(&m.applies),
        }
    }
}

/// One open inbound connection `peer → me`, past the handshake: the [`Inbound`] state machine
/// and what the driver moves for it.
pub(super) struct InLink<'a> {
    ctx: &'a Ctx,
    me: &'a str,
    peer: &'a str,
    pub(super) sm: Inbound,
    pub(super) links: Option<Arc<PeerLinks>>,
    paused: bool,
    counters: Counters,
    /// A frame read while gathering batches, handled before reading again.
    held: Option<Frame>,
}

impl<'a> InLink<'a> {
    pub(super) fn new(
        ctx: &'a Ctx,
        peer: &'a str,
        resume_from: u64,
        links: Option<Arc<PeerLinks>>,
        paused: bool,
    ) -> Self {
        InLink {
            ctx,
            me: ctx.config.region.as_str(),
            peer,
            sm: Inbound::new(resume_from),
            links,
            paused,
            counters: Counters::new(ctx, peer),
            held: None,
        }
    }

    /// Reads and answers frames until the connection ends (`Ok` at shutdown).
    pub(super) async fn run(
        &mut self,
        reader: &mut FrameReader,
        writer: &mut FrameWriter,
        mut control: watch::Receiver<Control>,
        drops_seen: u64,
        current: u64,
    ) -> Result<(), LinkError> {
        let ctx = self.ctx;
        let mut tick =
            tokio::time::interval(Duration::from_millis(ctx.config.heartbeat_ms.max(10)));
        let idle = Duration::from_millis(ctx.config.idle_timeout_ms);
        let mut last_heard = tokio::time::Instant::now();
        loop {
            let frame = match self.held.take() {
                Some(f) => f,
                None => tokio::select! {
                    () = ctx.shutdown.cancelled() => return Ok(()),
                    frame = reader.next() => {
                        last_heard = tokio::time::Instant::now();
                        frame?
                    }
                    changed = control.changed() => {
                        if changed.is_err() {
                            return Ok(());
                        }
                        let c = *control.borrow_and_update();
                        if c.drops != drops_seen {
                            return Err(LinkError::Closed("dropped by operator"));
                        }
                        if c.paused != self.paused {
                            self.paused = c.paused;
                            writer.send(&Frame::Credit(window_for(self.paused))).await?;
                        }
                        continue;
                    }
                    _ = tick.tick() => {
                        if self.superseded(current) {
                            return Err(LinkError::Closed("superseded by a newer connection"));
                        }
                        if last_heard.elapsed() > idle {
                            return Err(LinkError::Timeout("peer silent"));
                        }
                        self.heartbeat(writer).await?;
                        continue;
                    }
                },
            };
            match frame {
                Frame::Batch(b) => self.on_batches(reader, writer, b).await?,
                Frame::Heartbeat(hb) => self.on_heartbeat(&hb),
                Frame::Error(e) => {
                    if e.code == ErrorCode::LogPurged {
                        log_purged(ctx, self.peer, &e.message)?;
                    }
                    return Err(LinkError::Peer(e.code, e.message));
                }
                other => {
                    let msg = format!("unexpected frame {}", other.name());
                    send_error(writer, ErrorCode::Invalid, &msg).await;
                    return Err(LinkError::Closed("protocol violation"));
                }
            }
        }
    }

    fn superseded(&self, current: u64) -> bool {
        self.links
            .as_ref()
            .is_some_and(|l| l.inbound_generation.load(Ordering::Acquire) != current)
    }

    /// Tells the sender where this side stands, and refreshes the link's status.
    async fn heartbeat(&self, writer: &mut FrameWriter) -> Result<(), LinkError> {
        let s = self.sm.status();
        writer
            .send(&Frame::Heartbeat(Heartbeat {
                head: s.acked,
                hlc_now: meridian_core::Timestamp::new(self.ctx.store.wall_ms(), 0).0,
                pending_since_ms: 0,
                stable_ts: 0,
                origins: Vec::new(),
            }))
            .await?;
        self.ctx
            .links
            .update_inbound(self.peer, Some(&s), self.paused);
        Ok(())
    }

    /// Takes `first` and every batch already received after it (up to the gather's cap) and
    /// applies them in one commit, then acknowledges.
    async fn on_batches(
        &mut self,
        reader: &mut FrameReader,
        writer: &mut FrameWriter,
        first: Batch,
    ) -> Result<(), LinkError> {
        let (ctx, peer) = (self.ctx, self.peer);
        let mut gather = Gather::default();
        let mut quarantined = Vec::new();
        let mut next = Some(first);
        while let Some(b) = next.take() {
            let opened = match self.open(&b) {
                Ok(o) => o,
                Err(e) => {
                    ctx.links.refuse_batch(peer, "invalid", &e.to_string());
                    ctx.catch_up(|g| g.on_refused(peer));
                    send_error(writer, ErrorCode::Invalid, &e.to_string()).await;
                    return Err(e.into());
                }
            };
            let range = (b.first, b.last, b.attempt, b.head);
            let wall = ctx.store.wall_ms();
            let taken = self
                .sm
                .gather(&mut gather, range, b.hlc_now, wall, opened.entries);
            if let Some(from) = taken {
                quarantined.extend(opened.quarantined.into_iter().filter(|q| q.seq >= from));
            }
            if !gather.has_room() {
                break;
            }
            match reader.try_next() {
                Some(Ok(Frame::Batch(b))) => next = Some(b),
                Some(Ok(other)) => self.held = Some(other),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        self.counters.received.inc_by(gather.batches);
        for ack in std::mem::take(&mut gather.replies) {
            let counter = if ack.gap {
                &self.counters.gaps
            } else {
                &self.counters.repeats
            };
            counter.inc();
            writer.send(&Frame::Ack(ack)).await?;
        }
        let Some((entries, gathered)) = gather.finish() else {
            self.report_progress();
            return Ok(());
        };
        crate::quarantine::set_aside(ctx, peer, quarantined).await?;
        let received_ms = ctx.clock.now_ms();
        let applied = self.apply(writer, entries).await?;
        ctx.links.clear_refusal(peer);
        // Wall-clock time of the fsync: now, less how long this task took to run again after
        // it (a wake-up on a busy machine, not part of the lag).
        let since = applied
            .durable_at
            .map_or(0, |t| t.elapsed().as_millis() as u64);
        let durable_ms = ctx.clock.now_ms().saturating_sub(since);
        record_lag(ctx, peer, &gathered.commits_ms, received_ms, durable_ms);
        for (origin, ts) in &gathered.stable_by_origin {
            self.raise_stable(origin, *ts);
        }
        let report = applied.report;
        self.counters.applied.inc_by(report.applied);
        self.counters.duplicates.inc_by(report.duplicates);
        self.counters.stale.inc_by(report.stale);
        if report.missing_table > 0 {
            tracing::warn!(peer = %peer, count = report.missing_table, "changes for tables this region does not have were skipped");
        }
        let ack = self
            .sm
            .on_gather_applied(&gathered, report, ctx.clock.now_ms());
        writer.send(&Frame::Ack(ack)).await?;
        self.report_progress();
        if !applied.replicas_added.is_empty() {
            // Their earlier items never came here: reconnect and take a snapshot from this
            // peer.
            tracing::info!(peer = %peer, tables = ?applied.replicas_added, "became a replica of existing tables; asking for a snapshot");
            if let Ok(mut s) = ctx.links.snapshots.lock() {
                s.wanted_from.insert(peer.to_owned());
            }
            return Err(LinkError::Closed("reconnecting for a snapshot"));
        }
        Ok(())
    }

    /// Decodes a batch and checks that the link may carry each entry's origin.
    fn open(&self, b: &Batch) -> Result<batch::Opened, crate::protocol::ProtocolError> {
        let opened = batch::open(b, self.me)?;
        batch::check_origins(
            &opened.entries,
            &self.ctx.config.topology,
            self.peer,
            self.me,
        )?;
        Ok(opened)
    }

    /// Applies a gather through the sink; a refusal ends the connection with the reason.
    async fn apply(
        &self,
        writer: &mut FrameWriter,
        entries: Vec<meridian_storage::ChangeEntry>,
    ) -> Result<sink::Applied, LinkError> {
        if entries.is_empty() {
            return Ok(sink::Applied::default());
        }
        self.counters.applies.inc();
        match self.ctx.sink.apply(entries).await {
            Ok(a) => Ok(a),
            Err(e @ StoreError::ClockAhead { .. }) => {
                // Nothing of the batch was applied; the sender backs off and sends it again,
                // by when the version may be within the offset.
                self.ctx
                    .links
                    .refuse_batch(self.peer, "clock", &e.to_string());
                self.ctx.catch_up(|g| g.on_refused(self.peer));
                // The sender's clock offset, seen in this batch's header.
                let s = self.sm.status();
                self.ctx
                    .links
                    .update_inbound(self.peer, Some(&s), self.paused);
                send_error(writer, ErrorCode::Refused, &e.to_string()).await;
                Err(e.into())
            }
            Err(e) => {
                send_error(writer, ErrorCode::Unavailable, "store unavailable").await;
                Err(e.into())
            }
        }
    }

    /// Every write of `origin`'s up to `ts` is applied here.
    fn raise_stable(&self, origin: &str, ts: u64) {
        match &self.links {
            Some(l) if origin == self.peer => {
                l.stable_ts.fetch_max(ts, Ordering::AcqRel);
            }
            _ => self.ctx.links.raise_origin_stable(origin, ts),
        }
    }

    fn on_heartbeat(&mut self, hb: &Heartbeat) {
        // the clock offset between the two regions' clocks, skew included
        let vouch = self
            .sm
            .on_heartbeat(hb, self.me, self.peer, self.ctx.store.wall_ms());
        if let (Some(ts), Some(l)) = (vouch.sender_stable, &self.links) {
            l.stable_ts.fetch_max(ts, Ordering::AcqRel);
        }
        for (origin, ts) in &vouch.origins {
            self.ctx.links.raise_origin_stable(origin, *ts);
        }
        self.report_progress();
    }

    /// Tells the catch-up gate how far this link is.
    fn report_progress(&self) {
        let s = self.sm.status();
        self.ctx
            .catch_up(|g| g.on_report(self.peer, s.sender_head, s.acked, s.lag_ms));
    }
}
