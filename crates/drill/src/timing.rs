//! Time to detect and time to recover, and the time series the plots draw — pure functions
//! over the samples and the ledger.
//!
//! *Detect*: from the fault's injection to the first sample (or request) showing the fault's
//! symptom as the system itself reports it (a lag alarm, the gateway's health verdict, …).
//! *Recover*: from the fault's removal to the first sample where the cluster is steady again
//! (see [`Sample::steady`]) and the symptom is gone.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ledger::{Outcome, Request};
use crate::sampler::Sample;
use crate::spec::LAG_ALARM_MS;

/// What shows that a fault is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Signal {
    /// A lag alarm, or lag over the alarm threshold, on a link touching one of `regions`
    /// (any link when empty).
    LagAlarm {
        /// Regions whose links count.
        regions: Vec<String>,
    },
    /// The gateway's health checks mark `region` unhealthy.
    GatewayUnhealthy {
        /// The region.
        region: String,
    },
    /// The control plane stops answering.
    ControlDown,
    /// A link from `region` reports a clock offset of at least `min_ms` (either sign).
    ClockOffset {
        /// The skewed region.
        region: String,
        /// Smallest offset that counts.
        min_ms: i64,
    },
    /// One of these replication counters (summed over regions) rises.
    CounterRises {
        /// Metric families.
        families: Vec<String>,
    },
    /// A region refuses `region`'s batches unapplied (and says so in its link status).
    Refused {
        /// The sender whose batches are refused.
        region: String,
    },
    /// The gateway serves `user` from a region other than `region`.
    Rerouted {
        /// The pinned user.
        user: String,
        /// Its home region.
        region: String,
    },
}

impl Signal {
    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Signal::LagAlarm { regions } if regions.is_empty() => "lag alarm on a link".into(),
            Signal::LagAlarm { regions } => {
                format!("lag alarm on a link of {}", regions.join(", "))
            }
            Signal::GatewayUnhealthy { region } => {
                format!("gateway health checks mark {region} down")
            }
            Signal::ControlDown => "control plane unreachable".into(),
            Signal::ClockOffset { region, min_ms } => {
                format!("peers see {region}'s clock off by ≥ {min_ms} ms")
            }
            Signal::CounterRises { families } => {
                let short: Vec<&str> = families
                    .iter()
                    .map(|f| f.trim_start_matches("meridian_replication_"))
                    .collect();
                format!("{} rising", short.join(" / "))
            }
            Signal::Rerouted { user, region } => {
                format!("gateway serves {user} away from {region}")
            }
            Signal::Refused { region } => format!("peers refuse {region}'s batches"),
        }
    }

    /// Whether sample `s` (after `prev`) shows the symptom.
    fn shows(&self, s: &Sample, prev: Option<&Sample>) -> bool {
        match self {
            Signal::LagAlarm { regions } => s.links.iter().any(|l| {
                (regions.is_empty() || regions.contains(&l.from) || regions.contains(&l.to))
                    && (l.alarm || l.lag_ms >= LAG_ALARM_MS)
            }),
            Signal::GatewayUnhealthy { region } => s
                .regions
                .get(region)
                .is_some_and(|r| r.gateway_healthy == Some(false)),
            Signal::ControlDown => !s.control_up,
            Signal::ClockOffset { region, min_ms } => s.links.iter().any(|l| {
                &l.from == region && l.clock_offset_ms.is_some_and(|o| o.abs() >= *min_ms)
            }),
            Signal::CounterRises { families } => prev.is_some_and(|p| {
                families.iter().any(|f| {
                    s.counters.get(f).copied().unwrap_or(0)
                        > p.counters.get(f).copied().unwrap_or(0)
                })
            }),
            Signal::Refused { region } => s.links.iter().any(|l| &l.from == region && l.refused),
            Signal::Rerouted { .. } => false,
        }
    }

    /// Whether the symptom is gone in `s` (beyond the cluster being steady).
    pub fn gone(&self, s: &Sample) -> bool {
        match self {
            Signal::LagAlarm { .. } => s.max_lag_ms() < LAG_ALARM_MS,
            Signal::ClockOffset { region, min_ms } => s.links.iter().all(|l| {
                &l.from != region || l.clock_offset_ms.is_none_or(|o| o.abs() < *min_ms / 2)
            }),
            Signal::Refused { region } => s.links.iter().all(|l| &l.from != region || !l.refused),
            // Counters keep their history, and conflicts keep happening under the normal mix.
            _ => true,
        }
    }
}

