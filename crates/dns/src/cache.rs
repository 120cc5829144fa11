//! A per-thread memo of [`Handler::respond`](crate::handler::Handler::respond) + encode on
//! their exact inputs, used by the UDP loop ([`crate::udp`]) only. No I/O here.
//!
//! Why a stored answer is the answer the handler would compute again: the encoded response is
//! a deterministic function of
//! - the datagram after its 2-byte ID (question, flags, EDNS and the ECS option, which carries
//!   the client's location when present; the ID is only copied into the response),
//! - the source IP (the client's location when there is no ECS),
//! - the health snapshot (the UDP loop clears its cache whenever it takes a new snapshot),
//! - the configuration, i.e. the [`Handler`](crate::handler::Handler), immutable for the
//!   server's lifetime (another config means another server: new threads, new caches),
//! - and the random generator. The loop stores an answer only when answering it drew no random
//!   value (the policy had nothing to choose at random: simple, latency, failover, geo… with
//!   every candidate at full weight), so the answer did not depend on the generator's state,
//!   and the generator is left exactly where computing the answer would have left it.
//!
//! The key is the source IP followed by `datagram[2..]`, so a hit is byte-for-byte the same
//! input; the stored response gets the new query's ID written over its first two bytes. Keys
//! are chosen by whoever sends datagrams, so the map keeps std's SipHash with a random key, and
//! memory is bounded: at [`CAPACITY`] entries or [`MAX_BYTES`] the whole cache is cleared (no
//! eviction order to maintain; a working set that fits is refilled in one miss per entry).

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;

/// Most entries one cache holds before it is cleared. Legitimate traffic for an authoritative
/// server has a small working set (names × query shapes × resolver addresses), so 4096 keeps
/// the hit rate high while bounding what random queries can make a thread hold.
pub(crate) const CAPACITY: usize = 4096;

/// Most key + response bytes one cache holds before it is cleared (a second bound, for
/// unusually large queries or answers).
pub(crate) const MAX_BYTES: usize = 4 << 20;

/// Datagrams longer than this are answered but never stored (real queries are far shorter).
pub(crate) const MAX_QUERY: usize = 512;

/// What a stored answer needs to be replayed: the wire bytes, and the labels the query counter
/// is incremented with.
#[derive(Debug, Clone)]
struct Entry {
    response: Vec<u8>,
    rcode: ResponseCode,
    ecs: bool,
}

/// A hit: what the query counter is incremented with (the bytes are already in `out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) rcode: ResponseCode,
    pub(crate) ecs: bool,
}

/// Encoded answers keyed by (source IP, query without its ID). One per UDP thread, no lock.
#[derive(Debug)]
pub(crate) struct AnswerCache {
    map: HashMap<Vec<u8>, Entry>,
    /// Scratch buffer the lookup key is built in, so a hit allocates nothing.
    key: Vec<u8>,
    bytes: usize,
    capacity: usize,
    max_bytes: usize,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache::with_limits(CAPACITY, MAX_BYTES)
    }
}

impl AnswerCache {
    /// A cache cleared once it holds `capacity` entries or `max_bytes` bytes.
    pub(crate) fn with_limits(capacity: usize, max_bytes: usize) -> Self {
        AnswerCache {
            map: HashMap::new(),
            key: Vec::with_capacity(64),
            bytes: 0,
            capacity: capacity.max(1),
            max_bytes,
        }
    }

    /// Builds the key of (`src`, `datagram`) in the scratch buffer; false when `datagram` is
    /// not to be cached (no ID, or longer than [`MAX_QUERY`]).
    fn build_key(&mut self, src: IpAddr, datagram: &[u8]) -> bool {
        let Some(rest) = datagram.get(2..).filter(|_| datagram.len() <= MAX_QUERY) else {
            return false;
        };
        self.key.clear();
        // A tag fixes the address length, so no two (address, query) pairs share a key.
        match src {
            IpAddr::V4(a) => {
                self.key.push(4);
                self.key.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                self.key.push(6);
                self.key.extend_from_slice(&a.octets());
            }
        }
        self.key.extend_from_slice(rest);
        true
    }

    /// On a hit, writes the stored response into `out` with `datagram`'s ID and returns the
    /// counter labels; on a miss leaves `out` alone.
    pub(crate) fn get(&mut self, src: IpAddr, datagram: &[u8], out: &mut Vec<u8>) -> Option<Hit> {
        if !self.build_key(src, datagram) {
            return None;
        }
        let entry = self.map.get(self.key.as_slice())?;
        out.clear();
        out.extend_from_slice(&entry.response);
        if let (Some(id), Some(query_id)) = (out.get_mut(..2), datagram.get(..2)) {
            id.copy_from_slice(query_id);
        }
        Some(Hit {
            rcode: entry.rcode,
            ecs: entry.ecs,
        })
    }

