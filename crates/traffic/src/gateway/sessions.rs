//! The latest session token of each pinned user, kept for a bounded time and a bounded number
//! of users: what gives clients that know nothing of tokens read-your-writes through the
//! gateway. Pure: the caller passes the time.
//!
//! Two generations: tokens are written to the current one, looked up in both, and the current
//! one becomes the previous (dropping the older) every half `ttl_ms` or when it holds half
//! `max_users`. A token therefore lives between half `ttl_ms` and `ttl_ms` after its user's
//! last write (less only when more than `max_users / 2` users write within half `ttl_ms`), in
//! O(1) per request and at most `max_users` entries.

use std::collections::HashMap;

use meridian_model::session::SessionToken;

/// Remembered tokens, by user.
#[derive(Debug)]
pub struct Sessions {
    ttl_ms: u64,
    max_users: usize,
    current: HashMap<String, SessionToken>,
    previous: HashMap<String, SessionToken>,
    started_ms: u64,
}

impl Sessions {
    /// An empty memory; `ttl_ms == 0` or `max_users == 0` remembers nothing.
    pub fn new(ttl_ms: u64, max_users: usize) -> Sessions {
        Sessions {
            ttl_ms,
            max_users,
            current: HashMap::new(),
            previous: HashMap::new(),
            started_ms: 0,
        }
    }

    /// New limits (a config change); what is remembered stays, bounded by them from the next
    /// rotation on.
    pub fn set_limits(&mut self, ttl_ms: u64, max_users: usize) {
        self.ttl_ms = ttl_ms;
        self.max_users = max_users;
    }

    fn rotate(&mut self, now_ms: u64) {
        let age = now_ms.saturating_sub(self.started_ms);
        if age >= self.ttl_ms {
            self.previous.clear();
            self.current.clear();
            self.started_ms = now_ms;
        } else if age >= self.ttl_ms / 2 || self.current.len() >= self.max_users / 2 {
            self.previous = std::mem::take(&mut self.current);
            self.started_ms = now_ms;
        }
    }

    /// The token remembered for `user`.
    pub fn get(&mut self, user: &str, now_ms: u64) -> Option<SessionToken> {
        if self.ttl_ms == 0 || self.max_users == 0 {
            return None;
        }
        self.rotate(now_ms);
        self.current
            .get(user)
            .or_else(|| self.previous.get(user))
            .cloned()
    }

    /// Merges `token` (a write's answer) into what is remembered for `user`.
    pub fn remember(&mut self, user: &str, token: &SessionToken, now_ms: u64) {
        if self.ttl_ms == 0 || self.max_users < 2 {
            return;
        }
        self.rotate(now_ms);
        let mut merged = self
            .current
            .remove(user)
            .or_else(|| self.previous.remove(user))
            .unwrap_or_default();
        merged.merge(token);
        self.current.insert(user.to_owned(), merged);
    }

    /// Users remembered (an upper bound: a user may be in both generations only transiently).
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(origin: &str, ts: u64) -> SessionToken {
        SessionToken::mark(origin, ts)
    }

    #[test]
    fn remembers_merges_and_forgets_after_ttl() {
        let mut s = Sessions::new(1000, 100);
        s.remember("bruno", &mark("eu-west", 5), 0);
        s.remember("bruno", &mark("us-east", 9), 100);
        let got = s.get("bruno", 200).map(|t| t.to_string());
        assert_eq!(got.as_deref(), Some("eu-west:5,us-east:9"));
        // Rotated once at 500: still there until the next rotation drops it.
        assert!(s.get("bruno", 600).is_some());
        assert!(s.get("bruno", 1100).is_none());
        assert!(s.get("nobody", 1100).is_none());
    }

    #[test]
    fn a_write_keeps_its_user_young() {
        let mut s = Sessions::new(1000, 100);
        for t in (0..5000).step_by(400) {
            s.remember("bruno", &mark("eu-west", t), t);
            assert!(s.get("bruno", t + 450).is_some(), "at {t}");
        }
    }

    #[test]
    fn bounded_by_max_users() {
        let mut s = Sessions::new(u64::MAX, 10);
        for i in 0..1000 {
            s.remember(&format!("u{i}"), &mark("eu-west", i), 1);
            assert!(s.len() <= 10, "{} users after {i}", s.len());
        }
        assert!(s.get("u999", 1).is_some());
    }

    #[test]
    fn zero_remembers_nothing() {
        for (ttl, max) in [(0, 100), (1000, 0)] {
            let mut s = Sessions::new(ttl, max);
            s.remember("bruno", &mark("eu-west", 5), 0);
            assert!(s.get("bruno", 0).is_none());
        }
    }
}
