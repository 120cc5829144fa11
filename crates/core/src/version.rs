//! Item versions and the last-writer-wins rule.
//!
//! Every stored item and tombstone carries a [`Version`]. Versions are totally ordered by
//! `(timestamp, origin region name)`: the HLC timestamp decides, and the region name breaks the
//! (rare) tie of two regions issuing the same timestamp. Because the order is total and every
//! region applies the same rule, merging is:
//!
//! - **commutative** and **associative**: the survivor of a set of writes is its maximum,
//!   whatever order they arrive in;
//! - **idempotent**: applying the same write twice leaves the maximum unchanged.

use crate::hlc::Timestamp;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// The version of an item: when (HLC) and where (origin region) it was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Version {
    /// HLC timestamp of the write.
    pub ts: Timestamp,
    /// Region that accepted the write.
    pub region: String,
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.ts
            .cmp(&other.ts)
            .then_with(|| self.region.cmp(&other.region))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Whether a write with version `incoming` replaces the current state of the item (`None` when
/// the item has never been seen). Equal versions do not win: re-applying a write is a no-op.
pub fn lww_wins(incoming: &Version, current: Option<&Version>) -> bool {
    current.is_none_or(|cur| incoming > cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(ts: u64, region: &str) -> Version {
        Version {
            ts: Timestamp(ts),
            region: region.to_string(),
        }
    }

    /// Folds writes in the given order with `lww_wins`, returning the survivor.
    fn merge_all(writes: &[Version]) -> Option<Version> {
        let mut cur: Option<Version> = None;
        for w in writes {
            if lww_wins(w, cur.as_ref()) {
                cur = Some(w.clone());
            }
        }
        cur
    }

    #[test]
    fn region_name_breaks_timestamp_ties() {
        assert!(lww_wins(&v(5, "b"), Some(&v(5, "a"))));
        assert!(!lww_wins(&v(5, "a"), Some(&v(5, "b"))));
    }

    #[test]
    fn reapplying_is_a_no_op() {
        assert!(!lww_wins(&v(5, "a"), Some(&v(5, "a"))));
    }

    proptest! {
        #[test]
        fn merge_is_order_independent_and_idempotent(
            writes in proptest::collection::vec((0u64..20, prop::sample::select(vec!["a", "b", "c"])), 1..30),
            seed in any::<u64>(),
        ) {
            let writes: Vec<Version> = writes.into_iter().map(|(t, r)| v(t, r)).collect();
            let expected = writes.iter().max().cloned();
            // any permutation (a cheap deterministic shuffle from the seed), with duplicates
            let mut shuffled = writes.clone();
            let n = shuffled.len();
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            shuffled.extend(writes.iter().cloned());
            prop_assert_eq!(merge_all(&writes), expected.clone());
            prop_assert_eq!(merge_all(&shuffled), expected);
        }
    }
}
