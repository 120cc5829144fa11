//! Samples the cluster every 250 ms while a scenario runs: each replication link's state, lag
//! and alarm (`GET {region}/admin/replication`, as the receiving region sees it), which regions
//! the gateway's health checks consider healthy (`GET {gateway admin}/admin/status`), whether
//! the control plane answers, and optionally replication counters from `/metrics`.
//!
//! Parsing is pure ([`parse_replication`], [`parse_gateway`], [`sum_metric`]); the loop only
//! moves bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_control::Http;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Time between samples.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// Replication counters read from `/metrics` when a scenario asks for them (summed over
/// regions and peers).
pub const METRIC_FAMILIES: [&str; 4] = [
    "meridian_replication_duplicate_entries",
    "meridian_replication_repeated_batches",
    "meridian_replication_gap_batches",
    "meridian_replication_stale_entries",
];

/// One directed link as its receiving region reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkSample {
    /// Sending region.
    pub from: String,
    /// Receiving region.
    pub to: String,
    /// `connected`, `disconnected` or `paused`.
    pub state: String,
    /// Replication lag (origin commit → applied here).
    pub lag_ms: u64,
    /// Entries behind.
    pub lag_entries: u64,
    /// Lag above the cluster's alarm threshold.
    pub alarm: bool,
    /// The sender's clock minus the receiver's, as last observed.
    pub clock_offset_ms: Option<i64>,
    /// The receiver refuses the sender's batches unapplied (a forged origin, a version too far
    /// ahead).
    pub refused: bool,
}

/// One region at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegionSample {
    /// Its admin API answered.
    pub reachable: bool,
    /// The gateway's health verdict (`None` before its first check or when the gateway did
    /// not answer).
    pub gateway_healthy: Option<bool>,
    /// The gateway's operator state: `auto`, `drain` or `down`.
    pub gateway_admin: Option<String>,
}

/// The cluster at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Milliseconds since the scenario started.
    pub t_ms: u64,
    /// Every link some receiving region reported.
    pub links: Vec<LinkSample>,
    /// Per region.
    pub regions: BTreeMap<String, RegionSample>,
    /// The control plane answered `/health`.
    pub control_up: bool,
    /// Metric family → sum over every region (only when metrics are sampled).
    pub counters: BTreeMap<String, u64>,
}

impl Sample {
    /// The largest lag of any link.
    pub fn max_lag_ms(&self) -> u64 {
        self.links.iter().map(|l| l.lag_ms).max().unwrap_or(0)
    }

    /// Whether the cluster is in its steady state: every region answers and the gateway
    /// considers it healthy and not drained, all `n·(n−1)` links are connected without an
    /// alarm, and the control plane answers.
    pub fn steady(&self) -> bool {
        let n = self.regions.len();
        let connected = self
            .links
            .iter()
            .filter(|l| l.state == "connected" && !l.alarm)
            .count();
        self.control_up
            && n > 0
            && connected == n * (n - 1)
            && self.regions.values().all(|r| {
                r.reachable
                    && r.gateway_healthy == Some(true)
                    && r.gateway_admin.as_deref() == Some("auto")
            })
    }
}

/// The links into `region` from its `GET /admin/replication` answer.
pub fn parse_replication(region: &str, body: &Value) -> Vec<LinkSample> {
    body["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["direction"] == "in")
        .map(|l| LinkSample {
            from: l["peer"].as_str().unwrap_or_default().to_owned(),
            to: region.to_owned(),
            state: l["state"].as_str().unwrap_or("unknown").to_owned(),
            lag_ms: l["lag_ms"].as_u64().unwrap_or(0),
            lag_entries: l["lag_entries"].as_u64().unwrap_or(0),
            alarm: l["alarm"].as_bool().unwrap_or(false),
            clock_offset_ms: l["peer_clock_offset_ms"].as_i64(),
            refused: !l["refused"].is_null(),
        })
        .collect()
}

/// Region → (health verdict, operator state) from the gateway's `GET /admin/status`.
pub fn parse_gateway(body: &Value) -> BTreeMap<String, (Option<bool>, Option<String>)> {
    body["health"]["endpoints"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, st)| {
            (
                name.clone(),
                (
                    st["checks_healthy"].as_bool(),
                    st["admin"].as_str().map(str::to_owned),
                ),
            )
        })
        .collect()
}

/// The sum of every sample of a Prometheus/OpenMetrics counter family (`NAME` or
/// `NAME_total`, any labels) in a text exposition.
pub fn sum_metric(text: &str, family: &str) -> u64 {
    let total = format!("{family}_total");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let name_end = l.find(['{', ' ']).unwrap_or(l.len());
            let name = l.get(..name_end)?;
            if name != family && name != total {
                return None;
            }
            let value: f64 = l.split_whitespace().last()?.parse().ok()?;
            Some(value.max(0.0) as u64)
        })
        .sum()
}

/// What the sampler polls.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Region name and endpoint URL.
    pub regions: Vec<(String, String)>,
    /// Gateway admin base URL.
    pub gateway_admin: String,
    /// Control plane base URL.
    pub control: String,
    /// Also read the replication counters from every region's `/metrics`.
    pub metrics: bool,
    /// The client (short timeouts, the cluster's admin token).
    pub http: Http,
}

