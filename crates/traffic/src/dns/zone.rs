//! Compiled zones and the answer to one question — no sockets here. Given a query name and
//! type, the client and the health of each target, [`Zones::answer`] returns the response code
//! and records, using `meridian-routing` for every policy decision.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{LowerQuery, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, TXT};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use meridian_routing::{Inputs, Policy, Random, Target};

use super::config::{DnsConfig, RecordKind, ZoneConfig};
use crate::ConfigError;

/// One record set, ready to answer.
#[derive(Debug, Clone)]
struct RecordSet {
    policy: Policy,
    ttl: u32,
    targets: Vec<Target<Vec<RData>>>,
}

#[derive(Debug, Clone)]
struct Zone {
    origin: LowerName,
    ttl: u32,
    soa: SOA,
    ns: Vec<Name>,
    /// Record sets by owner name, then type (a lookup borrows the query's name).
    sets: HashMap<LowerName, Vec<(RecordType, RecordSet)>>,
    /// Every owner name in the zone, the apex included.
    names: BTreeSet<LowerName>,
}

/// All configured zones.
#[derive(Debug, Clone)]
pub struct Zones {
    /// Longest origin first, so the first zone containing a name is the closest enclosing one.
    zones: Vec<Zone>,
}

/// The outcome of one question.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Response code.
    pub rcode: ResponseCode,
    /// Whether we are authoritative for the name (false only for REFUSED).
    pub authoritative: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section (the SOA on negative answers).
    pub authority: Vec<Record>,
    /// Whether the answer depends on where the client is (sets the ECS scope prefix).
    pub location_dependent: bool,
}

impl Answer {
    /// A non-authoritative answer with no records (REFUSED, FORMERR, NOTIMP).
    pub fn error(rcode: ResponseCode) -> Self {
        Answer {
            rcode,
            authoritative: false,
            answers: vec![],
            authority: vec![],
            location_dependent: false,
        }
    }

    fn refused() -> Self {
        Answer::error(ResponseCode::Refused)
    }
}

fn name(text: &str, origin: Option<&Name>) -> Result<Name, ConfigError> {
    let parsed = match (text, origin) {
        ("@", Some(o)) => Ok(o.clone()),
        (t, Some(o)) if !t.ends_with('.') => Name::parse(t, Some(o)),
        (t, _) => Name::from_ascii(t),
    };
    let mut n = parsed.map_err(|e| ConfigError::new("dns", format!("bad name {text:?}: {e}")))?;
    n.set_fqdn(true);
    Ok(n)
}

fn rdata(kind: RecordKind, value: &str) -> Result<RData, ConfigError> {
    let bad = |e: &dyn std::fmt::Display| {
        ConfigError::new("dns", format!("bad {kind:?} value {value:?}: {e}"))
    };
    Ok(match kind {
        RecordKind::A => RData::A(A(value.parse::<Ipv4Addr>().map_err(|e| bad(&e))?)),
        RecordKind::AAAA => RData::AAAA(AAAA(value.parse::<Ipv6Addr>().map_err(|e| bad(&e))?)),
        RecordKind::TXT => {
            // A TXT string is at most 255 bytes on the wire; split longer values.
            let chunks: Vec<String> = value
                .as_bytes()
                .chunks(255)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            RData::TXT(TXT::new(chunks))
        }
    })
}

fn record_type(kind: RecordKind) -> RecordType {
    match kind {
        RecordKind::A => RecordType::A,
        RecordKind::AAAA => RecordType::AAAA,
        RecordKind::TXT => RecordType::TXT,
    }
}

