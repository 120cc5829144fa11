//! The benchmark's items and request bodies: `{"pk":{"S":"k<N>"},"v":{"S":"<random text>"}}`.

use bytes::Bytes;

/// Characters of generated values: plain alphanumerics, so bodies need no JSON escaping.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A xorshift64* generator: fast, seedable, and plenty for picking keys and filling values.
/// A benchmark run is reproducible from its seeds.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Zero is xorshift's one fixed point; mix the seed so nearby seeds diverge at once.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`; `n` must be non-zero. The modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Builds request bodies for one table. The table name is JSON-encoded once.
#[derive(Debug, Clone)]
pub struct Bodies {
    table_json: String,
    value_bytes: usize,
}

impl Bodies {
    pub fn new(table: &str, value_bytes: usize) -> anyhow::Result<Self> {
        Ok(Self {
            table_json: serde_json::to_string(table)?,
            value_bytes,
        })
    }

    /// A `PutItem` body for key `k<key>` with a fresh random value.
    pub fn put_item(&self, key: u64, rng: &mut Rng) -> Bytes {
        let mut body = String::with_capacity(80 + self.table_json.len() + self.value_bytes);
        body.push_str(r#"{"TableName":"#);
        body.push_str(&self.table_json);
        body.push_str(r#","Item":"#);
        self.push_item(&mut body, key, rng);
        body.push('}');
        Bytes::from(body)
    }

    /// A `BatchWriteItem` body putting keys `k<first>` … `k<last - 1>` (at most 25 for a real
    /// DynamoDB endpoint), each with a fresh random value.
    pub fn batch_write_item(&self, keys: std::ops::Range<u64>, rng: &mut Rng) -> Bytes {
        let n = usize::try_from(keys.end.saturating_sub(keys.start)).unwrap_or(0);
        let mut body =
            String::with_capacity(40 + self.table_json.len() + n * (80 + self.value_bytes));
        body.push_str(r#"{"RequestItems":{"#);
        body.push_str(&self.table_json);
        body.push_str(":[");
        for (i, key) in keys.enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r#"{"PutRequest":{"Item":"#);
            self.push_item(&mut body, key, rng);
            body.push_str("}}");
        }
        body.push_str("]}}");
        Bytes::from(body)
    }

    /// The size of item `k<key>` as DynamoDB counts it: attribute names plus values.
    pub fn item_bytes(&self, key: u64) -> usize {
        "pk".len() + 1 + key.to_string().len() + "v".len() + self.value_bytes
    }

    /// `{"pk":{"S":"k<key>"},"v":{"S":"<random>"}}`.
    fn push_item(&self, body: &mut String, key: u64, rng: &mut Rng) {
        body.push_str(r#"{"pk":{"S":"k"#);
        body.push_str(&key.to_string());
        body.push_str(r#""},"v":{"S":""#);
        for _ in 0..self.value_bytes {
            let i = rng.below(ALPHABET.len() as u64) as usize;
            body.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'x')));
        }
        body.push_str(r#""}}"#);
    }

    /// A `GetItem` body for key `k<key>`.
    pub fn get_item(&self, key: u64) -> Bytes {
        Bytes::from(format!(
            r#"{{"TableName":{},"Key":{{"pk":{{"S":"k{key}"}}}}}}"#,
            self.table_json
        ))
    }
}

/// Whether a successful `GetItem` response found the item (`{}` means it did not).
pub fn get_found(body: &[u8]) -> bool {
    body.windows(6).any(|w| w == br#""Item""#)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn put_item_is_valid_json_of_the_right_shape() -> anyhow::Result<()> {
        let bodies = Bodies::new("bench", 180)?;
        let body = bodies.put_item(42, &mut Rng::new(7));
        let value: Value = serde_json::from_slice(&body)?;
        assert_eq!(value["TableName"], "bench");
        assert_eq!(value["Item"]["pk"], json!({ "S": "k42" }));
        assert_eq!(value["Item"]["v"]["S"].as_str().map(str::len), Some(180));
        // ~200 B of item, as the benchmark promises.
        assert!((200..=240).contains(&body.len()), "{}", body.len());
        Ok(())
    }

    #[test]
    fn batch_write_item_is_valid_json_with_one_put_per_key() -> anyhow::Result<()> {
        let bodies = Bodies::new("bench", 180)?;
        let body = bodies.batch_write_item(10..35, &mut Rng::new(7));
        let value: Value = serde_json::from_slice(&body)?;
        let puts = value["RequestItems"]["bench"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("no request list"))?;
        assert_eq!(puts.len(), 25);
        assert_eq!(puts[0]["PutRequest"]["Item"]["pk"], json!({ "S": "k10" }));
        assert_eq!(puts[24]["PutRequest"]["Item"]["pk"], json!({ "S": "k34" }));
        assert_eq!(
            puts[3]["PutRequest"]["Item"]["v"]["S"]
                .as_str()
                .map(str::len),
            Some(180)
        );
        // ~200 B items, as `meridian bench load` promises.
        assert_eq!(bodies.item_bytes(999_999), 2 + 7 + 1 + 180);
        Ok(())
    }

    #[test]
    fn get_item_is_valid_json_and_escapes_the_table_name() -> anyhow::Result<()> {
        let bodies = Bodies::new("we\"ird", 10)?;
        let value: Value = serde_json::from_slice(&bodies.get_item(3))?;
        assert_eq!(value["TableName"], "we\"ird");
        assert_eq!(value["Key"], json!({ "pk": { "S": "k3" } }));
        Ok(())
    }

    #[test]
    fn detects_found_items() {
        assert!(get_found(br#"{"Item":{"pk":{"S":"k1"}}}"#));
        assert!(!get_found(b"{}"));
    }

    #[test]
    fn rng_is_reproducible_and_stays_in_range() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        for _ in 0..1000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
