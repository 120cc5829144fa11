//! Client address → [`ClientLocation`]: a configured CIDR table first (longest prefix wins), then
//! the GeoIP database, then the country → continent and centre tables.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::RoutingError;
use crate::cidr::Cidr;
use crate::continents::{continent_centre, continent_of, country_centre};
use crate::geoip::GeoIpDb;
use crate::location::{ClientLocation, Continent, Coordinates, Country};

/// One configured network and where its clients are. Unset fields are derived (continent from
/// country, coordinates from country or continent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkLocation {
    /// The network, e.g. `"203.0.113.0/24"`.
    pub network: Cidr,
    /// Country of the network's clients.
    #[serde(default)]
    pub country: Option<Country>,
    /// Continent, when it cannot be derived from `country`.
    #[serde(default)]
    pub continent: Option<Continent>,
    /// Coordinates for geoproximity.
    #[serde(default)]
    pub coordinates: Option<Coordinates>,
}

/// Geolocation configuration shared by the DNS server and the gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoConfig {
    /// Path of a `tor-geoipdb` IPv4 file, usually `/usr/share/tor/geoip`.
    #[serde(default)]
    pub geoip_v4_path: Option<PathBuf>,
    /// Path of a `tor-geoipdb` IPv6 file, usually `/usr/share/tor/geoip6`.
    #[serde(default)]
    pub geoip_v6_path: Option<PathBuf>,
    /// Networks whose location is configured; these win over the GeoIP files.
    #[serde(default)]
    pub networks: Vec<NetworkLocation>,
}

/// Locates clients by address.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    /// Sorted by prefix length, longest first, so the first match is the most specific.
    overrides: Vec<NetworkLocation>,
    db: GeoIpDb,
}

impl Locator {
    /// A locator over a loaded database and a configured table.
    pub fn new(db: GeoIpDb, mut overrides: Vec<NetworkLocation>) -> Self {
        overrides.sort_by_key(|n| std::cmp::Reverse(n.network.prefix_len()));
        Locator { overrides, db }
    }

    /// Builds a locator from configuration, reading the GeoIP files it names.
    pub fn from_config(config: &GeoConfig) -> Result<Self, RoutingError> {
        let db = match &config.geoip_v4_path {
            Some(v4) => GeoIpDb::from_files(v4, config.geoip_v6_path.as_deref())?,
            None => {
                let mut db = GeoIpDb::new();
                if let Some(v6) = &config.geoip_v6_path {
                    let text = std::fs::read_to_string(v6)
                        .map_err(|e| RoutingError::Io(format!("{}: {e}", v6.display())))?;
                    db.load_v6(&text)?;
                }
                db
            }
        };
        Ok(Locator::new(db, config.networks.clone()))
    }

    /// Where the client at `ip` is, as far as is known.
    pub fn locate(&self, ip: IpAddr) -> ClientLocation {
        let configured = self.overrides.iter().find(|n| n.network.contains(ip));
        let country = configured
            .and_then(|n| n.country)
            .or_else(|| match configured {
                // A configured continent without a country must not be contradicted by GeoIP.
                Some(n) if n.continent.is_some() => None,
                _ => self.db.country(ip),
            });
        let continent = configured
            .and_then(|n| n.continent)
            .or_else(|| country.and_then(continent_of));
        let coordinates = configured
            .and_then(|n| n.coordinates)
            .or_else(|| country.and_then(country_centre))
            .or_else(|| continent.map(continent_centre));
        ClientLocation {
            country,
            continent,
            coordinates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locator() -> Locator {
        let mut db = GeoIpDb::new();
        db.load_v4("16777216,16777471,AU\n3221225984,3221226239,US\n")
            .expect("v4");
        let toml = r#"
            [[networks]]
            network = "192.0.2.128/25"
            country = "DE"
            [[networks]]
            network = "192.0.2.192/26"
            continent = "AS"
            coordinates = { lat = 1.0, lon = 2.0 }
            [[networks]]
            network = "10.0.0.0/8"
            country = "BR"
        "#;
        let cfg: GeoConfig = toml::from_str(toml).expect("config");
        Locator::new(db, cfg.networks)
    }

    #[test]
    fn locate_table() {
        let l = locator();
        let c = |s: &str| Some(Country::new(s).expect("cc"));
        let cases = [
            ("1.0.0.9", c("AU"), Some(Continent::OC)),
            ("192.0.2.1", c("US"), Some(Continent::NA)),
            ("192.0.2.129", c("DE"), Some(Continent::EU)),
            ("192.0.2.200", None, Some(Continent::AS)),
            ("10.9.9.9", c("BR"), Some(Continent::SA)),
            ("8.8.8.8", None, None),
        ];
        for (ip, country, continent) in cases {
            let got = l.locate(ip.parse().expect(ip));
            assert_eq!((got.country, got.continent), (country, continent), "{ip}");
        }
        let got = l.locate("192.0.2.200".parse().expect("ip"));
        assert_eq!(got.coordinates, Some(Coordinates { lat: 1.0, lon: 2.0 }));
        assert!(
            l.locate("8.8.8.8".parse().expect("ip"))
                .coordinates
                .is_none()
        );
    }

    #[test]
    fn config_is_strict() {
        let err = toml::from_str::<GeoConfig>(
            "[[networks]]\nnetwork = \"10.0.0.0/8\"\ncountri = \"DE\"\n",
        );
        assert!(err.is_err());
        assert!(toml::from_str::<GeoConfig>("[[networks]]\nnetwork = \"10.0.0.0/40\"\n").is_err());
    }
}
