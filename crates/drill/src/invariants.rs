//! The invariants every scenario is held to, as pure functions over what was observed:
//!
//! - **convergence** — every region's copy of the table has the same digest within a bound
//!   after the clients stop;
//! - **no acknowledged write lost** — every acknowledged put's write id resolves (through the
//!   regions' change logs) to its version, and every region's final item for that key holds a
//!   write whose version is at least that: the acknowledged write or one that superseded it
//!   by last-writer-wins;
//! - **exact counters** — in every region, `acked ≤ final ≤ acked + ambiguous` increments;
//! - **availability** — the share of requests through the gateway that succeeded while the
//!   fault was on, against the scenario's objective;
//! - **recovery** — the cluster was back in its steady state within a bound after the fault was
//!   removed.

use std::collections::{BTreeMap, HashMap};

use meridian_core::Version;
use serde::Serialize;

use crate::ledger::{OpKind, Outcome, Request};

/// Pass, fail, or not applicable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The invariant holds.
    Pass,
    /// It does not.
    Fail,
    /// Nothing to check in this scenario.
    Skip,
}

impl Verdict {
    /// `pass`, `FAIL`, `n/a`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "n/a",
        }
    }
}

/// One invariant's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `convergence`, `no_lost_writes`, `exact_counters`, `availability`, `recovery`, or a
    /// scenario's own check.
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What was measured.
    pub detail: String,
}

impl Check {
    fn new(name: &str, ok: bool, detail: String) -> Check {
        Check {
            name: name.to_owned(),
            verdict: if ok { Verdict::Pass } else { Verdict::Fail },
            detail,
        }
    }

    /// A check with an explicit verdict.
    pub fn with(name: &str, verdict: Verdict, detail: String) -> Check {
        Check {
            name: name.to_owned(),
            verdict,
            detail,
        }
    }
}

/// A region's final copy of one item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FinalItem {
    /// The write id it holds (puts).
    pub wid: Option<String>,
    /// The counter value (`cnt`).
    pub count: Option<i64>,
}

/// Region → key → final item.
pub type Finals = BTreeMap<String, BTreeMap<String, FinalItem>>;

/// Write id → its version, from the regions' change logs.
pub type Versions = HashMap<String, Version>;

/// What the convergence wait saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConvergenceObs {
    /// Milliseconds after the clients stopped when every digest was equal (`None`: never
    /// within the bound).
    pub converged_after_ms: Option<u64>,
    /// The last digest read from each region (`None`: the region did not answer).
    pub digests: BTreeMap<String, Option<String>>,
    /// The last item count of each region.
    pub items: BTreeMap<String, u64>,
    /// The bound waited.
    pub bound_ms: u64,
}

/// Convergence: equal digests everywhere within the bound.
pub fn convergence(obs: &ConvergenceObs) -> Check {
    match obs.converged_after_ms {
        Some(ms) => Check::new(
            "convergence",
            true,
            format!(
                "{} regions equal {} ms after the clients stopped ({} items)",
                obs.digests.len(),
                ms,
                obs.items.values().next().copied().unwrap_or(0)
            ),
        ),
        None => {
            let parts: Vec<String> = obs
                .digests
                .iter()
                .map(|(r, d)| {
                    let d = d
                        .as_deref()
                        .map_or("unreachable", |d| d.get(..12).unwrap_or(d));
                    format!("{r}={d} ({} items)", obs.items.get(r).copied().unwrap_or(0))
                })
                .collect();
            Check::new(
                "convergence",
                false,
                format!(
                    "digests still differ after {} ms: {}",
                    obs.bound_ms,
                    parts.join(", ")
                ),
            )
        }
    }
}

/// One acknowledged write a region does not hold (nor anything that superseded it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostWrite {
    /// The region.
    pub region: String,
    /// The key.
    pub key: String,
    /// The acknowledged write.
    pub wid: String,
    /// Its version (`None`: no change log holds it).
    pub version: Option<Version>,
    /// What the region holds instead (`None`: no item).
    pub holds: Option<String>,
    /// The version of what it holds.
    pub holds_version: Option<Version>,
}

/// The result of the lost-write check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LostWrites {
    /// Acknowledged puts checked.
    pub acked: usize,
    /// Violations (every region × write).
    pub lost: Vec<LostWrite>,
}

