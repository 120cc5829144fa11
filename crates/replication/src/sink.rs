//! Where a sync-in applies what it receives: a change sink. A sink applies one gather of
//! changes as one transaction, together with the per-origin dedup marks (a change at or below
//! its origin's mark is a repeat and is skipped), deciding conflicts by last-writer-wins, and
//! is durable when it answers; only then is the gather acknowledged. The region's store is one.

use crate::protocol::AckReport;
use meridian_storage::{ChangeEntry, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// What applying one gather did.
#[derive(Debug, Default)]
pub struct Applied {
    /// What became of each change, as the ack reports it.
    pub report: AckReport,
    /// When the transaction became durable (`None`: nothing was written).
    pub durable_at: Option<Instant>,
    /// Tables this region became a replica of with this gather (it needs a snapshot of them).
    pub replicas_added: Vec<String>,
}

/// The future [`ChangeSink::apply`] returns.
pub type Applying<'a> = Pin<Box<dyn Future<Output = Result<Applied, StoreError>> + Send + 'a>>;

/// Applies received changes atomically with their dedup marks.
pub trait ChangeSink: Send + Sync + 'static {
    /// Applies `entries` (in stream order) in one durable transaction.
    fn apply(&self, entries: Vec<ChangeEntry>) -> Applying<'_>;
}

impl ChangeSink for meridian_storage::Store {
    fn apply(&self, entries: Vec<ChangeEntry>) -> Applying<'_> {
        Box::pin(async move {
            let r = self.apply_remote(entries).await?;
            Ok(Applied {
                report: AckReport {
                    applied: r.applied,
                    duplicates: r.duplicates,
                    stale: r.stale,
                    own: r.own,
                    missing_table: r.missing_table,
                    conflicts: r.conflicts.values().sum(),
                },
                durable_at: r.durable_at,
                replicas_added: r.replicas_added,
            })
        })
    }
}
