//! IP → country, from the table built into the binary ([`GeoIpDb::builtin`]) or from Debian's
//! `tor-geoipdb` files.
//!
//! `/usr/share/tor/geoip` has lines `startIPnum,endIPnum,CC` (IPv4 as decimal integers) and
//! `/usr/share/tor/geoip6` has `startIP,endIP,CC` (IPv6 text). `#` starts a comment. Ranges do not
//! overlap; `??` marks unassigned space and is skipped.

mod builtin;

pub use builtin::{BUILTIN_DATE, BUILTIN_SOURCE};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::RoutingError;
use crate::cidr::ip_bits;
use crate::location::Country;

/// Sorted, non-overlapping address ranges with their country.
#[derive(Debug, Clone, Default)]
pub struct GeoIpDb {
    v4: Vec<(u32, u32, Country)>,
    v6: Vec<(u128, u128, Country)>,
}

fn parse_country(cc: &str, line_no: usize) -> Result<Option<Country>, RoutingError> {
    let cc = cc.trim();
    if cc == "??" {
        return Ok(None);
    }
    Country::new(cc)
        .map(Some)
        .map_err(|_| RoutingError::GeoIpLine {
            line: line_no,
            reason: format!("bad country {cc:?}"),
        })
}

fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn split3(line: &str, line_no: usize) -> Result<(&str, &str, &str), RoutingError> {
    let mut it = line.split(',');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(a), Some(b), Some(c), None) => Ok((a.trim(), b.trim(), c)),
        _ => Err(RoutingError::GeoIpLine {
            line: line_no,
            reason: "expected 3 fields".into(),
        }),
    }
}

impl GeoIpDb {
    /// An empty database (every lookup misses).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the ranges of a `geoip` (IPv4, decimal) file.
    pub fn load_v4(&mut self, text: &str) -> Result<(), RoutingError> {
        for (no, line) in data_lines(text) {
            let (a, b, cc) = split3(line, no)?;
            let bad = |what: &str| RoutingError::GeoIpLine {
                line: no,
                reason: format!("bad {what}"),
            };
            let start: u32 = a.parse().map_err(|_| bad("start"))?;
            let end: u32 = b.parse().map_err(|_| bad("end"))?;
            if end < start {
                return Err(bad("range (end < start)"));
            }
            if let Some(cc) = parse_country(cc, no)? {
                self.v4.push((start, end, cc));
            }
        }
        self.v4.sort_unstable_by_key(|r| r.0);
        Ok(())
    }

    /// Adds the ranges of a `geoip6` (IPv6, text) file.
    pub fn load_v6(&mut self, text: &str) -> Result<(), RoutingError> {
        for (no, line) in data_lines(text) {
            let (a, b, cc) = split3(line, no)?;
            let bad = |what: &str| RoutingError::GeoIpLine {
                line: no,
                reason: format!("bad {what}"),
            };
            let start: Ipv6Addr = a.parse().map_err(|_| bad("start"))?;
            let end: Ipv6Addr = b.parse().map_err(|_| bad("end"))?;
            let (start, end) = (u128::from(start), u128::from(end));
            if end < start {
                return Err(bad("range (end < start)"));
            }
            if let Some(cc) = parse_country(cc, no)? {
                self.v6.push((start, end, cc));
            }
        }
        self.v6.sort_unstable_by_key(|r| r.0);
        Ok(())
    }

    /// Loads `geoip` and, if given, `geoip6` from disk.
    pub fn from_files(
        v4_path: &std::path::Path,
        v6_path: Option<&std::path::Path>,
    ) -> Result<Self, RoutingError> {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p)
                .map_err(|e| RoutingError::Io(format!("{}: {e}", p.display())))
        };
        let mut db = GeoIpDb::new();
        db.load_v4(&read(v4_path)?)?;
        if let Some(p) = v6_path {
            db.load_v6(&read(p)?)?;
        }
        Ok(db)
    }

    /// Number of IPv4 and IPv6 ranges loaded.
    pub fn len(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    /// Whether no ranges are loaded.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The country of `ip`, if a range covers it.
    pub fn country(&self, ip: IpAddr) -> Option<Country> {
        let (bits, width) = ip_bits(ip);
        if width == 32 {
            let ip = Ipv4Addr::from(bits as u32);
            find(&self.v4, u32::from(ip))
        } else {
            find(&self.v6, bits)
        }
    }
}

fn find<T: Ord + Copy>(ranges: &[(T, T, Country)], x: T) -> Option<Country> {
    // Index of the first range starting after x; the candidate is the one before it.
    let idx = ranges.partition_point(|r| r.0 <= x);
    let (_, end, cc) = ranges.get(idx.checked_sub(1)?)?;
    (x <= *end).then_some(*cc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "# comment\n\
        15726992,15726999,??\n\
        16777216,16777471,AU\n\
        16777472,16778239,CN\n\
        3221225984,3221226239,US\n"; // 192.0.2.0/24
    const V6: &str = "2001::,2001:0:ffff:ffff:ffff:ffff:ffff:ffff,??\n\
        2001:2::,2001:2:0:ffff:ffff:ffff:ffff:ffff,JP\n\
        2a00::,2a00:ffff:ffff:ffff:ffff:ffff:ffff:ffff,DE\n";

    #[test]
    fn lookups() {
        let mut db = GeoIpDb::new();
        db.load_v4(V4).expect("v4");
        db.load_v6(V6).expect("v6");
        assert_eq!(db.len(), (3, 2));
        let cases = [
            ("1.0.0.0", Some("AU")),
            ("1.0.0.255", Some("AU")),
            ("1.0.1.0", Some("CN")),
            ("1.0.3.255", Some("CN")),
            ("1.0.4.0", None),
            ("0.239.250.150", None), // inside the ?? range
            ("192.0.2.77", Some("US")),
            ("::ffff:192.0.2.77", Some("US")),
            ("2001:2::1", Some("JP")),
            ("2001::1", None),
            ("2a00:1450::1", Some("DE")),
            ("2c00::1", None),
        ];
        for (ip, want) in cases {
            let got = db.country(ip.parse().expect(ip));
            assert_eq!(got.map(|c| c.to_string()).as_deref(), want, "{ip}");
        }
    }

    #[test]
    fn rejects_bad_lines() {
        for bad in ["1,2", "1,2,3,4", "x,2,US", "5,2,US", "1,2,USA"] {
            assert!(GeoIpDb::new().load_v4(bad).is_err(), "{bad}");
        }
        assert!(GeoIpDb::new().load_v6("2001::,zz,US").is_err());
    }

    /// Parses the real Debian file when it is installed (`apt-get install tor-geoipdb`).
    #[test]
    fn real_tor_geoipdb_if_installed() {
        let v4 = std::path::Path::new("/usr/share/tor/geoip");
        if !v4.exists() {
            eprintln!("skipping: /usr/share/tor/geoip not installed");
            return;
        }
        let v6 = std::path::Path::new("/usr/share/tor/geoip6");
        let db = GeoIpDb::from_files(v4, v6.exists().then_some(v6)).expect("parse tor geoip");
        assert!(db.len().0 > 100_000);
        assert_eq!(
            db.country("1.0.0.1".parse().expect("ip"))
                .map(|c| c.to_string()),
            Some("AU".into())
        );
    }
}
