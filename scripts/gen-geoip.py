"""Builds crates/routing/data/geoip.bin, the GeoIP table compiled into meridian-routing, from
Debian's tor-geoipdb text files (derived from the IPFire location database, CC BY-SA 4.0).

    python3 scripts/gen-geoip.py [GEOIP [GEOIP6 [OUT]]]
        (defaults /usr/share/tor/geoip, /usr/share/tor/geoip6, crates/routing/data/geoip.bin)

Unassigned ranges (`??`) are dropped and adjacent ranges of one country are merged. The output
depends only on the input files. Format (all integers unsigned LEB128 varints unless noted):

    "MGEO1"                     magic, 5 bytes
    u8 len, len ASCII bytes     export date, YYYY-MM-DD (from the files' "Generated:" header)
    n, n x 2 ASCII letters      country table, most ranges first (ties by code), so the common
                                countries' indices take one byte
    section IPv4                unit 1 address
    section IPv6 /64            ranges covering whole /64s; unit 2^64 addresses
    section IPv6 other          the remaining IPv6 ranges; unit 1 address

    section = count, then count records, sorted and disjoint:
        head                    (span << 1) | adjacent; span = end - start in units
        gap                     only when adjacent is 0: start - (previous end + 1) in units,
                                where "previous end + 1" is 0 for a section's first record
        country                 index into the country table

A range decodes to start = start_unit * unit and end = (end_unit + 1) * unit - 1. The IPv6 split
exists because most ranges are whole /64s (numbers that fit 64 bits) and a few are not.
"""
import ipaddress
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAGIC = b"MGEO1"
LOW64 = (1 << 64) - 1
MONTHS = {m: i + 1 for i, m in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}


def export_date(path):
    """The "Generated: Thu, 25 Jun 2026 04:33:59 GMT" header line as YYYY-MM-DD."""
    with open(path, encoding="ascii") as f:
        for line in f:
            if not line.startswith("#"):
                break
            m = re.match(r"#\s*Generated:\s*\w+,\s*(\d+)\s+(\w+)\s+(\d{4})", line)
            if m:
                return f"{int(m[3]):04d}-{MONTHS[m[2]]:02d}-{int(m[1]):02d}"
    sys.exit(f"{path}: no '# Generated:' header line")


def load(path, parse):
    """Sorted (start, end, cc) ranges without `??`, adjacent same-country ranges merged, and
    the number of data lines and of `??` lines read."""
    ranges, prev_end, rows, unassigned = [], -1, 0, 0
    with open(path, encoding="ascii") as f:
        for no, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            rows += 1
            a, b, cc = line.split(",")
            start, end = parse(a), parse(b)
            if end < start or start <= prev_end:
                sys.exit(f"{path}:{no}: range out of order or overlapping")
            prev_end = end
            if cc == "??":
                unassigned += 1
                continue
            if not re.fullmatch(r"[A-Z]{2}", cc):
                sys.exit(f"{path}:{no}: bad country {cc!r}")
            if ranges and ranges[-1][2] == cc and ranges[-1][1] + 1 == start:
                ranges[-1] = (ranges[-1][0], end, cc)
            else:
                ranges.append((start, end, cc))
    print(f"{path}: {rows} lines, {unassigned} '??' skipped, {len(ranges)} ranges after merging")
    return ranges


def varint(x):
    out = bytearray()
    while True:
        byte = x & 0x7F
        x >>= 7
        if x:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def section(ranges, shift, index):
    """One section; ranges are in addresses, written in units of 2^shift."""
    out = bytearray(varint(len(ranges)))
    next_unit = 0
    for start, end, cc in ranges:
        s, e = start >> shift, end >> shift
        assert s << shift == start and ((e + 1) << shift) - 1 == end, "range not in whole units"
        span, gap = e - s, s - next_unit
        assert gap >= 0 and span < 1 << 127
        out += varint(span << 1 | (gap == 0))
        if gap:
            out += varint(gap)
        out += varint(index[cc])
        next_unit = e + 1
    return bytes(out)


def main():
    args = sys.argv[1:]
    v4_path = args[0] if len(args) > 0 else "/usr/share/tor/geoip"
    v6_path = args[1] if len(args) > 1 else "/usr/share/tor/geoip6"
    out_path = Path(args[2]) if len(args) > 2 else ROOT / "crates/routing/data/geoip.bin"

    date = export_date(v4_path)
    if export_date(v6_path) != date:
        sys.exit("geoip and geoip6 come from different exports")
    v4 = load(v4_path, int)
    v6 = load(v6_path, lambda s: int(ipaddress.IPv6Address(s)))
    if v4 and v4[-1][1] > 0xFFFF_FFFF:
        sys.exit(f"{v4_path}: address above 255.255.255.255")
    whole = [r for r in v6 if r[0] & LOW64 == 0 and r[1] & LOW64 == LOW64]
    other = [r for r in v6 if not (r[0] & LOW64 == 0 and r[1] & LOW64 == LOW64)]
    print(f"IPv6: {len(whole)} ranges cover whole /64s (start low 64 bits zero, end all ones), "
          f"{len(other)} do not; those are stored with full 128-bit numbers")

    counts = Counter(cc for _, _, cc in v4 + v6)
    countries = sorted(counts, key=lambda cc: (-counts[cc], cc))
    index = {cc: i for i, cc in enumerate(countries)}

    out = bytearray(MAGIC)
    out += bytes([len(date)]) + date.encode("ascii")
    out += varint(len(countries)) + "".join(countries).encode("ascii")
    parts = [("IPv4", section(v4, 0, index)), ("IPv6 /64", section(whole, 64, index)),
             ("IPv6 other", section(other, 0, index))]
    for _, body in parts:
        out += body
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(out)

    print(f"export date {date}; {len(countries)} countries")
    for name, body in parts:
        print(f"  section {name}: {len(body)} bytes")
    print(f"wrote {out_path}: {len(out)} bytes")


if __name__ == "__main__":
    main()
