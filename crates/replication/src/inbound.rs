//! The sync-in state machine of one connection of a directed link `peer → me`. Pure.
//!
//! The sender announces where its stream starts (`Auth.resume_from`); from then on the
//! receiver accepts only the batch that continues the stream:
//!
//! - `last < expected` — a repeat: acknowledge again, apply nothing;
//! - `first > expected` — a gap (a batch was lost or overtaken): ack what is durable with
//!   `gap = true`, apply nothing; the sender rewinds;
//! - otherwise apply the entries with `seq ≥ expected`, then ack `last`.
//!
//! A batch accepted for applying moves the expected position at once, so the driver can accept
//! several batches that arrived together and apply them in one commit. The ack is sent only
//! after the store made them durable ([`Inbound::on_applied`]), so an acknowledged sequence is
//! never lost; if the apply fails the connection ends and this state with it. Dedup of repeats
//! across connections and restarts is the store's per-origin watermark, advanced in the same
//! commit as the changes.

use crate::protocol::{Ack, AckReport, Heartbeat};

/// What to do with a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Apply the entries with local sequence `≥ from`, then call [`Inbound::on_applied`].
    Apply {
        /// First sequence not yet applied on this stream.
        from: u64,
    },
    /// Send this ack and apply nothing.
    Reply(Ack),
}

/// A snapshot for status and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboundStatus {
    /// Highest sender sequence applied and acknowledged.
    pub acked: u64,
    /// The sender's head, as last reported.
    pub sender_head: u64,
    /// Current lag in milliseconds (origin commit → applied here), see [`Inbound::on_applied`].
    pub lag_ms: u64,
    /// Sender entries not yet applied here.
    pub lag_entries: u64,
    /// The sender's HLC (ms) minus this region's clock at the last batch or heartbeat.
    pub peer_clock_offset_ms: i64,
}

/// The sync-in state machine of one connection.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// First sequence not yet accepted for applying.
    expected: u64,
    /// First sequence not yet durable here (`acked + 1`).
    durable: u64,
    sender_head: u64,
    lag_ms: u64,
    clock_offset_ms: i64,
}

impl Inbound {
    /// A stream that starts at `resume_from` (from the sender's `Auth`).
    pub fn new(resume_from: u64) -> Self {
        Self {
            expected: resume_from.max(1),
            durable: resume_from.max(1),
            sender_head: resume_from.saturating_sub(1),
            lag_ms: 0,
            clock_offset_ms: 0,
        }
    }

    fn acked(&self) -> u64 {
        self.durable - 1
    }

    fn reply(&self, attempt: u32, gap: bool) -> Verdict {
        Verdict::Reply(Ack {
            up_to: self.acked(),
            attempt,
            gap,
            report: AckReport::default(),
        })
    }

    /// A batch covering `first..=last` arrived (already validated).
    pub fn on_batch(&mut self, first: u64, last: u64, attempt: u32, head: u64) -> Verdict {
        self.sender_head = self.sender_head.max(head).max(last);
        if last < self.expected {
            self.reply(attempt, false)
        } else if first > self.expected {
            self.reply(attempt, true)
        } else {
            let from = self.expected;
            self.expected = last + 1;
            Verdict::Apply { from }
        }
    }

    /// The accepted batches up to the one ending at `last` are durable. `newest_commit_ms` is
    /// the origin commit time of their last entry (if they had any); the lag becomes
    /// `now − newest_commit_ms`, or 0 when the stream has caught up with an empty batch.
    pub fn on_applied(
        &mut self,
        last: u64,
        attempt: u32,
        report: AckReport,
        newest_commit_ms: Option<u64>,
        now_ms: u64,
    ) -> Ack {
        self.durable = self.durable.max(last + 1);
        self.expected = self.expected.max(self.durable);
        match newest_commit_ms {
            Some(c) => self.lag_ms = now_ms.saturating_sub(c),
            None if self.acked() >= self.sender_head => self.lag_ms = 0,
            None => {}
        }
        Ack {
            up_to: self.acked(),
            attempt,
            gap: false,
            report,
        }
    }

