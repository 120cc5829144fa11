//! Real DNS queries over UDP and TCP against the server on loopback, with fake region backends
//! whose health decides the answers. Client location comes from EDNS Client Subnet.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, RecordType};
use meridian_dns::{DnsConfig, DnsServer};
use meridian_health::{AdminState, HealthMonitor};
use support::*;

/// Client subnets per place (configured in `[[geo.networks]]`).
const US: (&str, u8) = ("198.51.100.0", 24);
const DE: (&str, u8) = ("203.0.113.0", 24);
const JP: (&str, u8) = ("192.0.2.0", 24);
const BR: (&str, u8) = ("100.64.0.0", 24);
const AU: (&str, u8) = ("100.64.1.0", 24);
const ZONE: &str = "db.example.test.";
const US_IP: &str = "10.1.0.1";
const EU_IP: &str = "10.2.0.1";
const AP_IP: &str = "10.3.0.1";

fn config_text(backends: &[&Backend; 3]) -> String {
    format!(
        r#"
listen_udp = ["127.0.0.1:0"]
listen_tcp = ["127.0.0.1:0"]
rng_seed = 42

[health]
interval_ms = 100
timeout_ms = 100
fall = 3
rise = 2
[[health.endpoints]]
name = "us-east"
http_url = "http://{us}/health"
expect_body = "serving"
[[health.endpoints]]
name = "eu-west"
http_url = "http://{eu}/health"
[[health.endpoints]]
name = "ap-southeast"
tcp_addr = "{ap}"

[[geo.networks]]
network = "198.51.100.0/24"
country = "US"
[[geo.networks]]
network = "203.0.113.0/24"
country = "DE"
[[geo.networks]]
network = "192.0.2.0/24"
country = "JP"
[[geo.networks]]
network = "100.64.0.0/24"
country = "BR"
[[geo.networks]]
network = "100.64.1.0/24"
country = "AU"

[[latency]]
continents = ["NA", "SA"]
latency_ms = {{ us-east = 10, eu-west = 80, ap-southeast = 200 }}
[[latency]]
continents = ["EU", "AF"]
latency_ms = {{ us-east = 80, eu-west = 10, ap-southeast = 150 }}
[[latency]]
latency_ms = {{ us-east = 150, eu-west = 150, ap-southeast = 20 }}

[[zones]]
origin = "{ZONE}"
ttl_secs = 5
ns = ["ns1", "ns2.{ZONE}"]
soa = {{ mname = "ns1", rname = "hostmaster", serial = 7, minimum_secs = 3 }}

[[zones.records]]
name = "simple"
type = "A"
targets = [
  {{ id = "us", values = ["{US_IP}"], health_check = "us-east" }},
  {{ id = "eu", values = ["{EU_IP}"], health_check = "eu-west" }},
  {{ id = "ap", values = ["{AP_IP}"], health_check = "ap-southeast" }},
]

[[zones.records]]
name = "failover"
type = "A"
policy = "failover"
targets = [
  {{ id = "p", values = ["{US_IP}"], health_check = "us-east", failover = "primary" }},
  {{ id = "s", values = ["{EU_IP}"], health_check = "eu-west", failover = "secondary" }},
]

[[zones.records]]
name = "weighted"
type = "A"
policy = "weighted"
targets = [
  {{ id = "us", values = ["{US_IP}"], health_check = "us-east", weight = 75 }},
  {{ id = "eu", values = ["{EU_IP}"], health_check = "eu-west", weight = 25 }},
]

[[zones.records]]
name = "latency"
type = "A"
policy = "latency"
ttl_secs = 1
targets = [
  {{ id = "us", values = ["{US_IP}"], health_check = "us-east", region = "us-east" }},
  {{ id = "eu", values = ["{EU_IP}"], health_check = "eu-west", region = "eu-west" }},
  {{ id = "ap", values = ["{AP_IP}"], health_check = "ap-southeast", region = "ap-southeast" }},
]

[[zones.records]]
name = "geo"
type = "A"
policy = "geolocation"
targets = [
  {{ id = "na", values = ["{US_IP}"], health_check = "us-east", location = {{ continent = "NA" }} }},
  {{ id = "br", values = ["10.9.0.1"], location = {{ country = "BR" }} }},
  {{ id = "eu", values = ["{EU_IP}"], health_check = "eu-west", location = {{ continent = "EU" }} }},
  {{ id = "default", values = ["{AP_IP}"], location = "default" }},
]

[[zones.records]]
name = "near"
type = "A"
policy = "geoproximity"
targets = [
  {{ id = "us", values = ["{US_IP}"], health_check = "us-east", coordinates = {{ lat = 39.0, lon = -77.5 }} }},
  {{ id = "eu", values = ["{EU_IP}"], health_check = "eu-west", coordinates = {{ lat = 53.3, lon = -6.3 }} }},
  {{ id = "ap", values = ["{AP_IP}"], health_check = "ap-southeast", coordinates = {{ lat = 1.35, lon = 103.8 }}, bias = 10 }},
]

[[zones.records]]
name = "multi"
type = "A"
policy = "multivalue"
targets = [
  {{ id = "us", values = ["{US_IP}"], health_check = "us-east" }},
  {{ id = "eu", values = ["{EU_IP}"], health_check = "eu-west" }},
  {{ id = "m1", values = ["10.8.0.1"] }}, {{ id = "m2", values = ["10.8.0.2"] }},
  {{ id = "m3", values = ["10.8.0.3"] }}, {{ id = "m4", values = ["10.8.0.4"] }},
  {{ id = "m5", values = ["10.8.0.5"] }}, {{ id = "m6", values = ["10.8.0.6"] }},
  {{ id = "m7", values = ["10.8.0.7"] }}, {{ id = "m8", values = ["10.8.0.8"] }},
]

[[zones.records]]
name = "@"
type = "TXT"
targets = [{{ id = "t", values = ["meridian"] }}]

[[zones.records]]
name = "v6.deep"
type = "AAAA"
targets = [{{ id = "t", values = ["2001:db8::1"] }}]
"#,
        us = backends[0].addr,
        eu = backends[1].addr,
        ap = backends[2].addr,
    )
}

