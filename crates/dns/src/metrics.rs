//! Query counters, exported as `meridian_dns_queries_total{rcode,protocol,ecs}`.

use hickory_proto::op::ResponseCode;
use hickory_server::net::xfer::Protocol;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    rcode: String,
    protocol: String,
    ecs: String,
}

/// DNS server metrics (cheap to clone; clones share counters).
#[derive(Clone, Default)]
pub struct DnsMetrics {
    queries: Family<QueryLabels, Counter>,
}

impl DnsMetrics {
    pub(crate) fn observe(&self, rcode: ResponseCode, protocol: Protocol, ecs: bool) {
        let labels = QueryLabels {
            rcode: rcode.to_str().to_string(),
            protocol: protocol.to_string(),
            ecs: if ecs { "yes" } else { "no" }.to_string(),
        };
        self.queries.get_or_create(&labels).inc();
    }

    /// Registers the counters under `meridian_dns_`.
    pub fn register(&self, registry: &mut Registry) {
        registry.sub_registry_with_prefix("meridian_dns").register(
            "queries",
            "DNS queries answered by the handler",
            self.queries.clone(),
        );
    }
}