    /// Stores `response` (the encoded answer to `datagram` from `src`). The caller guarantees
    /// it is a deterministic function of the key (see the module documentation).
    pub(crate) fn insert(
        &mut self,
        src: IpAddr,
        datagram: &[u8],
        response: &[u8],
        rcode: ResponseCode,
        ecs: bool,
    ) {
        if response.len() < 2 || !self.build_key(src, datagram) {
            return;
        }
        let size = self.key.len() + response.len();
        if self.map.len() >= self.capacity || self.bytes + size > self.max_bytes {
            self.clear();
        }
        let entry = Entry {
            response: response.to_vec(),
            rcode,
            ecs,
        };
        if let Some(old) = self.map.insert(self.key.clone(), entry) {
            self.bytes -= self.key.len() + old.response.len();
        }
        self.bytes += size;
    }

    /// Forgets every stored answer (a new health snapshot).
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    /// Stored answers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const A: &str = "192.0.2.1";
    const B: &str = "192.0.2.2";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A fake query: ID, then a body.
    fn query(id: u16, body: &[u8]) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(body);
        q
    }

    #[test]
    fn hit_returns_stored_bytes_with_the_new_id() {
        let mut cache = AnswerCache::default();
        let mut out = vec![9u8; 3];
        assert_eq!(cache.get(ip(A), &query(1, b"www"), &mut out), None);
        assert_eq!(out, vec![9u8; 3], "a miss leaves out alone");
        cache.insert(
            ip(A),
            &query(1, b"www"),
            &[0, 1, 0x84, 0, 7, 7],
            ResponseCode::NoError,
            true,
        );
        let hit = cache.get(ip(A), &query(0xBEEF, b"www"), &mut out);
        assert_eq!(
            hit,
            Some(Hit {
                rcode: ResponseCode::NoError,
                ecs: true
            })
        );
        assert_eq!(out, vec![0xBE, 0xEF, 0x84, 0, 7, 7]);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn another_source_or_other_bytes_miss() {
        let mut cache = AnswerCache::default();
        cache.insert(
            ip(A),
            &query(1, b"www"),
            &[0, 1, 2],
            ResponseCode::NoError,
            false,
        );
        let mut out = Vec::new();
        assert!(cache.get(ip(B), &query(1, b"www"), &mut out).is_none());
        assert!(cache.get(ip(A), &query(1, b"wwx"), &mut out).is_none());
        assert!(cache.get(ip(A), &query(1, b"www\0"), &mut out).is_none());
        // The v4-mapped v6 form of the same address is a different input (it may locate
        // differently), and 4 address bytes + body never collide with 16 address bytes.
        let mapped = IpAddr::V6(A.parse::<std::net::Ipv4Addr>().unwrap().to_ipv6_mapped());
        assert!(cache.get(mapped, &query(1, b"www"), &mut out).is_none());
        assert!(out.is_empty());
        assert!(cache.get(ip(A), &query(2, b"www"), &mut out).is_some());
    }

    #[test]
    fn too_short_or_too_long_queries_are_not_stored() {
        let mut cache = AnswerCache::default();
        let mut out = Vec::new();
        cache.insert(ip(A), &[1], &[0, 1, 2], ResponseCode::NoError, false);
        let long = query(1, &[0u8; MAX_QUERY]);
        cache.insert(ip(A), &long, &[0, 1, 2], ResponseCode::NoError, false);
        assert_eq!(cache.len(), 0);
        assert!(cache.get(ip(A), &[1], &mut out).is_none());
        assert!(cache.get(ip(A), &long, &mut out).is_none());
    }

    #[test]
    fn cleared_entirely_when_full() {
        // Stores the answer `0 0 i` to the query `… i`, for each i in `range`.
        let fill = |cache: &mut AnswerCache, range: std::ops::Range<u8>| {
            for i in range {
                cache.insert(
                    ip(A),
                    &query(1, &[i]),
                    &[0, 0, i],
                    ResponseCode::NoError,
                    false,
                );
            }
        };
        let mut cache = AnswerCache::with_limits(3, usize::MAX);
        fill(&mut cache, 0..3);
        assert_eq!(cache.len(), 3);
        // A fourth entry clears the other three first.
        fill(&mut cache, 3..4);
        assert_eq!(cache.len(), 1);
        let mut out = Vec::new();
        assert!(cache.get(ip(A), &query(1, &[0]), &mut out).is_none());
        assert!(cache.get(ip(A), &query(1, &[3]), &mut out).is_some());
        assert_eq!(out, vec![0, 1, 3]);

        // The byte bound: key (1 + 4 + 1) + response (3) = 9 bytes per entry.
        let mut cache = AnswerCache::with_limits(100, 20);
        fill(&mut cache, 0..3);
        assert_eq!(cache.len(), 1, "the third entry would pass 20 bytes");
        cache.clear();
        assert_eq!(cache.len(), 0);
        assert!(cache.get(ip(A), &query(1, &[2]), &mut out).is_none());
    }
}
