//! The end of a group: counters and clock into the batch, one engine commit, one fsync, then
//! every request of the group answered.

use super::*;

impl<'a> Group<'a> {
    /// Commits the group and fsyncs it (unless no job in it needs that), then acknowledges it.
    /// On failure nothing is acknowledged.
    pub(super) fn commit(mut self, hlc: &Hlc) -> Result<(), (StoreError, Vec<Done>)> {
        let inner = self.inner;
        for (id, st) in &self.stats {
            self.batch.insert(
                &inner.meta,
                id_key(META_STATS, *id),
                record::encode_stats(st.item_count, st.size_bytes),
            );
        }
        self.batch.insert(
            &inner.meta,
            META_HLC.to_vec(),
            record::encode_u64(hlc.last().0),
        );
        let changes = self.head - inner.head.load(Ordering::Acquire);
        let done = std::mem::take(&mut self.done);
        let committing = Instant::now();
        if let Err(e) = self.batch.commit() {
            return Err((e.into(), done));
        }
        inner
            .metrics
            .commit_seconds
            .observe(committing.elapsed().as_secs_f64());
        if self.needs_sync {
            let started = Instant::now();
            if let Err(e) = sync(inner) {
                return Err((e, done));
            }
            inner
                .metrics
                .fsync_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        let durable_at = Instant::now();
        inner.metrics.group_size.observe(self.requests as f64);
        inner.metrics.commits.inc();
        inner.metrics.changes.inc_by(changes);
        inner.metrics.head.set(self.head as i64);
        {
            // Under the mark's lock, so `Store::wait_durable` cannot miss the wake-up.
            let mut m = inner
                .mark
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *m = (self.head, hlc.last().0);
            inner.own_ts.fetch_max(self.own_ts, Ordering::AcqRel);
            inner.head.store(self.head, Ordering::Release);
            inner.durable.notify_all();
        }
        inner.head_tx.send_replace(self.head);
        if let Ok(mut s) = inner.stats.lock() {
            for id in &self.dropped {
                s.remove(id);
            }
            s.extend(self.stats.drain());
        }
        if let Ok(mut t) = inner.tables.write() {
            for (name, meta) in self.tables.drain() {
                match meta {
                    Some(m) => t.insert(name, m),
                    None => t.remove(&name),
                };
            }
        }
        for id in self.dropped.iter().chain(&self.dropped_indexes) {
            queue_purge(inner, *id);
        }
        for d in done {
            d(Ok(durable_at));
        }
        Ok(())
    }
}

pub(super) fn sync(inner: &Inner) -> Result<(), StoreError> {
    if inner.faults.fail_next_sync.swap(false, Ordering::AcqRel) {
        return Err(StoreError::Injected("fsync failure"));
    }
    let hold = inner.faults.hold_next_sync_ms.swap(0, Ordering::AcqRel);
    if hold > 0 {
        std::thread::sleep(std::time::Duration::from_millis(hold));
    }
    inner.db.persist(PersistMode::SyncData).map_err(Into::into)
}
