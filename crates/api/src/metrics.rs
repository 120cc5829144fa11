//! Request metrics: counts by operation and outcome, latency by operation.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OpOutcome {
    pub(crate) operation: String,
    pub(crate) outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OpLabel {
    pub(crate) operation: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00005, 2.0, 18))
}

#[derive(Clone)]
pub(crate) struct ApiMetrics {
    pub(crate) requests: Family<OpOutcome, Counter>,
    pub(crate) latency: Family<OpLabel, Histogram, fn() -> Histogram>,
    pub(crate) throttled: Counter,
    pub(crate) in_flight: Gauge,
    pub(crate) session_behind: Counter,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            throttled: Counter::default(),
            in_flight: Gauge::default(),
            session_behind: Counter::default(),
        }
    }
}

impl ApiMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "meridian_requests",
            "DynamoDB API requests by operation and outcome (ok or the error code)",
            self.requests.clone(),
        );
        r.register(
            "meridian_request_seconds",
            "DynamoDB API request latency by operation",
            self.latency.clone(),
        );
        r.register(
            "meridian_session_behind",
            "Requests refused because they carry a session token this region has not applied yet",
            self.session_behind.clone(),
        );
        r.register(
            "meridian_throttled",
            "Requests shed with ThrottlingException because too many were in flight",
            self.throttled.clone(),
        );
        r.register(
            "meridian_in_flight",
            "Requests being served",
            self.in_flight.clone(),
        );
    }
}
