//! The compact binary form of an item, used on disk and in replication frames.
//!
//! ```text
//! item   := varint(count) (varint(len) name-utf8 value)*        names in ascending order
//! value  := 0x01 varint(len) utf8                                S
//!         | 0x02 varint(len) ascii                               N (normalized plain notation)
//!         | 0x03 varint(len) bytes                               B
//!         | 0x04 | 0x05                                          BOOL false | true
//!         | 0x06                                                 NULL
//!         | 0x07 item                                            M
//!         | 0x08 varint(count) value*                            L
//!         | 0x09 varint(count) (varint(len) utf8)*               SS (ascending)
//!         | 0x0A varint(count) (varint(len) ascii)*              NS (ascending)
//!         | 0x0B varint(count) (varint(len) bytes)*              BS (ascending)
//! varint := unsigned LEB128, at most 10 bytes
//! ```
//!
//! The encoding carries no version byte of its own: the record that embeds it does (see
//! `docs/design/storage.md`). Decoding never panics and refuses more than [`MAX_DEPTH`] maps and
//! lists nested in one another.

use crate::number::Number;
use crate::value::{AttributeValue, Item};
use std::collections::BTreeSet;

/// Most maps and lists nested in one another that decoding accepts. The API accepts 32 levels
/// (31 containers around a scalar, [`crate::value::MAX_NESTING_LEVELS`]); the margin keeps every
/// item an older build could store readable, and the bound keeps decoding's recursion shallow.
pub const MAX_DEPTH: usize = 64;

/// A decoding failure: the bytes are not an item this codec wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt item encoding: {0}")]
pub struct DecodeError(pub &'static str);

/// Appends an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over bytes being decoded.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.buf.split_first().ok_or(DecodeError("truncated"))?;
        self.buf = rest;
        Ok(b)
    }

    /// Reads `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError("truncated"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    /// Reads a big-endian u64.
    pub fn u64_be(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Reads an unsigned LEB128 varint.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(DecodeError("varint overflow"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long"))
    }

    /// Reads a varint length and that many bytes.
    pub fn len_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(self.varint()?).map_err(|_| DecodeError("length"))?;
        self.bytes(n)
    }

    /// Reads a varint length and that many bytes of UTF-8.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.len_bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError("invalid utf-8"))
    }
}

/// Appends a varint length and the bytes.
pub fn put_len_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Encodes an item.
pub fn encode_item(item: &Item, out: &mut Vec<u8>) {
    put_varint(out, item.len() as u64);
    for (name, value) in item {
        put_len_bytes(out, name.as_bytes());
        encode_value(value, out);
    }
}

/// Encodes an item into a new buffer.
pub fn item_to_bytes(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_item(item, &mut out);
    out
}

/// Encodes one value.
pub fn encode_value(v: &AttributeValue, out: &mut Vec<u8>) {
    match v {
        AttributeValue::S(s) => {
            out.push(0x01);
            put_len_bytes(out, s.as_bytes());
        }
        AttributeValue::N(n) => {
            out.push(0x02);
            put_len_bytes(out, n.to_string().as_bytes());
        }
        AttributeValue::B(b) => {
            out.push(0x03);
            put_len_bytes(out, b);
        }
        AttributeValue::Bool(false) => out.push(0x04),
        AttributeValue::Bool(true) => out.push(0x05),
        AttributeValue::Null => out.push(0x06),
        AttributeValue::M(m) => {
            out.push(0x07);
            encode_item(m, out);
        }
        AttributeValue::L(l) => {
            out.push(0x08);
            put_varint(out, l.len() as u64);
            for x in l {
                encode_value(x, out);
            }
        }
        AttributeValue::Ss(s) => {
            out.push(0x09);
            put_varint(out, s.len() as u64);
            for x in s {
                put_len_bytes(out, x.as_bytes());
            }
        }
        AttributeValue::Ns(s) => {
            out.push(0x0A);
            put_varint(out, s.len() as u64);
            for x in s {
                put_len_bytes(out, x.to_string().as_bytes());
            }
        }
        AttributeValue::Bs(s) => {
            out.push(0x0B);
            put_varint(out, s.len() as u64);
            for x in s {
                put_len_bytes(out, x);
            }
        }
    }
}

/// Decodes an item that fills all of `buf`.
pub fn decode_item(buf: &[u8]) -> Result<Item, DecodeError> {
    let mut r = Reader::new(buf);
    let item = read_item(&mut r, 0)?;
    if !r.remaining().is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(item)
}