/// Checks every acknowledged put against every region's final state.
pub fn lost_writes(requests: &[Request], versions: &Versions, finals: &Finals) -> LostWrites {
    let mut out = LostWrites::default();
    for r in requests {
        let (OpKind::Put, Outcome::Ok, Some(wid)) = (r.op, r.outcome, r.wid.as_ref()) else {
            continue;
        };
        out.acked += 1;
        let version = versions.get(wid);
        for (region, items) in finals {
            let item = items.get(&r.key);
            let holds = item.and_then(|i| i.wid.clone());
            let holds_version = holds.as_ref().and_then(|w| versions.get(w)).cloned();
            let ok = match (version, &holds_version) {
                (Some(v), Some(h)) => h >= v,
                _ => false,
            };
            if !ok {
                out.lost.push(LostWrite {
                    region: region.clone(),
                    key: r.key.clone(),
                    wid: wid.clone(),
                    version: version.cloned(),
                    holds,
                    holds_version,
                });
            }
        }
    }
    out
}

/// The lost-write check as an invariant.
pub fn lost_writes_check(l: &LostWrites) -> Check {
    if l.lost.is_empty() {
        return Check::new(
            "no_lost_writes",
            true,
            format!(
                "{} acknowledged puts present or superseded in every region",
                l.acked
            ),
        );
    }
    let examples: Vec<String> = l
        .lost
        .iter()
        .take(3)
        .map(|w| {
            let v = w.version.as_ref().map_or("unlogged".into(), fmt_version);
            let h = match (&w.holds, &w.holds_version) {
                (None, _) => "no item".to_owned(),
                (Some(h), Some(hv)) => format!("{h}@{}", fmt_version(hv)),
                (Some(h), None) => format!("{h}@unknown"),
            };
            format!("{} {} {}@{v} holds {h}", w.region, w.key, w.wid)
        })
        .collect();
    Check::new(
        "no_lost_writes",
        false,
        format!(
            "{} of {} acknowledged puts lost (region × write); e.g. {}",
            l.lost.len(),
            l.acked,
            examples.join("; ")
        ),
    )
}

/// `ts.region` with the HLC split into physical ms and logical counter.
pub fn fmt_version(v: &Version) -> String {
    format!("{}.{}/{}", v.ts.physical_ms(), v.ts.logical(), v.region)
}

/// One counter in every region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CounterCheck {
    /// The key.
    pub key: String,
    /// Acknowledged increments.
    pub acked: i64,
    /// Increments with an unknown outcome.
    pub ambiguous: i64,
    /// Final value per region.
    pub finals: BTreeMap<String, i64>,
}

impl CounterCheck {
    /// `acked ≤ final ≤ acked + ambiguous` everywhere.
    pub fn exact(&self) -> bool {
        self.finals
            .values()
            .all(|f| *f >= self.acked && *f <= self.acked + self.ambiguous)
    }
}

/// Every counter's increments against every region's final value.
pub fn counters(requests: &[Request], finals: &Finals) -> Vec<CounterCheck> {
    let mut by_key: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.op == OpKind::Add) {
        let e = by_key.entry(r.key.clone()).or_default();
        match r.outcome {
            Outcome::Ok => e.0 += 1,
            Outcome::Ambiguous => e.1 += 1,
            Outcome::Failed => {}
        }
    }
    by_key
        .into_iter()
        .map(|(key, (acked, ambiguous))| CounterCheck {
            finals: finals
                .iter()
                .map(|(region, items)| {
                    let v = items.get(&key).and_then(|i| i.count).unwrap_or(0);
                    (region.clone(), v)
                })
                .collect(),
            key,
            acked,
            ambiguous,
        })
        .collect()
}

/// The counter check as an invariant.
pub fn counters_check(c: &[CounterCheck]) -> Check {
    if c.is_empty() {
        return Check::with("exact_counters", Verdict::Skip, "no increments".into());
    }
    let acked: i64 = c.iter().map(|c| c.acked).sum();
    let ambiguous: i64 = c.iter().map(|c| c.ambiguous).sum();
    let bad: Vec<String> = c
        .iter()
        .filter(|c| !c.exact())
        .map(|c| {
            let f: Vec<String> = c.finals.iter().map(|(r, v)| format!("{r}={v}")).collect();
            format!(
                "{}: acked {} (+{} ambiguous) but {}",
                c.key,
                c.acked,
                c.ambiguous,
                f.join(" ")
            )
        })
        .collect();
    if bad.is_empty() {
        Check::new(
            "exact_counters",
            true,
            format!(
                "{} counters, {acked} acknowledged increments (+{ambiguous} ambiguous): every region within bounds",
                c.len()
            ),
        )
    } else {
        Check::new("exact_counters", false, bad.join("; "))
    }
}

