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
//!
//! A timestamp from elsewhere is folded in only after [`Hlc::admit`] accepted it: one more than
//! the maximum clock offset ahead of the local wall clock is refused (CockroachDB's
//! `--max-offset` rule), so no peer can drag every clock forward or make a far-future version
//! win every later conflict. The clock never wraps or saturates: [`Hlc::now`] fails when it
//! has no larger timestamp left.

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

/// Why the clock refused a timestamp or could not issue one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockError {
    /// A timestamp from elsewhere is further ahead of the local wall clock than allowed.
    Ahead {
        /// The refused timestamp.
        ts: Timestamp,
        /// How far ahead of the local wall clock it is.
        ahead_ms: u64,
        /// The largest offset allowed.
        max_offset_ms: u64,
    },
    /// No timestamp larger than the last one is left (the physical part reached 2^48 ms).
    Exhausted,
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockError::Ahead {
                ts,
                ahead_ms,
                max_offset_ms,
            } => write!(
                f,
                "timestamp {ts} is {ahead_ms} ms ahead of this region's clock (the maximum clock offset is {max_offset_ms} ms)"
            ),
            ClockError::Exhausted => write!(f, "the hybrid logical clock has no timestamps left"),
        }
    }
}

impl std::error::Error for ClockError {}

/// Largest physical part a timestamp can hold, in milliseconds since the epoch.
const MAX_PHYSICAL_MS: u64 = (1 << (64 - LOGICAL_BITS)) - 1;

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

    /// Issues a new timestamp, strictly greater than every earlier one; fails rather than repeat
    /// or wrap when none is left.
    pub fn now(&mut self) -> Result<Timestamp, ClockError> {
        let physical = Timestamp::new(self.clock.now_ms().min(MAX_PHYSICAL_MS), 0);
        self.last = if physical > self.last {
            physical
        } else {
            Timestamp(self.last.0.checked_add(1).ok_or(ClockError::Exhausted)?)
        };
        Ok(self.last)
    }

    /// The local wall clock, in milliseconds since the epoch.
    pub fn wall_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Checks a timestamp from elsewhere before it is [observed](Hlc::observe) or stored: it may
    /// be at most `max_offset_ms` ahead of the local wall clock.
    pub fn admit(&self, remote: Timestamp, max_offset_ms: u64) -> Result<(), ClockError> {
        let ahead_ms = remote.physical_ms().saturating_sub(self.clock.now_ms());
        if ahead_ms > max_offset_ms {
            return Err(ClockError::Ahead {
                ts: remote,
                ahead_ms,
                max_offset_ms,
            });
        }
        Ok(())
    }

    /// Folds in a timestamp received from another region (checked by [`Hlc::admit`]): later
    /// local timestamps exceed it.
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
        let a = hlc.now().expect("a timestamp");
        let b = hlc.now().expect("a timestamp");
        clock.set(500); // wall clock jumps backwards
        let c = hlc.now().expect("a timestamp");
        assert!(a < b && b < c, "{a:?} {b:?} {c:?}");
        assert_eq!(a.physical_ms(), 1_000);
        assert_eq!(c.physical_ms(), 1_000);
    }

    #[test]
    fn physical_part_follows_the_wall_clock() {
        let clock = ManualClock::new(1_000);
        let mut hlc = Hlc::new(clock.clone());
        hlc.now().expect("a timestamp");
        clock.set(2_000);
        assert_eq!(hlc.now().expect("a timestamp"), Timestamp::new(2_000, 0));
    }

    #[test]
    fn write_after_observing_a_skewed_remote_wins() {
        // Region B's clock is 5 s behind region A's.
        let clock_a = ManualClock::new(10_000);
        let clock_b = ManualClock::new(5_000);
        let mut a = Hlc::new(clock_a);
        let mut b = Hlc::new(clock_b);
        let written_in_a = a.now().expect("a timestamp");
        b.observe(written_in_a);
        let written_in_b = b.now().expect("a timestamp");
        assert!(written_in_b > written_in_a);
    }

    #[test]
    fn a_timestamp_too_far_ahead_is_refused_and_the_clock_never_wraps() {
        let clock = ManualClock::new(10_000);
        let mut hlc = Hlc::new(clock.clone());
        assert!(hlc.admit(Timestamp::new(10_500, 7), 500).is_ok());
        assert!(hlc.admit(Timestamp::new(1_000, 0), 500).is_ok());
        assert_eq!(
            hlc.admit(Timestamp::new(10_501, 0), 500),
            Err(ClockError::Ahead {
                ts: Timestamp::new(10_501, 0),
                ahead_ms: 501,
                max_offset_ms: 500
            })
        );
        assert!(hlc.admit(Timestamp(u64::MAX), 500).is_err());
        hlc.observe(Timestamp(u64::MAX - 1));
        assert_eq!(hlc.now(), Ok(Timestamp(u64::MAX)));
        assert_eq!(hlc.now(), Err(ClockError::Exhausted));
        assert_eq!(hlc.last(), Timestamp(u64::MAX));
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
                    let next = hlc.now().expect("a timestamp");
                    prop_assert!(next > remote);
                    prop_assert!(next > prev);
                    prev = next;
                } else {
                    let next = hlc.now().expect("a timestamp");
                    prop_assert!(next > prev);
                    prop_assert!(next.physical_ms() >= wall);
                    prev = next;
                }
            }
        }
    }
}