/// Reads an item (a map) from a reader; `depth` counts the maps and lists around it.
pub fn read_item(r: &mut Reader<'_>, depth: usize) -> Result<Item, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError("nesting too deep"));
    }
    let n = r.varint()?;
    let mut item = Item::new();
    for _ in 0..n {
        let name = r.string()?;
        let value = read_value(r, depth)?;
        item.insert(name, value);
    }
    Ok(item)
}

fn number(b: &[u8]) -> Result<Number, DecodeError> {
    let s = std::str::from_utf8(b).map_err(|_| DecodeError("invalid number"))?;
    Number::parse(s).map_err(|_| DecodeError("invalid number"))
}

/// Reads one value (see [`encode_value`]); `depth` counts the maps and lists around it.
pub fn read_value(r: &mut Reader<'_>, depth: usize) -> Result<AttributeValue, DecodeError> {
    Ok(match r.u8()? {
        0x01 => AttributeValue::S(r.string()?),
        0x02 => AttributeValue::N(number(r.len_bytes()?)?),
        0x03 => AttributeValue::B(r.len_bytes()?.to_vec()),
        0x04 => AttributeValue::Bool(false),
        0x05 => AttributeValue::Bool(true),
        0x06 => AttributeValue::Null,
        0x07 => AttributeValue::M(read_item(r, depth + 1)?),
        0x08 => {
            if depth >= MAX_DEPTH {
                return Err(DecodeError("nesting too deep"));
            }
            let n = r.varint()?;
            let mut l = Vec::new();
            for _ in 0..n {
                l.push(read_value(r, depth + 1)?);
            }
            AttributeValue::L(l)
        }
        0x09 => {
            let n = r.varint()?;
            let mut s = BTreeSet::new();
            for _ in 0..n {
                s.insert(r.string()?);
            }
            AttributeValue::Ss(s)
        }
        0x0A => {
            let n = r.varint()?;
            let mut s = BTreeSet::new();
            for _ in 0..n {
                s.insert(number(r.len_bytes()?)?);
            }
            AttributeValue::Ns(s)
        }
        0x0B => {
            let n = r.varint()?;
            let mut s = BTreeSet::new();
            for _ in 0..n {
                s.insert(r.len_bytes()?.to_vec());
            }
            AttributeValue::Bs(s)
        }
        _ => return Err(DecodeError("unknown value tag")),
    })
}

/// Walks an encoded item without building it and returns its size as
/// [`crate::size::item_size`] counts it — if the bytes are exactly what [`encode_item`] writes
/// for some item: names and set elements strictly ascending, numbers in normalized form,
/// strings UTF-8, varints in their shortest form, nesting within [`MAX_DEPTH`]. Anything else
/// returns `None`, with the reader at an unspecified position: such bytes may still decode (a
/// repeated name, say), so read them again from the start with [`read_item`], which keeps the
/// last of a repeated name and reports what is wrong with the rest. Allocates only for numbers
/// (to check their form).
pub fn canonical_item_size(r: &mut Reader<'_>, depth: usize) -> Option<usize> {
    canonical_map(r, depth).map(|(size, _)| size)
}

/// A canonical map's [`crate::size::item_size`] and number of entries.
fn canonical_map(r: &mut Reader<'_>, depth: usize) -> Option<(usize, usize)> {
    if depth > MAX_DEPTH {
        return None;
    }
    let n = usize::try_from(min_varint(r)?).ok()?;
    let mut size = 0usize;
    let mut prev = None;
    for _ in 0..n {
        let name = min_len_bytes(r)?;
        std::str::from_utf8(name).ok()?;
        ascending(&mut prev, name)?;
        size = size
            .checked_add(name.len())?
            .checked_add(canonical_value_size(r, depth)?)?;
    }
    Some((size, n))
}

/// Map names and set elements: strictly ascending, as a `BTreeMap` or `BTreeSet` encodes them.
fn ascending<T: Ord>(prev: &mut Option<T>, next: T) -> Option<()> {
    if prev.as_ref().is_some_and(|p| *p >= next) {
        return None;
    }
    *prev = Some(next);
    Some(())
}

/// The number `b` holds, if it is in the form [`encode_value`] writes.
fn canonical_number(b: &[u8]) -> Option<Number> {
    let n = number(b).ok()?;
    (n.to_string().as_bytes() == b).then_some(n)
}

