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
//!
//! **Files.** `store.rs` is the facade ([`Store`], its options and the calls that hand jobs to
//! the writer); `open.rs` (opening, recovery at start), `log.rs` (the change log as links read
//! it), `reads.rs` (item, tombstone and index reads), `index_builder.rs` and `recovery.rs` add
//! the rest of its methods. `inner.rs` is the state every thread shares, `keys.rs` every key
//! the store writes, `record.rs` every value's bytes, `writer/` the writer (one file per job
//! family). Dependencies point one way: the writer knows nothing of the facade.

mod error;
mod index_builder;
mod inner;
pub mod journal;
mod keys;
mod layout;
mod log;
mod metrics;
mod open;
mod reads;
pub mod record;
mod recovery;
mod snapshot;
mod store;
mod verify;
mod writer;

pub use error::StoreError;
pub use inner::{Recovery, StoreFaults, TableStats};
pub use log::{LogRead, RawChange};
pub use record::{ChangeEntry, ChangeOp, EncodedItem, StoredItem};
pub use snapshot::StoreSnapshot;
pub use store::{ChangeLogSummary, DEFAULT_MAX_CLOCK_OFFSET_MS, Store, StoreOptions};
pub use verify::{VerifyReport, verify};
pub use writer::{ApplyReport, Change, ChangeKind, Decision};
