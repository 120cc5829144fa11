//! Query counters, exported as `meridian_dns_queries_total{rcode,protocol,ecs}`, and
//! `meridian_dns_udp_answer_cache_hits_total` (UDP queries answered from a loop's memo of
//! earlier answers, `cache.rs`; they are counted in `queries_total` too).

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
    cache_hits: Counter,
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
        DnsMetrics {
            queries,
            common,
            cache_hits: Counter::default(),
        }
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

    /// Counts a UDP query answered from the answer cache.
    pub(crate) fn cache_hit(&self) {
        self.cache_hits.inc();
    }

    /// UDP queries answered from the answer cache so far.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.get()
    }

    /// Registers the counters under `meridian_dns_`.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("meridian_dns");
        registry.register(
            "queries",
            "DNS queries answered by the handler",
            self.queries.clone(),
        );
        registry.register(
            "udp_answer_cache_hits",
            "UDP queries answered from a listener thread's cache of earlier identical answers",
            self.cache_hits.clone(),
        );
    }
}
