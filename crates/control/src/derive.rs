//! Spec → each role's configuration. Pure functions over a validated [`ClusterSpec`].
//!
//! The DNS server and the gateway get their own config types (`meridian_traffic`'s
//! `DnsConfig` and `GatewayConfig`), built through serde so that fields those roles add later
//! take their defaults. A region gets a [`RegionPlan`]: its flags and the tables it must have.
//!
//! **DNS policy.** The global name answers with a geolocation record set combined with
//! health-checked failover: every location (each continent, each listed country, and the
//! default) gets a chain of targets — its home region first, then every other region by
//! distance from that home — and the routing policy serves the first healthy one. Targets that
//! repeat a location are tried in the order listed (see `meridian_routing::validate`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use meridian_routing::continents::continent_centre;
use meridian_routing::{Continent, Coordinates};
use meridian_traffic::dns::DnsConfig;
use meridian_traffic::gateway::GatewayConfig;
use meridian_traffic::health::HealthConfig;
use serde_json::{Value, json};

use crate::error::ControlError;
use crate::spec::{
    BillingMode, ClusterSpec, IndexSpec, KeyAttrSpec, RegionSpec, TableSpec, TopologyMode,
};

fn coordinates(r: &RegionSpec) -> Coordinates {
    Coordinates {
        lat: r.lat,
        lon: r.lon,
    }
}

/// The health checks of every region (`GET /health` on its DynamoDB port).
pub fn health_config(spec: &ClusterSpec) -> Result<HealthConfig, ControlError> {
    let h = &spec.health;
    let value = json!({
        "interval_ms": h.interval_ms,
        "timeout_ms": h.timeout_ms,
        "fall": h.fall,
        "rise": h.rise,
        "endpoints": spec.regions.iter().map(|r| json!({
            "name": r.name,
            "http_url": format!("{}/health", r.endpoint()),
        })).collect::<Vec<_>>(),
    });
    from_json(value)
}

/// Regions ordered by distance from `from` (nearest first), `from` itself excluded.
pub fn others_by_distance<'a>(spec: &'a ClusterSpec, from: &RegionSpec) -> Vec<&'a RegionSpec> {
    let here = coordinates(from);
    let mut others: Vec<&RegionSpec> = spec
        .regions
        .iter()
        .filter(|r| r.name != from.name)
        .collect();
    others.sort_by(|a, b| {
        here.distance_km(&coordinates(a))
            .total_cmp(&here.distance_km(&coordinates(b)))
    });
    others
}

/// The home region of each continent: configured, else the first region on that continent,
/// else the region nearest the continent's centre.
pub fn continent_homes(spec: &ClusterSpec) -> BTreeMap<Continent, String> {
    Continent::ALL
        .into_iter()
        .filter_map(|c| {
            if let Some(r) = spec.dns.continents.get(&c) {
                return Some((c, r.clone()));
            }
            if let Some(r) = spec.regions.iter().find(|r| r.continent == c) {
                return Some((c, r.name.clone()));
            }
            let centre = continent_centre(c);
            spec.regions
                .iter()
                .min_by(|a, b| {
                    centre
                        .distance_km(&coordinates(a))
                        .total_cmp(&centre.distance_km(&coordinates(b)))
                })
                .map(|r| (c, r.name.clone()))
        })
        .collect()
}

/// The region answering clients of unknown location.
pub fn default_region(spec: &ClusterSpec) -> Option<&RegionSpec> {
    match &spec.dns.default_region {
        Some(name) => spec.region(name),
        None => spec.regions.first(),
    }
}

/// A location's failover chain: its home region, then the others by distance from it.
fn chain<'a>(spec: &'a ClusterSpec, home: &str) -> Vec<&'a RegionSpec> {
    let Some(home) = spec.region(home) else {
        return Vec::new();
    };
    let mut out = vec![home];
    out.extend(others_by_distance(spec, home));
    out
}

