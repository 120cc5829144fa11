//! Unique, time-ordered 64-bit IDs issued by any region without coordination (Snowflake-style):
//! the answer to auto-increment keys colliding when every region accepts writes.
//!
//! Layout, most significant bit first:
//!
//! ```text
//!  63  62 ............ 22 21 ...... 12 11 ....... 0
//! | 0 | ms since EPOCH  |  region id  |  sequence  |
//! |1b |     41 bits     |   10 bits   |  12 bits   |
//! ```
//!
//! - 41 bits of milliseconds since [`EPOCH_MS`] (2026-01-01T00:00:00Z) last about 69 years.
//! - 10 bits of region id (0–1023) make IDs from different regions distinct by construction.
//! - 12 bits of sequence give 4096 IDs per millisecond per region.
//!
//! Monotonic per generator, even when the wall clock goes backwards: the generator never issues
//! a timestamp below the last one it used. If the clock is behind (or 4096 IDs were issued in the
//! current millisecond) it keeps counting on its own logical millisecond and moves it forward by
//! one when the sequence runs out — IDs stay unique and ordered, and only run ahead of real time
//! by as much as the clock went back (or by the burst size / 4096 ms). Nothing blocks or fails
//! except running out of the 41-bit range.
//!
//! Pure: the caller passes the current time, so tests drive the clock.

/// The custom epoch: 2026-01-01T00:00:00Z in Unix milliseconds.
pub const EPOCH_MS: u64 = 1_767_225_600_000;
/// Bits of the millisecond timestamp.
pub const TIME_BITS: u32 = 41;
/// Bits of the region id.
pub const REGION_BITS: u32 = 10;
/// Bits of the per-millisecond sequence.
pub const SEQUENCE_BITS: u32 = 12;
/// Largest region id (1023).
pub const MAX_REGION_ID: u16 = (1 << REGION_BITS) - 1;
const MAX_SEQUENCE: u16 = (1 << SEQUENCE_BITS) - 1;
const MAX_TIME: u64 = (1 << TIME_BITS) - 1;

/// Why an ID could not be issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnowflakeError {
    /// The region id does not fit in 10 bits.
    RegionIdOutOfRange(u16),
    /// The clock is before the epoch, or 41 bits of milliseconds have run out.
    TimeOutOfRange(u64),
}

impl std::fmt::Display for SnowflakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnowflakeError::RegionIdOutOfRange(id) => {
                write!(f, "region id {id} is out of range 0..={MAX_REGION_ID}")
            }
            SnowflakeError::TimeOutOfRange(ms) => {
                write!(
                    f,
                    "time {ms} ms is outside the 41-bit range after the epoch"
                )
            }
        }
    }
}

impl std::error::Error for SnowflakeError {}

/// The parts of an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdParts {
    /// Unix milliseconds the ID was issued at (logical: never below an earlier ID's).
    pub unix_ms: u64,
    /// Issuing region.
    pub region_id: u16,
    /// Sequence within that millisecond.
    pub sequence: u16,
}

/// Splits an ID into its parts.
pub fn decode(id: u64) -> IdParts {
    IdParts {
        unix_ms: (id >> (REGION_BITS + SEQUENCE_BITS)) + EPOCH_MS,
        region_id: ((id >> SEQUENCE_BITS) & u64::from(MAX_REGION_ID)) as u16,
        sequence: (id & u64::from(MAX_SEQUENCE)) as u16,
    }
}

/// One region's ID generator. Not thread-safe by itself: wrap it in a mutex.
#[derive(Debug, Clone)]
pub struct Snowflake {
    region_id: u16,
    /// Logical milliseconds since the epoch of the last ID (None before the first).
    last_ms: Option<u64>,
    sequence: u16,
}

impl Snowflake {
    /// A generator for `region_id` (0–1023).
    pub fn new(region_id: u16) -> Result<Self, SnowflakeError> {
        if region_id > MAX_REGION_ID {
            return Err(SnowflakeError::RegionIdOutOfRange(region_id));
        }
        Ok(Snowflake {
            region_id,
            last_ms: None,
            sequence: 0,
        })
    }

    /// The region id stamped into every ID.
    pub fn region_id(&self) -> u16 {
        self.region_id
    }

