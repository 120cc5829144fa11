//! Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
//!
//! A [`Timestamp`] packs the physical part (milliseconds since the epoch, 48 bits) above a
//! 16-bit logical counter, so timestamps compare as plain integers. The clock guarantees:
//!
//! 1. **Monotonic:** every [`Hlc::now`] is strictly greater than every earlier value it issued
//!    or [observed](Hlc::observe).
//! 2. **Causal:** after observing a remote timestamp `r`, every later local timestamp is `> r`,
//!    whatever the local wall clock says. A write made after seeing another write therefore
//!    always carries a larger timestamp, even when the two regions' clocks are skewed.
//! 3. **Close to physical time:** the physical part never falls behind the local wall clock.
//!
//! If the 16-bit logical counter overflows within one millisecond, the physical part is bumped
//! by one millisecond instead (the clock runs ahead by at most that much).

use crate::clock::Clock;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

const LOGICAL_BITS: u32 = 16;

/// A hybrid-logical-clock timestamp: `physical_ms << 16 | logical`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The smallest timestamp.
    pub const ZERO: Timestamp = Timestamp(0);

    /// Builds a timestamp from its parts.
    pub fn new(physical_ms: u64, logical: u16) -> Self {
        Timestamp((physical_ms << LOGICAL_BITS) | u64::from(logical))
    }

    /// The physical part, in milliseconds since the Unix epoch.
    pub fn physical_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// The logical counter.
    pub fn logical(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical_ms(), self.logical())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A hybrid logical clock over a [`Clock`]. Not thread-safe by itself: the region's single
/// writer owns it (wrap it in a mutex if several tasks must stamp).
pub struct Hlc {
    clock: Arc<dyn Clock>,
    last: Timestamp,
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hlc").field("last", &self.last).finish()
    }
}

impl Hlc {
    /// A clock that has issued nothing yet.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            last: Timestamp::ZERO,
        }
    }

    /// A clock that resumes after `last` (e.g. the highest timestamp found in the store at start).
    pub fn resume(clock: Arc<dyn Clock>, last: Timestamp) -> Self {
        Self { clock, last }
    }

    /// The last timestamp issued or observed.
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// Issues a new timestamp, strictly greater than every earlier one.
    pub fn now(&mut self) -> Timestamp {
        let physical = Timestamp::new(self.clock.now_ms(), 0);
        self.last = if physical > self.last {
            physical
        } else {
            Timestamp(self.last.0.saturating_add(1))
        };
        self.last
    }

    /// Folds in a timestamp received from another region: later local timestamps exceed it.
    pub fn observe(&mut self, remote: Timestamp) {
        if remote > self.last {
            self.last = remote;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use proptest::prelude::*;

    #[test]
    fn now_is_strictly_monotonic_when_clock_stalls_or_goes_back() {
        let clock = ManualClock::new(1_000);
        let mut hlc = Hlc::new(clock.clone());
        let a = hlc.now();
        let b = hlc.now();
        clock.set(500); // wall clock jumps backwards
        let c = hlc.now();
        assert!(a < b && b < c, "{a:?} {b:?} {c:?}");
        assert_eq!(a.physical_ms(), 1_000);
        assert_eq!(c.physical_ms(), 1_000);
    }

    #[test]
    fn physical_part_follows_the_wall_clock() {
        let clock = ManualClock::new(1_000);
        let mut hlc = Hlc::new(clock.clone());
        hlc.now();
        clock.set(2_000);
        assert_eq!(hlc.now(), Timestamp::new(2_000, 0));
    }

    #[test]
    fn write_after_observing_a_skewed_remote_wins() {
        // Region B's clock is 5 s behind region A's.
        let clock_a = ManualClock::new(10_000);
        let clock_b = ManualClock::new(5_000);
        let mut a = Hlc::new(clock_a);
        let mut b = Hlc::new(clock_b);
        let written_in_a = a.now();
        b.observe(written_in_a);
        let written_in_b = b.now();
        assert!(written_in_b > written_in_a);
    }

    proptest! {
        #[test]
        fn monotonic_under_any_clock_and_observations(
            steps in proptest::collection::vec((0u64..5_000, any::<bool>(), 0u64..10_000), 1..200)
        ) {
            let clock = ManualClock::new(0);
            let mut hlc = Hlc::new(clock.clone());
            let mut prev = Timestamp::ZERO;
            for (wall, observe, remote_ms) in steps {
                clock.set(wall);
                let remote = Timestamp::new(remote_ms, 3);
                if observe {
                    hlc.observe(remote);
                    let next = hlc.now();
                    prop_assert!(next > remote);
                    prop_assert!(next > prev);
                    prev = next;
                } else {
                    let next = hlc.now();
                    prop_assert!(next > prev);
                    prop_assert!(next.physical_ms() >= wall);
                    prev = next;
                }
            }
        }
    }
}