fn geo_targets(spec: &ClusterSpec, v6: bool) -> Vec<Value> {
    let mut targets = Vec::new();
    let mut push = |location: Value, label: String, home: &str| {
        for r in chain(spec, home)
            .into_iter()
            .filter(|r| r.address.is_ipv6() == v6)
        {
            targets.push(json!({
                "id": format!("{label}/{}", r.name),
                "values": [r.address.to_string()],
                "health_check": r.name,
                "location": location.clone(),
            }));
        }
    };
    for (country, home) in &spec.dns.countries {
        push(
            json!({ "country": country.as_str() }),
            format!("country-{country}"),
            home,
        );
    }
    for (continent, home) in continent_homes(spec) {
        push(
            json!({ "continent": continent.code() }),
            format!("continent-{continent}"),
            &home,
        );
    }
    if let Some(home) = default_region(spec) {
        push(json!("default"), "default".into(), &home.name);
    }
    targets
}

/// The DNS server's configuration.
pub fn dns_config(spec: &ClusterSpec) -> Result<DnsConfig, ControlError> {
    let d = &spec.dns;
    let zone = format!("{}.", d.zone.trim_end_matches('.'));
    let name = format!("{}.", d.name.trim_end_matches('.'));
    let mut records = Vec::new();
    for (kind, v6) in [("A", false), ("AAAA", true)] {
        let targets = geo_targets(spec, v6);
        if !targets.is_empty() {
            records.push(json!({
                "name": name,
                "type": kind,
                "ttl_secs": d.ttl_secs,
                "policy": "geolocation",
                "targets": targets,
            }));
        }
    }
    let ns_kind = if d.listen.ip().is_ipv6() { "AAAA" } else { "A" };
    records.push(json!({
        "name": "ns1",
        "type": ns_kind,
        "targets": [{ "id": "ns1", "values": [d.listen.ip().to_string()] }],
    }));
    let value = json!({
        "listen_udp": [d.listen],
        "listen_tcp": [d.listen],
        "admin_listen": d.admin_listen,
        "geo": {
            "geoip_v4_path": d.geoip_v4_path,
            "geoip_v6_path": d.geoip_v6_path,
            "networks": d.networks,
        },
        "health": health_config(spec)?,
        "zones": [{
            "origin": zone,
            "ttl_secs": d.ttl_secs,
            "ns": ["ns1"],
            "soa": { "mname": "ns1", "rname": "hostmaster", "minimum_secs": d.ttl_secs },
            "records": records,
        }],
    });
    let config: DnsConfig = from_json(value)?;
    meridian_traffic::dns::Zones::compile(&config)
        .map_err(|e| ControlError::Derive(e.to_string()))?;
    Ok(config)
}

/// The gateway's configuration: every region with its round-trip time from the gateway's
/// region and a failover order by distance.
pub fn gateway_config(spec: &ClusterSpec) -> Result<GatewayConfig, ControlError> {
    let g = &spec.gateway;
    let at = g
        .region
        .as_deref()
        .or(spec.regions.first().map(|r| r.name.as_str()))
        .unwrap_or_default();
    let regions: Vec<Value> = spec
        .regions
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "endpoint": r.endpoint(),
                "latency_ms": 2 * spec.link_latency_ms(at, &r.name),
                "failover_order": others_by_distance(spec, r)
                    .iter()
                    .map(|o| o.name.clone())
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = json!({
        "listen": g.listen,
        "admin_listen": g.admin_listen,
        "write_failover": g.write_failover,
        "health": health_config(spec)?,
        "regions": regions,
        "pinning": g.pinning,
    });
    let config: GatewayConfig = from_json(value)?;
    config
        .validate()
        .map_err(|e| ControlError::Derive(e.to_string()))?;
    Ok(config)
}

/// Deserializes a role config built as JSON in the role's own shape. The derivation tests run
/// every example spec through here, so a mismatch is caught before a role sees it.
fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ControlError> {
    serde_json::from_value(value)
        .map_err(|e| ControlError::Derive(format!("derived config does not fit its role: {e}")))
}