/// Milliseconds from `inject_ms` to the first sign of the fault before `until_ms`.
pub fn detect_ms(
    signal: &Signal,
    samples: &[Sample],
    requests: &[Request],
    inject_ms: u64,
    until_ms: u64,
) -> Option<u64> {
    if let Signal::Rerouted { user, region } = signal {
        return requests
            .iter()
            .filter(|r| r.via_gateway && &r.target == user && r.outcome == Outcome::Ok)
            .filter(|r| r.start_ms >= inject_ms && r.start_ms < until_ms)
            .find(|r| r.served_by.as_ref() != Some(region))
            .map(|r| r.end_ms.saturating_sub(inject_ms));
    }
    let mut prev: Option<&Sample> = None;
    for s in samples {
        if s.t_ms >= inject_ms && s.t_ms < until_ms && signal.shows(s, prev) {
            return Some(s.t_ms - inject_ms);
        }
        prev = Some(s);
    }
    None
}

/// Milliseconds from `heal_ms` to the first steady sample without the symptom (for a
/// rerouted user: also the first request served from home again).
pub fn recover_ms(
    signal: &Signal,
    samples: &[Sample],
    requests: &[Request],
    heal_ms: u64,
) -> Option<u64> {
    let steady = samples
        .iter()
        .find(|s| s.t_ms >= heal_ms && s.steady() && signal.gone(s))
        .map(|s| s.t_ms - heal_ms)?;
    if let Signal::Rerouted { user, region } = signal {
        let home = requests
            .iter()
            .filter(|r| r.via_gateway && &r.target == user && r.outcome == Outcome::Ok)
            .find(|r| r.start_ms >= heal_ms && r.served_by.as_ref() == Some(region))
            .map(|r| r.end_ms.saturating_sub(heal_ms))?;
        return Some(steady.max(home));
    }
    Some(steady)
}

/// One line of a chart: `(t_ms, value)` points, `None` where there is no value.
pub type Series = Vec<(u64, Option<f64>)>;

/// Replication lag per directed link (`from → to`) over time.
pub fn lag_series(samples: &[Sample]) -> BTreeMap<String, Series> {
    let mut names: Vec<String> = samples
        .iter()
        .flat_map(|s| s.links.iter().map(|l| format!("{} → {}", l.from, l.to)))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let points = samples
                .iter()
                .map(|s| {
                    let v = s
                        .links
                        .iter()
                        .find(|l| format!("{} → {}", l.from, l.to) == name)
                        .map(|l| l.lag_ms as f64);
                    (s.t_ms, v)
                })
                .collect();
            (name, points)
        })
        .collect()
}

