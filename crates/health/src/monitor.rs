//! The health monitor: owns every endpoint's state, runs the checks, applies operator
//! overrides and publishes a [`HealthSnapshot`] on a `watch` channel after every change.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::CheckFailure;
use tokio::task::JoinSet;

use crate::HealthError;
use crate::config::{Check, HealthConfig};
use crate::hysteresis::Hysteresis;
use crate::probe::Prober;
use crate::snapshot::{AdminState, EndpointStatus, HealthSnapshot};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabel {
    endpoint: String,
    result: String,
}

#[derive(Clone, Default)]
struct Metrics {
    up: Family<EndpointLabel, Gauge>,
    weight_pct: Family<EndpointLabel, Gauge>,
    admin: Family<EndpointLabel, Gauge>,
    checks: Family<CheckLabel, Counter>,
}

struct State {
    hysteresis: BTreeMap<String, Hysteresis>,
    snapshot: HealthSnapshot,
}

/// The configuration in force and its checks; replaced whole by [`HealthMonitor::reconfigure`].
struct Plan {
    config: HealthConfig,
    checks: Vec<(String, Check)>,
}

struct Inner {
    plan: Mutex<Arc<Plan>>,
    /// Bumped by every reconfiguration: the running checks restart on the new plan.
    generation: watch::Sender<u64>,
    // A std Mutex is right here: it is held only to update a small map, never across `.await`.
    state: Mutex<State>,
    tx: watch::Sender<Arc<HealthSnapshot>>,
    metrics: Metrics,
    prober: Prober,
}

/// Cloneable handle to the health state of every endpoint.
#[derive(Clone)]
pub struct HealthMonitor {
    inner: Arc<Inner>,
}

impl HealthMonitor {
    /// A monitor for the configured endpoints; every endpoint starts unchecked (healthy).
    pub fn new(config: HealthConfig) -> Result<Self, HealthError> {
        let checks = config.validate()?;
        let prober = Prober::new(config.ca_file.as_deref())?;
        let hysteresis = checks
            .iter()
            .map(|(name, _)| (name.clone(), Hysteresis::new(config.fall, config.rise)))
            .collect();
        let snapshot = HealthSnapshot::all_healthy(checks.iter().map(|(n, _)| n.as_str()));
        let (tx, _rx) = watch::channel(Arc::new(snapshot.clone()));
        let monitor = HealthMonitor {
            inner: Arc::new(Inner {
                plan: Mutex::new(Arc::new(Plan { config, checks })),
                generation: watch::Sender::new(0),
                state: Mutex::new(State {
                    hysteresis,
                    snapshot,
                }),
                tx,
                metrics: Metrics::default(),
                prober,
            }),
        };
        monitor.publish_metrics();
        Ok(monitor)
    }

    /// Registers this monitor's gauges and counters (prefix `meridian_health_`).
    pub fn register_metrics(&self, registry: &mut Registry) {
        let m = &self.inner.metrics;
        let r = registry.sub_registry_with_prefix("meridian_health");
        r.register(
            "endpoint_up",
            "1 if the endpoint may receive traffic",
            m.up.clone(),
        );
        r.register(
            "endpoint_weight_pct",
            "Effective traffic share 0-100",
            m.weight_pct.clone(),
        );
        r.register(
            "endpoint_admin",
            "Operator override: 0 auto, 1 down, 2 drain",
            m.admin.clone(),
        );
        r.register("checks", "Health checks run, by result", m.checks.clone());
    }

