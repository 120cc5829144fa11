//! The declarative cluster spec: one strict TOML document describing regions, topology, link
//! latencies, tables, DNS, the gateway, health checks and secrets.
//!
//! Every struct denies unknown fields and every field with a unit carries it in its name
//! (`_ms`, `_secs`). Parsing ([`crate::parse_spec`]) checks the syntax and types with the
//! position of the offending key; [`crate::validate`] checks the meaning (names unique,
//! references resolve, ranges hold). Defaults describe a loopback cluster.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use meridian_routing::{Continent, Country, NetworkLocation};
use meridian_traffic::gateway::{PinningConfig, WriteFailover};
use serde::{Deserialize, Serialize};

/// A whole cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// A name for humans (status output).
    #[serde(default = "default_cluster_name")]
    pub name: String,
    /// The regions; each runs one region server.
    pub regions: Vec<RegionSpec>,
    /// How regions replicate to each other.
    #[serde(default)]
    pub topology: TopologySpec,
    /// Emulated one-way WAN latency between regions.
    #[serde(default)]
    pub links: LinksSpec,
    /// Tables every region creates if missing.
    #[serde(default)]
    pub tables: Vec<TableSpec>,
    /// The control plane's own address and the agents' poll interval.
    #[serde(default)]
    pub control: ControlSpec,
    /// The policy DNS server.
    #[serde(default)]
    pub dns: DnsSpec,
    /// The home-region gateway.
    #[serde(default)]
    pub gateway: GatewaySpec,
    /// Health checks run by the DNS server and the gateway.
    #[serde(default)]
    pub health: HealthSpec,
    /// Shared secrets and access keys.
    #[serde(default)]
    pub secrets: SecretsSpec,
}

fn default_cluster_name() -> String {
    "meridian".into()
}

/// One region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// Region name (`us-east`): lowercase letters, digits and `-`.
    pub name: String,
    /// Region id 0–1023, stamped into unique IDs; defaults to the region's position + 1.
    #[serde(default)]
    pub id: Option<u16>,
    /// The region's own address (a loopback address such as `127.0.1.1` for a local cluster).
    pub address: IpAddr,
    /// DynamoDB API port.
    #[serde(default = "default_region_port")]
    pub port: u16,
    /// Replication port.
    #[serde(default = "default_replication_port")]
    pub replication_port: u16,
    /// Latitude, −90..=90.
    pub lat: f64,
    /// Longitude, −180..=180.
    pub lon: f64,
    /// The continent the region is on (`NA`, `EU`, `AS`, …).
    pub continent: Continent,
}

fn default_region_port() -> u16 {
    8000
}
fn default_replication_port() -> u16 {
    7000
}

impl RegionSpec {
    /// The DynamoDB API address.
    pub fn api_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// The replication address.
    pub fn replication_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.replication_port)
    }

    /// The DynamoDB endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.api_addr())
    }
}

/// Replication topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopologyMode {
    /// Every region ships its own changes to every other region.
    #[default]
    Mesh,
    /// Every region talks to the hub, which forwards.
    Star,
}

impl TopologyMode {
    /// The flag value (`mesh` / `star`).
    pub fn as_str(self) -> &'static str {
        match self {
            TopologyMode::Mesh => "mesh",
            TopologyMode::Star => "star",
        }
    }
}

/// `[topology]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    /// `mesh` or `star`.
    #[serde(default)]
    pub mode: TopologyMode,
    /// The hub of a star (required for `star`, refused for `mesh`).
    #[serde(default)]
    pub hub: Option<String>,
    /// Replication lag above which a link raises its alarm.
    #[serde(default)]
    pub lag_alarm_ms: Option<u64>,
}

/// `[links]`: emulated one-way latency, applied on the replication links.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksSpec {
    /// One-way latency of every pair not listed in `pairs` (0 = none).
    #[serde(default)]
    pub default_one_way_ms: u64,
    /// Per-pair latencies (symmetric).
    #[serde(default)]
    pub pairs: Vec<LinkSpec>,
}

/// One pair of regions and its one-way latency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// The two regions.
    pub between: [String; 2],
    /// One-way latency in milliseconds (0 allowed).
    pub one_way_ms: u64,
}

