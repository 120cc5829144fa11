//! Removing what is no longer needed: change-log entries every peer has, settled tombstones,
//! and a dropped table's items (in the background, chunk by chunk).

use super::*;

impl<'a> Group<'a> {
    /// Removes the oldest change-log entries up to `upto` committed before `older_than_ms`
    /// (at most `limit`), and records the purge point. Returns how many were removed.
    pub(super) fn purge_log(
        &mut self,
        upto: u64,
        older_than_ms: u64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.requests += 1;
        let upto = upto.min(self.head);
        let mut last = None;
        let mut last_own = None;
        let mut n = 0;
        for kv in self.inner.log.range(..=upto.to_be_bytes()).take(limit) {
            let (k, v) = kv.into_inner()?;
            let seq = keys::u64_suffix(&k, 0)?;
            let entry = record::decode_change(seq, &v)?;
            if entry.version.ts.physical_ms() >= older_than_ms {
                break;
            }
            self.batch.remove(&self.inner.log, k.to_vec());
            last = Some(seq);
            if entry.gtid.origin == self.inner.region {
                last_own = Some(seq);
            }
            n += 1;
        }
        if let Some(seq) = last {
            self.batch.insert(
                &self.inner.meta,
                crate::keys::META_GC.to_vec(),
                record::encode_u64(seq),
            );
        }
        if let Some(seq) = last_own {
            self.batch.insert(
                &self.inner.meta,
                crate::keys::META_GC_OWN.to_vec(),
                record::encode_u64(seq),
            );
        }
        Ok(n)
    }

    /// Removes the tombstones after `after` (at most `limit` scanned) whose timestamp is at or
    /// below `before_ts`, that were committed before `older_than_ms` and recorded at or below
    /// `upto_seq`. Keys this group already touched are left alone (their state in the batch is
    /// newer than what is read).
    pub(super) fn purge_tombstones(
        &mut self,
        before_ts: u64,
        upto_seq: u64,
        older_than_ms: u64,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        self.requests += 1;
        let lo = match after {
            Some(k) => std::ops::Bound::Excluded(k),
            None => std::ops::Bound::Unbounded,
        };
        let mut purged = 0;
        let mut scanned = 0;
        let mut last = None;
        for kv in self
            .inner
            .tombstones
            .range::<Vec<u8>, _>((lo, std::ops::Bound::Unbounded))
            .take(limit)
        {
            let (k, v) = kv.into_inner()?;
            scanned += 1;
            let (version, seq) = record::decode_tombstone(&v)?;
            let key = k.to_vec();
            if version.ts.0 <= before_ts
                && seq <= upto_seq
                && version.ts.physical_ms() < older_than_ms
                && !self.overlay.contains_key(&key)
                && !self.tombs.contains_key(&key)
            {
                self.batch.remove(&self.inner.tombstones, key.clone());
                self.tombs.insert(key.clone(), None);
                purged += 1;
            }
            last = Some(key);
        }
        Ok((purged, if scanned < limit { None } else { last }))
    }
}

/// Hands a dropped table's (or index's) id to the purge worker.
pub(super) fn queue_purge(inner: &Inner, id: u64) {
    if let Ok(mut q) = inner.purges.lock() {
        q.push_back(id);
    }
    inner.purge_wanted.notify_one();
}

/// The `table-purge` worker: removes dropped tables' and indexes' entries, one table a step
/// (the drop markers of unfinished purges are queued again at open).
/// It holds the store weakly, so a dropped store closes its database.
pub(crate) struct TablePurge {
    inner: std::sync::Weak<Inner>,
    wanted: Arc<tokio::sync::Notify>,
}

impl TablePurge {
    pub(crate) fn new(inner: &Arc<Inner>) -> Self {
        TablePurge {
            inner: Arc::downgrade(inner),
            wanted: inner.purge_wanted.clone(),
        }
    }
}

impl meridian_worker::Worker for TablePurge {
    async fn step(&mut self) -> Result<meridian_worker::Next, String> {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(meridian_worker::Next::Done);
        };
        let next = inner.purges.lock().ok().and_then(|q| q.front().copied());
        let Some(id) = next else {
            let wanted = self.wanted.clone();
            return Ok(meridian_worker::Next::When(Box::pin(async move {
                wanted.notified().await;
            })));
        };
        let purging = inner.clone();
        tokio::task::spawn_blocking(move || {
            let inner = purging;
            let keyspaces = [&inner.items, &inner.tombstones, &inner.index];
            purge(&inner.db, &keyspaces, &inner.meta, id)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("purging dropped table {id}: {e}"))?;
        if let Ok(mut q) = inner.purges.lock() {
            q.retain(|x| *x != id);
        }
        Ok(meridian_worker::Next::Again)
    }
}

