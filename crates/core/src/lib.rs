//! Pure core types shared by every Meridian plane.
//!
//! Nothing in this crate does I/O. Time enters only through the [`Clock`] seam, so replication
//! and routing can be driven by a simulated clock in tests.
//!
//! - [`hlc`]: the hybrid logical clock that stamps every write.
//! - [`version`]: an item's version `(HLC timestamp, origin region)` and the last-writer-wins rule.
//! - [`gtid`]: the global transaction id `(origin region, origin sequence)` of a change.
//! - [`snowflake`]: unique, time-ordered 64-bit IDs with region bits (`GET /ids`, `meridian ids`).

pub mod clock;
pub mod gtid;
pub mod hlc;
pub mod snowflake;
pub mod version;

pub use clock::{Clock, ManualClock, SystemClock};
pub use gtid::Gtid;
pub use hlc::{ClockError, Hlc, Timestamp};
pub use snowflake::{Snowflake, SnowflakeError};
pub use version::{Version, lww_wins};