/// DynamoDB key attribute types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAttrType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl KeyAttrType {
    /// DynamoDB's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAttrType::S => "S",
            KeyAttrType::N => "N",
            KeyAttrType::B => "B",
        }
    }
}

/// A key attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAttrSpec {
    /// Attribute name.
    pub name: String,
    /// Attribute type.
    #[serde(rename = "type")]
    pub ty: KeyAttrType,
}

/// Billing modes, spelled as in DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum BillingMode {
    /// On demand.
    #[default]
    PAY_PER_REQUEST,
    /// Provisioned (accepted and reported, never enforced).
    PROVISIONED,
}

/// `[[tables]]`: a table every region creates if it is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Table name (DynamoDB rules: 3–255 of `[a-zA-Z0-9_.-]`).
    pub name: String,
    /// Partition (HASH) key.
    pub partition_key: KeyAttrSpec,
    /// Sort (RANGE) key.
    #[serde(default)]
    pub sort_key: Option<KeyAttrSpec>,
    /// Billing mode.
    #[serde(default)]
    pub billing_mode: BillingMode,
    /// Provisioned read capacity (only with `PROVISIONED`).
    #[serde(default)]
    pub read_capacity_units: Option<u64>,
    /// Provisioned write capacity (only with `PROVISIONED`).
    #[serde(default)]
    pub write_capacity_units: Option<u64>,
    /// Global secondary indexes: created with the table, and one declared later is added to
    /// the existing table by every region (`[[tables.global_secondary_indexes]]`).
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexSpec>,
}

/// A global secondary index of a declared table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    /// Index name (DynamoDB rules: 3–255 of `[a-zA-Z0-9_.-]`).
    pub name: String,
    /// The index's partition key.
    pub partition_key: KeyAttrSpec,
    /// The index's sort key.
    #[serde(default)]
    pub sort_key: Option<KeyAttrSpec>,
    /// What the index holds of each item: `ALL` (default), `KEYS_ONLY` or `INCLUDE`.
    #[serde(default)]
    pub projection: ProjectionSpec,
    /// With `INCLUDE`: the attributes it holds besides the keys.
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

/// An index's projection, spelled as in DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum ProjectionSpec {
    /// Every attribute.
    #[default]
    ALL,
    /// The keys only.
    KEYS_ONLY,
    /// The keys and `non_key_attributes`.
    INCLUDE,
}

impl ProjectionSpec {
    /// As DynamoDB spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectionSpec::ALL => "ALL",
            ProjectionSpec::KEYS_ONLY => "KEYS_ONLY",
            ProjectionSpec::INCLUDE => "INCLUDE",
        }
    }
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSpec {
    /// The control plane's HTTP API.
    #[serde(default = "default_control_listen")]
    pub listen: SocketAddr,
    /// How often every agent asks for a newer spec.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
}

fn default_control_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7100))
}
fn default_poll_ms() -> u64 {
    1000
}

impl Default for ControlSpec {
    fn default() -> Self {
        ControlSpec {
            listen: default_control_listen(),
            poll_interval_ms: default_poll_ms(),
        }
    }
}

/// `[dns]`: one global name answered by geolocation, each location failing over to the next
/// nearest healthy region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// UDP and TCP address of the DNS server.
    #[serde(default = "default_dns_listen")]
    pub listen: SocketAddr,
    /// The DNS server's admin API (health status, drain).
    #[serde(default = "default_dns_admin")]
    pub admin_listen: SocketAddr,
    /// The zone served, e.g. `meridian.test.`.
    #[serde(default = "default_zone")]
    pub zone: String,
    /// The global name clients resolve, inside `zone`.
    #[serde(default = "default_dns_name")]
    pub name: String,
    /// TTL of the answers (keep it low: it bounds failover time).
    #[serde(default = "default_ttl")]
    pub ttl_secs: u32,
    /// Continent → home region. Continents not listed go to the region on that continent,
    /// else the region nearest the continent's centre.
    #[serde(default)]
    pub continents: BTreeMap<Continent, String>,
    /// Country → region, overriding the continent (e.g. the Middle East → `eu-west`).
    #[serde(default)]
    pub countries: BTreeMap<Country, String>,
    /// Region for clients whose location is unknown (loopback clients); the first region
    /// when unset.
    #[serde(default)]
    pub default_region: Option<String>,
    /// A Debian `tor-geoipdb` IPv4 file to locate clients with instead of the built-in table
    /// (a missing file stops the DNS server with an error).
    #[serde(default)]
    pub geoip_v4_path: Option<PathBuf>,
    /// A Debian `tor-geoipdb` IPv6 file (with or without `geoip_v4_path`).
    #[serde(default)]
    pub geoip_v6_path: Option<PathBuf>,
    /// Networks whose location is configured (e.g. loopback subnets for a local demo).
    #[serde(default)]
    pub networks: Vec<NetworkLocation>,
}

