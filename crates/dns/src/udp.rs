//! The UDP listeners. hickory's own UDP loop spawns a task per datagram, passes every response
//! through a channel to a sender task and logs each query; profiling showed that to cost more
//! than the answer itself (see docs/benchmarks.md, "Traffic plane"). Here each socket has one
//! thread that receives a batch of datagrams, answers each in place and sends the answers back
//! in one call, reusing its buffers. Several sockets share one address with `SO_REUSEPORT`, so
//! the kernel spreads clients over them and the threads answer in parallel.
//!
//! Each thread also memoizes its answers ([`crate::cache`]): a datagram identical (apart from
//! its ID) to an earlier one from the same source IP, under the same health snapshot, gets the
//! stored bytes with its own ID, skipping decode, [`Handler::respond`] and encode. Only answers
//! that drew no random value are stored, and a new health snapshot clears the cache, so the
//! bytes sent are exactly those the handler would have computed.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use meridian_health::HealthSnapshot;
use meridian_routing::{Random, SplitMix64};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use socket2::{Domain, Socket, Type};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

use crate::cache::AnswerCache;
use crate::handler::{Handler, format_error};

/// How often an idle loop checks whether to stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Most datagrams moved by one `recvmmsg` / `sendmmsg`.
const BATCH: usize = 32;

/// How many times an idle loop yields its CPU and looks again (without blocking) before it
/// blocks in `recvmmsg`. Under load, the next queries usually arrive while the client runs:
/// yielding to it and then picking them up costs less than going to sleep and being woken by
/// the client's send, the largest single cost left once answers come from the cache (about a
/// fifth of the CPU with two threads and a busy client on two cores; see docs/benchmarks.md).
/// On an idle server it costs this many non-blocking system calls per wake-up.
const IDLE_YIELDS: u32 = 4;

/// Largest datagram read; longer ones are truncated by the kernel and then fail to decode.
const MAX_DATAGRAM: usize = 4096;

/// Binds `count` UDP sockets to `addr` with `SO_REUSEPORT` (the first one resolves port 0)
/// and a receive buffer of `recv_buffer_bytes`, so bursts queue instead of being dropped.
pub(crate) fn bind(
    addr: SocketAddr,
    count: usize,
    recv_buffer_bytes: usize,
) -> io::Result<Vec<UdpSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_port(true)?;
        if recv_buffer_bytes > 0 {
            socket.set_recv_buffer_size(recv_buffer_bytes)?;
        }
        socket.bind(&addr.into())?;
        let socket: UdpSocket = socket.into();
        addr = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Answers queries on `socket` until `stop` is set (checked at least every
/// [`STOP_CHECK`]). Runs on its own thread and moves datagrams in batches: one `recvmmsg`
/// returns every datagram already queued (waiting only for the first), and one `sendmmsg`
/// sends all their answers. Per packet that saves two system calls and, on a busy server, most
/// of the wake-ups, which measured as the bulk of a query's cost; before blocking, an idle
/// loop yields and looks again [`IDLE_YIELDS`] times, which saves many of the remaining ones. `index` seeds this loop's own
/// random generator (replayable per socket for a given `rng_seed`, no counter shared between
/// threads).
pub(crate) fn serve(
    socket: &UdpSocket,
    index: u64,
    handler: &Handler,
    stop: &AtomicBool,
) -> io::Result<()> {
    socket.set_read_timeout(Some(STOP_CHECK))?;
    let fd = socket.as_raw_fd();
    let mut answerer = Answerer::new(handler, index);
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect();
    let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1232)).collect();
    let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut received: Vec<(usize, Option<SocketAddr>)> = Vec::with_capacity(BATCH);
    let mut dests: Vec<Option<SockaddrStorage>> = Vec::with_capacity(BATCH);
    // Non-blocking looks since the last datagram (see IDLE_YIELDS).
    let mut idle = 0;
    while !stop.load(Ordering::Relaxed) {
        received.clear();
        {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            let flags = if idle < IDLE_YIELDS {
                MsgFlags::MSG_DONTWAIT
            } else {
                MsgFlags::MSG_WAITFORONE
            };
            match recvmmsg(fd, &mut recv_headers, iovs.iter_mut(), flags, None) {
                Ok(msgs) => {
                    idle = 0;
                    received.extend(msgs.map(|m| (m.bytes, m.address.and_then(std_addr))));
                }
                Err(Errno::EAGAIN) if idle < IDLE_YIELDS => {
                    idle += 1;
                    std::thread::yield_now();
                    continue;
                }
                // The read timeout, ICMP port unreachable from an earlier reply, …: not fatal.
                Err(e) if is_transient(&io::Error::from(e)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        answerer.refresh_health();
        dests.clear();
        for (&(len, src), buf) in received.iter().zip(&bufs) {
            // Never answer port 0 (a spoofed or broken source).
            let (Some(src), Some(datagram)) = (src.filter(|s| s.port() != 0), buf.get(..len))
            else {
                continue;
            };
            let Some(out) = outs.get_mut(dests.len()) else {
                break;
            };
            if answerer.answer(datagram, src, out) {
                dests.push(Some(SockaddrStorage::from(src)));
            }
        }
        if dests.is_empty() {
            continue;
        }
        let slices: Vec<[IoSlice<'_>; 1]> = outs
            .iter()
            .take(dests.len())
            .map(|o| [IoSlice::new(o)])
            .collect();
        if let Err(e) = sendmmsg(
            fd,
            &mut send_headers,
            &slices,
            &dests,
            [],
            MsgFlags::empty(),
        ) {
            tracing::debug!(error = %e, "sending DNS responses failed");
        }
    }
    Ok(())
}

/// A [`Random`] that counts the values drawn through it: an answer computed without a single
/// draw did not depend on the generator's state, so it may be stored in the answer cache.
struct Counting<'a> {
    inner: &'a mut SplitMix64,
    draws: u64,
}

impl Random for Counting<'_> {
    fn next_u64(&mut self) -> u64 {
        self.draws += 1;
        self.inner.next_u64()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.draws += 1;
        self.inner.below(n)
    }
}

/// One UDP thread's answering state: its own health snapshot, random generator and answer
/// cache, so nothing on the answer path is shared with the other threads.
struct Answerer<'h> {
    handler: &'h Handler,
    health_rx: watch::Receiver<Arc<HealthSnapshot>>,
    health: Arc<HealthSnapshot>,
    rng: SplitMix64,
    cache: AnswerCache,
}

