//! The gateway role's configuration: one strict struct, units in names.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::ConfigError;
use crate::health::HealthConfig;
use meridian_routing::{Continent, Country};
use serde::{Deserialize, Serialize};

/// Configuration of `meridian gateway`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address the DynamoDB API proxy listens on.
    pub listen: SocketAddr,
    /// Admin API (`/admin/status`, `/metrics`, drain/undrain/weight); off when unset.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// What a write does when its user's home region is unavailable.
    #[serde(default)]
    pub write_failover: WriteFailover,
    /// Time to connect to a region before trying the next one.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time to wait for a region's response headers before giving up on it.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Largest request body accepted (DynamoDB's own limit is 16 MiB).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// A request body must arrive within this many milliseconds.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// Bytes of all request bodies being received at once (claimed by `Content-Length`, or
    /// `max_body_bytes` without one); a request beyond it gets `ThrottlingException` at once.
    #[serde(default = "default_body_budget_bytes")]
    pub body_budget_bytes: usize,
    /// Client connections at once; beyond it new ones wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A request's head must arrive within this many milliseconds (also the longest a
    /// keep-alive connection may stay silent).
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// The CA bundle (PEM) `https://` region endpoints' certificates are checked against.
    #[serde(default)]
    pub region_ca: Option<std::path::PathBuf>,
    /// Serve the proxy over HTTPS with this PEM certificate chain (with `tls_key`).
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of `tls_cert` (refused when every user may read it).
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
    /// Seed for weighted traffic shifts; random when unset.
    #[serde(default)]
    pub rng_seed: Option<u64>,
    /// Health checks of the regions (endpoint names are region names).
    #[serde(default)]
    pub health: HealthConfig,
    /// The regions, each with its DynamoDB endpoint.
    pub regions: Vec<RegionConfig>,
    /// Home-region pinning.
    #[serde(default)]
    pub pinning: PinningConfig,
    /// How long the session token of a pinned user's last write is remembered (between half
    /// this and this); 0 remembers none.
    #[serde(default = "default_session_ttl_ms")]
    pub session_ttl_ms: u64,
    /// Most pinned users whose session tokens are remembered at once.
    #[serde(default = "default_max_session_users")]
    pub max_session_users: usize,
}

fn default_connect_timeout_ms() -> u64 {
    500
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_max_body_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_body_timeout_ms() -> u64 {
    10_000
}
fn default_body_budget_bytes() -> usize {
    256 * 1024 * 1024
}
fn default_session_ttl_ms() -> u64 {
    600_000
}
fn default_max_session_users() -> usize {
    100_000
}
fn default_max_connections() -> usize {
    4096
}
fn default_header_timeout_ms() -> u64 {
    10_000
}

/// Whether writes may leave their home region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteFailover {
    /// Send the write to the next region in the failover order.
    Allow,
    /// Answer `ServiceUnavailableException`: writes stay in one place (no conflicts).
    #[default]
    Refuse,
}

/// One region behind the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// Region name; also the name of its health endpoint.
    pub name: String,
    /// Base URL of its DynamoDB API, e.g. `http://10.1.0.10:8000`.
    pub endpoint: String,
    /// Round-trip time from this gateway; lower is nearer. Regions without it come last.
    #[serde(default)]
    pub latency_ms: Option<u32>,
    /// Regions to try, in order, when this region is a user's home and is unavailable;
    /// nearest-first when empty.
    #[serde(default)]
    pub failover_order: Vec<String>,
}

/// How requests are pinned to their user's home region.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinningConfig {
    /// Header naming the user (checked first), e.g. `x-meridian-user`.
    #[serde(default)]
    pub user_header: Option<String>,
    /// Table name → its partition key attribute, whose value names the user.
    #[serde(default)]
    pub tables: BTreeMap<String, TablePinning>,
    /// User → registration country.
    #[serde(default)]
    pub users: BTreeMap<String, Country>,
    /// Registration country → home region.
    #[serde(default)]
    pub country_regions: BTreeMap<Country, String>,
    /// Continent → home region, for countries not listed.
    #[serde(default)]
    pub continent_regions: BTreeMap<Continent, String>,
}

/// Pinning of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TablePinning {
    /// The partition key attribute holding the user id.
    pub partition_key: String,
}

impl GatewayConfig {
    /// Parses TOML and validates it.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: GatewayConfig =
            toml::from_str(text).map_err(|e| ConfigError::new("gateway", e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The fields that differ in `other` and take effect only when the gateway starts: its
    /// listeners, TLS, connection and body bounds. Everything else a running gateway applies.
    pub fn restart_fields(&self, other: &GatewayConfig) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                out.push(name);
            }
        };
        check("listen", self.listen != other.listen);
        check("admin_listen", self.admin_listen != other.admin_listen);
        check("tls_cert", self.tls_cert != other.tls_cert);
        check("tls_key", self.tls_key != other.tls_key);
        check("region_ca", self.region_ca != other.region_ca);
        check(
            "connect_timeout_ms",
            self.connect_timeout_ms != other.connect_timeout_ms,
        );
        check(
            "max_connections",
            self.max_connections != other.max_connections,
        );
        check(
            "header_timeout_ms",
            self.header_timeout_ms != other.header_timeout_ms,
        );
        check(
            "body_budget_bytes",
            self.body_budget_bytes != other.body_budget_bytes,
        );
        check("rng_seed", self.rng_seed != other.rng_seed);
        out
    }

    /// Checks cross-references: endpoints parse, regions are unique and have health endpoints,
    /// failover orders and pinning name known regions.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::new("gateway", m));
        if self.regions.is_empty() {
            return bad("at least one region is required".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key go together".into());
        }
        let names: Vec<&str> = self.regions.iter().map(|r| r.name.as_str()).collect();
        let known = |n: &str| names.contains(&n);
        let health: Vec<&str> = self
            .health
            .endpoints
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        self.health
            .validate()
            .map_err(|e| ConfigError::new("gateway", e.to_string()))?;
        for (i, r) in self.regions.iter().enumerate() {
            if names[..i].contains(&r.name.as_str()) {
                return bad(format!("region {:?} is listed twice", r.name));
            }
            let uri: http::Uri = r.endpoint.parse().map_err(|e| {
                ConfigError::new("gateway", format!("region {}: endpoint: {e}", r.name))
            })?;
            let https = uri.scheme_str() == Some("https");
            if !(https || uri.scheme_str() == Some("http")) || uri.host().is_none() {
                return bad(format!(
                    "region {}: endpoint must be http(s)://host:port",
                    r.name
                ));
            }
            if https && self.region_ca.is_none() {
                return bad(format!(
                    "region {}: an https:// endpoint needs region_ca (the CA bundle to check it against)",
                    r.name
                ));
            }
            if !health.contains(&r.name.as_str()) {
                return bad(format!(
                    "region {}: no [[health.endpoints]] entry with this name",
                    r.name
                ));
            }
            if let Some(unknown) = r.failover_order.iter().find(|n| !known(n) || **n == r.name) {
                return bad(format!(
                    "region {}: failover_order names {unknown:?}",
                    r.name
                ));
            }
        }
        let p = &self.pinning;
        if let Some(region) = p
            .country_regions
            .values()
            .chain(p.continent_regions.values())
            .find(|r| !known(r))
        {
            return bad(format!("pinning names unknown region {region:?}"));
        }
        Ok(())
    }
}