/// What one region server needs from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionPlan {
    /// Region name.
    pub name: String,
    /// Region id (unique IDs).
    pub id: u16,
    /// DynamoDB API address.
    pub listen: SocketAddr,
    /// Replication address.
    pub replication_listen: SocketAddr,
    /// Every other region and its replication address.
    pub peers: Vec<(String, SocketAddr)>,
    /// Mesh or star.
    pub topology: TopologyMode,
    /// Hub of a star.
    pub hub: Option<String>,
    /// Shared secret of the links.
    pub replication_secret: Option<String>,
    /// Lag alarm threshold.
    pub lag_alarm_ms: Option<u64>,
    /// SigV4 keys `(id, secret)`.
    pub access_keys: Vec<(String, String)>,
    /// Emulated one-way delay towards each peer.
    pub link_delays_ms: BTreeMap<String, u64>,
}

impl RegionPlan {
    /// `meridian region` flags of the region server itself (no replication, no secrets: see
    /// [`RegionPlan::secret_env`]).
    pub fn base_args(&self) -> Vec<String> {
        vec![
            "--region".to_owned(),
            self.name.clone(),
            "--listen".to_owned(),
            self.listen.to_string(),
            "--region-id".to_owned(),
            self.id.to_string(),
        ]
    }

    /// The region's secrets as environment variables of its process — never flags, which
    /// every user of the machine can read in `ps`: `MERIDIAN_ACCESS_KEYS` (`ID:SECRET`,
    /// comma-separated) and, with `replication`, `MERIDIAN_REPLICATION_SECRET`.
    pub fn secret_env(&self, replication: bool) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if !self.access_keys.is_empty() {
            let keys: Vec<String> = self
                .access_keys
                .iter()
                .map(|(id, secret)| format!("{id}:{secret}"))
                .collect();
            env.push(("MERIDIAN_ACCESS_KEYS".to_owned(), keys.join(",")));
        }
        if let Some(secret) = self.replication_secret.as_ref().filter(|_| replication) {
            env.push(("MERIDIAN_REPLICATION_SECRET".to_owned(), secret.clone()));
        }
        env
    }

    /// Replication flags (only passed when the region server has them; the secret is in
    /// [`RegionPlan::secret_env`]).
    pub fn replication_args(&self) -> Vec<String> {
        let mut args = vec![
            "--replication-listen".to_owned(),
            self.replication_listen.to_string(),
            "--topology".to_owned(),
            self.topology.as_str().to_owned(),
        ];
        if let Some(hub) = &self.hub {
            args.push("--hub".to_owned());
            args.push(hub.clone());
        }
        for (name, addr) in &self.peers {
            args.push("--peer".to_owned());
            args.push(format!("{name}={addr}"));
        }
        if let Some(ms) = self.lag_alarm_ms {
            args.push("--lag-alarm-ms".to_owned());
            args.push(ms.to_string());
        }
        args
    }
}

/// The plan of region `name`, if the spec declares it.
pub fn region_plan(spec: &ClusterSpec, name: &str) -> Option<RegionPlan> {
    let r = spec.region(name)?;
    let peers: Vec<(String, SocketAddr)> = spec
        .regions
        .iter()
        .filter(|p| p.name != name)
        .map(|p| (p.name.clone(), p.replication_addr()))
        .collect();
    Some(RegionPlan {
        name: r.name.clone(),
        id: spec.region_id(name)?,
        listen: r.api_addr(),
        replication_listen: r.replication_addr(),
        // Only pairs with a link: a star's spokes have none between them.
        link_delays_ms: peers
            .iter()
            .filter(
                |(p, _)| match (spec.topology.mode, spec.topology.hub.as_deref()) {
                    (TopologyMode::Star, Some(hub)) => name == hub || p == hub,
                    _ => true,
                },
            )
            .map(|(p, _)| (p.clone(), spec.link_latency_ms(name, p)))
            .collect(),
        peers,
        topology: spec.topology.mode,
        hub: spec.topology.hub.clone(),
        replication_secret: spec.secrets.replication.clone(),
        lag_alarm_ms: spec.topology.lag_alarm_ms,
        access_keys: spec
            .secrets
            .access_keys
            .iter()
            .map(|k| (k.id.clone(), k.secret.clone()))
            .collect(),
    })
}

