//! Meridian's routing decisions, pure: no sockets, no tokio, no clock, no global randomness.
//!
//! This is the bottom of the traffic plane. The DNS server (`meridian-dns`) and the gateway
//! (`meridian-gateway`) feed it plain data — a record set's [`Target`]s, the [`Client`]'s
//! location, each target's [`Availability`] from the health checker, and a [`Random`] — and get
//! back which targets answer ([`decide`]) or the order to try them in ([`rank`]).
//!
//! - [`policy`]: Route 53's policies (simple, failover, weighted, latency, geolocation,
//!   geoproximity, multivalue), each combined with health and operator weight.
//! - [`geoip`], [`locator`], [`continents`]: client address → country → continent/coordinates,
//!   from a GeoIP table built into the binary or Debian's `tor-geoipdb` files, and a configured
//!   CIDR table that overrides them.
//! - [`rng`]: the randomness seam; tests print their seed.

pub mod cidr;
pub mod continents;
pub mod geoip;
pub mod latency;
pub mod location;
pub mod locator;
pub mod policy;
pub mod rng;

#[cfg(test)]
mod policy_tests;

pub use cidr::Cidr;
pub use continents::{continent_of, country_centre, is_iso_country};
pub use geoip::GeoIpDb;
pub use latency::{LatencyRow, LatencyTable};
pub use location::{ClientLocation, Continent, Coordinates, Country};
pub use locator::{GeoConfig, Locator, NetworkLocation};
pub use policy::{
    Availability, Client, Decision, FailoverRole, GeoLocation, Inputs, MULTIVALUE_MAX, Policy,
    Target, decide, rank, validate,
};
pub use rng::{Random, SplitMix64};

/// Errors from parsing routing data and validating record sets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoutingError {
    /// Not a two-letter country code.
    #[error("invalid country code {0:?}")]
    InvalidCountry(String),
    /// Not a continent code.
    #[error("unknown continent {0:?} (expected AF, AN, AS, EU, NA, OC or SA)")]
    UnknownContinent(String),
    /// Not a CIDR network.
    #[error("invalid network {0:?}")]
    InvalidCidr(String),
    /// A GeoIP file line could not be parsed.
    #[error("geoip line {line}: {reason}")]
    GeoIpLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A binary GeoIP table (`data/geoip.bin` format) is malformed.
    #[error("geoip table: {0}")]
    GeoIpData(String),
    /// A file could not be read.
    #[error("reading {0}")]
    Io(String),
    /// A record set's target does not fit its policy.
    #[error("target {id:?}: {reason}")]
    InvalidTarget {
        /// The target's id (empty for record-set-wide problems).
        id: String,
        /// What is wrong.
        reason: String,
    },
}
