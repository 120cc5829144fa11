//! Key schemas, key validation and the order-preserving key encoding.
//!
//! An item's storage key is `hash32(pk) ‖ enc(pk) ‖ enc(sk)` where `enc` is self-delimiting and
//! order-preserving (`a < b` ⇔ `enc(a) < enc(b)` bytewise), so one partition's items are
//! contiguous and sorted by sort key as DynamoDB sorts them, and the 32-bit partition hash
//! spreads partitions for `Scan` segments (segment `i` of `n` covers hashes `[i·2³²/n, (i+1)·2³²/n)`).
//!
//! - `S`, `B`: bytes with `00` escaped as `00 FF`, terminated by `00 01`.
//! - `N`: `02` for zero; `03 ‖ u16be(e + 0x8000) ‖ (d+1)* ‖ 00` for `0.d₁d₂… × 10^e > 0`;
//!   `01 ‖ u16be(!(e + 0x8000)) ‖ (10−d)* ‖ 0B` for negatives (larger magnitude first).

use crate::error::ApiError;
use crate::value::{AttributeValue, Item};
use serde::{Deserialize, Serialize};

/// Largest partition key value, in bytes.
pub const MAX_HASH_KEY_BYTES: usize = 2048;
/// Largest sort key value, in bytes.
pub const MAX_RANGE_KEY_BYTES: usize = 1024;

/// A key attribute's type (`ScalarAttributeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl KeyType {
    /// Parses `S`, `N` or `B`.
    pub fn parse(s: &str) -> Option<KeyType> {
        match s {
            "S" => Some(KeyType::S),
            "N" => Some(KeyType::N),
            "B" => Some(KeyType::B),
            _ => None,
        }
    }

    /// `S`, `N` or `B`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::S => "S",
            KeyType::N => "N",
            KeyType::B => "B",
        }
    }

    fn matches(self, v: &AttributeValue) -> bool {
        matches!(
            (self, v),
            (KeyType::S, AttributeValue::S(_))
                | (KeyType::N, AttributeValue::N(_))
                | (KeyType::B, AttributeValue::B(_))
        )
    }
}

/// One key attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    /// Attribute name.
    pub name: String,
    /// Attribute type.
    pub ty: KeyType,
}

/// A table's (or index's) primary key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    /// Partition (HASH) key.
    pub hash: KeyAttr,
    /// Sort (RANGE) key, if any.
    pub range: Option<KeyAttr>,
}

impl KeySchema {
    /// The size limit of key attribute `name`'s value: the sort key's, else the partition key's.
    pub fn max_len(&self, name: &str) -> usize {
        if self.range.as_ref().is_some_and(|r| r.name == name) {
            MAX_RANGE_KEY_BYTES
        } else {
            MAX_HASH_KEY_BYTES
        }
    }

    /// Key attributes in schema order.
    pub fn attrs(&self) -> impl Iterator<Item = &KeyAttr> {
        std::iter::once(&self.hash).chain(self.range.iter())
    }

    /// Whether `name` is a key attribute.
    pub fn is_key_attr(&self, name: &str) -> bool {
        self.attrs().any(|a| a.name == name)
    }

    /// Checks that a full item (`PutItem`) carries a valid key and returns it.
    pub fn key_of_item(&self, item: &Item) -> Result<Item, ApiError> {
        let mut key = Item::new();
        for attr in self.attrs() {
            let v = item.get(&attr.name).ok_or_else(|| {
                ApiError::validation(format!(
                    "One or more parameter values were invalid: Missing the key {} in the item",
                    attr.name
                ))
            })?;
            if !attr.ty.matches(v) {
                return Err(ApiError::validation(format!(
                    "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                    attr.name,
                    attr.ty.as_str(),
                    v.type_name()
                )));
            }
            check_key_value(
                attr,
                v,
                self.range.as_ref().is_some_and(|r| r.name == attr.name),
            )?;
            key.insert(attr.name.clone(), v.clone());
        }
        Ok(key)
    }