/// The DynamoDB `CreateTable` request body of a declared table, its indexes included.
pub fn create_table_request(t: &TableSpec) -> Value {
    let mut defs = Vec::new();
    let mut define = |k: &KeyAttrSpec| {
        if !defs
            .iter()
            .any(|d: &Value| d["AttributeName"] == k.name.as_str())
        {
            defs.push(json!({ "AttributeName": k.name, "AttributeType": k.ty.as_str() }));
        }
    };
    define(&t.partition_key);
    if let Some(sk) = &t.sort_key {
        define(sk);
    }
    for g in &t.global_secondary_indexes {
        define(&g.partition_key);
        if let Some(sk) = &g.sort_key {
            define(sk);
        }
    }
    let mut req = json!({
        "TableName": t.name,
        "AttributeDefinitions": defs,
        "KeySchema": key_schema(&t.partition_key, t.sort_key.as_ref()),
    });
    match t.billing_mode {
        BillingMode::PAY_PER_REQUEST => {
            req["BillingMode"] = json!("PAY_PER_REQUEST");
        }
        BillingMode::PROVISIONED => {
            req["BillingMode"] = json!("PROVISIONED");
            req["ProvisionedThroughput"] = throughput(t);
        }
    }
    if !t.global_secondary_indexes.is_empty() {
        req["GlobalSecondaryIndexes"] = t
            .global_secondary_indexes
            .iter()
            .map(|g| index_definition(t, g))
            .collect();
    }
    req
}

/// The DynamoDB `UpdateTable` request body that adds declared index `g` to existing table `t`.
pub fn create_index_request(t: &TableSpec, g: &IndexSpec) -> Value {
    let mut defs = vec![json!({
        "AttributeName": g.partition_key.name, "AttributeType": g.partition_key.ty.as_str(),
    })];
    if let Some(sk) = &g.sort_key {
        defs.push(json!({ "AttributeName": sk.name, "AttributeType": sk.ty.as_str() }));
    }
    json!({
        "TableName": t.name,
        "AttributeDefinitions": defs,
        "GlobalSecondaryIndexUpdates": [{ "Create": index_definition(t, g) }],
    })
}

fn key_schema(pk: &KeyAttrSpec, sk: Option<&KeyAttrSpec>) -> Value {
    let mut schema = vec![json!({ "AttributeName": pk.name, "KeyType": "HASH" })];
    if let Some(sk) = sk {
        schema.push(json!({ "AttributeName": sk.name, "KeyType": "RANGE" }));
    }
    Value::Array(schema)
}

fn throughput(t: &TableSpec) -> Value {
    json!({
        "ReadCapacityUnits": t.read_capacity_units.unwrap_or(1),
        "WriteCapacityUnits": t.write_capacity_units.unwrap_or(1),
    })
}

fn index_definition(t: &TableSpec, g: &IndexSpec) -> Value {
    let mut projection = json!({ "ProjectionType": g.projection.as_str() });
    if !g.non_key_attributes.is_empty() {
        projection["NonKeyAttributes"] = json!(g.non_key_attributes);
    }
    let mut def = json!({
        "IndexName": g.name,
        "KeySchema": key_schema(&g.partition_key, g.sort_key.as_ref()),
        "Projection": projection,
    });
    if t.billing_mode == BillingMode::PROVISIONED {
        def["ProvisionedThroughput"] = throughput(t);
    }
    def
}
