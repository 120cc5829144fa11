//! Local writes: a request's read-modify-write, decided against the group's overlay and stamped
//! with the next HLC version and change-log sequence.

use super::*;

impl<'a> Group<'a> {
    pub(super) fn write(
        &mut self,
        reads: Vec<(Arc<TableMeta>, Vec<u8>)>,
        decide: DecideFn,
        hlc: &mut Hlc,
    ) -> Result<(), StoreError> {
        self.requests += 1;
        let mut current = Vec::with_capacity(reads.len());
        for (t, k) in &reads {
            if !self.table_live(t) {
                let d = decide(vec![None; reads.len()]);
                (d.complete)(Err(StoreError::NoSuchTable(t.name.clone())));
                return Ok(());
            }
            current.push(self.current(&keys::item_key(t.id, k))?);
        }
        let decision = decide(current);
        if let Some(dead) = decision.changes.iter().find(|c| !self.table_live(&c.table)) {
            let name = dead.table.name.clone();
            (decision.complete)(Err(StoreError::NoSuchTable(name)));
            return Ok(());
        }
        for change in &decision.changes {
            self.apply_local(change, hlc)?;
        }
        let complete = decision.complete;
        self.done
            .push(Box::new(move |durable| complete(durable.map(|_| ()))));
        Ok(())
    }

    /// Applies a change accepted from a local client: a new version and the next sequence,
    /// with this region as the GTID origin.
    pub(super) fn apply_local(&mut self, change: &Change, hlc: &mut Hlc) -> Result<(), StoreError> {
        let version = Version {
            ts: hlc.now().map_err(StoreError::Clock)?,
            region: self.inner.region.clone(),
        };
        self.own_ts = self.own_ts.max(version.ts.0);
        let (op, crdt) = match &change.kind {
            ChangeKind::Put(item) => (ChangeOp::Put(item.clone()), None),
            ChangeKind::Update(item, crdt) => {
                let mut crdt = crdt.clone();
                if crdt.epoch.is_none() {
                    // The update creates the item: its counters start at the epoch of the
                    // tombstone it replaces (or the smallest), so concurrent creations in
                    // other regions add up instead of resetting each other.
                    let full = keys::item_key(change.table.id, &change.key);
                    let tombstone = self.current_version(&full)?;
                    crdt.stamp(&creation_epoch(tombstone.as_ref()));
                } else {
                    crdt.stamp(&version);
                }
                (ChangeOp::Put(item.clone()), Some(crdt))
            }
            ChangeKind::Delete => (ChangeOp::Delete, None),
            ChangeKind::TtlDelete => (ChangeOp::TtlDelete, None),
        };
        let entry = ChangeEntry {
            seq: 0,
            gtid: Gtid {
                origin: self.inner.region.clone(),
                seq: self.head + 1,
            },
            table: change.table.name.clone(),
            key: change.key.clone(),
            version,
            op,
            crdt,
        };
        self.record_change(&change.table, After::Change, entry)
    }
}

/// A request's read-modify-write: `decide` sees the current states of `reads` and its
/// `Decision` carries the reply.
struct WriteStep {
    reads: Vec<(Arc<TableMeta>, Vec<u8>)>,
    decide: DecideFn,
}

impl Step for WriteStep {
    fn run(self: Box<Self>, group: &mut Group<'_>, hlc: &mut Hlc) -> Result<(), StoreError> {
        group.write(self.reads, self.decide, hlc)
    }

    fn refuse(self: Box<Self>, e: StoreError) {
        let d = (self.decide)(vec![None; self.reads.len()]);
        (d.complete)(Err(e));
    }
}

impl Job {
    /// A local read-modify-write (see `Store::write`).
    pub(crate) fn write(reads: Vec<(Arc<TableMeta>, Vec<u8>)>, decide: DecideFn) -> Job {
        Job(Box::new(WriteStep { reads, decide }))
    }
}
