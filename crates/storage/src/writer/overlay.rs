//! The group's view of the store: item states, tombstones and stats as of the changes made so
//! far in this group (the overlay over what is committed), and how a change's state is written.

use super::*;

impl<'a> Group<'a> {
    pub(super) fn new(inner: &'a Inner) -> Self {
        Self {
            inner,
            batch: inner.db.batch(),
            overlay: HashMap::default(),
            absent: HashSet::default(),
            tombs: HashMap::default(),
            watermarks: HashMap::default(),
            stats: HashMap::default(),
            dropped: HashSet::default(),
            dropped_indexes: Vec::new(),
            tables: HashMap::default(),
            next_table_id: None,
            head: inner.head.load(Ordering::Acquire),
            own_ts: 0,
            done: Vec::new(),
            requests: 0,
            needs_sync: false,
        }
    }

    /// The item's current state as of this group (a copy; see [`Group::load`]).
    pub(super) fn current(&mut self, full_key: &[u8]) -> Result<Option<StoredItem>, StoreError> {
        Ok(self.load(full_key)?.cloned())
    }

    /// The item's current state as of this group, decoded (see [`Group::peek`]).
    pub(super) fn load(&mut self, full_key: &[u8]) -> Result<Option<&StoredItem>, StoreError> {
        if let Some(Some(c)) = self.overlay.get_mut(full_key)
            && let Cached::Record { record, .. } = c
        {
            let item = record::decode_item_record(record)?;
            *c = Cached::Item(item);
        }
        Ok(self.peek(full_key)?.and_then(Cached::as_item))
    }

    /// The item's current state as of this group, read once from the store and then kept in
    /// the group's overlay (or its set of absent keys); a received put written in this group
    /// is still encoded.
    pub(super) fn peek(&mut self, full_key: &[u8]) -> Result<Option<&Cached>, StoreError> {
        if !self.overlay.contains_key(full_key) && !self.absent.contains(full_key) {
            // Remember what was read: the write that follows reads it again. (An overlay
            // `None` means "deleted in this group", so absent keys have a set of their own.)
            match self.inner.items.get(full_key)? {
                Some(v) => {
                    let state = record::decode_item_record(&v)?;
                    self.overlay
                        .insert(full_key.to_vec(), Some(Cached::Item(state)));
                }
                None => {
                    self.absent.insert(full_key.to_vec());
                }
            }
        }
        Ok(self.overlay.get(full_key).and_then(Option::as_ref))
    }

    /// The version of the item's tombstone, if it has one, as of this group.
    pub(super) fn tombstone(&mut self, full_key: &[u8]) -> Result<Option<Version>, StoreError> {
        if let Some(t) = self.tombs.get(full_key) {
            return Ok(t.clone());
        }
        let t = match self.inner.tombstones.get(full_key)? {
            Some(v) => Some(record::decode_tombstone(&v)?.0),
            None => None,
        };
        self.tombs.insert(full_key.to_vec(), t.clone());
        Ok(t)
    }

    pub(super) fn table_live(&self, t: &TableMeta) -> bool {
        if self.dropped.contains(&t.id) {
            return false;
        }
        match self.tables.get(&t.name) {
            Some(Some(m)) => m.id == t.id,
            Some(None) => false,
            None => self
                .inner
                .tables
                .read()
                .map(|m| m.get(&t.name).is_some_and(|m| m.id == t.id))
                .unwrap_or(false),
        }
    }

    pub(super) fn stats_for(&mut self, id: u64) -> &mut TableStats {
        let inner = self.inner;
        self.stats.entry(id).or_insert_with(|| {
            inner
                .stats
                .lock()
                .ok()
                .and_then(|s| s.get(&id).copied())
                .unwrap_or_default()
        })
    }

    /// The version of an item's current state: its live version, or its tombstone's.
    pub(super) fn current_version(&mut self, full: &[u8]) -> Result<Option<Version>, StoreError> {
        match self.peek(full)? {
            Some(s) => Ok(Some(s.version().clone())),
            None => self.tombstone(full),
        }
    }

    /// Writes one change: the item's new state (or a tombstone at `entry.version`), its index
    /// entries, stats, and `entry` in the change log at the next local sequence. The caller has
    /// decided the change has an effect.
    pub(super) fn record_change(
        &mut self,
        table: &TableMeta,
        after: After,
        mut entry: ChangeEntry,
    ) -> Result<(), StoreError> {
        self.head += 1;
        let seq = self.head;
        entry.seq = seq;
        self.batch.insert(
            &self.inner.log,
            seq.to_be_bytes().to_vec(),
            record::encode_change(&entry),
        );
        let (key, version, state) = state_after(entry, after);
        self.write_state(table, &key, state, &version, seq)
    }

