//! A region's durable store.
//!
//! Five fjall keyspaces hold the region's state (byte layouts in `docs/design/storage.md`):
//! `meta` (tables, stats, counters, the layout version), `items` (live items), `tombstones`
//! (versions of deleted items, for last-writer-wins), `index` (secondary-index entries) and
//! `changelog` (this region's changes by local sequence, and the changes it applied from
//! other regions when it forwards them: `StoreOptions::log_remote`). Older key layouts are
//! upgraded at open (`layout.rs`).
//!
//! **Write path.** All writes go through one writer thread ([`writer`]). A request hands the
//! writer the keys it reads and a pure `decide` closure; the writer reads the current state
//! (including changes earlier in the same group), calls `decide`, stamps each resulting change
//! with an HLC version and the next change-log sequence, and adds item, tombstone, change-log
//! entry and counters to one batch. Once the queue is drained (or the group is full) the batch
//! is committed and fsynced once (group commit), and only then is every request in the group
//! acknowledged. A failed commit or fsync poisons the store: nothing is acknowledged and every
//! later call fails (fail-stop).
//!
//! **Reads** go straight to fjall and see every committed write.

mod error;
pub mod journal;
mod layout;
pub mod record;
mod recovery;
mod snapshot;
mod store;
mod verify;
mod writer;

pub use error::StoreError;
pub use record::{ChangeEntry, ChangeOp, EncodedItem, StoredItem};
pub use recovery::Recovery;
pub use snapshot::StoreSnapshot;
pub use store::{
    ChangeLogSummary, DEFAULT_MAX_CLOCK_OFFSET_MS, LogRead, RawChange, Store, StoreFaults,
    StoreOptions, TableStats,
};
pub use verify::{VerifyReport, verify};
pub use writer::{ApplyReport, Change, ChangeKind, Decision};
