//! Tests of the built-in table and its decoder, with an encoder that follows the same rules as
//! `scripts/gen-geoip.py`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Instant;

use super::*;
use crate::rng::{Random, SplitMix64};

fn put_varint(out: &mut Vec<u8>, mut x: u128) {
    loop {
        let b = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_section(
    out: &mut Vec<u8>,
    ranges: &[(u128, u128, Country)],
    shift: u32,
    index: &HashMap<Country, usize>,
) {
    put_varint(out, ranges.len() as u128);
    let mut next = 0u128;
    for &(start, end, cc) in ranges {
        let (s, e) = (start >> shift, end >> shift);
        let gap = s - next;
        put_varint(out, ((e - s) << 1) | u128::from(gap == 0));
        if gap != 0 {
            put_varint(out, gap);
        }
        put_varint(out, index[&cc] as u128);
        next = e.wrapping_add(1);
    }
}

/// `db` in the `geoip.bin` format, byte for byte what `scripts/gen-geoip.py` writes.
fn encode(date: &str, db: &GeoIpDb) -> Vec<u8> {
    let v4: Vec<(u128, u128, Country)> = db
        .v4
        .iter()
        .map(|&(s, e, cc)| (u128::from(s), u128::from(e), cc))
        .collect();
    let mut counts = BTreeMap::<Country, usize>::new();
    for cc in v4.iter().chain(&db.v6).map(|r| r.2) {
        *counts.entry(cc).or_default() += 1;
    }
    let mut countries: Vec<Country> = counts.keys().copied().collect();
    countries.sort_by_key(|cc| (Reverse(counts[cc]), *cc));
    let index: HashMap<Country, usize> =
        countries.iter().enumerate().map(|(i, &c)| (c, i)).collect();

    let mut out = MAGIC.to_vec();
    out.push(date.len() as u8);
    out.extend_from_slice(date.as_bytes());
    put_varint(&mut out, countries.len() as u128);
    for cc in &countries {
        out.extend_from_slice(cc.as_str().as_bytes());
    }
    let low = u128::from(u64::MAX);
    let (whole, other): (Vec<_>, Vec<_>) = db
        .v6
        .iter()
        .partition(|r| r.0 & low == 0 && r.1 & low == low);
    put_section(&mut out, &v4, 0, &index);
    put_section(&mut out, &whole, 64, &index);
    put_section(&mut out, &other, 0, &index);
    out
}

fn sample() -> GeoIpDb {
    let mut db = GeoIpDb::new();
    db.load_v4("16777216,16777471,AU\n16777472,16778239,CN\n3221225984,3221226239,US\n")
        .expect("v4");
    db.load_v6(
        "2001:2::,2001:2:0:ffff:ffff:ffff:ffff:ffff,JP\n\
         2001:506:9::4,2001:506:9::5,BR\n\
         2a00::,2a00:ffff:ffff:ffff:ffff:ffff:ffff:ffff,DE\n",
    )
    .expect("v6");
    db
}

fn country(db: &GeoIpDb, ip: &str) -> Option<String> {
    db.country(ip.parse().expect(ip)).map(|c| c.to_string())
}

#[test]
fn builtin_answers_known_addresses() {
    let started = Instant::now();
    let (date, db) = decode_dated(BUILTIN).expect("shipped table decodes");
    eprintln!(
        "decoded {} bytes into {:?} ranges in {:?} ({} build)",
        BUILTIN.len(),
        db.len(),
        started.elapsed(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
    assert_eq!(date, BUILTIN_DATE);
    assert!(BUILTIN_SOURCE.contains(BUILTIN_DATE));
    assert!(
        db.len().0 > 300_000 && db.len().1 > 200_000,
        "{:?}",
        db.len()
    );
    let cases = [
        ("81.2.69.160", Some("GB")),
        ("1.0.0.1", Some("AU")),
        ("8.8.8.8", Some("US")),
        ("::ffff:81.2.69.160", Some("GB")),
        ("2a00:1450::1", Some("IE")),
        ("2001:67c:2e8::1", Some("NL")),
        // Inside a range that is finer than a /64.
        ("2001:506:9::5", Some("BR")),
        ("10.0.0.1", None),
        ("127.0.0.1", None),
        ("192.0.2.1", None),
        ("::1", None),
        ("2001:db8::1", None),
        ("fc00::1", None),
    ];
    for (ip, want) in cases {
        assert_eq!(country(&db, ip).as_deref(), want, "{ip}");
    }
    assert_eq!(GeoIpDb::builtin().expect("builtin").len(), db.len());
}

#[test]
fn builtin_is_what_the_generator_writes() {
    let (date, db) = decode_dated(BUILTIN).expect("decode");
    assert!(
        encode(date, &db) == BUILTIN,
        "re-encoding differs from data/geoip.bin"
    );
}

fn random_u128(rng: &mut SplitMix64) -> u128 {
    (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
}

/// A random address near a range boundary (or inside a range) of `ranges`.
fn near_boundary<T: Copy>(
    rng: &mut SplitMix64,
    ranges: &[(T, T, Country)],
    wide: impl Fn(T) -> u128,
) -> u128 {
    let i = rng.below(ranges.len() as u64) as usize;
    let (start, end, _) = ranges[i];
    let (start, end) = (wide(start), wide(end));
    match rng.below(5) {
        0 => start.wrapping_sub(1),
        1 => start,
        2 => end,
        3 => end.wrapping_add(1),
        _ => start + random_u128(rng) % (end - start + 1),
    }
}

/// Compares the built-in table with the Debian files it was generated from, when installed:
/// uniform addresses, and addresses at and inside range boundaries.
#[test]
fn builtin_agrees_with_tor_files_if_installed() {
    let (v4_path, v6_path) = (
        Path::new("/usr/share/tor/geoip"),
        Path::new("/usr/share/tor/geoip6"),
    );
    if !v4_path.exists() || !v6_path.exists() {
        eprintln!("skipping: /usr/share/tor/geoip{{,6}} not installed");
        return;
    }
    let text = GeoIpDb::from_files(v4_path, Some(v6_path)).expect("tor files");
    let builtin = GeoIpDb::builtin().expect("builtin");
    let seed = 0x6765_6f69_7031;
    eprintln!("seed {seed:#x}");
    let mut rng = SplitMix64::new(seed);
    for n in 0..20_000 {
        let bits = if n % 2 == 0 {
            rng.next_u64() as u32
        } else {
            near_boundary(&mut rng, &text.v4, u128::from) as u32
        };
        let ip = IpAddr::V4(Ipv4Addr::from(bits));
        assert_eq!(
            builtin.country(ip),
            text.country(ip),
            "{ip} (seed {seed:#x})"
        );
    }
    for n in 0..5_000 {
        let bits = if n % 5 == 0 {
            // 2000::/3, the global unicast space.
            (random_u128(&mut rng) >> 3) | (1 << 125)
        } else {
            near_boundary(&mut rng, &text.v6, |x| x)
        };
        let ip = IpAddr::V6(Ipv6Addr::from(bits));
        assert_eq!(
            builtin.country(ip),
            text.country(ip),
            "{ip} (seed {seed:#x})"
        );
    }
}

#[test]
fn sample_round_trips() {
    let db = sample();
    let bytes = encode("2026-01-02", &db);
    let (date, back) = decode_dated(&bytes).expect("decode");
    assert_eq!(date, "2026-01-02");
    assert_eq!(
        (back.v4.clone(), back.v6.clone()),
        (db.v4.clone(), db.v6.clone())
    );
    assert_eq!(country(&back, "2001:506:9::5").as_deref(), Some("BR"));
    assert_eq!(country(&back, "2001:506:9::6"), None);
    let empty = encode("", &GeoIpDb::new());
    assert!(GeoIpDb::decode(&empty).expect("empty table").is_empty());
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = encode("2026-01-02", &sample());
    for len in 0..bytes.len() {
        assert!(
            GeoIpDb::decode(&bytes[..len]).is_err(),
            "prefix of {len} bytes"
        );
    }
    assert!(GeoIpDb::decode(&bytes).is_ok());
}

#[test]
fn corrupt_tables_are_errors() {
    let good = encode("d", &sample());
    let header = |countries: &[u8]| {
        let mut b = b"MGEO1\x01d".to_vec();
        b.push((countries.len() / 2) as u8);
        b.extend_from_slice(countries);
        b
    };
    let with = |head: &[u8], tail: &[u8]| [head, tail].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("wrong magic", with(b"MGEO2", &good[5..])),
        ("trailing byte", with(&good, &[0])),
        ("date not UTF-8", with(b"MGEO1\x01\xff\x00", &[0, 0, 0])),
        ("country not letters", with(&header(b"A1"), &[0, 0, 0])),
        // A count of 2^63 records with three bytes left.
        (
            "huge count",
            with(
                &header(b"AU"),
                &[
                    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0,
                ],
            ),
        ),
        (
            "varint past 128 bits",
            with(
                &header(b"AU"),
                &[
                    1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0,
                ],
            ),
        ),
        (
            "country index out of range",
            with(&header(b"AU"), &[1, 1, 1, 0, 0]),
        ),
        // One IPv4 record spanning 2^32 addresses.
        (
            "IPv4 past 255.255.255.255",
            with(&header(b"AU"), &[1, 0x81, 0x80, 0x80, 0x80, 0x20, 0, 0, 0]),
        ),
        // Two IPv4 records, the second after a range that ends at the last address.
        (
            "IPv4 range after the last address",
            with(
                &header(b"AU"),
                &[2, 0xff, 0xff, 0xff, 0xff, 0x1f, 0, 1, 0, 0, 0],
            ),
        ),
        // ::/64 in the /64 section and ::1 in the other section.
        (
            "IPv6 sections overlap",
            with(&header(b"AU"), &[0, 1, 1, 0, 1, 0, 1, 0]),
        ),
    ];
    for (what, bytes) in cases {
        let err = GeoIpDb::decode(&bytes).expect_err(what);
        assert!(matches!(err, RoutingError::GeoIpData(_)), "{what}: {err}");
        eprintln!("{what}: {err}");
    }
}

/// Flipped bits and random bytes give a result or an error, never a panic.
#[test]
fn garbage_never_panics() {
    let good = encode("2026-01-02", &sample());
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut bytes = good.clone();
            bytes[i] ^= 1 << bit;
            let _ = GeoIpDb::decode(&bytes);
        }
    }
    let seed = 0x6761_7262;
    eprintln!("seed {seed:#x}");
    let mut rng = SplitMix64::new(seed);
    for _ in 0..2_000 {
        let len = rng.below(64) as usize;
        let mut bytes = good[..7].to_vec();
        bytes.extend((0..len).map(|_| rng.next_u64() as u8));
        let _ = GeoIpDb::decode(&bytes);
    }
}
