//! The DNS role's configuration: one strict struct, every example file parse-tested.

use std::net::SocketAddr;

use crate::health::HealthConfig;
use meridian_routing::{GeoConfig, LatencyTable, Policy, Target};
use serde::{Deserialize, Serialize};

/// Configuration of `meridian dns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// UDP addresses to answer on (port 0 picks a free port).
    #[serde(default)]
    pub listen_udp: Vec<SocketAddr>,
    /// TCP addresses to answer on.
    #[serde(default)]
    pub listen_tcp: Vec<SocketAddr>,
    /// UDP sockets bound to each `listen_udp` address with `SO_REUSEPORT`, each answered by its
    /// own task; the number of CPUs when unset.
    #[serde(default)]
    pub udp_sockets_per_address: Option<usize>,
    /// `SO_RCVBUF` of each UDP socket, so bursts queue instead of being dropped (the kernel
    /// caps it at `net.core.rmem_max`); 0 keeps the system default.
    #[serde(default = "default_udp_recv_buffer")]
    pub udp_recv_buffer_bytes: usize,
    /// Idle TCP connections are closed after this long.
    #[serde(default = "default_tcp_idle_ms")]
    pub tcp_idle_timeout_ms: u64,
    /// Largest UDP response advertised in the response EDNS (1232 avoids IP fragmentation).
    #[serde(default = "default_udp_payload")]
    pub max_udp_payload_bytes: u16,
    /// Admin/status/metrics HTTP API (`meridian dns` only; `meridian_dns::serve` ignores it).
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// Seed for weighted and multivalue choices; random when unset. Set it to replay.
    #[serde(default)]
    pub rng_seed: Option<u64>,
    /// Client geolocation.
    #[serde(default)]
    pub geo: GeoConfig,
    /// Latency table for the latency policy.
    #[serde(default)]
    pub latency: LatencyTable,
    /// Health checks run by `meridian dns` (record `health_check` names refer to these).
    #[serde(default)]
    pub health: HealthConfig,
    /// Authoritative zones.
    pub zones: Vec<ZoneConfig>,
}

fn default_tcp_idle_ms() -> u64 {
    5_000
}
fn default_udp_recv_buffer() -> usize {
    4 * 1024 * 1024
}
fn default_udp_payload() -> u16 {
    1232
}

/// One authoritative zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The zone apex, e.g. `"db.example.com."`.
    pub origin: String,
    /// Default TTL of the zone's records. Keep it low: it bounds failover time for clients.
    #[serde(default = "default_ttl_secs")]
    pub ttl_secs: u32,
    /// The SOA record.
    pub soa: SoaConfig,
    /// Name servers of the zone (NS records at the apex).
    pub ns: Vec<String>,
    /// Record sets.
    #[serde(default)]
    pub records: Vec<RecordSetConfig>,
}

fn default_ttl_secs() -> u32 {
    5
}

/// The zone's SOA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoaConfig {
    /// Primary name server.
    pub mname: String,
    /// Responsible mailbox as a name (`hostmaster.example.com.`).
    pub rname: String,
    /// Serial.
    #[serde(default = "default_serial")]
    pub serial: u32,
    /// Secondary refresh interval.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u32,
    /// Secondary retry interval.
    #[serde(default = "default_retry")]
    pub retry_secs: u32,
    /// Secondary expiry.
    #[serde(default = "default_expire")]
    pub expire_secs: u32,
    /// Negative-caching TTL (RFC 2308): how long NXDOMAIN/NODATA answers are cached.
    #[serde(default = "default_ttl_secs")]
    pub minimum_secs: u32,
}

fn default_serial() -> u32 {
    1
}
fn default_refresh() -> u32 {
    3600
}
fn default_retry() -> u32 {
    600
}
fn default_expire() -> u32 {
    86_400
}

/// Record types a record set may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    AAAA,
    /// Text strings.
    TXT,
}

/// A record set: one name and type, answered under one routing policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSetConfig {
    /// Owner name relative to the origin (`"api"`), `"@"` for the apex, or absolute (`"x.db.example.com."`).
    pub name: String,
    /// Record type.
    #[serde(rename = "type")]
    pub kind: RecordKind,
    /// TTL; the zone's `ttl_secs` when unset.
    #[serde(default)]
    pub ttl_secs: Option<u32>,
    /// Routing policy.
    #[serde(default = "default_policy")]
    pub policy: Policy,
    /// Answer candidates; `values` are addresses (A/AAAA) or strings (TXT).
    pub targets: Vec<Target<Vec<String>>>,
}

fn default_policy() -> Policy {
    Policy::Simple
}

impl DnsConfig {
    /// The fields that differ in `other` and take effect only when the server starts: its
    /// listeners, sockets and seed. Everything else a running server applies.
    pub fn restart_fields(&self, other: &DnsConfig) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                out.push(name);
            }
        };
        check("listen_udp", self.listen_udp != other.listen_udp);
        check("listen_tcp", self.listen_tcp != other.listen_tcp);
        check(
            "udp_sockets_per_address",
            self.udp_sockets_per_address != other.udp_sockets_per_address,
        );
        check(
            "udp_recv_buffer_bytes",
            self.udp_recv_buffer_bytes != other.udp_recv_buffer_bytes,
        );
        check(
            "tcp_idle_timeout_ms",
            self.tcp_idle_timeout_ms != other.tcp_idle_timeout_ms,
        );
        check("admin_listen", self.admin_listen != other.admin_listen);
        check("rng_seed", self.rng_seed != other.rng_seed);
        out
    }

    /// Parses TOML and validates it (zones, names, values, policies, health-check names).
    pub fn from_toml(text: &str) -> Result<Self, crate::ConfigError> {
        let config: DnsConfig =
            toml::from_str(text).map_err(|e| crate::ConfigError::new("dns", e.to_string()))?;
        super::zone::Zones::compile(&config)?;
        Ok(config)
    }
}
