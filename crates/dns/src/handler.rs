//! From a decoded query to response bytes: finds who is asking (EDNS Client Subnet, else the
//! source address), asks [`Zones`] for the answer, and encodes it with a response EDNS that
//! echoes the client subnet and its scope.
//!
//! [`Handler::respond`] is synchronous and shared by both transports: the UDP loop
//! ([`crate::udp`]) calls it directly, and hickory's TCP server reaches it through the
//! `RequestHandler` impl on [`SharedHandler`].

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::{Edns, Header, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageRequest, MessageResponseBuilder};
use meridian_health::HealthSnapshot;
use meridian_routing::{Availability, Client, Inputs, LatencyTable, Locator, Random, SplitMix64};
use tokio::sync::watch;

use crate::config::DnsConfig;
use crate::metrics::DnsMetrics;
use crate::zone::{Answer, Zones};

/// What the configuration says about answers: replaced whole by a config change while the
/// server runs, each query reading the one in force.
pub(crate) struct Answers {
    zones: Zones,
    locator: Locator,
    latency: LatencyTable,
    max_udp_payload: u16,
}

impl Answers {
    fn new(config: &DnsConfig) -> anyhow::Result<Answers> {
        match (&config.geo.geoip_v4_path, &config.geo.geoip_v6_path) {
            (None, None) => tracing::info!(
                source = meridian_routing::geoip::BUILTIN_SOURCE,
                "locating clients with the built-in GeoIP table"
            ),
            (v4, v6) => tracing::info!(?v4, ?v6, "locating clients with GeoIP files"),
        }
        Ok(Answers {
            zones: Zones::compile(config)?,
            locator: Locator::from_config(&config.geo)?,
            latency: config.latency.clone(),
            max_udp_payload: config.max_udp_payload_bytes,
        })
    }
}

/// Everything needed to answer queries; shared by the UDP and TCP listeners.
pub struct Handler {
    answers: std::sync::RwLock<Arc<Answers>>,
    pub(crate) health: watch::Receiver<Arc<HealthSnapshot>>,
    pub(crate) rng_seed: u64,
    pub(crate) rng_counter: AtomicU64,
    pub(crate) metrics: DnsMetrics,
}

/// A response ready to encode.
pub(crate) struct Response {
    metadata: Metadata,
    edns: Option<Edns>,
    answer: Answer,
    /// Whether the query carried a client subnet (the `ecs` label of the query counter).
    ecs: bool,
}

/// The client subnet a query carries, if any (source prefix > 0).
fn client_subnet(edns: Option<&Edns>) -> Option<ClientSubnet> {
    match edns?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) if s.source_prefix() > 0 => Some(*s),
        _ => None,
    }
}

impl Handler {
    /// Compiles `config`'s zones and GeoIP data into a handler reading health from `health`,
    /// with weighted choices seeded from `rng_seed`.
    pub(crate) fn new(
        config: &DnsConfig,
        health: watch::Receiver<Arc<HealthSnapshot>>,
        rng_seed: u64,
    ) -> anyhow::Result<Handler> {
        Ok(Handler {
            answers: std::sync::RwLock::new(Arc::new(Answers::new(config)?)),
            health,
            rng_seed,
            rng_counter: AtomicU64::new(0),
            metrics: DnsMetrics::default(),
        })
    }

    /// Switches to `config`'s zones, GeoIP data and latency table; queries answered from then
    /// on use them. (The caller makes the UDP answer memos start afresh.)
    pub(crate) fn reconfigure(&self, config: &DnsConfig) -> anyhow::Result<()> {
        let answers = Arc::new(Answers::new(config)?);
        *self
            .answers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = answers;
        Ok(())
    }

