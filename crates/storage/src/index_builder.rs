//! Building a new secondary index over a table's existing items, chunk by chunk, in the
//! background.

use crate::error::StoreError;
use crate::store::Store;
use crate::writer::Job;
use meridian_model::table::TableMeta;

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

    /// Starts the index builder: a task that backfills every `CREATING` index (added by
    /// `UpdateTable` here or replicated from another region), then marks it `ACTIVE`. It
    /// checks after every commit, at most every 200 ms. Call from within a tokio runtime.
    pub fn spawn_index_builder(&self) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut head = store.subscribe_head();
            loop {
                let pending: Vec<(String, String)> = store
                    .inner
                    .tables
                    .read()
                    .map(|t| {
                        t.values()
                            .flat_map(|m| {
                                m.indexes
                                    .iter()
                                    .filter(|i| {
                                        i.status == meridian_model::table::IndexStatus::Creating
                                    })
                                    .map(|i| (m.name.clone(), i.name.clone()))
                                    .collect::<Vec<_>>()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                for (table, index) in pending {
                    if let Err(e) = store.backfill_index(&table, &index).await {
                        tracing::warn!(%table, %index, error = %e, "index backfill failed; retrying");
                    }
                }
                if store.is_poisoned() || head.changed().await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
    }
}