/// Removes a deleted table's items and tombstones in chunks, then its drop marker. Safe to
/// interrupt: the marker stays until everything is gone, and the purge restarts at open.
///
/// Each chunk's scan starts after the last key the previous chunk removed. Restarting at the
/// table's first key instead would step over the engine's tombstones of every key removed so
/// far, until compaction drops them, and the purge of n items would take O(n²) time
/// (`scripts/bench_purge.py` measures it).
pub(super) fn purge(
    db: &fjall::Database,
    keyspaces: &[&fjall::Keyspace],
    meta: &fjall::Keyspace,
    id: u64,
) -> Result<(), StoreError> {
    const CHUNK: usize = 1000;
    const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    let started = Instant::now();
    let mut last_log = started;
    let end = keys::table_end(id);
    let mut removed = 0usize;
    for ks in keyspaces.iter().copied() {
        let mut from = Bound::Included(keys::table_prefix(id));
        loop {
            let keys: Vec<fjall::UserKey> = ks
                .range::<Vec<u8>, _>((from.clone(), Bound::Excluded(end.clone())))
                .take(CHUNK)
                .map(|g| g.key())
                .collect::<Result<_, _>>()?;
            let Some(last) = keys.last() else {
                break;
            };
            from = Bound::Excluded(last.to_vec());
            let mut b = db.batch();
            for k in &keys {
                b.remove(ks, k.clone());
            }
            b.commit()?;
            removed += keys.len();
            if last_log.elapsed() >= PROGRESS_EVERY {
                last_log = Instant::now();
                tracing::info!(
                    table_id = id,
                    removed,
                    seconds = started.elapsed().as_secs_f64(),
                    "purging a deleted table"
                );
            }
        }
    }
    let mut b = db.batch();
    b.remove(meta, id_key(META_DROPPED, id));
    b.commit()?;
    db.persist(PersistMode::SyncData)?;
    tracing::info!(
        table_id = id,
        removed,
        seconds = started.elapsed().as_secs_f64(),
        "deleted table purged"
    );
    Ok(())
}

impl Job {
    /// Removes the oldest change-log entries up to `upto` committed before `older_than_ms`.
    pub(crate) fn purge_log(upto: u64, older_than_ms: u64, limit: usize, reply: Reply<u64>) -> Job {
        Job::call(reply, move |g, _| {
            g.purge_log(upto, older_than_ms, limit).map(Ok)
        })
    }

    /// Purges settled tombstones (see `Store::purge_tombstones`).
    pub(crate) fn purge_tombstones(
        before_ts: u64,
        upto_seq: u64,
        older_than_ms: u64,
        after: Option<Vec<u8>>,
        limit: usize,
        reply: Reply<(u64, Option<Vec<u8>>)>,
    ) -> Job {
        Job::call(reply, move |g, _| {
            g.purge_tombstones(before_ts, upto_seq, older_than_ms, after, limit)
                .map(Ok)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A purge of more keys than one chunk removes every key of its table, in every keyspace,
    /// and nothing of the tables beside it — the next one (3) and one whose first varint byte
    /// has the same low seven bits (130 = `82 01`, 2 = `02`) — then its drop marker.
    #[test]
    fn purge_removes_exactly_the_dropped_tables_keys_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let ks = |n: &str| {
            db.keyspace(n, fjall::KeyspaceCreateOptions::default)
                .unwrap()
        };
        let (meta, items, index) = (ks("meta"), ks("items"), ks("index"));
        let key = |id: u64, k: &str| [keys::table_prefix(id), k.as_bytes().to_vec()].concat();
        for id in [1u64, 2, 3, 130] {
            let n = if id == 2 { 2_500 } else { 10 };
            for i in 0..n {
                items.insert(key(id, &format!("k{i}")), b"v").unwrap();
            }
            index.insert(key(id, "ix"), b"").unwrap();
        }
        meta.insert(id_key(META_DROPPED, 2), b"").unwrap();
        purge(&db, &[&items, &index], &meta, 2).unwrap();
        let count = |ks: &fjall::Keyspace, id: u64| ks.prefix(keys::table_prefix(id)).count();
        assert_eq!(count(&items, 2), 0);
        assert_eq!(count(&index, 2), 0);
        for id in [1u64, 3, 130] {
            assert_eq!(count(&items, id), 10, "table {id} untouched");
            assert_eq!(count(&index, id), 1, "table {id} untouched");
        }
        assert!(meta.get(id_key(META_DROPPED, 2)).unwrap().is_none());
    }
}
