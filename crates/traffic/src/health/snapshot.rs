//! The shared view other components read: per endpoint, the checked health, the operator's
//! override and the resulting verdict.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What an operator has said about an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminState {
    /// Follow the health checks.
    #[default]
    Auto,
    /// Treat as unhealthy whatever the checks say.
    Down,
    /// Healthy but receiving no new traffic (weight 0) while any other endpoint can serve.
    Drain,
}

/// One endpoint's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStatus {
    /// Verdict of the health checks; `None` before the first check.
    pub checks_healthy: Option<bool>,
    /// Operator override.
    pub admin: AdminState,
    /// Operator traffic share, 0–100 (gradual shift); independent of drain.
    pub weight_pct: u8,
    /// Error of the last failed check, if the last check failed.
    pub last_error: Option<String>,
    /// Checks run so far.
    pub checks: u64,
    /// Healthy ↔ unhealthy transitions so far.
    pub transitions: u64,
}

impl Default for EndpointStatus {
    fn default() -> Self {
        EndpointStatus {
            checks_healthy: None,
            admin: AdminState::Auto,
            weight_pct: 100,
            last_error: None,
            checks: 0,
            transitions: 0,
        }
    }
}

impl EndpointStatus {
    /// Whether traffic may be sent: checks pass (or none ran yet) and not marked down.
    pub fn healthy(&self) -> bool {
        self.admin != AdminState::Down && self.checks_healthy != Some(false)
    }

    /// The share of traffic the endpoint should get, 0–100 (0 when drained).
    pub fn effective_weight_pct(&self) -> u8 {
        if self.admin == AdminState::Drain {
            0
        } else {
            self.weight_pct.min(100)
        }
    }
}

/// Every endpoint's state at one moment. Cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSnapshot {
    /// Endpoint name → state.
    pub endpoints: BTreeMap<String, EndpointStatus>,
    /// Incremented on every change, so readers can tell snapshots apart.
    pub version: u64,
}

impl HealthSnapshot {
    /// A snapshot where the given endpoints are healthy and unchecked (tests, static setups).
    pub fn all_healthy<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        HealthSnapshot {
            endpoints: names
                .into_iter()
                .map(|n| (n.to_string(), EndpointStatus::default()))
                .collect(),
            version: 0,
        }
    }

    /// `(healthy, weight_pct)` of an endpoint; unknown names are healthy at full weight, so a
    /// record without a configured check is never dropped by accident (configs are validated
    /// against the endpoint list when loaded).
    pub fn availability(&self, name: &str) -> (bool, u8) {
        match self.endpoints.get(name) {
            Some(s) => (s.healthy(), s.effective_weight_pct()),
            None => (true, 100),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_table() {
        let cases = [
            (None, AdminState::Auto, 100, (true, 100)),
            (Some(true), AdminState::Auto, 40, (true, 40)),
            (Some(false), AdminState::Auto, 100, (false, 100)),
            (Some(true), AdminState::Down, 100, (false, 100)),
            (Some(true), AdminState::Drain, 70, (true, 0)),
            (Some(false), AdminState::Drain, 100, (false, 0)),
        ];
        for (checks_healthy, admin, weight_pct, want) in cases {
            let s = EndpointStatus {
                checks_healthy,
                admin,
                weight_pct,
                ..Default::default()
            };
            let mut snap = HealthSnapshot::default();
            snap.endpoints.insert("r".into(), s);
            assert_eq!(
                snap.availability("r"),
                want,
                "{checks_healthy:?} {admin:?} {weight_pct}"
            );
        }
        assert_eq!(
            HealthSnapshot::default().availability("unknown"),
            (true, 100)
        );
    }
}