    fn answers(&self) -> Arc<Answers> {
        self.answers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn client(answers: &Answers, src: IpAddr, ecs: Option<&ClientSubnet>) -> Client {
        let ip = ecs.map_or(src, |s| s.addr());
        Client {
            ip: Some(ip),
            location: answers.locator.locate(ip),
        }
    }

    /// A generator for one query on a path without its own (TCP), seeded from the configured
    /// seed and a shared counter: replayable for a given seed and query order.
    pub(crate) fn query_rng(&self) -> SplitMix64 {
        let n = self.rng_counter.fetch_add(1, Ordering::Relaxed);
        SplitMix64::new(self.rng_seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The current health snapshot.
    pub(crate) fn health(&self) -> Arc<HealthSnapshot> {
        self.health.borrow().clone()
    }

    /// Answers one decoded query from `src`. Pure apart from the query counters.
    pub(crate) fn respond(
        &self,
        request: &MessageRequest,
        src: IpAddr,
        protocol: Protocol,
        health: &HealthSnapshot,
        rng: &mut dyn Random,
    ) -> Response {
        let ecs = client_subnet(request.edns.as_ref());
        let answers = self.answers();
        let answer = match request.queries.queries() {
            _ if request.metadata.op_code != OpCode::Query
                || request.metadata.message_type != MessageType::Query =>
            {
                Answer::error(ResponseCode::NotImp)
            }
            [query] => {
                let client = Self::client(&answers, src, ecs.as_ref());
                let health = |name: &str| {
                    let (healthy, weight_pct) = health.availability(name);
                    Availability {
                        healthy,
                        weight_pct,
                    }
                };
                let inputs = Inputs {
                    client: &client,
                    latency: &answers.latency,
                    health: &health,
                };
                answers.zones.answer(query, &inputs, rng)
            }
            _ => Answer::error(ResponseCode::FormErr),
        };
        self.metrics.observe(answer.rcode, protocol, ecs.is_some());

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = answer.authoritative;
        metadata.response_code = answer.rcode;

        // Always answer EDNS with EDNS (without it UDP answers are capped at 512 bytes), and
        // echo the client subnet with a scope: the source prefix when the answer depends on
        // location, 0 when it does not, so resolvers cache exactly as widely as is correct.
        let edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(
                req.max_payload()
                    .clamp(512, answers.max_udp_payload.max(512)),
            );
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
        Response {
            metadata,
            edns,
            answer,
            ecs: ecs.is_some(),
        }
    }
}

impl Response {
    /// The response code (the `rcode` label `respond` counted the query under).
    pub(crate) fn rcode(&self) -> ResponseCode {
        self.answer.rcode
    }

    /// Whether the query carried a client subnet (the `ecs` label it was counted under).
    pub(crate) fn ecs(&self) -> bool {
        self.ecs
    }

    /// Encodes the response to `request` into `out` (cleared first). Over UDP the message is
    /// limited to the payload size the client advertised (512 without EDNS); a response that
    /// does not fit is sent as a header with TC set, so the client retries over TCP.
    pub(crate) fn encode(&self, request: &MessageRequest, protocol: Protocol, out: &mut Vec<u8>) {
        out.clear();
        let max = match (protocol, &self.edns) {
            (Protocol::Udp, Some(edns)) => edns.max_payload(),
            (Protocol::Udp, None) => 512,
            _ => u16::MAX,
        };
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(edns) = &self.edns {
            builder.edns(edns);
        }
        let response = builder.build(
            self.metadata,
            self.answer.answers.iter(),
            self.answer.authority.iter(),
            [],
            [],
        );
        let mut encoder = BinEncoder::new(out);
        encoder.set_max_size(max);
        if response.destructive_emit(&mut encoder).is_ok() {
            return;
        }
        out.clear();
        let mut metadata = self.metadata;
        metadata.truncation = true;
        let header = Header {
            metadata,
            counts: Default::default(),
        };
        if let Err(e) = header.emit(&mut BinEncoder::new(out)) {
            tracing::warn!(error = %e, "encoding a truncated DNS header failed");
            out.clear();
        }
    }
}

/// A FORMERR response to a message whose header parsed but whose body did not; `None` for
/// messages that must not be answered (responses, which could be reflected back and forth).
pub(crate) fn format_error(header: &Header, out: &mut Vec<u8>) -> Option<()> {
    if header.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut metadata = Metadata::response_from_request(&header.metadata);
    metadata.response_code = ResponseCode::FormErr;
    out.clear();
    Header {
        metadata,
        counts: Default::default(),
    }
    .emit(&mut BinEncoder::new(out))
    .ok()
}

/// The [`Handler`] shared between our UDP loops and hickory's TCP server.
#[derive(Clone)]
pub struct SharedHandler(pub(crate) Arc<Handler>);

#[async_trait::async_trait]
impl RequestHandler for SharedHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let handler = &self.0;
        let health = handler.health();
        let mut rng = handler.query_rng();
        let response = handler.respond(
            request,
            request.src().ip(),
            request.protocol(),
            &health,
            &mut rng,
        );
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(edns) = &response.edns {
            builder.edns(edns);
        }
        let message = builder.build(
            response.metadata,
            response.answer.answers.iter(),
            response.answer.authority.iter(),
            [],
            [],
        );
        match response_handle.send_response(message).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(error = %e, "sending a DNS response failed");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: Default::default(),
                })
            }
        }
    }
}