    /// Writes an item's new state — the live item, or a tombstone at `version` recorded at
    /// change-log sequence `seq` — with its index entries and the table's stats, into the batch
    /// and the group's overlay.
    pub(super) fn write_state(
        &mut self,
        table: &TableMeta,
        key: &[u8],
        mut state: Option<Cached>,
        version: &Version,
        seq: u64,
    ) -> Result<(), StoreError> {
        let full = keys::item_key(table.id, key);
        // Index entries change in the same batch as the item (with the table's latest indexes),
        // which needs both states decoded.
        let indexed = self
            .lookup_table(&table.name)
            .filter(|t| t.id == table.id && !t.indexes.is_empty());
        if indexed.is_some() {
            self.load(&full)?;
            if let Some(c @ Cached::Record { .. }) = state {
                state = Some(Cached::Item(c.into_item()?));
            }
        } else {
            self.peek(&full)?;
        }
        // The old state is taken out of the overlay, not copied: the new one replaces it there
        // below. (A failure in between fails the whole group.)
        let old = self.overlay.remove(&full).flatten();
        let old_size = old.as_ref().map(|s| s.size() as i64);
        if let Some(live) = indexed {
            self.maintain_indexes(
                &live,
                key,
                old.as_ref().and_then(Cached::as_item).map(|s| &s.item),
                state.as_ref().and_then(Cached::as_item).map(|s| &s.item),
            );
        }
        match &state {
            Some(cached) => {
                match cached {
                    Cached::Item(stored) => self.batch.insert(
                        &self.inner.items,
                        full.clone(),
                        record::encode_item_record(stored),
                    ),
                    Cached::Record { record, .. } => {
                        self.batch
                            .insert(&self.inner.items, full.clone(), record.as_slice());
                    }
                }
                if self.tombstone(&full)?.is_some() {
                    self.batch.remove(&self.inner.tombstones, full.clone());
                    self.tombs.insert(full.clone(), None);
                }
                let new_size = cached.size() as i64;
                let st = self.stats_for(table.id);
                match old_size {
                    Some(s) => st.size_bytes += new_size - s,
                    None => {
                        st.item_count += 1;
                        st.size_bytes += new_size;
                    }
                }
            }
            None => {
                self.batch.remove(&self.inner.items, full.clone());
                self.batch.insert(
                    &self.inner.tombstones,
                    full.clone(),
                    record::encode_tombstone(version, seq),
                );
                self.tombs.insert(full.clone(), Some(version.clone()));
                if let Some(s) = old_size {
                    let st = self.stats_for(table.id);
                    st.item_count -= 1;
                    st.size_bytes -= s;
                }
            }
        }
        self.absent.remove(&full);
        self.overlay.insert(full, state);
        Ok(())
    }

    /// Replaces an item's entries in every index of its table.
    pub(super) fn maintain_indexes(
        &mut self,
        table: &TableMeta,
        key: &[u8],
        old: Option<&Item>,
        new: Option<&Item>,
    ) {
        for idx in &table.indexes {
            let old_key = old.and_then(|o| index_entry_key(idx, o, key));
            let new_entry = new.and_then(|n| {
                let k = index_entry_key(idx, n, key)?;
                Some((k, idx.entry_of(&table.key_schema, n)?))
            });
            if let Some(k) = old_key
                && new_entry.as_ref().is_none_or(|(nk, _)| *nk != k)
            {
                self.batch.remove(&self.inner.index, k);
            }
            if let Some((k, entry)) = new_entry {
                self.batch
                    .insert(&self.inner.index, k, record::encode_index_entry(&entry));
            }
        }
    }
}

/// Takes a change apart into its item's storage key, its version and the state it leaves the
/// item in (`None` = deleted): the merge, or else the put's own item and counters.
pub(super) fn state_after(e: ChangeEntry, after: After) -> (Vec<u8>, Version, Option<Cached>) {
    let ChangeEntry {
        key,
        version,
        op,
        crdt,
        ..
    } = e;
    let state = match (after, op) {
        (After::Merged(m), _) => Some(Cached::Item(m)),
        (After::Change, ChangeOp::Put(item)) => Some(Cached::Item(StoredItem {
            version: version.clone(),
            item,
            crdt,
        })),
        (After::Change, ChangeOp::PutEncoded(item)) => Some(Cached::Record {
            version: version.clone(),
            size: item.size(),
            record: record::encoded_item_record(&version, &item),
        }),
        (
            After::Change,
            ChangeOp::Delete | ChangeOp::TtlDelete | ChangeOp::TableUpsert(_) | ChangeOp::TableDrop,
        ) => None,
    };
    (key, version, state)
}