    /// The sender's clock reading `hlc_ms`, at local time `now_ms`.
    pub fn on_sender_clock(&mut self, hlc_ms: u64, now_ms: u64) {
        self.clock_offset_ms = hlc_ms as i64 - now_ms as i64;
    }

    /// A heartbeat from the sender: while nothing flows, the lag is the age of the oldest
    /// change the sender still holds for us (0 when it holds none).
    pub fn on_heartbeat(&mut self, hb: &Heartbeat, now_ms: u64) {
        self.sender_head = self.sender_head.max(hb.head);
        if hb.pending_since_ms > 0 {
            self.lag_ms = now_ms.saturating_sub(hb.pending_since_ms);
        } else if self.acked() >= hb.head {
            self.lag_ms = 0;
        }
        self.on_sender_clock(hb.hlc_now >> 16, now_ms);
    }

    /// A snapshot.
    pub fn status(&self) -> InboundStatus {
        InboundStatus {
            acked: self.acked(),
            sender_head: self.sender_head,
            lag_ms: self.lag_ms,
            lag_entries: self.sender_head.saturating_sub(self.acked()),
            peer_clock_offset_ms: self.clock_offset_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_continuation_repeats_acks_and_reports_gaps() {
        let mut r = Inbound::new(11);
        assert_eq!(r.on_batch(11, 20, 1, 30), Verdict::Apply { from: 11 });
        let ack = r.on_applied(20, 1, AckReport::default(), Some(1_000), 1_050);
        assert_eq!((ack.up_to, ack.gap), (20, false));
        assert_eq!(r.status().lag_ms, 50);
        assert_eq!(r.status().lag_entries, 10);
        // a repeat of an applied batch
        match r.on_batch(11, 20, 1, 30) {
            Verdict::Reply(a) => assert_eq!((a.up_to, a.gap), (20, false)),
            v => panic!("{v:?}"),
        }
        // overlapping: only the new part is applied
        assert_eq!(r.on_batch(15, 25, 2, 30), Verdict::Apply { from: 21 });
        r.on_applied(25, 2, AckReport::default(), None, 1_100);
        // a gap
        match r.on_batch(27, 30, 2, 30) {
            Verdict::Reply(a) => assert_eq!((a.up_to, a.gap, a.attempt), (25, true, 2)),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn batches_accepted_together_are_acknowledged_once_durable() {
        let mut r = Inbound::new(1);
        assert_eq!(r.on_batch(1, 10, 1, 30), Verdict::Apply { from: 1 });
        // the next batch continues the accepted one, not the durable position
        assert_eq!(r.on_batch(11, 20, 1, 30), Verdict::Apply { from: 11 });
        // a repeat of an accepted batch is acknowledged only up to what is durable
        match r.on_batch(5, 10, 1, 30) {
            Verdict::Reply(a) => assert_eq!((a.up_to, a.gap), (0, false)),
            v => panic!("{v:?}"),
        }
        assert_eq!(r.status().acked, 0);
        let ack = r.on_applied(20, 1, AckReport::default(), Some(1_000), 1_040);
        assert_eq!((ack.up_to, ack.gap), (20, false));
        assert_eq!(r.status().acked, 20);
        // a gap is measured against the accepted position
        match r.on_batch(22, 25, 1, 30) {
            Verdict::Reply(a) => assert_eq!((a.up_to, a.gap), (20, true)),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn heartbeats_measure_lag_while_nothing_flows() {
        let mut r = Inbound::new(1);
        let hb = Heartbeat {
            head: 5,
            hlc_now: 10_000 << 16,
            pending_since_ms: 9_000,
            stable_ts: 0,
            origins: Vec::new(),
        };
        r.on_heartbeat(&hb, 10_000);
        assert_eq!(r.status().lag_ms, 1_000);
        assert_eq!(r.status().lag_entries, 5);
        r.on_applied(5, 1, AckReport::default(), Some(9_500), 10_100);
        r.on_heartbeat(
            &Heartbeat {
                head: 5,
                hlc_now: 0,
                pending_since_ms: 0,
                stable_ts: 0,
                origins: Vec::new(),
            },
            10_200,
        );
        assert_eq!(r.status().lag_ms, 0);
    }
}
