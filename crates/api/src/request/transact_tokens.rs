//! `ClientRequestToken` idempotency of `TransactWriteItems`.
//!
//! DynamoDB remembers a token for 10 minutes: a retry with the same token and the same
//! request succeeds again without being applied twice; the same token with a different request
//! is an `IdempotentParameterMismatchException`. Only applied transactions are remembered —
//! a cancelled one changed nothing and may be retried with its token.
//!
//! The cache is consulted and filled inside the transaction's `decide` closure, which the
//! store's single writer runs serialized with every other write, so two concurrent requests
//! with one token cannot both apply. It lives in memory: after a restart a token is forgotten
//! (a documented difference; the window is short and a restart is rare).

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

/// How long a token is remembered.
pub const WINDOW: Duration = Duration::from_secs(600);

/// What the cache says about a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Never seen (or forgotten): apply the transaction.
    Fresh,
    /// Seen with the same request: answer success without applying.
    Replay,
    /// Seen with a different request.
    Mismatch,
}

/// Tokens of applied transactions, with the fingerprint of their request.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: HashMap<String, (u64, Instant)>,
    order: VecDeque<(Instant, String)>,
}

impl TokenCache {
    /// Looks `token` up (after forgetting expired tokens).
    pub fn lookup(&mut self, token: &str, fingerprint: u64, now: Instant) -> Lookup {
        self.expire(now);
        match self.tokens.get(token) {
            None => Lookup::Fresh,
            Some((f, _)) if *f == fingerprint => Lookup::Replay,
            Some(_) => Lookup::Mismatch,
        }
    }

    /// Remembers an applied transaction's token.
    pub fn record(&mut self, token: &str, fingerprint: u64, now: Instant) {
        self.tokens.insert(token.to_owned(), (fingerprint, now));
        self.order.push_back((now, token.to_owned()));
    }

    /// Forgets a token whose transaction turned out not to be applied.
    pub fn forget(&mut self, token: &str) {
        self.tokens.remove(token);
    }

    /// Number of remembered tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token is remembered.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < WINDOW {
                break;
            }
            if let Some((at, token)) = self.order.pop_front() {
                // Only drop the entry if it was not re-recorded later.
                if self.tokens.get(&token).is_some_and(|(_, t)| *t == at) {
                    self.tokens.remove(&token);
                }
            }
        }
    }
}

/// A fingerprint of a request's parameters that ignores the order of JSON object members.
pub fn fingerprint(v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    hash_value(v, &mut h);
    h.finish()
}

fn hash_value(v: &Value, h: &mut DefaultHasher) {
    match v {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, b).hash(h),
        Value::Number(n) => (2u8, n.to_string()).hash(h),
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(a) => {
            (4u8, a.len()).hash(h);
            for x in a {
                hash_value(x, h);
            }
        }
        Value::Object(m) => {
            (5u8, m.len()).hash(h);
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                k.hash(h);
                if let Some(x) = m.get(k) {
                    hash_value(x, h);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprint_ignores_member_order() {
        let a = json!({"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}});
        let b: Value =
            serde_json::from_str(r#"{"Put": {"Item": {"pk": {"S": "a"}}, "TableName": "t"}}"#)
                .unwrap_or_default();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = json!({"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}}});
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn replay_mismatch_and_expiry() {
        let mut c = TokenCache::default();
        let t0 = Instant::now();
        assert_eq!(c.lookup("tok", 1, t0), Lookup::Fresh);
        c.record("tok", 1, t0);
        assert_eq!(c.lookup("tok", 1, t0), Lookup::Replay);
        assert_eq!(c.lookup("tok", 2, t0), Lookup::Mismatch);
        let later = t0 + WINDOW + Duration::from_secs(1);
        assert_eq!(c.lookup("tok", 2, later), Lookup::Fresh);
        assert!(c.is_empty());
    }

    #[test]
    fn forget_undoes_record() {
        let mut c = TokenCache::default();
        let t0 = Instant::now();
        c.record("tok", 1, t0);
        c.forget("tok");
        assert_eq!(c.lookup("tok", 1, t0), Lookup::Fresh);
    }
}
