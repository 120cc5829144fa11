//! Building a new secondary index over a table's existing items, chunk by chunk, in the
//! background.

use crate::error::StoreError;
use crate::store::Store;
use crate::writer::Job;
use meridian_model::table::TableMeta;
use meridian_worker::Next;

impl Store {
    /// Builds a new index's entries from the table's items, a chunk per writer turn (writes
    /// that happen meanwhile maintain the index themselves), then marks it `ACTIVE`. Items whose
    /// value cannot be an index key stay out of the index and are counted in the log, as
    /// DynamoDB's index key violations are.
    pub async fn backfill_index(&self, table: &str, index_name: &str) -> Result<(), StoreError> {
        let t = self
            .table(table)
            .ok_or_else(|| StoreError::NoSuchTable(table.to_owned()))?;
        let Some(index_id) = t.index(index_name).map(|i| i.id) else {
            return Ok(());
        };
        let mut after = None;
        let mut skipped = 0;
        loop {
            let step = self
                .call(|reply| Job::backfill_chunk(table.to_owned(), index_id, after, reply))
                .await?;
            skipped += step.skipped;
            match step.next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        if skipped > 0 {
            tracing::warn!(
                %table, index = %index_name, items = skipped,
                "index key violations: items whose value for an index key attribute has the \
                 wrong type or an empty or oversized value are not in the index"
            );
        }
        let name = index_name.to_owned();
        self.update_table(
            table,
            Box::new(move |m: &mut TableMeta| {
                for i in &mut m.indexes {
                    if i.name == name && i.id == index_id {
                        i.status = meridian_model::table::IndexStatus::Active;
                    }
                }
            }),
        )
        .await?;
        Ok(())
    }

    /// Starts the `index-builder` worker: it backfills every `CREATING` index (added by
    /// `UpdateTable` here or replicated from another region), then marks it `ACTIVE`. It looks
    /// after every commit, at most every 200 ms.
    pub fn spawn_index_builder(&self) {
        let builder = IndexBuilder {
            store: self.clone(),
            head: self.subscribe_head(),
        };
        self.inner
            .workers
            .scoped(&self.inner.workers_stop)
            .spawn("index-builder", builder);
    }

    /// The registry of the store's background workers (see [`crate::StoreOptions::workers`]).
    pub fn workers(&self) -> &meridian_worker::Workers {
        &self.inner.workers
    }
}

struct IndexBuilder {
    store: Store,
    head: tokio::sync::watch::Receiver<u64>,
}

impl meridian_worker::Worker for IndexBuilder {
    async fn step(&mut self) -> Result<Next, String> {
        // A commit from here on wakes the next step (one during the backfill included).
        self.head.mark_unchanged();
        let pending: Vec<(String, String)> = self
            .store
            .inner
            .tables
            .read()
            .map(|t| {
                t.values()
                    .flat_map(|m| {
                        m.indexes
                            .iter()
                            .filter(|i| i.status == meridian_model::table::IndexStatus::Creating)
                            .map(|i| (m.name.clone(), i.name.clone()))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut failed = None;
        for (table, index) in pending {
            if let Err(e) = self.store.backfill_index(&table, &index).await {
                failed = Some(format!("backfilling {table}.{index}: {e}"));
            }
        }
        if self.store.is_poisoned() {
            return Ok(Next::Done);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let mut head = self.head.clone();
        Ok(Next::When(Box::pin(async move {
            if head.changed().await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            } else {
                // The store is gone: nothing will commit again; wait for the stop.
                std::future::pending::<()>().await;
            }
        })))
    }
}
