//! IPv4/IPv6 networks in CIDR notation (`"203.0.113.0/24"`, `"2001:db8::/32"`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::RoutingError;

/// An IP network. IPv4 networks also match IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix_len: u8,
}

/// An address as a 128-bit number plus its family width, so v4 and v6 share one code path.
pub(crate) fn ip_bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (u128::from(u32::from(v4)), 32),
            None => (u128::from(v6), 128),
        },
    }
}

fn mask(width: u8, prefix_len: u8) -> u128 {
    if prefix_len == 0 {
        return 0;
    }
    let all = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    all & (all << (width - prefix_len))
}

impl Cidr {
    /// A network from an address and prefix length; host bits are cleared.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, RoutingError> {
        let (bits, width) = ip_bits(addr);
        if prefix_len > width {
            return Err(RoutingError::InvalidCidr(format!("{addr}/{prefix_len}")));
        }
        let net = bits & mask(width, prefix_len);
        let addr = if width == 32 {
            IpAddr::V4(std::net::Ipv4Addr::from(net as u32))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(net))
        };
        Ok(Cidr { addr, prefix_len })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, net_width) = ip_bits(self.addr);
        let (bits, width) = ip_bits(ip);
        width == net_width && bits & mask(width, self.prefix_len) == net
    }
}

impl FromStr for Cidr {
    type Err = RoutingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RoutingError::InvalidCidr(s.to_string());
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let len = match len {
            Some(l) => l.trim().parse::<u8>().map_err(|_| bad())?,
            None => ip_bits(addr).1,
        };
        Cidr::new(addr, len).map_err(|_| bad())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_table() {
        let cases = [
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("10.1.2.3/8", "10.200.0.1", true), // host bits cleared
            ("0.0.0.0/0", "192.0.2.1", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("192.0.2.0/24", "::ffff:192.0.2.9", true),
            ("2001:db8::/32", "2001:db8:1::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::/0", "2001:db8::1", true),
            ("198.51.100.7", "198.51.100.7", true),
            ("198.51.100.7", "198.51.100.8", false),
        ];
        for (net, ip, want) in cases {
            let net: Cidr = net.parse().expect(net);
            assert_eq!(net.contains(ip.parse().expect(ip)), want, "{net} ∋ {ip}");
        }
    }

    #[test]
    fn rejects_bad_networks() {
        for bad in [
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0/8",
            "x/1",
            "10.0.0.0/-1",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