    /// Checks a `Key` parameter (`GetItem`, `DeleteItem`, `UpdateItem`): exactly the key
    /// attributes, with the right types.
    pub fn check_key(&self, key: &Item) -> Result<(), ApiError> {
        let mismatch =
            || ApiError::validation("The provided key element does not match the schema");
        if key.len() != self.attrs().count() {
            return Err(mismatch());
        }
        for attr in self.attrs() {
            let v = key.get(&attr.name).ok_or_else(mismatch)?;
            if !attr.ty.matches(v) {
                return Err(mismatch());
            }
            check_key_value(
                attr,
                v,
                self.range.as_ref().is_some_and(|r| r.name == attr.name),
            )?;
        }
        Ok(())
    }

    /// The storage key of an item whose key attributes have been checked. Fails when a key
    /// attribute is missing, has another type than the schema's, or is an empty or oversized
    /// string or binary (so an item that cannot be in an index gets no index entry, and no key
    /// past the engine's limit is ever built).
    pub fn encode(&self, item: &Item) -> Result<Vec<u8>, ApiError> {
        let missing = || ApiError::validation("The provided key element does not match the schema");
        let usable = |a: &KeyAttr, v: &AttributeValue| {
            a.ty.matches(v) && key_value_len(v).is_none_or(|n| n > 0 && n <= self.max_len(&a.name))
        };
        let pk = item.get(&self.hash.name).ok_or_else(missing)?;
        if !usable(&self.hash, pk) {
            return Err(missing());
        }
        if let Some(r) = &self.range
            && !item.get(&r.name).is_some_and(|v| usable(r, v))
        {
            return Err(missing());
        }
        let mut out = Vec::with_capacity(32);
        let pk_enc = encode_ordered(pk)?;
        out.extend_from_slice(&partition_hash(&pk_enc).to_be_bytes());
        out.extend_from_slice(&pk_enc);
        if let Some(r) = &self.range {
            let sk = item.get(&r.name).ok_or_else(missing)?;
            out.extend_from_slice(&encode_ordered(sk)?);
        }
        Ok(out)
    }

    /// The storage-key prefix of one partition.
    pub fn partition_prefix(&self, pk: &AttributeValue) -> Result<Vec<u8>, ApiError> {
        let pk_enc = encode_ordered(pk)?;
        let mut out = Vec::with_capacity(4 + pk_enc.len());
        out.extend_from_slice(&partition_hash(&pk_enc).to_be_bytes());
        out.extend_from_slice(&pk_enc);
        Ok(out)
    }
}

/// The length DynamoDB's key-size limits count: bytes of a string or binary, `None` otherwise.
pub fn key_value_len(v: &AttributeValue) -> Option<usize> {
    match v {
        AttributeValue::S(s) => Some(s.len()),
        AttributeValue::B(b) => Some(b.len()),
        _ => None,
    }
}

fn check_key_value(attr: &KeyAttr, v: &AttributeValue, is_range: bool) -> Result<(), ApiError> {
    let Some(len) = key_value_len(v) else {
        return Ok(());
    };
    if len == 0 {
        let kind = if matches!(v, AttributeValue::S(_)) {
            "string"
        } else {
            "binary"
        };
        return Err(ApiError::validation(format!(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {}",
            attr.name
        )));
    }
    if is_range && len > MAX_RANGE_KEY_BYTES {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        ));
    }
    if !is_range && len > MAX_HASH_KEY_BYTES {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
        ));
    }
    Ok(())
}

