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
//!
//! The driver takes every batch already received into one [`Gather`] (up to
//! [`GATHER_MAX_ENTRIES`]) and applies it in one commit; [`Inbound::gather`] decides each
//! batch, [`Gather::finish`] gives the entries and what their apply proves (per origin, the
//! timestamp up to which its writes are all here), [`Inbound::on_gather_applied`] the ack.
//! [`Inbound::on_heartbeat`] says what a heartbeat vouches for once the stream is caught up.

use crate::outbound::LogEntry;
use crate::protocol::{Ack, AckReport, Heartbeat};
use meridian_core::Timestamp;
use std::collections::BTreeMap;

/// At most this many entries (by sequence span) are gathered from batches already received
/// into one apply. One durable apply per gather keeps fsyncs few; the cap keeps each apply
/// short, because the first entry of a gather waits for the last (measurements in
/// docs/benchmarks.md, "Replication lag and catch-up").
pub const GATHER_MAX_ENTRIES: u64 = 2048;

/// Batches received together, to be applied in one commit: one durable apply per batch would
/// cap the link at the batches per second the store can sync, and a queue would build.
#[derive(Debug)]
pub struct Gather<E> {
    entries: Vec<E>,
    /// Acks to send at once, in order: repeats and gaps, which apply nothing.
    pub replies: Vec<Ack>,
    /// Batches taken.
    pub batches: u64,
    accepted: Option<(u64, u32)>,
    span: u64,
}

impl<E> Default for Gather<E> {
    fn default() -> Self {
        Gather {
            entries: Vec::new(),
            replies: Vec::new(),
            batches: 0,
            accepted: None,
            span: 0,
        }
    }
}

impl<E: LogEntry> Gather<E> {
    /// Whether another batch already received may join ([`GATHER_MAX_ENTRIES`]).
    pub fn has_room(&self) -> bool {
        self.span < GATHER_MAX_ENTRIES
    }

    /// The entries to apply and what applying them proves; `None` when no batch was accepted
    /// (only replies to send).
    pub fn finish(self) -> Option<(Vec<E>, Gathered)> {
        let (last, attempt) = self.accepted?;
        let mut stable_by_origin: BTreeMap<String, u64> = BTreeMap::new();
        for e in &self.entries {
            let v = stable_by_origin.entry(e.origin().to_owned()).or_insert(0);
            *v = (*v).max(e.version_ts());
        }
        let gathered = Gathered {
            last,
            attempt,
            commits_ms: self.entries.iter().map(LogEntry::commit_ms).collect(),
            stable_by_origin,
        };
        Some((self.entries, gathered))
    }
}

/// What a gather's apply proves, and what its ack needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gathered {
    /// The last accepted batch's end and attempt.
    last: u64,
    attempt: u32,
    /// Origin commit time (ms) of each entry, in order: the lag histograms' samples.
    pub commits_ms: Vec<u64>,
    /// Per origin, the newest timestamp among the entries. Each origin's changes arrive in its
    /// sequence order, which is also its timestamp order: once applied, all its writes up to
    /// this are here (the sender's own, and on a star's spoke the ones the hub forwards).
    pub stable_by_origin: BTreeMap<String, u64>,
}

