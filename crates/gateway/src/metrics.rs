//! Gateway counters: `meridian_gateway_attempts_total{region,outcome}`,
//! `meridian_gateway_refused_writes_total`, `meridian_gateway_throttled_total` and the
//! `meridian_gateway_session_users` gauge.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    region: String,
    outcome: String,
}

/// Gateway metrics (clones share counters).
#[derive(Clone, Default)]
pub struct GatewayMetrics {
    attempts: Family<AttemptLabels, Counter>,
    refused_writes: Counter,
    throttled: Counter,
    session_users: Gauge,
}

impl GatewayMetrics {
    pub(crate) fn attempt(&self, region: &str, outcome: &str) {
        self.attempts
            .get_or_create(&AttemptLabels {
                region: region.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub(crate) fn refused_write(&self) {
        self.refused_writes.inc();
    }

    pub(crate) fn throttled(&self) {
        self.throttled.inc();
    }

    pub(crate) fn session_users(&self, n: usize) {
        self.session_users.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Registers the counters under `meridian_gateway_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("meridian_gateway");
        r.register(
            "attempts",
            "Requests sent to regions, by outcome",
            self.attempts.clone(),
        );
        r.register(
            "refused_writes",
            "Writes refused because the home region was unavailable",
            self.refused_writes.clone(),
        );
        r.register(
            "throttled",
            "Requests refused because the bodies being received used the whole body budget",
            self.throttled.clone(),
        );
        r.register(
            "session_users",
            "Pinned users whose latest session token the gateway remembers",
            self.session_users.clone(),
        );
    }
}