/// One value's size as [`crate::size::value_size`] counts it (see [`canonical_item_size`]).
fn canonical_value_size(r: &mut Reader<'_>, depth: usize) -> Option<usize> {
    Some(match r.u8().ok()? {
        0x01 => std::str::from_utf8(min_len_bytes(r)?).ok()?.len(),
        0x02 => canonical_number(min_len_bytes(r)?)?.size(),
        0x03 => min_len_bytes(r)?.len(),
        0x04..=0x06 => 1,
        0x07 => {
            // A map counts 3 bytes plus one per entry on top of `item_size`.
            let (size, entries) = canonical_map(r, depth + 1)?;
            3usize.checked_add(size)?.checked_add(entries)?
        }
        0x08 => {
            if depth >= MAX_DEPTH {
                return None;
            }
            let n = min_varint(r)?;
            let mut size = 3usize;
            for _ in 0..n {
                size = size
                    .checked_add(canonical_value_size(r, depth + 1)?)?
                    .checked_add(1)?;
            }
            size
        }
        tag @ (0x09 | 0x0B) => {
            let n = min_varint(r)?;
            let mut size = 0usize;
            let mut prev = None;
            for _ in 0..n {
                let x = min_len_bytes(r)?;
                if tag == 0x09 {
                    std::str::from_utf8(x).ok()?;
                }
                size = size.checked_add(x.len())?;
                ascending(&mut prev, x)?;
            }
            size
        }
        0x0A => {
            let n = min_varint(r)?;
            let mut size = 0usize;
            let mut prev = None;
            for _ in 0..n {
                let x = canonical_number(min_len_bytes(r)?)?;
                size = size.checked_add(x.size())?;
                ascending(&mut prev, x)?;
            }
            size
        }
        _ => return None,
    })
}

/// A varint in its shortest form (what [`put_varint`] writes).
fn min_varint(r: &mut Reader<'_>) -> Option<u64> {
    let before = r.buf.len();
    let v = r.varint().ok()?;
    let shortest = (64 - v.leading_zeros()).div_ceil(7).max(1) as usize;
    (before - r.buf.len() == shortest).then_some(v)
}

