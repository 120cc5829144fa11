//! Table DDL, local and replicated: create, delete, update (new indexes and their backfill),
//! table ids and records, and table tombstones.

use super::*;

impl<'a> Group<'a> {
    /// Writes the index entries of up to [`BACKFILL_CHUNK`] items after `after` (a storage
    /// key), reading each item as of this group (so entries match the latest state). Returns
    /// the cursor to continue from (`None` when the table is done) and how many items were
    /// skipped because a value of theirs cannot be an index key (DynamoDB's index key
    /// violations: the wrong type, or an empty or oversized string or binary).
    pub(super) fn backfill_chunk(
        &mut self,
        table: &str,
        index_id: u64,
        after: Option<Vec<u8>>,
    ) -> Result<Backfilled, StoreError> {
        self.requests += 1;
        let done = Backfilled::default();
        let Some(t) = self.lookup_table(table) else {
            return Ok(done);
        };
        let Some(idx) = t.indexes.iter().find(|i| i.id == index_id).cloned() else {
            return Ok(done);
        };
        let lo = match &after {
            Some(k) => std::ops::Bound::Excluded(keys::item_key(t.id, k)),
            None => std::ops::Bound::Included(keys::table_prefix(t.id)),
        };
        let hi = std::ops::Bound::Excluded(keys::table_end(t.id));
        let n = keys::prefix_len(t.id);
        let keys: Vec<Vec<u8>> = self
            .inner
            .items
            .range::<Vec<u8>, _>((lo, hi))
            .take(BACKFILL_CHUNK)
            .map(|g| g.key().map(|k| k.to_vec()))
            .collect::<Result<_, _>>()?;
        let mut skipped = 0;
        for full in &keys {
            let base = full.get(n..).unwrap_or_default();
            let Some(state) = self.current(full)? else {
                continue;
            };
            // An item with no value for an index key attribute is simply not in the index.
            let Some(entry) = idx.entry_of(&t.key_schema, &state.item) else {
                continue;
            };
            match index_entry_key(&idx, &state.item, base) {
                Some(k) => {
                    self.batch
                        .insert(&self.inner.index, k, record::encode_index_entry(&entry))
                }
                None => skipped += 1,
            }
        }
        let next = if keys.len() < BACKFILL_CHUNK {
            None
        } else {
            keys.last().map(|k| k.get(n..).unwrap_or_default().to_vec())
        };
        Ok(Backfilled { next, skipped })
    }

    pub(super) fn next_table_id(&mut self) -> Result<u64, StoreError> {
        let id = match self.next_table_id {
            Some(id) => id,
            None => match self.inner.meta.get(META_NEXT_TABLE_ID)? {
                Some(v) => record::decode_u64(&v)?,
                None => 1,
            },
        };
        self.next_table_id = Some(id + 1);
        self.batch.insert(
            &self.inner.meta,
            META_NEXT_TABLE_ID.to_vec(),
            record::encode_u64(id + 1),
        );
        Ok(id)
    }

    pub(super) fn lookup_table(&self, name: &str) -> Option<Arc<TableMeta>> {
        match self.tables.get(name) {
            Some(t) => t.clone(),
            None => self
                .inner
                .tables
                .read()
                .ok()
                .and_then(|t| t.get(name).cloned()),
        }
    }