impl<'h> Answerer<'h> {
    /// `index` seeds the generator (replayable per socket for a given `rng_seed`).
    fn new(handler: &'h Handler, index: u64) -> Self {
        let mut health_rx = handler.health.clone();
        let health = health_rx.borrow_and_update().clone();
        Answerer {
            handler,
            health_rx,
            health,
            rng: SplitMix64::new(handler.rng_seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03)),
            cache: AnswerCache::default(),
        }
    }

    /// Takes the newest health snapshot if it changed, and then forgets every stored answer
    /// (they were computed from the old one). Only re-reads the channel when it changed: no
    /// lock shared between loops on the answer path.
    fn refresh_health(&mut self) {
        if self.health_rx.has_changed().unwrap_or(false) {
            self.health = self.health_rx.borrow_and_update().clone();
            self.cache.clear();
        }
    }

    /// Answers one datagram into `out`; false when nothing is to be sent.
    fn answer(&mut self, datagram: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> bool {
        let metrics = &self.handler.metrics;
        if let Some(hit) = self.cache.get(src.ip(), datagram, out) {
            metrics.observe(hit.rcode, Protocol::Udp, hit.ecs);
            metrics.cache_hit();
            return true;
        }
        match Request::from_bytes(datagram.to_vec(), src, Protocol::Udp) {
            Ok(request) => {
                if request.metadata.message_type != MessageType::Query {
                    return false; // a response: answering it could start a reflection loop
                }
                let mut rng = Counting {
                    inner: &mut self.rng,
                    draws: 0,
                };
                let response =
                    self.handler
                        .respond(&request, src.ip(), Protocol::Udp, &self.health, &mut rng);
                response.encode(&request, Protocol::Udp, out);
                if rng.draws == 0 && !out.is_empty() {
                    self.cache
                        .insert(src.ip(), datagram, out, response.rcode(), response.ecs());
                }
            }
            // Undecodable: FORMERR if at least the header parses, else nothing (a message
            // shorter than a header is not DNS). Never cached.
            Err(_) => match Header::read(&mut BinDecoder::new(datagram)) {
                Ok(header) if format_error(&header, out).is_some() => {
                    metrics.observe(ResponseCode::FormErr, Protocol::Udp, false);
                }
                _ => return false,
            },
        }
        !out.is_empty()
    }
}