    fn plan(&self) -> Arc<Plan> {
        self.inner
            .plan
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> HealthConfig {
        self.plan().config.clone()
    }

    /// Switches to a new configuration while running. An endpoint in both keeps its state —
    /// verdict and streaks (under the new `fall`/`rise`), operator override, weight, counts —
    /// so a config change neither drops drains nor sends traffic to a region known down; new
    /// endpoints start unchecked, removed ones are dropped. The checks restart on the new
    /// plan at once.
    pub fn reconfigure(&self, config: HealthConfig) -> Result<(), HealthError> {
        let checks = config.validate()?;
        {
            let mut state = self.inner.state.lock().map_err(|_| HealthError::Poisoned)?;
            let fresh = HealthSnapshot::all_healthy(checks.iter().map(|(n, _)| n.as_str()));
            let mut hysteresis = BTreeMap::new();
            let mut endpoints = BTreeMap::new();
            for (name, _) in &checks {
                let h = match state.hysteresis.get(name) {
                    Some(h) => h.with_thresholds(config.fall, config.rise),
                    None => Hysteresis::new(config.fall, config.rise),
                };
                hysteresis.insert(name.clone(), h);
                let status = state
                    .snapshot
                    .endpoints
                    .remove(name)
                    .or_else(|| fresh.endpoints.get(name).cloned())
                    .unwrap_or_default();
                endpoints.insert(name.clone(), status);
            }
            state.hysteresis = hysteresis;
            state.snapshot.endpoints = endpoints;
            state.snapshot.version += 1;
            self.inner.tx.send_replace(Arc::new(state.snapshot.clone()));
            *self.inner.plan.lock().map_err(|_| HealthError::Poisoned)? =
                Arc::new(Plan { config, checks });
        }
        self.inner.generation.send_modify(|g| *g += 1);
        self.publish_metrics();
        Ok(())
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<HealthSnapshot> {
        self.inner.tx.borrow().clone()
    }

    /// A receiver that sees every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<HealthSnapshot>> {
        self.inner.tx.subscribe()
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut State) -> bool) -> Result<(), HealthError> {
        {
            let mut state = self.inner.state.lock().map_err(|_| HealthError::Poisoned)?;
            if !state.snapshot.endpoints.contains_key(name) {
                return Err(HealthError::UnknownEndpoint(name.to_string()));
            }
            if f(&mut state) {
                state.snapshot.version += 1;
                self.inner.tx.send_replace(Arc::new(state.snapshot.clone()));
            }
        }
        self.publish_metrics();
        Ok(())
    }