/// A running sampler.
pub struct Sampler {
    stop: watch::Sender<bool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling; times are relative to `t0`.
    pub fn start(targets: Targets, t0: Instant) -> Sampler {
        let (stop, mut stop_rx) = watch::channel(false);
        let samples = Arc::new(Mutex::new(Vec::new()));
        let out = samples.clone();
        let task = tokio::spawn(async move {
            let http = targets.http.clone();
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    _ = tick.tick() => {}
                }
                let s = sample(&http, &targets, t0).await;
                if let Ok(mut v) = out.lock() {
                    v.push(s);
                }
            }
        });
        Sampler {
            stop,
            samples,
            task,
        }
    }

    /// The samples so far.
    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The latest sample.
    pub fn latest(&self) -> Option<Sample> {
        self.samples.lock().ok().and_then(|v| v.last().cloned())
    }

    /// Stops and returns every sample.
    pub async fn stop(self) -> Vec<Sample> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.samples
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

async fn get_json(http: &Http, url: &str) -> Option<Value> {
    match http.get(url).await {
        Ok(r) if r.ok() => Some(r.json()),
        _ => None,
    }
}

/// Takes one sample.
pub async fn sample(http: &Http, targets: &Targets, t0: Instant) -> Sample {
    let t_ms = t0.elapsed().as_millis() as u64;
    let mut s = Sample {
        t_ms,
        ..Sample::default()
    };
    for (name, endpoint) in &targets.regions {
        let rep = get_json(http, &format!("{endpoint}/admin/replication")).await;
        let region = s.regions.entry(name.clone()).or_default();
        region.reachable = rep.is_some();
        if let Some(rep) = rep {
            s.links.extend(parse_replication(name, &rep));
        }
        if targets.metrics
            && let Ok(r) = http.get(&format!("{endpoint}/metrics")).await
            && r.ok()
        {
            let text = String::from_utf8_lossy(&r.body);
            for family in METRIC_FAMILIES {
                *s.counters.entry(family.to_owned()).or_default() += sum_metric(&text, family);
            }
        }
    }
    if let Some(gw) = get_json(http, &format!("{}/admin/status", targets.gateway_admin)).await {
        for (name, (healthy, admin)) in parse_gateway(&gw) {
            if let Some(r) = s.regions.get_mut(&name) {
                r.gateway_healthy = healthy;
                r.gateway_admin = admin;
            }
        }
    }
    s.control_up = http
        .get(&format!("{}/health", targets.control))
        .await
        .is_ok_and(|r| r.ok());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_links_into_a_region() {
        let body = json!({"links": [
            {"peer": "eu-west", "direction": "in", "state": "connected", "lag_ms": 40,
             "lag_entries": 2, "alarm": false, "peer_clock_offset_ms": -3},
            {"peer": "eu-west", "direction": "out", "state": "connected", "lag_ms": 0},
        ]});
        let links = parse_replication("us-east", &body);
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].from, "eu-west");
        assert_eq!(links[0].to, "us-east");
        assert_eq!(links[0].lag_ms, 40);
        assert_eq!(links[0].clock_offset_ms, Some(-3));
    }

    #[test]
    fn parses_gateway_health() {
        let body = json!({"health": {"endpoints": {
            "us-east": {"checks_healthy": true, "admin": "auto"},
            "eu-west": {"checks_healthy": null, "admin": "drain"},
        }}});
        let h = parse_gateway(&body);
        assert_eq!(h["us-east"], (Some(true), Some("auto".into())));
        assert_eq!(h["eu-west"], (None, Some("drain".into())));
    }

    #[test]
    fn sums_counter_families() {
        let text = "# HELP meridian_replication_stale_entries x\n\
                    meridian_replication_stale_entries_total{peer=\"a\"} 3\n\
                    meridian_replication_stale_entries_total{peer=\"b\"} 4\n\
                    meridian_replication_stale_entries_created{peer=\"b\"} 1.7e9\n\
                    meridian_replication_applied_entries_total{peer=\"b\"} 9\n";
        assert_eq!(sum_metric(text, "meridian_replication_stale_entries"), 7);
        assert_eq!(sum_metric(text, "meridian_replication_gap_batches"), 0);
    }

    #[test]
    fn steady_needs_every_link_connected_and_every_region_healthy() {
        let link = |from: &str, to: &str, state: &str| LinkSample {
            from: from.into(),
            to: to.into(),
            state: state.into(),
            lag_ms: 10,
            lag_entries: 0,
            alarm: false,
            clock_offset_ms: None,
            refused: false,
        };
        let healthy = RegionSample {
            reachable: true,
            gateway_healthy: Some(true),
            gateway_admin: Some("auto".into()),
        };
        let mut s = Sample {
            t_ms: 0,
            links: vec![link("a", "b", "connected"), link("b", "a", "connected")],
            regions: [("a".into(), healthy.clone()), ("b".into(), healthy)].into(),
            control_up: true,
            counters: BTreeMap::new(),
        };
        assert!(s.steady());
        s.links[1].state = "paused".into();
        assert!(!s.steady());
        s.links[1].state = "connected".into();
        s.regions.entry("b".into()).or_default().gateway_healthy = Some(false);
        assert!(!s.steady());
    }
}