    pub(super) fn put_table_meta(&mut self, meta: &TableMeta) -> Result<(), StoreError> {
        let json = serde_json::to_value(meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.batch.insert(
            &self.inner.meta,
            table_meta_key(&meta.name),
            record::encode_json(&json),
        );
        Ok(())
    }

    /// Gives a table (and its indexes) local storage ids and records its metadata.
    pub(super) fn install_table(
        &mut self,
        mut meta: TableMeta,
    ) -> Result<Arc<TableMeta>, StoreError> {
        meta.id = self.next_table_id()?;
        for idx in &mut meta.indexes {
            idx.id = self.next_table_id()?;
        }
        self.batch
            .remove(&self.inner.meta, table_tombstone_key(&meta.name));
        self.put_table_meta(&meta)?;
        let meta = Arc::new(meta);
        self.tables.insert(meta.name.clone(), Some(meta.clone()));
        Ok(meta)
    }

    /// Removes a table's metadata (its items are purged after the commit) and remembers the
    /// version of the drop, so an older replicated create cannot bring it back.
    pub(super) fn remove_table(&mut self, meta: &TableMeta, version: &Version) {
        self.batch
            .remove(&self.inner.meta, table_meta_key(&meta.name));
        self.batch
            .remove(&self.inner.meta, id_key(META_STATS, meta.id));
        self.batch.insert(
            &self.inner.meta,
            id_key(META_DROPPED, meta.id),
            record::encode_u64(meta.id),
        );
        self.batch.insert(
            &self.inner.meta,
            table_tombstone_key(&meta.name),
            record::encode_tombstone(version, self.head),
        );
        self.dropped.insert(meta.id);
        self.dropped_indexes
            .extend(meta.indexes.iter().map(|i| i.id));
        self.stats.remove(&meta.id);
        self.tables.insert(meta.name.clone(), None);
    }

    /// Replaces a table's metadata, keeping its storage id; indexes keep their ids by name, new
    /// ones get ids (and start `CREATING` until backfilled), removed ones are purged.
    pub(super) fn replace_table(
        &mut self,
        old: &TableMeta,
        mut meta: TableMeta,
        remote: bool,
    ) -> Result<Arc<TableMeta>, StoreError> {
        meta.id = old.id;
        meta.name = old.name.clone();
        for idx in &mut meta.indexes {
            match old
                .indexes
                .iter()
                .find(|o| o.name == idx.name && o.kind == idx.kind)
            {
                Some(o) if idx.id == 0 || idx.id == o.id || o.key_schema == idx.key_schema => {
                    idx.id = o.id;
                    if remote {
                        // another region's build state says nothing about ours
                        idx.status = o.status;
                    }
                }
                _ => {
                    idx.id = self.next_table_id()?;
                    idx.status = meridian_model::table::IndexStatus::Creating;
                }
            }
        }
        for o in &old.indexes {
            if !meta.indexes.iter().any(|i| i.id == o.id) {
                self.dropped_indexes.push(o.id);
            }
        }
        self.put_table_meta(&meta)?;
        let meta = Arc::new(meta);
        self.tables.insert(meta.name.clone(), Some(meta.clone()));
        Ok(meta)
    }

    /// Logs a table change (local DDL) so it replicates.
    pub(super) fn log_table_change(
        &mut self,
        name: &str,
        version: Version,
        op: ChangeOp,
    ) -> Result<(), StoreError> {
        let gtid = Gtid {
            origin: self.inner.region.clone(),
            seq: self.head + 1,
        };
        self.log_only(ChangeEntry {
            seq: 0,
            gtid,
            table: name.to_owned(),
            key: Vec::new(),
            version,
            op,
            crdt: None,
        });
        Ok(())
    }

    /// Appends an entry to the change log at the next local sequence (no item state changes).
    pub(super) fn log_only(&mut self, mut entry: ChangeEntry) {
        self.head += 1;
        entry.seq = self.head;
        self.batch.insert(
            &self.inner.log,
            self.head.to_be_bytes().to_vec(),
            record::encode_change(&entry),
        );
    }

    pub(super) fn create_table(
        &mut self,
        meta: Box<TableMeta>,
        hlc: &mut Hlc,
    ) -> Outcome<Arc<TableMeta>> {
        self.requests += 1;
        let mut meta = *meta;
        if self.lookup_table(&meta.name).is_some() {
            return Ok(Err(StoreError::TableExists(meta.name)));
        }
        let version = Version {
            ts: hlc.now().map_err(StoreError::Clock)?,
            region: self.inner.region.clone(),
        };
        meta.version = Some(version.clone());
        meta.created = Some(version.clone());
        let meta = self.install_table(meta)?;
        self.log_table_change(
            &meta.name,
            version,
            ChangeOp::TableUpsert(Box::new((*meta).clone())),
        )?;
        Ok(Ok(meta))
    }

    pub(super) fn delete_table(&mut self, name: String, hlc: &mut Hlc) -> Outcome<Arc<TableMeta>> {
        self.requests += 1;
        let Some(meta) = self.lookup_table(&name) else {
            return Ok(Err(StoreError::NoSuchTable(name)));
        };
        let version = Version {
            ts: hlc.now().map_err(StoreError::Clock)?,
            region: self.inner.region.clone(),
        };
        self.remove_table(&meta, &version);
        self.log_table_change(&name, version, ChangeOp::TableDrop)?;
        Ok(Ok(meta))
    }

    pub(super) fn update_table(
        &mut self,
        name: String,
        update: Box<dyn FnOnce(&mut TableMeta) + Send>,
        hlc: &mut Hlc,
    ) -> Outcome<Arc<TableMeta>> {
        self.requests += 1;
        let Some(old) = self.lookup_table(&name) else {
            return Ok(Err(StoreError::NoSuchTable(name)));
        };
        let mut meta = (*old).clone();
        update(&mut meta);
        let version = Version {
            ts: hlc.now().map_err(StoreError::Clock)?,
            region: self.inner.region.clone(),
        };
        meta.version = Some(version.clone());
        let meta = self.replace_table(&old, meta, false)?;
        self.log_table_change(
            &name,
            version,
            ChangeOp::TableUpsert(Box::new((*meta).clone())),
        )?;
        Ok(Ok(meta))
    }

    /// The version of the last drop of a table name, if any.
    pub(super) fn table_tombstone(&self, name: &str) -> Result<Option<Version>, StoreError> {
        match self.inner.meta.get(table_tombstone_key(name))? {
            Some(v) => Ok(Some(record::decode_tombstone(&v)?.0)),
            None => Ok(None),
        }
    }

    /// Applies a replicated table change by last-writer-wins on the metadata's version.
    /// Returns whether it had an effect.
    pub(super) fn apply_table_change(&mut self, e: &ChangeEntry) -> Result<bool, StoreError> {
        let local = self.lookup_table(&e.table);
        match &e.op {
            ChangeOp::TableUpsert(remote) => {
                let mut meta = (**remote).clone();
                meta.version = Some(e.version.clone());
                let here = meta
                    .replicas
                    .as_ref()
                    .is_none_or(|r| r.contains(&self.inner.region));
                match local {
                    Some(l) if l.version.as_ref().is_some_and(|v| *v >= e.version) => Ok(false),
                    Some(l) if !here => {
                        self.remove_table(&l, &e.version);
                        Ok(true)
                    }
                    Some(l) => {
                        self.replace_table(&l, meta, true)?;
                        Ok(true)
                    }
                    None if !here => Ok(false),
                    None => {
                        if self
                            .table_tombstone(&e.table)?
                            .is_some_and(|v| v >= e.version)
                        {
                            return Ok(false);
                        }
                        meta.id = 0;
                        for idx in &mut meta.indexes {
                            idx.id = 0;
                        }
                        self.install_table(meta)?;
                        Ok(true)
                    }
                }
            }
            ChangeOp::TableDrop => match local {
                Some(l) if l.version.as_ref().is_none_or(|v| *v < e.version) => {
                    self.remove_table(&l, &e.version);
                    Ok(true)
                }
                _ => Ok(false),
            },
            _ => Ok(false),
        }
    }
}

impl Job {
    /// Creates a table (its id is assigned here).
    pub(crate) fn create_table(meta: TableMeta, reply: Reply<Arc<TableMeta>>) -> Job {
        Job::call(reply, move |g, hlc| g.create_table(Box::new(meta), hlc))
    }

    /// Deletes a table; its items are purged in the background after the commit.
    pub(crate) fn delete_table(name: String, reply: Reply<Arc<TableMeta>>) -> Job {
        Job::call(reply, move |g, hlc| g.delete_table(name, hlc))
    }

    /// Replaces a table's metadata through `update` (same id).
    pub(crate) fn update_table(
        name: String,
        update: Box<dyn FnOnce(&mut TableMeta) + Send>,
        reply: Reply<Arc<TableMeta>>,
    ) -> Job {
        Job::call(reply, move |g, hlc| g.update_table(name, update, hlc))
    }

    /// Adds the next chunk of a table's items to a new index.
    pub(crate) fn backfill_chunk(
        table: String,
        index_id: u64,
        after: Option<Vec<u8>>,
        reply: Reply<Backfilled>,
    ) -> Job {
        Job::call(reply, move |g, _| {
            g.backfill_chunk(&table, index_id, after).map(Ok)
        })
    }
}
