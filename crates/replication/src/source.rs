//! What a sync-out tails: a change source. The link machinery (frames, auth, window and acks,
//! resume from checkpoint, loop prevention, lag) runs over any source that yields its changes
//! as an ordered, gap-free log of GTID-stamped entries; the region's change log is one.

use meridian_storage::{LogRead, StoreError};
use tokio::sync::watch;

/// An ordered log of changes, each with a local sequence and a GTID (origin, origin sequence).
pub trait ChangeSource: Send + Sync + 'static {
    /// Up to `max` entries from local sequence `from`, in order, without holes: entries whose
    /// origin `ships` accepts, the others (and sequences the log gave up) as skipped. Blocking:
    /// call it off the async runtime unless the read is small.
    fn read(
        &self,
        from: u64,
        max: usize,
        ships: &(dyn Fn(&str) -> bool + Send + Sync),
    ) -> Result<Vec<LogRead>, StoreError>;

    /// The highest durable sequence.
    fn head(&self) -> u64;

    /// Watches [`ChangeSource::head`].
    fn subscribe_head(&self) -> watch::Receiver<u64>;

    /// A consistent pair `(head, stable_ts)`: every change of this region's with a timestamp
    /// up to `stable_ts` is at or below `head`.
    fn stable_mark(&self) -> (u64, u64);

    /// The highest sequence the log no longer holds (`own`: of this region's own changes).
    fn purged_through(&self, own: bool) -> Result<u64, StoreError>;
}

impl ChangeSource for meridian_storage::Store {
    fn read(
        &self,
        from: u64,
        max: usize,
        ships: &(dyn Fn(&str) -> bool + Send + Sync),
    ) -> Result<Vec<LogRead>, StoreError> {
        self.changes_for(from, max, ships)
    }

    fn head(&self) -> u64 {
        meridian_storage::Store::head(self)
    }

    fn subscribe_head(&self) -> watch::Receiver<u64> {
        meridian_storage::Store::subscribe_head(self)
    }

    fn stable_mark(&self) -> (u64, u64) {
        meridian_storage::Store::stable_mark(self)
    }

    fn purged_through(&self, own: bool) -> Result<u64, StoreError> {
        if own {
            self.purged_own_through()
        } else {
            meridian_storage::Store::purged_through(self)
        }
    }
}