struct Fixture {
    backends: [Backend; 3],
    monitor: HealthMonitor,
    udp: std::net::SocketAddr,
    tcp: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Fixture {
    async fn start() -> Fixture {
        let any = "127.0.0.1:0".parse().unwrap();
        let backends = [
            Backend::start(any).await,
            Backend::start(any).await,
            Backend::start(any).await,
        ];
        let config =
            DnsConfig::from_toml(&config_text(&[&backends[0], &backends[1], &backends[2]]))
                .unwrap();
        let monitor = HealthMonitor::new(config.health.clone()).unwrap();
        let server = DnsServer::bind(config, monitor.subscribe()).await.unwrap();
        let (udp, tcp) = (server.udp_addrs()[0], server.tcp_addrs()[0]);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = futures_shared(stopped);
        let checks = tokio::spawn({
            let monitor = monitor.clone();
            let mut stopped = stopped.clone();
            async move {
                monitor
                    .run(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            }
        });
        let dns = tokio::spawn({
            let mut stopped = stopped.clone();
            async move {
                server
                    .run(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
                    .unwrap();
            }
        });
        let f = Fixture {
            backends,
            monitor,
            udp,
            tcp,
            stop: Some(stop),
            tasks: vec![checks, dns],
        };
        // Wait for the first verdict on every endpoint.
        let m = f.monitor.clone();
        wait_until("first health checks", Duration::from_secs(2), || {
            let snap = m.snapshot();
            async move {
                snap.endpoints
                    .values()
                    .all(|e| e.checks_healthy == Some(true))
            }
        })
        .await;
        f
    }

    async fn a(&self, name: &str, ecs: (&str, u8)) -> Vec<String> {
        let msg = udp_exchange(
            self.udp,
            &build_query(1, &format!("{name}.{ZONE}"), RecordType::A, Some(ecs)),
        )
        .await
        .expect("answer");
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        values(&msg)
    }

    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        for t in self.tasks.drain(..) {
            tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("clean shutdown")
                .unwrap();
        }
        for b in &mut self.backends {
            b.stop().await;
        }
    }
}

/// Turns a oneshot into a watch so several tasks can wait for the same shutdown.
fn futures_shared(rx: tokio::sync::oneshot::Receiver<()>) -> tokio::sync::watch::Receiver<bool> {
    let (tx, wrx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = rx.await;
        let _ = tx.send(true);
    });
    wrx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_answers_per_client_location() {
    let f = Fixture::start().await;
    let cases: &[(&str, (&str, u8), &[&str])] = &[
        ("simple", US, &[US_IP, EU_IP, AP_IP]),
        ("failover", JP, &[US_IP]),
        ("latency", US, &[US_IP]),
        ("latency", BR, &[US_IP]),
        ("latency", DE, &[EU_IP]),
        ("latency", JP, &[AP_IP]),
        ("latency", AU, &[AP_IP]),
        ("geo", US, &[US_IP]),
        ("geo", BR, &["10.9.0.1"]),
        ("geo", DE, &[EU_IP]),
        ("geo", JP, &[AP_IP]),
        ("near", US, &[US_IP]),
        ("near", BR, &[US_IP]),
        ("near", DE, &[EU_IP]),
        ("near", JP, &[AP_IP]),
        ("near", AU, &[AP_IP]),
    ];
    for (name, ecs, want) in cases {
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(f.a(name, *ecs).await, want, "{name} for client {ecs:?}");
    }

    // Weighted: the seed is fixed (rng_seed = 42), shares follow 75/25.
    eprintln!("weighted: server rng_seed = 42");
    let mut us = 0;
    for _ in 0..400 {
        let got = f.a("weighted", DE).await;
        assert_eq!(got.len(), 1);
        us += usize::from(got[0] == US_IP);
    }
    assert!(
        (260..=340).contains(&us),
        "us-east got {us}/400 with weight 75%"
    );

    // Multivalue: 10 healthy targets, at most 8 answers, all distinct.
    let got = f.a("multi", US).await;
    assert_eq!(got.len(), 8, "{got:?}");
    got.windows(2).for_each(|w| assert_ne!(w[0], w[1]));

    // TXT at the apex and AAAA on a deeper name.
    let txt = udp_exchange(f.udp, &build_query(2, ZONE, RecordType::TXT, None))
        .await
        .unwrap();
    assert_eq!(values(&txt), vec!["meridian".to_string()]);
    let v6 = udp_exchange(
        f.udp,
        &build_query(3, &format!("v6.deep.{ZONE}"), RecordType::AAAA, None),
    )
    .await
    .unwrap();
    assert_eq!(values(&v6), vec!["2001:db8::1".to_string()]);
    assert!(v6.metadata.authoritative);
    assert_eq!(v6.answers[0].ttl, 5);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_answers_like_udp() {
    let f = Fixture::start().await;
    for (ecs, want) in [(US, US_IP), (DE, EU_IP), (JP, AP_IP)] {
        let q = build_query(9, &format!("latency.{ZONE}"), RecordType::A, Some(ecs));
        let tcp = tcp_exchange(f.tcp, &q).await.expect("tcp answer");
        let udp = udp_exchange(f.udp, &q).await.expect("udp answer");
        assert_eq!(values(&tcp), vec![want.to_string()]);
        assert_eq!(values(&tcp), values(&udp));
        assert_eq!(tcp.metadata.id, 9);
    }
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_is_echoed_with_scope_and_edns_always_attached() {
    let f = Fixture::start().await;
    let ecs_of = |m: &hickory_proto::op::Message| match m
        .edns
        .as_ref()
        .and_then(|e| e.option(EdnsCode::Subnet))
    {
        Some(EdnsOption::Subnet(s)) => {
            Some((s.addr().to_string(), s.source_prefix(), s.scope_prefix()))
        }
        _ => None,
    };
    // Location-dependent answer: scope = source prefix.
    let m = udp_exchange(
        f.udp,
        &build_query(1, &format!("latency.{ZONE}"), RecordType::A, Some(DE)),
    )
    .await
    .unwrap();
    assert_eq!(ecs_of(&m), Some(("203.0.113.0".into(), 24, 24)));
    // Location-independent answer: scope 0, cacheable for everyone.
    let m = udp_exchange(
        f.udp,
        &build_query(1, &format!("simple.{ZONE}"), RecordType::A, Some(DE)),
    )
    .await
    .unwrap();
    assert_eq!(ecs_of(&m), Some(("203.0.113.0".into(), 24, 0)));
    // EDNS without ECS: EDNS echoed, no ECS option; location from the source address (127.0.0.1,
    // unknown) → the latency table's default row.
    let m = udp_exchange(
        f.udp,
        &build_query(1, &format!("latency.{ZONE}"), RecordType::A, None),
    )
    .await
    .unwrap();
    assert!(m.edns.is_some());
    assert_eq!(ecs_of(&m), None);
    assert_eq!(values(&m), vec![AP_IP.to_string()]);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authority_rules_nxdomain_nodata_refused_soa_ns() {
    let f = Fixture::start().await;
    let q = |name: String, t: RecordType| build_query(4, &name, t, None);
    // NXDOMAIN with the SOA (negative TTL = min(ttl 5, minimum 3)).
    let m = udp_exchange(f.udp, &q(format!("nope.{ZONE}"), RecordType::A))
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert!(matches!(m.authorities[0].data, RData::SOA(_)));
    assert_eq!(m.authorities[0].ttl, 3);
    // NODATA: the name exists without that type; an empty non-terminal exists too.
    for name in [format!("simple.{ZONE}"), format!("deep.{ZONE}")] {
        let m = udp_exchange(f.udp, &q(name.clone(), RecordType::AAAA))
            .await
            .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(m.answers.is_empty());
        assert!(matches!(m.authorities[0].data, RData::SOA(_)));
    }
    // Outside our zones: REFUSED.
    let m = udp_exchange(f.udp, &q("www.example.org.".into(), RecordType::A))
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // SOA and NS at the apex, case-insensitively, owner name echoing the query's case.
    let m = udp_exchange(f.udp, &q("DB.Example.TEST.".into(), RecordType::SOA))
        .await
        .unwrap();
    match &m.answers[0].data {
        RData::SOA(soa) => assert_eq!(soa.serial, 7),
        other => panic!("expected SOA, got {other:?}"),
    }
    assert_eq!(m.answers[0].name.to_string(), "DB.Example.TEST.");
    let m = udp_exchange(f.udp, &q(ZONE.into(), RecordType::NS))
        .await
        .unwrap();
    assert_eq!(m.answers.len(), 2);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_region_drops_out_within_two_seconds_and_returns_after_recovery() {
    let mut f = Fixture::start().await;
    assert_eq!(f.a("latency", US).await, vec![US_IP.to_string()]);
    assert_eq!(f.a("failover", US).await, vec![US_IP.to_string()]);

    // Kill the us-east region: US clients move to the next-lowest latency (eu-west).
    f.backends[0].stop().await;
    let (udp, tcp) = (f.udp, f.tcp);
    let q = build_query(5, &format!("latency.{ZONE}"), RecordType::A, Some(US));
    let took =
        wait_until("us-east to drop out", Duration::from_secs(2), || {
            let q = q.clone();
            async move {
                udp_exchange(udp, &q).await.map(|m| values(&m)) == Some(vec![EU_IP.to_string()])
            }
        })
        .await;
    eprintln!("latency answer changed {took:?} after the kill");
    assert_eq!(f.a("failover", US).await, vec![EU_IP.to_string()]);
    assert_eq!(
        f.a("simple", US).await,
        vec![EU_IP.to_string(), AP_IP.to_string()]
    );
    assert_eq!(f.a("geo", US).await, vec![AP_IP.to_string()]); // NA down → default
    let tcp_answer = tcp_exchange(tcp, &q).await.unwrap();
    assert_eq!(values(&tcp_answer), vec![EU_IP.to_string()]);

    // Bring it back: it returns after `rise` successful checks.
    f.backends[0].restart().await;
    let took =
        wait_until("us-east to return", Duration::from_secs(3), || {
            let q = q.clone();
            async move {
                udp_exchange(udp, &q).await.map(|m| values(&m)) == Some(vec![US_IP.to_string()])
            }
        })
        .await;
    eprintln!("us-east returned {took:?} after restart");
    let status = &f.monitor.snapshot().endpoints["us-east"];
    assert_eq!(
        status.transitions, 3,
        "up (first check), down, up: {status:?}"
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_drain_and_weight_shift_answers() {
    let f = Fixture::start().await;
    f.monitor.set_admin("eu-west", AdminState::Drain).unwrap();
    assert_eq!(f.a("latency", DE).await, vec![US_IP.to_string()]);
    f.monitor.set_admin("eu-west", AdminState::Auto).unwrap();
    assert_eq!(f.a("latency", DE).await, vec![EU_IP.to_string()]);
    f.monitor.set_weight("eu-west", 50).unwrap();
    let mut eu = 0;
    for _ in 0..200 {
        eu += usize::from(f.a("latency", DE).await == vec![EU_IP.to_string()]);
    }
    assert!(
        (70..=130).contains(&eu),
        "eu-west kept {eu}/200 at weight 50"
    );
    f.monitor.set_admin("us-east", AdminState::Down).unwrap();
    assert_eq!(f.a("failover", US).await, vec![EU_IP.to_string()]);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_get_formerr_or_are_dropped_and_server_keeps_answering() {
    let f = Fixture::start().await;
    let seed: u64 = 0xbad_dad5;
    eprintln!("random packet seed = {seed:#x}");
    let mut rng = meridian_routing::SplitMix64::new(seed);
    use meridian_routing::Random;
    let good = build_query(77, &format!("simple.{ZONE}"), RecordType::A, None);

    // A valid header claiming one question, followed by a truncated question: FORMERR.
    let mut truncated = good.clone();
    truncated.truncate(16);
    let m = udp_exchange(f.udp, &truncated)
        .await
        .expect("FORMERR answer");
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(m.metadata.id, 77);
    let m = tcp_exchange(f.tcp, &truncated)
        .await
        .expect("FORMERR over TCP");
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);

    // Shorter than a header: silently dropped.
    assert!(udp_exchange(f.udp, &good[..5]).await.is_none());
    // Two questions: FORMERR.
    let mut two = hickory_proto::op::Message::from_vec(&good).unwrap();
    two.add_query(two.queries[0].clone());
    let m = udp_exchange(f.udp, &two.to_vec().unwrap()).await.unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);

    // Random garbage of random lengths; responses, when any, must be well-formed and not NOERROR
    // answers to nothing.
    for _ in 0..300 {
        let len = rng.below(80) as usize;
        let mut pkt: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if len > 3 {
            pkt[2] &= 0x7f; // mostly queries (QR = 0), which the server must consider
        }
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(&pkt, f.udp).await.unwrap();
    }
    // Random bytes after a valid length prefix over TCP.
    for _ in 0..20 {
        let len = 12 + rng.below(40) as usize;
        let pkt: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = tcp_exchange(f.tcp, &pkt).await;
    }
    // Still answering correctly over both transports.
    let m = udp_exchange(f.udp, &good)
        .await
        .expect("server still answers UDP");
    assert_eq!(values(&m).len(), 3);
    let m = tcp_exchange(f.tcp, &good)
        .await
        .expect("server still answers TCP");
    assert_eq!(values(&m).len(), 3);
    f.shutdown().await;
}

#[test]
fn config_rejects_unknown_fields_and_bad_records() {
    let base = r#"
[[zones]]
origin = "z.test."
ns = ["ns1"]
soa = { mname = "ns1", rname = "hostmaster" }
"#;
    DnsConfig::from_toml(base).unwrap();
    let bad = [
        format!("{base}bogus = 1"),
        format!(
            "{base}[[zones.records]]\nname = \"a\"\ntype = \"A\"\ntargets = [{{ id = \"x\", values = [\"not-an-ip\"] }}]"
        ),
        format!(
            "{base}[[zones.records]]\nname = \"a\"\ntype = \"A\"\ntargets = [{{ id = \"x\", values = [\"10.0.0.1\"], health_check = \"nowhere\" }}]"
        ),
        format!(
            "{base}[[zones.records]]\nname = \"a\"\ntype = \"A\"\npolicy = \"weighted\"\ntargets = [{{ id = \"x\", values = [\"10.0.0.1\"] }}]"
        ),
        format!(
            "{base}[[zones.records]]\nname = \"a.other.test.\"\ntype = \"A\"\ntargets = [{{ id = \"x\", values = [\"10.0.0.1\"] }}]"
        ),
        format!(
            "{base}[[zones.records]]\nname = \"a\"\ntype = \"MX\"\ntargets = [{{ id = \"x\", values = [\"10.0.0.1\"] }}]"
        ),
        format!(
            "{base}[[zones.records]]\nname = \"a\"\ntype = \"A\"\nttl = 5\ntargets = [{{ id = \"x\", values = [\"10.0.0.1\"] }}]"
        ),
    ];
    for text in bad {
        assert!(DnsConfig::from_toml(&text).is_err(), "accepted:\n{text}");
    }
}

#[test]
fn example_config_parses() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/dns.toml")).unwrap();
    let config = DnsConfig::from_toml(&text).unwrap();
    assert!(!config.zones.is_empty());
    let _ = Arc::new(config);
}
