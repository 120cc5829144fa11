//! The hickory `RequestHandler`: finds who is asking (EDNS Client Subnet, else the source
//! address), asks [`Zones`] for the answer, and writes it with a response EDNS that echoes the
//! client subnet and its scope.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::{Edns, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use meridian_health::HealthSnapshot;
use meridian_routing::{Availability, Client, Inputs, LatencyTable, Locator, SplitMix64};
use tokio::sync::watch;

use crate::metrics::DnsMetrics;
use crate::zone::{Answer, Zones};

/// Everything needed to answer queries; shared by the UDP and TCP listeners.
pub struct Handler {
    pub(crate) zones: Zones,
    pub(crate) locator: Locator,
    pub(crate) latency: LatencyTable,
    pub(crate) health: watch::Receiver<Arc<HealthSnapshot>>,
    pub(crate) rng_seed: u64,
    pub(crate) rng_counter: AtomicU64,
    pub(crate) max_udp_payload: u16,
    pub(crate) metrics: DnsMetrics,
}

/// The client subnet a query carries, if any (source prefix > 0).
fn client_subnet(edns: Option<&Edns>) -> Option<ClientSubnet> {
    match edns?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) if s.source_prefix() > 0 => Some(*s),
        _ => None,
    }
}

impl Handler {
    fn client(&self, src: IpAddr, ecs: Option<&ClientSubnet>) -> Client {
        let ip = ecs.map_or(src, |s| s.addr());
        Client {
            ip: Some(ip),
            location: self.locator.locate(ip),
        }
    }

    fn decide(&self, request: &Request, client: &Client) -> Answer {
        let Some(query) = request.queries.queries().first() else {
            return Answer {
                rcode: ResponseCode::FormErr,
                authoritative: false,
                answers: vec![],
                authority: vec![],
                location_dependent: false,
            };
        };
        let snapshot = self.health.borrow().clone();
        let health = |name: &str| {
            let (healthy, weight_pct) = snapshot.availability(name);
            Availability {
                healthy,
                weight_pct,
            }
        };
        let inputs = Inputs {
            client,
            latency: &self.latency,
            health: &health,
        };
        // One generator per query, seeded from the configured seed and a counter: replayable
        // for a given seed and query order, with no lock shared between queries.
        let n = self.rng_counter.fetch_add(1, Ordering::Relaxed);
        let mut rng = SplitMix64::new(self.rng_seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let q = query.original();
        self.zones
            .answer(q.name(), q.query_type(), q.query_class(), &inputs, &mut rng)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let ecs = client_subnet(request.edns.as_ref());
        let answer = if request.metadata.op_code != OpCode::Query
            || request.metadata.message_type != MessageType::Query
        {
            Answer {
                rcode: ResponseCode::NotImp,
                authoritative: false,
                answers: vec![],
                authority: vec![],
                location_dependent: false,
            }
        } else if request.queries.queries().len() != 1 {
            Answer {
                rcode: ResponseCode::FormErr,
                authoritative: false,
                answers: vec![],
                authority: vec![],
                location_dependent: false,
            }
        } else {
            let client = self.client(request.src().ip(), ecs.as_ref());
            self.decide(request, &client)
        };
        self.metrics
            .observe(answer.rcode, request.protocol(), ecs.is_some());

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = answer.authoritative;
        metadata.response_code = answer.rcode;

        // Always answer EDNS with EDNS (without it UDP answers are capped at 512 bytes), and
        // echo the client subnet with a scope: the source prefix when the answer depends on
        // location, 0 when it does not, so resolvers cache exactly as widely as is correct.
        let response_edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().clamp(512, self.max_udp_payload.max(512)));
            edns.set_version(0);
            if let Some(s) = ecs {
                let scope = if answer.location_dependent {
                    s.source_prefix()
                } else {
                    0
                };
                edns.options_mut()
                    .insert(EdnsOption::Subnet(ClientSubnet::new(
                        s.addr(),
                        s.source_prefix(),
                        scope,
                    )));
            }
            edns
        });
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(edns) = &response_edns {
            builder.edns(edns);
        }
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            answer.authority.iter(),
            [],
            [],
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(error = %e, "sending a DNS response failed");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_proto::op::Header {
                    metadata,
                    counts: Default::default(),
                })
            }
        }
    }
}
