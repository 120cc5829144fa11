//! Client address → [`ClientLocation`]: a configured CIDR table first (longest prefix wins), then
//! the GeoIP database (the built-in table, or the `tor-geoipdb` files configured instead), then the
//! country → continent and centre tables.

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

/// Geolocation configuration shared by the DNS server and the gateway. With neither GeoIP path
/// set, the table built into the binary is used ([`GeoIpDb::builtin`]); with either set, exactly
/// the named files are read and the built-in table is not used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoConfig {
    /// Path of a `tor-geoipdb` IPv4 file, usually `/usr/share/tor/geoip`; a missing file is an
    /// error.
    #[serde(default)]
    pub geoip_v4_path: Option<PathBuf>,
    /// Path of a `tor-geoipdb` IPv6 file, usually `/usr/share/tor/geoip6`; a missing file is an
    /// error.
    #[serde(default)]
    pub geoip_v6_path: Option<PathBuf>,
    /// Networks whose location is configured; these win over the GeoIP database.
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

    /// Builds a locator from configuration: the GeoIP files it names, or the built-in table when
    /// it names none.
    pub fn from_config(config: &GeoConfig) -> Result<Self, RoutingError> {
        let db = match (&config.geoip_v4_path, &config.geoip_v6_path) {
            (None, None) => GeoIpDb::builtin()?,
            (Some(v4), v6) => GeoIpDb::from_files(v4, v6.as_deref())?,
            (None, Some(v6)) => {
                let text = std::fs::read_to_string(v6)
                    .map_err(|e| RoutingError::Io(format!("{}: {e}", v6.display())))?;
                let mut db = GeoIpDb::new();
                db.load_v6(&text)?;
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
    fn from_config_uses_builtin_table_without_paths() {
        let cfg: GeoConfig =
            toml::from_str("[[networks]]\nnetwork = \"81.2.69.0/24\"\ncountry = \"DE\"\n")
                .expect("config");
        let l = Locator::from_config(&cfg).expect("builtin");
        let country = |ip: &str| {
            l.locate(ip.parse().expect(ip))
                .country
                .map(|c| c.to_string())
        };
        assert_eq!(country("1.0.0.1").as_deref(), Some("AU"));
        assert_eq!(country("81.2.70.1").as_deref(), Some("GB"));
        assert_eq!(country("2a00:1450::1").as_deref(), Some("IE"));
        // The configured network still wins over the table.
        assert_eq!(country("81.2.69.160").as_deref(), Some("DE"));
        assert_eq!(country("127.0.0.1"), None);
    }

    #[test]
    fn from_config_reads_exactly_the_named_files() {
        let dir = std::env::temp_dir().join(format!("meridian-locator-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (v4, v6) = (dir.join("geoip"), dir.join("geoip6"));
        std::fs::write(&v4, "16777216,16777471,JP\n").expect("write v4");
        std::fs::write(&v6, "2a00::,2a00:ffff:ffff:ffff:ffff:ffff:ffff:ffff,FR\n")
            .expect("write v6");
        let cfg = |v4: Option<&PathBuf>, v6: Option<&PathBuf>| GeoConfig {
            geoip_v4_path: v4.cloned(),
            geoip_v6_path: v6.cloned(),
            networks: Vec::new(),
        };
        let country = |l: &Locator, ip: &str| {
            l.locate(ip.parse().expect(ip))
                .country
                .map(|c| c.to_string())
        };

        let both = Locator::from_config(&cfg(Some(&v4), Some(&v6))).expect("both files");
        assert_eq!(country(&both, "1.0.0.1").as_deref(), Some("JP"));
        assert_eq!(country(&both, "2a00:1450::1").as_deref(), Some("FR"));
        // Only the files' ranges: nothing from the built-in table.
        assert_eq!(country(&both, "81.2.69.160"), None);

        let only_v4 = Locator::from_config(&cfg(Some(&v4), None)).expect("v4 file");
        assert_eq!(country(&only_v4, "1.0.0.1").as_deref(), Some("JP"));
        assert_eq!(country(&only_v4, "2a00:1450::1"), None);

        let only_v6 = Locator::from_config(&cfg(None, Some(&v6))).expect("v6 file");
        assert_eq!(country(&only_v6, "1.0.0.1"), None);
        assert_eq!(country(&only_v6, "2a00:1450::1").as_deref(), Some("FR"));

        let missing = dir.join("missing");
        for (a, b) in [
            (Some(&missing), None),
            (None, Some(&missing)),
            (Some(&v4), Some(&missing)),
        ] {
            let err = Locator::from_config(&cfg(a, b)).expect_err("missing file");
            assert!(matches!(err, RoutingError::Io(_)), "{err}");
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
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
