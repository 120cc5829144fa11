//! The latency table: measured or configured round-trip times from client networks to regions,
//! the input of latency-based routing (Route 53 measures these itself; we are told them).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::location::{ClientLocation, Continent, Country};

/// Latencies from one group of clients to each region. A row matches a client by network
/// (most specific), else by country, else by continent; a row with no matchers is the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyRow {
    /// Client networks this row describes.
    #[serde(default)]
    pub networks: Vec<Cidr>,
    /// Client countries this row describes.
    #[serde(default)]
    pub countries: Vec<Country>,
    /// Client continents this row describes.
    #[serde(default)]
    pub continents: Vec<Continent>,
    /// Region name → round-trip time in milliseconds.
    pub latency_ms: BTreeMap<String, u32>,
}

impl LatencyRow {
    fn is_default(&self) -> bool {
        self.networks.is_empty() && self.countries.is_empty() && self.continents.is_empty()
    }
}

/// All latency rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LatencyTable {
    /// The rows, in any order.
    pub rows: Vec<LatencyRow>,
}

impl LatencyTable {
    /// The row describing a client at `ip` located at `location`.
    pub fn row_for(&self, ip: Option<IpAddr>, location: &ClientLocation) -> Option<&LatencyRow> {
        let by_network = ip.and_then(|ip| {
            self.rows
                .iter()
                .filter_map(|r| {
                    r.networks
                        .iter()
                        .filter(|n| n.contains(ip))
                        .map(|n| n.prefix_len())
                        .max()
                        .map(|len| (len, r))
                })
                .max_by_key(|(len, _)| *len)
                .map(|(_, r)| r)
        });
        by_network
            .or_else(|| {
                let c = location.country?;
                self.rows.iter().find(|r| r.countries.contains(&c))
            })
            .or_else(|| {
                let c = location.continent?;
                self.rows.iter().find(|r| r.continents.contains(&c))
            })
            .or_else(|| self.rows.iter().find(|r| r.is_default()))
    }

    /// Latency from the client to `region`, if the table knows it.
    pub fn latency_ms(
        &self,
        ip: Option<IpAddr>,
        location: &ClientLocation,
        region: &str,
    ) -> Option<u32> {
        self.row_for(ip, location)?.latency_ms.get(region).copied()
    }
}
