use super::*;
use crate::protocol::AckReport;
use proptest::prelude::*;

#[derive(Clone, Debug, PartialEq)]
struct E {
    seq: u64,
    origin: &'static str,
}

impl LogEntry for E {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn origin(&self) -> &str {
        self.origin
    }
    fn commit_ms(&self) -> u64 {
        self.seq * 10
    }
    fn version_ts(&self) -> u64 {
        (self.seq * 10) << 16
    }
    fn wire_bytes(&self) -> usize {
        100
    }
}

fn log(from: u64, n: u64, origin: &'static str) -> Vec<E> {
    (from..from + n).map(|seq| E { seq, origin }).collect()
}

fn cfg() -> OutboundConfig {
    OutboundConfig {
        max_batch_entries: 10,
        max_batch_bytes: 1_000_000,
        window: Window {
            max_batches: 2,
            max_bytes: 1 << 20,
        },
        ack_timeout_ms: 1_000,
    }
}

fn ack(up_to: u64, attempt: u32, gap: bool) -> Ack {
    Ack {
        up_to,
        attempt,
        gap,
        report: AckReport::default(),
    }
}

fn open_link(checkpoint: u64, head: u64) -> Outbound {
    let mut o = Outbound::new("a", "b", Topology::Mesh, cfg(), checkpoint, head);
    o.on_open(Window::DEFAULT, 0);
    o
}

#[test]
fn resumes_after_the_checkpoint_in_contiguous_batches_under_the_window() {
    let mut o = open_link(5, 40);
    assert_eq!(o.resume_from(), 6);
    let r = o.poll_read().expect("read");
    assert_eq!(r.from, 6);
    assert_eq!(o.poll_read(), None, "one read at a time");
    let c = o.on_read(6, log(6, 10, "a"), 1).expect("cut");
    assert_eq!((c.first, c.last, c.entries.len()), (6, 15, 10));
    let r = o.poll_read().expect("read");
    assert_eq!(r.from, 16);
    o.on_read(16, log(16, 10, "a"), 2).expect("cut");
    assert_eq!(o.poll_read(), None, "window of 2 batches is full");
    let out = o.on_ack(&ack(15, c.attempt, false), 11).expect("ack");
    assert_eq!((out.advanced, out.rtt_ms), (10, Some(10)));
    assert_eq!(o.poll_read().expect("read").from, 26);
}