/// FNV-1a (32-bit) of an encoded partition key. Part of the on-disk format: never change it.
pub fn partition_hash(pk_enc: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in pk_enc {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Order-preserving, self-delimiting encoding of a key value (`S`, `N` or `B`).
pub fn encode_ordered(v: &AttributeValue) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(16);
    match v {
        AttributeValue::S(s) => encode_bytes(s.as_bytes(), &mut out),
        AttributeValue::B(b) => encode_bytes(b, &mut out),
        AttributeValue::N(n) => match n.digits_and_exponent() {
            None => out.push(0x02),
            Some((digits, e)) => {
                let biased = (e + 0x8000).clamp(0, 0xffff) as u16;
                if n.signum() > 0 {
                    out.push(0x03);
                    out.extend_from_slice(&biased.to_be_bytes());
                    out.extend(digits.iter().map(|d| d + 1));
                    out.push(0x00);
                } else {
                    out.push(0x01);
                    out.extend_from_slice(&(!biased).to_be_bytes());
                    out.extend(digits.iter().map(|d| 10 - d));
                    out.push(0x0B);
                }
            }
        },
        other => {
            return Err(ApiError::validation(format!(
                "Key attributes must be of type S, N or B, not {}",
                other.type_name()
            )));
        }
    }
    Ok(out)
}

/// The encoding of `S`/`B` bytes without the terminator: the prefix shared by every encoded
/// value that begins with `prefix` (for `begins_with`).
pub fn encode_bytes_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 2);
    for &b in prefix {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&encode_bytes_prefix(b));
    out.extend_from_slice(&[0x00, 0x01]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;
    use proptest::prelude::*;

    fn num_strategy() -> impl Strategy<Value = Number> {
        (any::<bool>(), "[1-9][0-9]{0,37}", -90i64..80).prop_map(|(neg, digits, exp)| {
            let s = format!("{}{}e{}", if neg { "-" } else { "" }, digits, exp);
            Number::parse(&s).expect("valid number")
        })
    }

    proptest! {
        #[test]
        fn number_encoding_preserves_order(a in num_strategy(), b in num_strategy()) {
            let ea = encode_ordered(&AttributeValue::N(a.clone())).expect("enc");
            let eb = encode_ordered(&AttributeValue::N(b.clone())).expect("enc");
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb), "{:?} {:?}", a, b);
        }

        #[test]
        fn number_encoding_orders_zero(a in num_strategy()) {
            let zero = Number::from(0);
            let ea = encode_ordered(&AttributeValue::N(a.clone())).expect("enc");
            let ez = encode_ordered(&AttributeValue::N(zero.clone())).expect("enc");
            prop_assert_eq!(a.cmp(&zero), ea.cmp(&ez));
        }

        #[test]
        fn binary_encoding_preserves_order(
            a in proptest::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0xfe, 0xff]), 0..8),
            b in proptest::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0xfe, 0xff]), 0..8),
        ) {
            let ea = encode_ordered(&AttributeValue::B(a.clone())).expect("enc");
            let eb = encode_ordered(&AttributeValue::B(b.clone())).expect("enc");
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
        }

        #[test]
        fn string_encoding_preserves_utf8_byte_order(a in "\\PC{0,6}", b in "\\PC{0,6}") {
            let ea = encode_ordered(&AttributeValue::S(a.clone())).expect("enc");
            let eb = encode_ordered(&AttributeValue::S(b.clone())).expect("enc");
            prop_assert_eq!(a.as_bytes().cmp(b.as_bytes()), ea.cmp(&eb));
        }

        #[test]
        fn prefix_encoding_matches_begins_with(a in "[ab\\x00]{0,5}", p in "[ab\\x00]{0,3}") {
            let ea = encode_ordered(&AttributeValue::S(a.clone())).expect("enc");
            let ep = encode_bytes_prefix(p.as_bytes());
            prop_assert_eq!(a.starts_with(&p), ea.starts_with(&ep));
        }
    }

    #[test]
    fn equal_numbers_encode_equally() {
        let a = encode_ordered(&AttributeValue::N(Number::parse("1.0").expect("n"))).expect("e");
        let b = encode_ordered(&AttributeValue::N(Number::parse("1").expect("n"))).expect("e");
        assert_eq!(a, b);
    }
}