fn std_addr(a: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    ) || e
        .raw_os_error()
        .is_some_and(|c| c == 105 /* ENOBUFS */ || c == 12 /* ENOMEM */)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;
    use std::net::IpAddr;

    use hickory_proto::op::{Edns, Message, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    use hickory_proto::rr::{Name, RData, RecordType};
    use meridian_health::EndpointStatus;

    use super::*;
    use crate::config::DnsConfig;

    const CONFIG: &str = r#"
rng_seed = 42
[[health.endpoints]]
name = "us-east"
tcp_addr = "127.0.0.1:1"
[[health.endpoints]]
name = "eu-west"
tcp_addr = "127.0.0.1:1"

[[geo.networks]]
network = "198.51.100.0/24"
country = "US"
[[geo.networks]]
network = "203.0.113.0/24"
country = "DE"

[[latency]]
continents = ["NA"]
latency_ms = { us-east = 10, eu-west = 80 }
[[latency]]
latency_ms = { us-east = 80, eu-west = 10 }

[[zones]]
origin = "t.test."
ns = ["ns1"]
soa = { mname = "ns1", rname = "hostmaster" }
[[zones.records]]
name = "simple"
type = "A"
targets = [
  { id = "us", values = ["10.1.0.1"], health_check = "us-east" },
  { id = "eu", values = ["10.2.0.1"], health_check = "eu-west" },
  { id = "x", values = ["10.3.0.1", "10.3.0.2"] },
]
[[zones.records]]
name = "latency"
type = "A"
policy = "latency"
targets = [
  { id = "us", values = ["10.1.0.1"], health_check = "us-east", region = "us-east" },
  { id = "eu", values = ["10.2.0.1"], health_check = "eu-west", region = "eu-west" },
]
[[zones.records]]
name = "failover"
type = "A"
policy = "failover"
targets = [
  { id = "p", values = ["10.1.0.1"], health_check = "us-east", failover = "primary" },
  { id = "s", values = ["10.2.0.1"], health_check = "eu-west", failover = "secondary" },
]
[[zones.records]]
name = "weighted"
type = "A"
policy = "weighted"
targets = [
  { id = "us", values = ["10.1.0.1"], weight = 50 },
  { id = "eu", values = ["10.2.0.1"], weight = 50 },
]
"#;

    fn healthy() -> HealthSnapshot {
        HealthSnapshot::all_healthy(["us-east", "eu-west"])
    }

    fn new_handler() -> (Handler, watch::Sender<Arc<HealthSnapshot>>) {
        let config = DnsConfig::from_toml(CONFIG).unwrap();
        let (tx, rx) = watch::channel(Arc::new(healthy()));
        (Handler::new(&config, rx, 42).unwrap(), tx)
    }

    fn query(id: u16, name: &str, ecs: Option<&str>) -> Vec<u8> {
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        if let Some(ip) = ecs {
            let ip: IpAddr = ip.parse().unwrap();
            edns.options_mut()
                .insert(EdnsOption::Subnet(ClientSubnet::new(ip, 24, 0)));
        }
        msg.set_edns(edns);
        msg.to_vec().unwrap()
    }

    fn src(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 5353)
    }

    /// The answer computed without any cache, as the loop did before it had one.
    fn fresh(
        handler: &Handler,
        health: &HealthSnapshot,
        datagram: &[u8],
        src: SocketAddr,
    ) -> Vec<u8> {
        let request = Request::from_bytes(datagram.to_vec(), src, Protocol::Udp).unwrap();
        let mut rng = SplitMix64::new(7);
        let mut out = Vec::new();
        handler
            .respond(&request, src.ip(), Protocol::Udp, health, &mut rng)
            .encode(&request, Protocol::Udp, &mut out);
        out
    }

    fn answer(answerer: &mut Answerer<'_>, datagram: &[u8], src: SocketAddr) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(answerer.answer(datagram, src, &mut out));
        out
    }

    fn addresses(response: &[u8]) -> Vec<String> {
        let mut v: Vec<String> = Message::from_vec(response)
            .unwrap()
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => a.0.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        v.sort();
        v
    }

    /// `meridian_dns_queries_total`, summed over its labels.
    fn queries_counted(handler: &Handler) -> u64 {
        let mut registry = prometheus_client::registry::Registry::default();
        handler.metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text.lines()
            .filter(|l| l.starts_with("meridian_dns_queries_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    #[test]
    fn deterministic_answers_are_cached_and_identical_to_fresh_ones() {
        let (handler, _tx) = new_handler();
        // Fresh answers come from a second handler on the same config, so that the first one's
        // counters only see the queries sent through the loop.
        let (reference, _tx2) = new_handler();
        let mut answerer = Answerer::new(&handler, 0);
        let health = healthy();
        let cases = [
            ("simple.t.test.", None, "127.0.0.1"),
            ("simple.t.test.", Some("203.0.113.9"), "127.0.0.1"),
            ("latency.t.test.", Some("198.51.100.1"), "127.0.0.1"),
            ("latency.t.test.", Some("203.0.113.1"), "127.0.0.1"),
            ("latency.t.test.", None, "198.51.100.7"),
            ("latency.t.test.", None, "127.0.0.1"),
            ("failover.t.test.", None, "127.0.0.1"),
            ("missing.t.test.", None, "127.0.0.1"),
            ("elsewhere.test.", None, "127.0.0.1"),
        ];
        for (i, (name, ecs, from)) in cases.iter().enumerate() {
            let first = query(100, name, *ecs);
            let miss = answer(&mut answerer, &first, src(from));
            assert_eq!(answerer.cache.len(), i + 1, "{name} {ecs:?} stored");
            assert_eq!(miss, fresh(&reference, &health, &first, src(from)));
            // Same question with another ID: served from the cache, byte-identical to a fresh
            // computation (which carries the new ID).
            let again = query(0xA55A, name, *ecs);
            let hits = handler.metrics.cache_hits();
            let hit = answer(&mut answerer, &again, src(from));
            assert_eq!(handler.metrics.cache_hits(), hits + 1, "{name} {ecs:?} hit");
            assert_eq!(
                hit,
                fresh(&reference, &health, &again, src(from)),
                "{name} {ecs:?}"
            );
            assert_eq!(hit.get(..2), Some(&[0xA5, 0x5A][..]));
        }
        // Location matters and is part of the key: same query bytes, other source → other answer.
        let q = query(1, "latency.t.test.", None);
        assert_eq!(
            addresses(&answer(&mut answerer, &q, src("198.51.100.7"))),
            ["10.1.0.1"]
        );
        assert_eq!(
            addresses(&answer(&mut answerer, &q, src("127.0.0.1"))),
            ["10.2.0.1"]
        );
        // Hits are counted like misses.
        assert_eq!(queries_counted(&handler), 2 * cases.len() as u64 + 2);
    }

    #[test]
    fn random_answers_are_not_cached() {
        let (handler, _tx) = new_handler();
        let mut answerer = Answerer::new(&handler, 0);
        let q = query(1, "weighted.t.test.", None);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            seen.insert(addresses(&answer(&mut answerer, &q, src("127.0.0.1"))));
        }
        assert_eq!(answerer.cache.len(), 0);
        assert_eq!(handler.metrics.cache_hits(), 0);
        assert_eq!(seen.len(), 2, "both weighted targets answer: {seen:?}");
    }

    #[test]
    fn undecodable_datagrams_are_not_cached() {
        let (handler, _tx) = new_handler();
        let mut answerer = Answerer::new(&handler, 0);
        let mut q = query(1, "simple.t.test.", None);
        q.truncate(14); // header + a piece of the question
        let mut out = Vec::new();
        assert!(answerer.answer(&q, src("127.0.0.1"), &mut out));
        assert_eq!(
            Message::from_vec(&out).unwrap().metadata.response_code,
            ResponseCode::FormErr
        );
        assert_eq!(answerer.cache.len(), 0);
    }

    #[test]
    fn a_health_change_clears_the_cache_and_changes_the_answer() {
        let (handler, tx) = new_handler();
        let mut answerer = Answerer::new(&handler, 0);
        let q = query(1, "failover.t.test.", None);
        let from = src("127.0.0.1");
        assert_eq!(addresses(&answer(&mut answerer, &q, from)), ["10.1.0.1"]);
        assert_eq!(answerer.cache.len(), 1);

        let mut down = healthy();
        down.endpoints.insert(
            "us-east".into(),
            EndpointStatus {
                checks_healthy: Some(false),
                ..Default::default()
            },
        );
        down.version = 1;
        tx.send(Arc::new(down.clone())).unwrap();
        // Until the loop takes the new snapshot (once per batch) it answers from the old one.
        assert_eq!(addresses(&answer(&mut answerer, &q, from)), ["10.1.0.1"]);
        answerer.refresh_health();
        assert_eq!(answerer.cache.len(), 0, "a new snapshot clears the cache");
        let after = answer(&mut answerer, &q, from);
        assert_eq!(addresses(&after), ["10.2.0.1"]);
        assert_eq!(after, fresh(&handler, &down, &q, from));
        // And the new answer is cached in turn; no change → no clear.
        answerer.refresh_health();
        assert_eq!(answerer.cache.len(), 1);
        assert_eq!(answer(&mut answerer, &q, from), after);
    }
}