impl Zone {
    fn compile(cfg: &ZoneConfig, health_names: &BTreeSet<&str>) -> Result<Zone, ConfigError> {
        let origin = name(&cfg.origin, None)?;
        let soa = SOA::new(
            name(&cfg.soa.mname, Some(&origin))?,
            name(&cfg.soa.rname, Some(&origin))?,
            cfg.soa.serial,
            i32::try_from(cfg.soa.refresh_secs).unwrap_or(i32::MAX),
            i32::try_from(cfg.soa.retry_secs).unwrap_or(i32::MAX),
            i32::try_from(cfg.soa.expire_secs).unwrap_or(i32::MAX),
            cfg.soa.minimum_secs,
        );
        if cfg.ns.is_empty() {
            return Err(ConfigError::new(
                "dns",
                format!("zone {origin}: at least one `ns` is required"),
            ));
        }
        let ns = cfg
            .ns
            .iter()
            .map(|n| name(n, Some(&origin)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sets = HashMap::new();
        let mut names = BTreeSet::from([LowerName::from(&origin)]);
        for rs in &cfg.records {
            let owner = name(&rs.name, Some(&origin))?;
            if !origin.zone_of(&owner) {
                return Err(ConfigError::new(
                    "dns",
                    format!("{owner} is outside zone {origin}"),
                ));
            }
            meridian_routing::validate(rs.policy, &rs.targets)
                .map_err(|e| ConfigError::new("dns", format!("{owner} {:?}: {e}", rs.kind)))?;
            let mut targets = Vec::with_capacity(rs.targets.len());
            for t in &rs.targets {
                if let Some(check) = &t.health_check
                    && !health_names.contains(check.as_str())
                {
                    return Err(ConfigError::new(
                        "dns",
                        format!(
                            "{owner} target {:?}: health_check {check:?} is not a configured health endpoint",
                            t.id
                        ),
                    ));
                }
                if t.values.is_empty() {
                    return Err(ConfigError::new(
                        "dns",
                        format!("{owner} target {:?}: no values", t.id),
                    ));
                }
                let values = t
                    .values
                    .iter()
                    .map(|v| rdata(rs.kind, v))
                    .collect::<Result<Vec<_>, _>>()?;
                let Target {
                    id,
                    health_check,
                    weight,
                    failover,
                    region,
                    location,
                    coordinates,
                    bias,
                    ..
                } = t.clone();
                targets.push(Target {
                    id,
                    values,
                    health_check,
                    weight,
                    failover,
                    region,
                    location,
                    coordinates,
                    bias,
                });
            }
            let set = RecordSet {
                policy: rs.policy,
                ttl: rs.ttl_secs.unwrap_or(cfg.ttl_secs),
                targets,
            };
            let by_type: &mut Vec<(RecordType, RecordSet)> =
                sets.entry(LowerName::from(&owner)).or_default();
            if by_type.iter().any(|(t, _)| *t == record_type(rs.kind)) {
                return Err(ConfigError::new(
                    "dns",
                    format!("{owner} {:?} is defined twice", rs.kind),
                ));
            }
            by_type.push((record_type(rs.kind), set));
            names.insert(LowerName::from(&owner));
        }
        Ok(Zone {
            origin: LowerName::from(&origin),
            ttl: cfg.ttl_secs,
            soa,
            ns,
            sets,
            names,
        })
    }

    fn soa_record(&self, owner: &Name, ttl: u32) -> Record {
        Record::from_rdata(owner.clone(), ttl, RData::SOA(self.soa.clone()))
    }

    /// The SOA for the authority section of a negative answer; its TTL is the negative-caching
    /// TTL (RFC 2308: the smaller of the SOA's TTL and MINIMUM).
    fn negative_soa(&self) -> Record {
        let owner: Name = self.origin.clone().into();
        self.soa_record(&owner, self.ttl.min(self.soa.minimum))
    }
}

impl Zones {
    /// Validates and compiles every zone of `config`.
    pub fn compile(config: &DnsConfig) -> Result<Zones, ConfigError> {
        let health_names: BTreeSet<&str> = config
            .health
            .endpoints
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let mut zones = config
            .zones
            .iter()
            .map(|z| Zone::compile(z, &health_names))
            .collect::<Result<Vec<_>, _>>()?;
        let mut origins = BTreeSet::new();
        for z in &zones {
            if !origins.insert(z.origin.clone()) {
                return Err(ConfigError::new(
                    "dns",
                    format!("zone {} is configured twice", z.origin),
                ));
            }
        }
        zones.sort_by_key(|z| std::cmp::Reverse(z.origin.num_labels()));
        Ok(Zones { zones })
    }

    /// Answers one question.
    pub fn answer(&self, query: &LowerQuery, inputs: &Inputs<'_>, rng: &mut dyn Random) -> Answer {
        let lower = query.name();
        let qname = query.original().name();
        let (qtype, qclass) = (query.query_type(), query.query_class());
        let Some(zone) = self.zones.iter().find(|z| z.origin.zone_of(lower)) else {
            return Answer::refused();
        };
        if qclass != DNSClass::IN {
            return Answer::refused();
        }
        let mut answer = Answer {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers: vec![],
            authority: vec![],
            location_dependent: false,
        };
        // An empty non-terminal (a name with only descendants) exists: NODATA, not NXDOMAIN.
        let exists = zone.names.contains(lower) || zone.names.iter().any(|n| lower.zone_of(n));
        if !exists {
            answer.rcode = ResponseCode::NXDomain;
            answer.authority.push(zone.negative_soa());
            return answer;
        }
        let apex = *lower == zone.origin;
        if apex && matches!(qtype, RecordType::SOA | RecordType::ANY) {
            answer.answers.push(zone.soa_record(qname, zone.ttl));
        }
        if apex && matches!(qtype, RecordType::NS | RecordType::ANY) {
            for ns in &zone.ns {
                answer.answers.push(Record::from_rdata(
                    qname.clone(),
                    zone.ttl,
                    RData::NS(NS(ns.clone())),
                ));
            }
        }
        let types: &[RecordType] = match qtype {
            RecordType::ANY => &[RecordType::A, RecordType::AAAA, RecordType::TXT],
            RecordType::A => &[RecordType::A],
            RecordType::AAAA => &[RecordType::AAAA],
            RecordType::TXT => &[RecordType::TXT],
            _ => &[],
        };
        let sets = zone.sets.get(lower).map_or(&[][..], Vec::as_slice);
        for (_, set) in sets.iter().filter(|(t, _)| types.contains(t)) {
            answer.location_dependent |= matches!(
                set.policy,
                Policy::Latency | Policy::Geolocation | Policy::Geoproximity
            );
            let decision = meridian_routing::decide(set.policy, &set.targets, inputs, rng);
            for i in decision.chosen {
                let Some(target) = set.targets.get(i) else {
                    continue;
                };
                for v in &target.values {
                    answer
                        .answers
                        .push(Record::from_rdata(qname.clone(), set.ttl, v.clone()));
                }
            }
        }
        if answer.answers.is_empty() {
            answer.authority.push(zone.negative_soa());
        }
        answer
    }
}