    fn status_mut<'a>(state: &'a mut State, name: &str) -> Option<&'a mut EndpointStatus> {
        state.snapshot.endpoints.get_mut(name)
    }

    /// Sets the operator override of an endpoint.
    pub fn set_admin(&self, name: &str, admin: AdminState) -> Result<(), HealthError> {
        self.update(name, |s| {
            let Some(st) = Self::status_mut(s, name) else {
                return false;
            };
            let changed = st.admin != admin;
            st.admin = admin;
            changed
        })
    }

    /// Sets the operator traffic share of an endpoint, 0–100.
    pub fn set_weight(&self, name: &str, weight_pct: u8) -> Result<(), HealthError> {
        if weight_pct > 100 {
            return Err(HealthError::InvalidWeight(weight_pct));
        }
        self.update(name, |s| {
            let Some(st) = Self::status_mut(s, name) else {
                return false;
            };
            let changed = st.weight_pct != weight_pct;
            st.weight_pct = weight_pct;
            changed
        })
    }

    /// Feeds one check result (the checker calls this; simulations and tests may too).
    pub fn record(&self, name: &str, result: Result<(), CheckFailure>) -> Result<(), HealthError> {
        let ok = result.is_ok();
        let refused = result.as_ref().is_err_and(|f| f.refused);
        let result = result.map_err(|f| f.reason);
        let label = CheckLabel {
            endpoint: name.to_string(),
            result: if ok { "ok" } else { "fail" }.into(),
        };
        self.inner.metrics.checks.get_or_create(&label).inc();
        self.update(name, |s| {
            let changed = s.hysteresis.get_mut(name).and_then(|h| {
                if refused {
                    h.observe_refusal()
                } else {
                    h.observe(ok)
                }
            });
            let Some(st) = Self::status_mut(s, name) else { return false };
            st.checks += 1;
            let error_changed = st.last_error.as_deref() != result.as_ref().err().map(String::as_str);
            st.last_error = result.err();
            if let Some(healthy) = changed {
                st.checks_healthy = Some(healthy);
                st.transitions += 1;
                if healthy {
                    tracing::info!(endpoint = name, "endpoint is healthy");
                } else {
                    tracing::warn!(endpoint = name, error = ?st.last_error, "endpoint is unhealthy");
                }
            }
            // Only verdict and error changes are published: a check that confirms the state
            // does not wake every reader.
            changed.is_some() || error_changed
        })
    }

    fn publish_metrics(&self) {
        let snapshot = self.snapshot();
        let m = &self.inner.metrics;
        for (name, st) in &snapshot.endpoints {
            let label = EndpointLabel {
                endpoint: name.clone(),
            };
            m.up.get_or_create(&label).set(i64::from(st.healthy()));
            m.weight_pct
                .get_or_create(&label)
                .set(i64::from(st.effective_weight_pct()));
            let admin = match st.admin {
                AdminState::Auto => 0,
                AdminState::Down => 1,
                AdminState::Drain => 2,
            };
            m.admin.get_or_create(&label).set(admin);
        }
    }

    /// Runs every endpoint's checks until `shutdown` completes (on the plan in force: a
    /// reconfiguration restarts them).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut generation = self.inner.generation.subscribe();
        tokio::pin!(shutdown);
        loop {
            generation.borrow_and_update();
            let mut tasks = self.spawn_checks();
            tokio::select! {
                () = &mut shutdown => {
                    tasks.shutdown().await;
                    return;
                }
                _ = generation.changed() => tasks.shutdown().await,
            }
        }
    }

    fn spawn_checks(&self) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        let plan = self.plan();
        for (name, check) in plan.checks.clone() {
            let monitor = self.clone();
            let prober = self.inner.prober.clone();
            let (interval, timeout) = (plan.config.interval(), plan.config.timeout());
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let result = prober.probe(&check, timeout).await;
                    if let Err(e) = monitor.record(&name, result) {
                        tracing::error!(endpoint = %name, error = %e, "recording a health check failed");
                        return;
                    }
                }
            });
        }
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor() -> HealthMonitor {
        let cfg: HealthConfig = HealthConfig {
            endpoints: vec![crate::config::EndpointConfig {
                name: "r1".into(),
                http_url: None,
                expect_body: None,
                tcp_addr: Some("127.0.0.1:1".into()),
            }],
            ..HealthConfig::default()
        };
        HealthMonitor::new(cfg).expect("monitor")
    }

    #[test]
    fn records_and_overrides_publish_snapshots() {
        let m = monitor();
        let rx = m.subscribe();
        assert_eq!(m.snapshot().availability("r1"), (true, 100));
        for _ in 0..2 {
            m.record("r1", Err("refused".into())).expect("record");
        }
        assert_eq!(m.snapshot().availability("r1"), (false, 100)); // first result decides
        for _ in 0..2 {
            m.record("r1", Ok(())).expect("record");
        }
        assert_eq!(m.snapshot().availability("r1"), (true, 100)); // rise = 2
        m.set_weight("r1", 30).expect("weight");
        assert_eq!(m.snapshot().availability("r1"), (true, 30));
        m.set_admin("r1", AdminState::Drain).expect("drain");
        assert_eq!(m.snapshot().availability("r1"), (true, 0));
        m.set_admin("r1", AdminState::Down).expect("down");
        assert_eq!(m.snapshot().availability("r1"), (false, 30));
        assert!(rx.has_changed().expect("open"));
        assert!(m.set_weight("r1", 101).is_err());
        assert!(m.set_admin("nope", AdminState::Down).is_err());
        assert_eq!(m.snapshot().endpoints["r1"].checks, 4);
    }

    #[test]
    fn a_reconfiguration_keeps_what_is_known_of_each_endpoint() {
        let m = monitor();
        m.record("r1", Err("refused".into())).expect("record");
        m.set_admin("r1", AdminState::Drain).expect("drain");
        let mut cfg = m.config();
        cfg.rise = 5;
        cfg.endpoints.push(crate::config::EndpointConfig {
            name: "r2".into(),
            http_url: None,
            expect_body: None,
            tcp_addr: Some("127.0.0.1:2".into()),
        });
        m.reconfigure(cfg.clone()).expect("reconfigure");
        let s = m.snapshot();
        assert_eq!(s.endpoints["r1"].admin, AdminState::Drain);
        assert_eq!(s.endpoints["r1"].checks_healthy, Some(false));
        assert_eq!(s.endpoints["r1"].checks, 1);
        assert_eq!(s.availability("r2"), (true, 100));
        // the new rise applies to the kept endpoint
        for _ in 0..4 {
            m.record("r1", Ok(())).expect("record");
        }
        assert_eq!(m.snapshot().endpoints["r1"].checks_healthy, Some(false));
        m.record("r1", Ok(())).expect("record");
        assert_eq!(m.snapshot().endpoints["r1"].checks_healthy, Some(true));
        cfg.endpoints.retain(|e| e.name == "r2");
        m.reconfigure(cfg).expect("reconfigure");
        assert!(!m.snapshot().endpoints.contains_key("r1"));
        assert!(m.set_admin("r1", AdminState::Down).is_err());
    }

    #[test]
    fn metrics_are_exported() {
        let m = monitor();
        let mut registry = Registry::default();
        m.register_metrics(&mut registry);
        m.set_weight("r1", 40).expect("weight");
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
        assert!(
            out.contains("meridian_health_endpoint_weight_pct{endpoint=\"r1\"} 40"),
            "{out}"
        );
        assert!(
            out.contains("meridian_health_endpoint_up{endpoint=\"r1\"} 1"),
            "{out}"
        );
    }
}