fn default_dns_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8053))
}
fn default_dns_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9053))
}
fn default_zone() -> String {
    "meridian.test.".into()
}
fn default_dns_name() -> String {
    "dynamodb.meridian.test".into()
}
fn default_ttl() -> u32 {
    5
}

impl Default for DnsSpec {
    fn default() -> Self {
        DnsSpec {
            listen: default_dns_listen(),
            admin_listen: default_dns_admin(),
            zone: default_zone(),
            name: default_dns_name(),
            ttl_secs: default_ttl(),
            continents: BTreeMap::new(),
            countries: BTreeMap::new(),
            default_region: None,
            geoip_v4_path: None,
            geoip_v6_path: None,
            networks: Vec::new(),
        }
    }
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// The gateway's DynamoDB endpoint.
    #[serde(default = "default_gateway_listen")]
    pub listen: SocketAddr,
    /// Its admin API (health status, drain).
    #[serde(default = "default_gateway_admin")]
    pub admin_listen: SocketAddr,
    /// The region the gateway sits in (nearest first from there); the first region when unset.
    #[serde(default)]
    pub region: Option<String>,
    /// Whether writes may leave their home region when it is down.
    #[serde(default)]
    pub write_failover: WriteFailover,
    /// Home-region pinning (the gateway's own config type).
    #[serde(default)]
    pub pinning: PinningConfig,
}

fn default_gateway_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_gateway_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9080))
}

impl Default for GatewaySpec {
    fn default() -> Self {
        GatewaySpec {
            listen: default_gateway_listen(),
            admin_listen: default_gateway_admin(),
            region: None,
            write_failover: WriteFailover::default(),
            pinning: PinningConfig::default(),
        }
    }
}

/// `[health]`: how the DNS server and the gateway check regions (`GET /health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// Time between checks of one region.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// A check not answered within this fails.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Consecutive failures before a region is unhealthy.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Consecutive successes before it is healthy again.
    #[serde(default = "default_rise")]
    pub rise: u32,
}

fn default_interval() -> u64 {
    250
}
fn default_timeout() -> u64 {
    200
}
fn default_fall() -> u32 {
    3
}
fn default_rise() -> u32 {
    2
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            interval_ms: default_interval(),
            timeout_ms: default_timeout(),
            fall: default_fall(),
            rise: default_rise(),
        }
    }
}

/// `[secrets]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSpec {
    /// Shared secret of the replication links.
    #[serde(default)]
    pub replication: Option<String>,
    /// SigV4 access keys every region accepts; none = any well-formed signed request.
    #[serde(default)]
    pub access_keys: Vec<AccessKeySpec>,
}

/// One access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeySpec {
    /// `AWS_ACCESS_KEY_ID`.
    pub id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret: String,
}

impl ClusterSpec {
    /// A region by name.
    pub fn region(&self, name: &str) -> Option<&RegionSpec> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// A region's id (explicit, else its position + 1).
    pub fn region_id(&self, name: &str) -> Option<u16> {
        let (i, r) = self
            .regions
            .iter()
            .enumerate()
            .find(|(_, r)| r.name == name)?;
        Some(r.id.unwrap_or(i as u16 + 1))
    }

    /// One-way emulated latency between two regions (0 to itself).
    pub fn link_latency_ms(&self, a: &str, b: &str) -> u64 {
        if a == b {
            return 0;
        }
        self.links
            .pairs
            .iter()
            .find(|p| {
                (p.between[0] == a && p.between[1] == b) || (p.between[0] == b && p.between[1] == a)
            })
            .map_or(self.links.default_one_way_ms, |p| p.one_way_ms)
    }
}