#[test]
fn a_mesh_link_ships_only_local_changes_but_covers_the_whole_range() {
    let mut o = open_link(0, 6);
    o.poll_read().expect("read");
    let mut entries = log(1, 3, "a");
    entries.extend(log(4, 3, "c"));
    let c = o.on_read(1, entries, 0).expect("cut");
    assert_eq!((c.first, c.last), (1, 6));
    assert_eq!(
        c.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

#[test]
fn a_star_hub_forwards_everything_but_the_destinations_own() {
    let mut o = Outbound::new(
        "hub",
        "b",
        Topology::Star { hub: "hub".into() },
        cfg(),
        0,
        3,
    );
    o.on_open(Window::DEFAULT, 0);
    o.poll_read().expect("read");
    let entries = vec![
        E {
            seq: 1,
            origin: "hub",
        },
        E {
            seq: 2,
            origin: "b",
        },
        E {
            seq: 3,
            origin: "c",
        },
    ];
    let c = o.on_read(1, entries, 0).expect("cut");
    assert_eq!(
        c.entries.iter().map(|e| e.origin).collect::<Vec<_>>(),
        ["hub", "c"]
    );
}

#[test]
fn closing_forgets_in_flight_and_resumes_from_the_ack() {
    let mut o = open_link(0, 30);
    o.poll_read();
    o.on_read(1, log(1, 10, "a"), 0);
    o.poll_read();
    o.on_read(11, log(11, 10, "a"), 0);
    o.on_ack(&ack(10, 1, false), 5).expect("ack");
    o.on_closed();
    assert_eq!(o.poll_read(), None, "nothing is sent while closed");
    assert_eq!(o.resume_from(), 11);
    o.on_open(Window::DEFAULT, 10);
    assert_eq!(o.poll_read().expect("read").from, 11);
    // an ack from the old connection cannot arrive on the new one; a stale read is dropped
    assert!(o.on_read(1, log(1, 10, "a"), 11).is_none());
}

#[test]
fn checkpoints_are_persisted_lazily_and_never_beyond_the_ack() {
    let mut o = open_link(0, 30);
    o.poll_read();
    o.on_read(1, log(1, 10, "a"), 0);
    assert_eq!(o.poll_persist(), None);
    o.on_ack(&ack(10, 1, false), 1).expect("ack");
    assert_eq!(o.poll_persist(), Some(10));
    assert_eq!(o.poll_persist(), None, "one persist at a time");
    o.on_persisted(10, false);
    assert_eq!(o.poll_persist(), Some(10), "a failed persist is retried");
    o.on_persisted(10, true);
    assert_eq!(o.status().persisted, 10);
    assert_eq!(o.poll_persist(), None);
}

#[test]
fn an_ack_beyond_what_was_sent_is_a_protocol_violation() {
    let mut o = open_link(0, 30);
    o.poll_read();
    o.on_read(1, log(1, 10, "a"), 0);
    assert!(o.on_ack(&ack(11, 1, false), 1).is_err());
}

#[test]
fn a_gap_rewinds_once_per_attempt() {
    let mut o = open_link(0, 30);
    o.poll_read();
    o.on_read(1, log(1, 10, "a"), 0);
    o.poll_read();
    o.on_read(11, log(11, 10, "a"), 0);
    let attempt = o.status().attempt;
    let out = o.on_ack(&ack(0, attempt, true), 1).expect("ack");
    assert!(out.rewound);
    assert_eq!(o.poll_read().expect("read").from, 1);
    // the second gap ack of the same (old) attempt does not rewind again
    o.on_read(1, log(1, 10, "a"), 2);
    let out = o.on_ack(&ack(0, attempt, true), 3).expect("ack");
    assert!(!out.rewound);
    assert_eq!(o.poll_read().expect("read").from, 11);
}

#[test]
fn stalls_when_acks_stop_coming() {
    let mut o = open_link(0, 30);
    o.poll_read();
    o.on_read(1, log(1, 10, "a"), 100);
    assert!(!o.stalled(1_000));
    assert!(o.stalled(1_200));
    o.on_ack(&ack(10, 1, false), 1_150).expect("ack");
    assert!(!o.stalled(1_200), "nothing in flight");
}

#[test]
fn paused_links_and_closed_windows_send_nothing() {
    let mut o = open_link(0, 30);
    o.set_paused(true);
    assert_eq!(o.poll_read(), None);
    o.set_paused(false);
    o.on_credit(Window::CLOSED);
    assert_eq!(o.poll_read(), None);
    o.on_credit(Window::DEFAULT);
    assert!(o.poll_read().is_some());
}

#[derive(Clone, Debug)]
enum Ev {
    Read,
    AckFront,
    AckAll,
    Close,
    Open,
    Head(u64),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        3 => Just(Ev::Read),
        2 => Just(Ev::AckFront),
        1 => Just(Ev::AckAll),
        1 => Just(Ev::Close),
        1 => Just(Ev::Open),
        1 => (0u64..20).prop_map(Ev::Head),
    ]
}

proptest! {
    /// Under any interleaving of reads, acks, closes and head moves: batches are contiguous,
    /// the ack only grows, the window holds, and a (re)open resumes at `acked + 1`.
    #[test]
    fn invariants_hold_under_any_event_order(events in proptest::collection::vec(ev(), 1..200)) {
        let mut o = Outbound::new("a", "b", Topology::Mesh, cfg(), 0, 0);
        o.on_open(Window::DEFAULT, 0);
        let mut sent: Vec<(u64, u64)> = Vec::new(); // unacked batches on the current connection
        let mut head = 0u64;
        let mut prev_acked = 0u64;
        for (t, e) in events.into_iter().enumerate() {
            let now = t as u64;
            match e {
                Ev::Read => {
                    if let Some(r) = o.poll_read() {
                        let n = (head + 1 - r.from).min(r.max_entries as u64);
                        if let Some(c) = o.on_read(r.from, log(r.from, n, "a"), now) {
                            if let Some(&(_, l)) = sent.last() {
                                prop_assert_eq!(c.first, l + 1, "contiguous");
                            } else {
                                prop_assert_eq!(c.first, o.status().acked + 1);
                            }
                            sent.push((c.first, c.last));
                        }
                    }
                }
                Ev::AckFront => {
                    if !sent.is_empty() {
                        let (_, l) = sent.remove(0);
                        o.on_ack(&ack(l, o.status().attempt, false), now).expect("ack");
                    }
                }
                Ev::AckAll => {
                    if let Some(&(_, l)) = sent.last() {
                        o.on_ack(&ack(l, o.status().attempt, false), now).expect("ack");
                        sent.clear();
                    }
                }
                Ev::Close => {
                    o.on_closed();
                    sent.clear();
                }
                Ev::Open => {
                    if !o.status().open {
                        o.on_open(Window::DEFAULT, now);
                        prop_assert_eq!(o.status().next, o.status().acked + 1);
                    }
                }
                Ev::Head(d) => {
                    head += d;
                    o.on_head(head);
                }
            }
            let s = o.status();
            prop_assert!(s.acked >= prev_acked);
            prop_assert!(s.acked <= head);
            prop_assert!(s.inflight_batches <= 2);
            prop_assert_eq!(s.inflight_batches, sent.len());
            prev_acked = s.acked;
        }
    }
}