/// Requests through the gateway in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Availability {
    /// Requests started in the window.
    pub total: usize,
    /// Of which succeeded.
    pub ok: usize,
}

impl Availability {
    /// Success in percent (100 when nothing was sent).
    pub fn pct(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            100.0 * self.ok as f64 / self.total as f64
        }
    }
}

/// Gateway requests started in `[from_ms, to_ms)`.
pub fn availability(requests: &[Request], from_ms: u64, to_ms: u64) -> Availability {
    let mut a = Availability::default();
    for r in requests
        .iter()
        .filter(|r| r.via_gateway && r.start_ms >= from_ms && r.start_ms < to_ms)
    {
        a.total += 1;
        if r.outcome == Outcome::Ok {
            a.ok += 1;
        }
    }
    a
}

/// Availability during the fault against the objective (percent).
pub fn availability_check(during: Availability, slo_pct: f64) -> Check {
    if during.total == 0 {
        return Check::new(
            "availability",
            false,
            "no request went through the gateway during the fault".into(),
        );
    }
    Check::new(
        "availability",
        during.pct() >= slo_pct,
        format!(
            "{:.2}% of {} gateway requests succeeded during the fault (objective ≥ {slo_pct}%)",
            during.pct(),
            during.total
        ),
    )
}

/// Recovery within a bound after the fault was removed.
pub fn recovery_check(recover_ms: Option<u64>, bound_ms: u64) -> Check {
    match recover_ms {
        Some(ms) if ms <= bound_ms => Check::new(
            "recovery",
            true,
            format!("steady {ms} ms after the fault was removed (bound {bound_ms} ms)"),
        ),
        Some(ms) => Check::new(
            "recovery",
            false,
            format!("steady only {ms} ms after the fault was removed (bound {bound_ms} ms)"),
        ),
        None => Check::new(
            "recovery",
            false,
            format!("not back to steady within {bound_ms} ms of the fault being removed"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_core::hlc::Timestamp;

    fn v(ms: u64, region: &str) -> Version {
        Version {
            ts: Timestamp::new(ms, 0),
            region: region.into(),
        }
    }

    fn req(op: OpKind, key: &str, wid: Option<&str>, outcome: Outcome, gw: bool) -> Request {
        Request {
            via_gateway: gw,
            target: "us-east".into(),
            op,
            key: key.into(),
            wid: wid.map(str::to_owned),
            start_ms: 10,
            end_ms: 20,
            outcome,
            served_by: None,
            error: None,
        }
    }

    fn item(wid: &str) -> FinalItem {
        FinalItem {
            wid: Some(wid.into()),
            count: None,
        }
    }

    #[test]
    fn an_acked_write_superseded_by_a_later_version_is_not_lost() {
        let requests = vec![
            req(OpKind::Put, "hot-1", Some("a"), Outcome::Ok, false),
            req(OpKind::Put, "hot-1", Some("b"), Outcome::Ambiguous, false),
        ];
        let versions: Versions = [
            ("a".into(), v(100, "us-east")),
            ("b".into(), v(101, "eu-west")),
        ]
        .into_iter()
        .collect();
        let finals: Finals = [
            ("us-east".into(), [("hot-1".into(), item("b"))].into()),
            ("eu-west".into(), [("hot-1".into(), item("b"))].into()),
        ]
        .into();
        let l = lost_writes(&requests, &versions, &finals);
        assert_eq!(l.acked, 1);
        assert!(l.lost.is_empty(), "{l:?}");
        assert_eq!(lost_writes_check(&l).verdict, Verdict::Pass);
    }

    #[test]
    fn a_region_holding_an_older_write_loses_the_acked_one() {
        // What a replication apply without last-writer-wins does: eu-west applied an older
        // write from us-east over its own acknowledged newer one.
        let requests = vec![
            req(OpKind::Put, "hot-1", Some("a"), Outcome::Ok, false),
            req(OpKind::Put, "hot-1", Some("b"), Outcome::Ok, false),
            req(OpKind::Put, "k0-1", Some("c"), Outcome::Ok, true),
        ];
        let versions: Versions = [
            ("a".into(), v(100, "us-east")),
            ("b".into(), v(105, "eu-west")),
            ("c".into(), v(106, "us-east")),
        ]
        .into_iter()
        .collect();
        let finals: Finals = [
            (
                "us-east".into(),
                [("hot-1".into(), item("b")), ("k0-1".into(), item("c"))].into(),
            ),
            ("eu-west".into(), [("hot-1".into(), item("a"))].into()),
        ]
        .into();
        let l = lost_writes(&requests, &versions, &finals);
        assert_eq!(l.acked, 3);
        let lost: Vec<(&str, &str)> = l
            .lost
            .iter()
            .map(|w| (w.region.as_str(), w.wid.as_str()))
            .collect();
        assert_eq!(lost, [("eu-west", "b"), ("eu-west", "c")]);
        let check = lost_writes_check(&l);
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(check.detail.contains("2 of 3"), "{}", check.detail);
    }

    #[test]
    fn an_acked_write_missing_from_every_change_log_is_lost() {
        let requests = vec![req(OpKind::Put, "k", Some("a"), Outcome::Ok, false)];
        let finals: Finals = [("us-east".into(), [("k".into(), item("a"))].into())].into();
        let l = lost_writes(&requests, &Versions::new(), &finals);
        assert_eq!(l.lost.len(), 1);
    }

    #[test]
    fn counters_must_lie_between_acked_and_acked_plus_ambiguous() {
        let mut requests = vec![
            req(OpKind::Add, "ctr-0", None, Outcome::Ok, true),
            req(OpKind::Add, "ctr-0", None, Outcome::Ok, false),
            req(OpKind::Add, "ctr-0", None, Outcome::Ambiguous, false),
            req(OpKind::Add, "ctr-0", None, Outcome::Failed, false),
        ];
        let counted = |us: i64, eu: i64| -> Finals {
            let c = |n| FinalItem {
                wid: None,
                count: Some(n),
            };
            [
                ("us-east".into(), [("ctr-0".into(), c(us))].into()),
                ("eu-west".into(), [("ctr-0".into(), c(eu))].into()),
            ]
            .into()
        };
        let ok = counters(&requests, &counted(2, 3));
        assert_eq!((ok[0].acked, ok[0].ambiguous), (2, 1));
        assert_eq!(counters_check(&ok).verdict, Verdict::Pass);
        // A lost increment, and a double-counted one.
        assert_eq!(
            counters_check(&counters(&requests, &counted(1, 2))).verdict,
            Verdict::Fail
        );
        assert_eq!(
            counters_check(&counters(&requests, &counted(2, 4))).verdict,
            Verdict::Fail
        );
        requests.clear();
        assert_eq!(
            counters_check(&counters(&requests, &counted(0, 0))).verdict,
            Verdict::Skip
        );
    }

    #[test]
    fn availability_counts_gateway_requests_in_the_window() {
        let mut requests = vec![
            req(OpKind::Put, "a", Some("1"), Outcome::Ok, true),
            req(OpKind::Put, "b", Some("2"), Outcome::Failed, true),
            req(OpKind::Put, "c", Some("3"), Outcome::Failed, false),
        ];
        requests[1].start_ms = 15;
        let a = availability(&requests, 0, 100);
        assert_eq!((a.total, a.ok), (2, 1));
        assert_eq!(availability_check(a, 99.0).verdict, Verdict::Fail);
        assert_eq!(availability_check(a, 50.0).verdict, Verdict::Pass);
        assert_eq!(availability(&requests, 12, 100).total, 1);
        assert_eq!(
            availability_check(Availability::default(), 50.0).verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn convergence_and_recovery_verdicts() {
        let mut obs = ConvergenceObs {
            converged_after_ms: Some(300),
            digests: [
                ("a".into(), Some("ff".into())),
                ("b".into(), Some("ff".into())),
            ]
            .into(),
            items: [("a".into(), 3), ("b".into(), 3)].into(),
            bound_ms: 1000,
        };
        assert_eq!(convergence(&obs).verdict, Verdict::Pass);
        obs.converged_after_ms = None;
        obs.digests.insert("b".into(), None);
        let c = convergence(&obs);
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.detail.contains("b=unreachable"), "{}", c.detail);
        assert_eq!(recovery_check(Some(10), 100).verdict, Verdict::Pass);
        assert_eq!(recovery_check(Some(101), 100).verdict, Verdict::Fail);
        assert_eq!(recovery_check(None, 100).verdict, Verdict::Fail);
    }
}
