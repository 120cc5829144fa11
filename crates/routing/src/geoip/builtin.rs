//! The GeoIP table compiled into the binary, so a machine without `tor-geoipdb` still locates
//! clients.
//!
//! `data/geoip.bin` is written by `scripts/gen-geoip.py` from the Debian `tor-geoipdb` files;
//! the script's docstring specifies the format and `data/GEOIP-LICENSE.md` gives the source and
//! licence (CC BY-SA 4.0). In short: magic `MGEO1`, the export date, a country table, then three
//! sections (IPv4; IPv6 ranges of whole /64s, in /64 units; the other IPv6 ranges) of varint
//! records `(span << 1 | adjacent)`, `gap` unless adjacent, country index.

use super::GeoIpDb;
use crate::RoutingError;
use crate::location::Country;

/// Export date of the IPFire location database the built-in table was generated from.
pub const BUILTIN_DATE: &str = "2026-06-25";

/// What the built-in table is, in one line for logs.
pub const BUILTIN_SOURCE: &str = "built-in GeoIP table (IPFire location database export of \
     2026-06-25 via Debian tor-geoipdb, CC BY-SA 4.0, https://location.ipfire.org)";

/// The table itself, about 2.4 MB.
static BUILTIN: &[u8] = include_bytes!("../../data/geoip.bin");

const MAGIC: &[u8] = b"MGEO1";

/// The smallest record (one-byte head, gap omitted, one-byte country), to bound a count by the
/// bytes left before reserving space for it.
const MIN_RECORD_BYTES: usize = 2;

impl GeoIpDb {
    /// The table compiled into the binary ([`BUILTIN_SOURCE`]).
    pub fn builtin() -> Result<GeoIpDb, RoutingError> {
        GeoIpDb::decode(BUILTIN)
    }

    /// Decodes a table in the `data/geoip.bin` format; malformed input is an error, never a
    /// panic.
    pub fn decode(bytes: &[u8]) -> Result<GeoIpDb, RoutingError> {
        decode_dated(bytes).map(|(_, db)| db)
    }
}

/// The table's export date and its ranges.
fn decode_dated(bytes: &[u8]) -> Result<(&str, GeoIpDb), RoutingError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(r.error("not an MGEO1 table"));
    }
    let date_len = r.byte()?;
    let date = std::str::from_utf8(r.take(date_len.into())?).map_err(|_| r.error("bad date"))?;

    let n = r.count(2)?;
    let mut countries = Vec::with_capacity(n);
    for _ in 0..n {
        let code = r.take(2)?;
        let country = std::str::from_utf8(code)
            .ok()
            .and_then(|s| Country::new(s).ok())
            .ok_or_else(|| r.error("bad country code"))?;
        countries.push(country);
    }

    let mut db = GeoIpDb::new();
    section(&mut r, &IPV4, &countries, &mut db.v4)?;
    section(&mut r, &IPV6_WHOLE_64, &countries, &mut db.v6)?;
    section(&mut r, &IPV6_OTHER, &countries, &mut db.v6)?;
    if r.pos != bytes.len() {
        return Err(r.error("trailing bytes"));
    }
    // Each IPv6 section is sorted; the stable sort finds the two runs and merges them.
    db.v6.sort_by_key(|range| range.0);
    let disjoint = db
        .v6
        .iter()
        .zip(db.v6.iter().skip(1))
        .all(|(a, b)| a.1 < b.0);
    if !disjoint {
        return Err(r.error("IPv6 sections overlap"));
    }
    Ok((date, db))
}

/// How a section's numbers map to addresses: units of `2^shift` addresses, at most `max_unit`.
struct Unit {
    shift: u32,
    max_unit: u128,
}

const IPV4: Unit = Unit {
    shift: 0,
    max_unit: u32::MAX as u128,
};
const IPV6_WHOLE_64: Unit = Unit {
    shift: 64,
    max_unit: u64::MAX as u128,
};
const IPV6_OTHER: Unit = Unit {
    shift: 0,
    max_unit: u128::MAX,
};

/// Appends one section's ranges to `out`. Gap encoding makes them sorted and disjoint.
fn section<T: TryFrom<u128>>(
    r: &mut Reader<'_>,
    unit: &Unit,
    countries: &[Country],
    out: &mut Vec<(T, T, Country)>,
) -> Result<(), RoutingError> {
    let count = r.count(MIN_RECORD_BYTES)?;
    out.reserve(count);
    // The last address in a unit, added to the end unit's first address.
    let low = match unit.shift {
        0 => 0,
        s => u128::MAX >> (128 - s),
    };
    // First unit after the previous range; `None` once a range ends at the last unit.
    let mut next = Some(0u128);
    for _ in 0..count {
        let head = r.varint()?;
        let span = head >> 1;
        let gap = if head & 1 == 1 { 0 } else { r.varint()? };
        let index = r.varint()?;
        let country = usize::try_from(index)
            .ok()
            .and_then(|i| countries.get(i))
            .copied()
            .ok_or_else(|| r.error("country index out of range"))?;
        let start = next
            .and_then(|n| n.checked_add(gap))
            .filter(|&s| s <= unit.max_unit)
            .ok_or_else(|| r.error("range beyond the address space"))?;
        let end = start
            .checked_add(span)
            .filter(|&e| e <= unit.max_unit)
            .ok_or_else(|| r.error("range beyond the address space"))?;
        next = end.checked_add(1);
        let addr = |u: u128, low: u128| T::try_from((u << unit.shift) | low);
        match (addr(start, 0), addr(end, low)) {
            (Ok(s), Ok(e)) => out.push((s, e, country)),
            _ => return Err(r.error("range beyond the address space")),
        }
    }
    Ok(())
}

/// A cursor over the table's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, what: &str) -> RoutingError {
        RoutingError::GeoIpData(format!("{what} at byte {}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RoutingError> {
        let bytes = self.bytes;
        let slice = self
            .pos
            .checked_add(n)
            .and_then(|end| bytes.get(self.pos..end))
            .ok_or_else(|| self.error("truncated"))?;
        self.pos += n;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, RoutingError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.error("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    /// An unsigned LEB128 number of up to 128 bits.
    fn varint(&mut self) -> Result<u128, RoutingError> {
        let mut value = 0u128;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            let part = u128::from(b & 0x7f);
            if shift >= 128 || (shift > 0 && part >> (128 - shift) != 0) {
                return Err(self.error("varint overflows 128 bits"));
            }
            value |= part << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// A count of items of at least `min_bytes` each, no more than the remaining bytes hold.
    fn count(&mut self, min_bytes: usize) -> Result<usize, RoutingError> {
        let n = self.varint()?;
        let room = self.bytes.len().saturating_sub(self.pos) / min_bytes;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= room)
            .ok_or_else(|| self.error("count larger than the data"))
    }
}

#[cfg(test)]
#[path = "builtin_tests.rs"]
mod tests;
