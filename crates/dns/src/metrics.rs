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

/// Response codes whose counters are looked up once, not per query.
const COMMON_RCODES: [ResponseCode; 6] = [
    ResponseCode::NoError,
    ResponseCode::FormErr,
    ResponseCode::ServFail,
    ResponseCode::NXDomain,
    ResponseCode::NotImp,
    ResponseCode::Refused,
];
const PROTOCOLS: [Protocol; 2] = [Protocol::Udp, Protocol::Tcp];

/// DNS server metrics (cheap to clone; clones share counters).
#[derive(Clone)]
pub struct DnsMetrics {
    queries: Family<QueryLabels, Counter>,
    /// `[rcode][protocol][ecs]` handles into `queries` for the common cases: counting a query
    /// is one atomic add, with no label strings built and no map lookup.
    common: Vec<Counter>,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        let queries = Family::<QueryLabels, Counter>::default();
        let mut common = Vec::new();
        for rcode in COMMON_RCODES {
            for protocol in PROTOCOLS {
                for ecs in [false, true] {
                    common.push(queries.get_or_create(&labels(rcode, protocol, ecs)).clone());
                }
            }
        }
        DnsMetrics { queries, common }
    }
}

fn labels(rcode: ResponseCode, protocol: Protocol, ecs: bool) -> QueryLabels {
    QueryLabels {
        rcode: rcode.to_str().to_string(),
        protocol: protocol.to_string(),
        ecs: if ecs { "yes" } else { "no" }.to_string(),
    }
}

impl DnsMetrics {
    pub(crate) fn observe(&self, rcode: ResponseCode, protocol: Protocol, ecs: bool) {
        let r = COMMON_RCODES.iter().position(|c| *c == rcode);
        let p = PROTOCOLS.iter().position(|c| *c == protocol);
        let common = r
            .zip(p)
            .and_then(|(r, p)| self.common.get((r * 2 + p) * 2 + usize::from(ecs)));
        match common {
            Some(counter) => counter.inc(),
            None => self
                .queries
                .get_or_create(&labels(rcode, protocol, ecs))
                .inc(),
        };
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