/// What a heartbeat vouches for; empty unless this receiver has applied the sender's stream
/// through the head the heartbeat names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vouch {
    /// Every write of the sender's with a timestamp up to this is applied here.
    pub sender_stable: Option<u64>,
    /// A star's hub: for other regions, the timestamp up to which their writes are applied
    /// at the hub, hence here (never this region or the sender).
    pub origins: Vec<(String, u64)>,
}

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

    /// The sender's HLC reading `hlc_now`, at local wall time `now_ms` (skew included).
    fn on_sender_clock(&mut self, hlc_now: u64, now_ms: u64) {
        self.clock_offset_ms = Timestamp(hlc_now).physical_ms() as i64 - now_ms as i64;
    }

    /// Takes one validated batch `first..=last` (sent at the sender's HLC `hlc_now`, local
    /// wall time `now_ms`) into `g`: its entries from the first not yet accepted, or a reply.
    /// Returns that first sequence when the batch is accepted (what else of the batch the
    /// caller keeps is cut there too).
    pub fn gather<E: LogEntry>(
        &mut self,
        g: &mut Gather<E>,
        (first, last, attempt, head): (u64, u64, u32, u64),
        hlc_now: u64,
        now_ms: u64,
        entries: Vec<E>,
    ) -> Option<u64> {
        g.batches += 1;
        g.span += last.saturating_sub(first) + 1;
        self.on_sender_clock(hlc_now, now_ms);
        match self.on_batch(first, last, attempt, head) {
            Verdict::Reply(ack) => {
                g.replies.push(ack);
                None
            }
            Verdict::Apply { from } => {
                g.entries
                    .extend(entries.into_iter().filter(|e| e.seq() >= from));
                g.accepted = Some((last, attempt));
                Some(from)
            }
        }
    }

    /// A gather's entries are durable (`report` says what became of them); the ack to send.
    pub fn on_gather_applied(&mut self, g: &Gathered, report: AckReport, now_ms: u64) -> Ack {
        let newest = g.commits_ms.last().copied();
        self.on_applied(g.last, g.attempt, report, newest, now_ms)
    }

    /// A heartbeat from `peer` to `me`: while nothing flows, the lag is the age of the oldest
    /// change the sender still holds for us (0 when it holds none). Once the stream is applied
    /// through the heartbeat's head, its stability marks hold here too.
    pub fn on_heartbeat(&mut self, hb: &Heartbeat, me: &str, peer: &str, now_ms: u64) -> Vouch {
        self.sender_head = self.sender_head.max(hb.head);
        if hb.pending_since_ms > 0 {
            self.lag_ms = now_ms.saturating_sub(hb.pending_since_ms);
        } else if self.acked() >= hb.head {
            self.lag_ms = 0;
        }
        self.on_sender_clock(hb.hlc_now, now_ms);
        if self.acked() < hb.head {
            return Vouch::default();
        }
        Vouch {
            sender_stable: (hb.stable_ts > 0).then_some(hb.stable_ts),
            origins: hb
                .origins
                .iter()
                .filter(|(o, _)| o != me && o != peer)
                .cloned()
                .collect(),
        }
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
        r.on_heartbeat(&hb, "me", "peer", 10_000);
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
            "me",
            "peer",
            10_200,
        );
        assert_eq!(r.status().lag_ms, 0);
    }

    #[derive(Clone, Debug, PartialEq)]
    struct E {
        seq: u64,
        origin: &'static str,
        ts: u64,
    }

    impl LogEntry for E {
        fn seq(&self) -> u64 {
            self.seq
        }
        fn origin(&self) -> &str {
            self.origin
        }
        fn commit_ms(&self) -> u64 {
            Timestamp(self.ts).physical_ms()
        }
        fn version_ts(&self) -> u64 {
            self.ts
        }
        fn wire_bytes(&self) -> usize {
            10
        }
    }

    fn entries(first: u64, last: u64, origin: &'static str) -> Vec<E> {
        (first..=last)
            .map(|seq| E {
                seq,
                origin,
                ts: Timestamp::new(1_000 + seq, 0).0,
            })
            .collect()
    }

    #[test]
    fn a_gather_applies_the_continuation_of_batches_received_together_once() {
        let mut r = Inbound::new(1);
        let mut g = Gather::default();
        assert_eq!(
            r.gather(&mut g, (1, 3, 1, 9), 0, 0, entries(1, 3, "a")),
            Some(1)
        );
        // a repeat within the gather (overlapping what was accepted) keeps only the new part
        assert_eq!(
            r.gather(&mut g, (2, 5, 1, 9), 0, 0, entries(2, 5, "b")),
            Some(4)
        );
        // a gap is a reply, and applies nothing
        assert_eq!(
            r.gather(&mut g, (8, 9, 1, 9), 0, 0, entries(8, 9, "a")),
            None
        );
        assert_eq!(g.batches, 3);
        assert_eq!(g.replies.len(), 1);
        assert!(g.replies[0].gap);
        let (applied, gathered) = g.finish().expect("accepted");
        assert_eq!(
            applied.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(gathered.commits_ms, [1_001, 1_002, 1_003, 1_004, 1_005]);
        // per origin, the newest timestamp applied
        let marks: Vec<_> = gathered.stable_by_origin.into_iter().collect();
        let ts = |ms| Timestamp::new(ms, 0).0;
        assert_eq!(
            marks,
            [("a".to_owned(), ts(1_003)), ("b".to_owned(), ts(1_005))]
        );
        // nothing is acknowledged until the apply is durable; then all of it at once
        assert_eq!(r.status().acked, 0);
        let g2 = Gathered {
            last: 5,
            attempt: 1,
            commits_ms: vec![1_005],
            stable_by_origin: BTreeMap::new(),
        };
        let ack = r.on_gather_applied(&g2, AckReport::default(), 1_050);
        assert_eq!((ack.up_to, ack.gap), (5, false));
        assert_eq!(r.status().lag_ms, 45);
    }

    #[test]
    fn a_gather_of_only_repeats_has_nothing_to_apply_and_the_cap_stops_it() {
        let mut r = Inbound::new(11);
        let mut g: Gather<E> = Gather::default();
        assert_eq!(
            r.gather(&mut g, (1, 10, 1, 10), 0, 0, entries(1, 10, "a")),
            None
        );
        assert!(g.finish().is_none());
        let mut g: Gather<E> = Gather::default();
        r.gather(
            &mut g,
            (11, 11 + GATHER_MAX_ENTRIES - 2, 1, 0),
            0,
            0,
            Vec::new(),
        );
        assert!(g.has_room());
        r.gather(
            &mut g,
            (
                11 + GATHER_MAX_ENTRIES - 1,
                11 + GATHER_MAX_ENTRIES - 1,
                1,
                0,
            ),
            0,
            0,
            Vec::new(),
        );
        assert!(!g.has_room());
    }

    #[test]
    fn a_heartbeat_vouches_only_once_the_stream_is_applied_through_its_head() {
        let mut r = Inbound::new(1);
        let hb = Heartbeat {
            head: 5,
            hlc_now: Timestamp::new(10_000, 3).0,
            pending_since_ms: 0,
            stable_ts: 77,
            origins: vec![("me".into(), 1), ("hub".into(), 2), ("c".into(), 3)],
        };
        assert_eq!(r.on_heartbeat(&hb, "me", "hub", 10_020), Vouch::default());
        assert_eq!(r.status().peer_clock_offset_ms, -20);
        r.on_batch(1, 5, 1, 5);
        r.on_applied(5, 1, AckReport::default(), None, 10_030);
        let v = r.on_heartbeat(&hb, "me", "hub", 10_040);
        assert_eq!(v.sender_stable, Some(77));
        assert_eq!(v.origins, [("c".to_owned(), 3)]);
    }
}