/// Success rate (%) per client series in `bucket_ms` buckets of request start time, up to
/// `end_ms`.
pub fn success_series(
    requests: &[Request],
    bucket_ms: u64,
    end_ms: u64,
) -> BTreeMap<String, Series> {
    let bucket_ms = bucket_ms.max(1);
    let buckets = (end_ms / bucket_ms + 1) as usize;
    let mut counts: BTreeMap<String, Vec<(u32, u32)>> = BTreeMap::new();
    for r in requests {
        let b = (r.start_ms / bucket_ms) as usize;
        let v = counts
            .entry(r.series())
            .or_insert_with(|| vec![(0, 0); buckets]);
        if let Some(slot) = v.get_mut(b) {
            slot.0 += 1;
            if r.outcome == Outcome::Ok {
                slot.1 += 1;
            }
        }
    }
    counts
        .into_iter()
        .map(|(name, v)| {
            let points = v
                .into_iter()
                .enumerate()
                .map(|(i, (total, ok))| {
                    let t = i as u64 * bucket_ms + bucket_ms / 2;
                    (
                        t,
                        (total > 0).then(|| 100.0 * f64::from(ok) / f64::from(total)),
                    )
                })
                .collect();
            (name, points)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::OpKind;
    use crate::sampler::{LinkSample, RegionSample};

    fn steady_sample(t_ms: u64) -> Sample {
        let healthy = RegionSample {
            reachable: true,
            gateway_healthy: Some(true),
            gateway_admin: Some("auto".into()),
        };
        let link = |from: &str, to: &str| LinkSample {
            from: from.into(),
            to: to.into(),
            state: "connected".into(),
            lag_ms: 30,
            lag_entries: 0,
            alarm: false,
            clock_offset_ms: Some(0),
            refused: false,
        };
        Sample {
            t_ms,
            links: vec![link("a", "b"), link("b", "a")],
            regions: [("a".into(), healthy.clone()), ("b".into(), healthy)].into(),
            control_up: true,
            counters: BTreeMap::new(),
        }
    }

    #[test]
    fn detects_a_lag_alarm_and_recovers_when_steady() {
        let mut samples: Vec<Sample> = (0..20).map(|i| steady_sample(i * 250)).collect();
        // Fault at 1000 ms: b's inbound link alarms from 2000 ms until 3500 ms.
        for s in samples
            .iter_mut()
            .filter(|s| (2000..3500).contains(&s.t_ms))
        {
            s.links[0].alarm = true;
            s.links[0].lag_ms = 1500;
        }
        let signal = Signal::LagAlarm {
            regions: vec!["b".into()],
        };
        assert_eq!(detect_ms(&signal, &samples, &[], 1000, 3000), Some(1000));
        assert_eq!(recover_ms(&signal, &samples, &[], 3000), Some(500));
        let other = Signal::LagAlarm {
            regions: vec!["c".into()],
        };
        assert_eq!(detect_ms(&other, &samples, &[], 1000, 3000), None);
    }

    #[test]
    fn detects_counter_rises_and_unhealthy_regions() {
        let mut samples: Vec<Sample> = (0..8).map(|i| steady_sample(i * 250)).collect();
        for (i, s) in samples.iter_mut().enumerate() {
            let v = if i >= 5 { 7 } else { 3 };
            s.counters.insert("dups".into(), v);
        }
        let rises = Signal::CounterRises {
            families: vec!["dups".into()],
        };
        assert_eq!(detect_ms(&rises, &samples, &[], 500, 2000), Some(750));
        if let Some(r) = samples[3].regions.get_mut("a") {
            r.gateway_healthy = Some(false);
        }
        let down = Signal::GatewayUnhealthy { region: "a".into() };
        assert_eq!(detect_ms(&down, &samples, &[], 0, 2000), Some(750));
        assert_eq!(recover_ms(&down, &samples, &[], 750), Some(250));
    }

    fn gw(start_ms: u64, served: &str) -> Request {
        Request {
            via_gateway: true,
            target: "drill-eu".into(),
            op: OpKind::Put,
            key: "k".into(),
            wid: None,
            start_ms,
            end_ms: start_ms + 5,
            outcome: Outcome::Ok,
            served_by: Some(served.into()),
            error: None,
        }
    }

    #[test]
    fn rerouting_is_seen_in_the_requests() {
        let requests = vec![
            gw(100, "eu-west"),
            gw(1100, "eu-west"),
            gw(1300, "us-east"),
            gw(2100, "us-east"),
            gw(2400, "eu-west"),
        ];
        let samples: Vec<Sample> = (0..12).map(|i| steady_sample(i * 250)).collect();
        let signal = Signal::Rerouted {
            user: "drill-eu".into(),
            region: "eu-west".into(),
        };
        assert_eq!(
            detect_ms(&signal, &samples, &requests, 1000, 2000),
            Some(305)
        );
        assert_eq!(recover_ms(&signal, &samples, &requests, 2000), Some(405));
    }

    #[test]
    fn builds_lag_and_success_series() {
        let mut samples = vec![steady_sample(0), steady_sample(250)];
        samples[1].links.pop();
        let lag = lag_series(&samples);
        assert_eq!(lag["a → b"], vec![(0, Some(30.0)), (250, Some(30.0))]);
        assert_eq!(lag["b → a"], vec![(0, Some(30.0)), (250, None)]);
        let mut requests = vec![gw(10, "eu-west"), gw(20, "eu-west"), gw(600, "eu-west")];
        requests[1].outcome = Outcome::Failed;
        let s = success_series(&requests, 250, 700);
        assert_eq!(
            s["gateway"],
            vec![(125, Some(50.0)), (375, None), (625, Some(100.0))]
        );
    }
}