    /// The next ID, given the current wall-clock time in Unix milliseconds.
    pub fn next_id(&mut self, now_unix_ms: u64) -> Result<u64, SnowflakeError> {
        let now = now_unix_ms
            .checked_sub(EPOCH_MS)
            .ok_or(SnowflakeError::TimeOutOfRange(now_unix_ms))?;
        let (ms, seq) = match self.last_ms {
            Some(last) if now <= last => {
                // Same millisecond, or the clock went back: keep counting on the logical clock.
                if self.sequence < MAX_SEQUENCE {
                    (last, self.sequence + 1)
                } else {
                    (last + 1, 0)
                }
            }
            _ => (now, 0),
        };
        if ms > MAX_TIME {
            return Err(SnowflakeError::TimeOutOfRange(now_unix_ms));
        }
        self.last_ms = Some(ms);
        self.sequence = seq;
        Ok((ms << (REGION_BITS + SEQUENCE_BITS))
            | (u64::from(self.region_id) << SEQUENCE_BITS)
            | u64::from(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const T0: u64 = EPOCH_MS + 1_000_000;

    #[test]
    fn layout_round_trips() {
        let mut g = Snowflake::new(517).expect("region id");
        let id = g.next_id(T0).expect("id");
        assert_eq!(
            decode(id),
            IdParts {
                unix_ms: T0,
                region_id: 517,
                sequence: 0
            }
        );
        assert_eq!(id >> 63, 0, "the sign bit stays clear");
        let id2 = g.next_id(T0).expect("id");
        assert_eq!(decode(id2).sequence, 1);
    }

    #[test]
    fn rejects_bad_region_and_time() {
        assert_eq!(
            Snowflake::new(1024).err(),
            Some(SnowflakeError::RegionIdOutOfRange(1024))
        );
        let mut g = Snowflake::new(1).expect("region id");
        assert!(g.next_id(EPOCH_MS - 1).is_err());
        assert!(g.next_id(EPOCH_MS + MAX_TIME + 1).is_err());
        assert!(g.next_id(EPOCH_MS + MAX_TIME).is_ok());
    }

    #[test]
    fn sequence_overflow_borrows_the_next_millisecond() {
        let mut g = Snowflake::new(3).expect("region id");
        let mut prev = 0;
        for _ in 0..10_000 {
            let id = g.next_id(T0).expect("id");
            assert!(id > prev);
            prev = id;
        }
        // 10 000 IDs in one real millisecond: the logical clock ran 2 ms ahead.
        assert_eq!(decode(prev).unix_ms, T0 + 2);
        // Real time catching up continues from there.
        let next = g.next_id(T0 + 5).expect("id");
        assert_eq!(decode(next).unix_ms, T0 + 5);
    }

    #[test]
    fn clock_going_back_stays_monotonic() {
        let mut g = Snowflake::new(9).expect("region id");
        let a = g.next_id(T0 + 100).expect("id");
        let b = g.next_id(T0).expect("id"); // clock stepped back 100 ms
        assert!(b > a);
        assert_eq!(decode(b).unix_ms, T0 + 100);
    }

    proptest! {
        /// Whatever the clock does (forward, back, repeated), one generator's IDs strictly
        /// increase; IDs from different regions never collide.
        #[test]
        fn unique_and_monotonic(
            steps in proptest::collection::vec((0u16..4, -50i64..50), 1..2000),
        ) {
            let mut gens: Vec<Snowflake> =
                (0..4).map(|r| Snowflake::new(r * 300).expect("region id")).collect();
            let mut last = [0u64; 4];
            let mut seen = HashSet::new();
            let mut now = T0 as i64;
            for (region, delta) in steps {
                now += delta;
                let r = usize::from(region);
                let id = gens[r].next_id(now as u64).expect("id");
                prop_assert!(id > last[r], "not monotonic: {} after {}", id, last[r]);
                last[r] = id;
                prop_assert!(seen.insert(id), "duplicate id {}", id);
                prop_assert_eq!(decode(id).region_id, region * 300);
            }
        }

        /// A later real time never yields a smaller ID than an earlier one from another
        /// generator of the same region started later (restart after the clock moved on).
        #[test]
        fn time_ordered_across_regions(a in 0u64..1_000_000, gap in 1u64..1_000_000) {
            let mut g1 = Snowflake::new(1000).expect("region id");
            let mut g2 = Snowflake::new(1).expect("region id");
            let early = g1.next_id(T0 + a).expect("id");
            let late = g2.next_id(T0 + a + gap).expect("id");
            prop_assert!(late > early);
        }
    }
}