/// Bytes behind a shortest-form varint length (what [`put_len_bytes`] writes).
fn min_len_bytes<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    let n = usize::try_from(min_varint(r)?).ok()?;
    r.bytes(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::item_from_json;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let item = item_from_json(&json!({
            "s": {"S": "x"}, "n": {"N": "123.456"}, "b": {"B": "AAEC"},
            "f": {"BOOL": false}, "t": {"BOOL": true}, "z": {"NULL": true},
            "m": {"M": {"l": {"L": [{"N": "1"}, {"SS": ["a", "b"]}]}}},
            "ns": {"NS": ["3", "1"]}, "bs": {"BS": ["AA=="]}
        }))
        .expect("item");
        let bytes = item_to_bytes(&item);
        assert_eq!(decode_item(&bytes).expect("decode"), item);
    }

    #[test]
    fn decoding_counts_maps_and_lists_alike_up_to_max_depth() {
        let wrap = |n: usize, map: bool| {
            let v = (0..n).fold(AttributeValue::Null, |v, _| {
                if map {
                    AttributeValue::M(Item::from([("a".to_owned(), v)]))
                } else {
                    AttributeValue::L(vec![v])
                }
            });
            item_to_bytes(&Item::from([("v".to_owned(), v)]))
        };
        for map in [true, false] {
            assert!(decode_item(&wrap(MAX_DEPTH, map)).is_ok());
            assert!(canonical_item_size(&mut Reader::new(&wrap(MAX_DEPTH, map)), 0).is_some());
            assert_eq!(
                decode_item(&wrap(MAX_DEPTH + 1, map)),
                Err(DecodeError("nesting too deep"))
            );
            assert!(canonical_item_size(&mut Reader::new(&wrap(MAX_DEPTH + 1, map)), 0).is_none());
        }
    }

    #[test]
    fn fixture_bytes_are_stable() {
        // Changing this encoding breaks every store and peer: bump the record format instead.
        let item = item_from_json(&json!({"a": {"S": "hi"}, "b": {"N": "1.5"}})).expect("item");
        assert_eq!(
            item_to_bytes(&item),
            vec![
                2, 1, b'a', 0x01, 2, b'h', b'i', 1, b'b', 0x02, 3, b'1', b'.', b'5'
            ]
        );
    }

    /// Items of every value type, nested up to three levels.
    fn any_item() -> impl Strategy<Value = Item> {
        let number = (any::<i32>(), 0u32..4).prop_map(|(m, scale)| {
            let s = format!("{m}E-{scale}");
            Number::parse(&s).expect("a valid number")
        });
        let name = "[a-c]{0,3}";
        let leaf = prop_oneof![
            "[a-zé]{0,6}".prop_map(AttributeValue::S),
            number.clone().prop_map(AttributeValue::N),
            proptest::collection::vec(any::<u8>(), 0..4).prop_map(AttributeValue::B),
            any::<bool>().prop_map(AttributeValue::Bool),
            Just(AttributeValue::Null),
            proptest::collection::btree_set("[a-c]{0,2}", 1..4).prop_map(AttributeValue::Ss),
            proptest::collection::btree_set(number, 1..4).prop_map(AttributeValue::Ns),
            proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 0..3), 1..4)
                .prop_map(AttributeValue::Bs),
        ];
        let value = leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
                proptest::collection::btree_map(name, inner, 0..4).prop_map(AttributeValue::M),
            ]
        });
        proptest::collection::btree_map(name, value, 0..5)
    }

    #[test]
    fn non_canonical_encodings_have_no_canonical_size() {
        let canonical = |b: &[u8]| canonical_item_size(&mut Reader::new(b), 0);
        // {"a": S "hi"}: canonical, 3 bytes.
        assert_eq!(canonical(&[1, 1, b'a', 0x01, 2, b'h', b'i']), Some(3));
        // A repeated name (decodes, keeping the last), names out of order.
        let repeated = [2, 1, b'a', 0x06, 1, b'a', 0x04];
        assert!(decode_item(&repeated).is_ok());
        assert_eq!(canonical(&repeated), None);
        assert_eq!(canonical(&[2, 1, b'b', 0x06, 1, b'a', 0x06]), None);
        // An overlong varint count, a number not in normal form, an unsorted string set.
        assert!(decode_item(&[0x81, 0x00, 1, b'a', 0x06]).is_ok());
        assert_eq!(canonical(&[0x81, 0x00, 1, b'a', 0x06]), None);
        assert_eq!(canonical(&[1, 1, b'n', 0x02, 2, b'1', b'0']), Some(3));
        assert_eq!(canonical(&[1, 1, b'n', 0x02, 3, b'1', b'.', b'0']), None);
        assert_eq!(canonical(&[1, 1, b's', 0x09, 2, 1, b'b', 1, b'a']), None);
        // Invalid UTF-8 in a name, an unknown tag.
        assert_eq!(canonical(&[1, 1, 0xff, 0x06]), None);
        assert_eq!(canonical(&[1, 1, b'a', 0x0c]), None);
    }

    proptest! {
        #[test]
        fn an_encoded_item_is_canonical_with_its_size(item in any_item()) {
            let bytes = item_to_bytes(&item);
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(canonical_item_size(&mut r, 0), Some(crate::size::item_size(&item)));
            prop_assert!(r.remaining().is_empty());
        }

        #[test]
        fn bytes_with_a_canonical_size_are_an_encoded_item(
            bytes in proptest::collection::vec(
                prop_oneof![0u8..12, Just(b'a'), Just(b'b'), any::<u8>()], 0..24)
        ) {
            let mut r = Reader::new(&bytes);
            if let Some(size) = canonical_item_size(&mut r, 0) {
                let end = bytes.len() - r.remaining().len();
                let item = decode_item(&bytes[..end]).expect("a canonical item decodes");
                prop_assert_eq!(item_to_bytes(&item), &bytes[..end]);
                prop_assert_eq!(size, crate::size::item_size(&item));
            }
        }

        /// Every item the API accepts — up to 32 levels of maps and lists, as DynamoDB allows —
        /// encodes and decodes to itself; one level more is refused before it is stored.
        #[test]
        fn every_item_the_api_accepts_reads_back(
            item in any_item(),
            wrappers in proptest::collection::vec(any::<bool>(), 0..33),
        ) {
            let deep = wrappers.iter().fold(AttributeValue::S("leaf".into()), |v, &as_map| {
                if as_map {
                    AttributeValue::M(Item::from([("m".to_owned(), v)]))
                } else {
                    AttributeValue::L(vec![v])
                }
            });
            let mut item = item;
            item.insert("deep".into(), deep);
            let json = crate::value::item_to_json(&item);
            match item_from_json(&json) {
                Ok(accepted) => {
                    prop_assert!(wrappers.len() <= 31);
                    prop_assert!(crate::size::check_item(&accepted).is_ok());
                    let bytes = item_to_bytes(&accepted);
                    prop_assert_eq!(decode_item(&bytes).expect("decodes"), accepted);
                    let mut r = Reader::new(&bytes);
                    prop_assert!(canonical_item_size(&mut r, 0).is_some());
                }
                Err(e) => {
                    prop_assert!(wrappers.len() >= 32, "{e}");
                }
            }
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_item(&bytes);
        }
    }
}
