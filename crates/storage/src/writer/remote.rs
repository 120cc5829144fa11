//! Changes from other regions: dedup by origin watermark, last-writer-wins or the counter
//! merge against the item's current state, anti-entropy repairs, snapshot and recovery marks,
//! and the clock check that refuses a batch before anything of it is written.

use super::*;

/// Test-only sabotage (cargo feature `broken-apply`): remote changes are applied in arrival
/// order, without the dedup watermark or the last-writer-wins check. Exists so the failure
/// drills can show they catch a replication bug (`tests/python/test_drill.py`); never enabled
/// in a real build.
pub(super) const BROKEN_APPLY: bool = cfg!(feature = "broken-apply");

impl<'a> Group<'a> {
    /// Decides what an item state or change from another region does here: two live states
    /// merge (counters join), otherwise last writer wins against the live or tombstone version.
    /// Returns the new state (`None` = tombstone) and the version it replaces, or `None` when
    /// the incoming change has no effect (stale or already reflected).
    pub(super) fn resolve(
        &mut self,
        table: &TableMeta,
        e: &ChangeEntry,
    ) -> Result<Resolved, StoreError> {
        let full = keys::item_key(table.id, &e.key);
        let current = self.current_version(&full)?;
        // A put over a live item merges if either has counters: only then are both decoded.
        let merges = self
            .peek(&full)?
            .is_some_and(|c| c.has_counters() || e.crdt.is_some());
        let incoming = if merges { e.op.item()? } else { None };
        if let Some(item) = incoming
            && let Some(cur) = self.load(&full)?
        {
            let incoming = StoredItem {
                version: e.version.clone(),
                item: item.into_owned(),
                crdt: e.crdt.clone(),
            };
            let m = merge(&cur.to_state(), &incoming.to_state());
            let m = StoredItem {
                version: m.version,
                item: m.item,
                crdt: m.crdt,
            };
            return Ok((m != *cur).then_some((After::Merged(m), current)));
        }
        let after = (BROKEN_APPLY || meridian_core::lww_wins(&e.version, current.as_ref()))
            .then_some(After::Change);
        Ok(after.map(|a| (a, current)))
    }

    /// Applies one item state received by anti-entropy repair: merge or last-writer-wins, as for
    /// replicated changes, then stores the result without a change-log entry.
    pub(super) fn repair_one(
        &mut self,
        e: ChangeEntry,
        hlc: &mut Hlc,
        report: &mut ApplyReport,
    ) -> Result<(), StoreError> {
        hlc.observe(e.version.ts);
        let Some(table) = self.lookup_table(&e.table) else {
            report.missing_table += 1;
            return Ok(());
        };
        let Some((after, _)) = self.resolve(&table, &e)? else {
            report.stale += 1;
            return Ok(());
        };
        let (key, version, state) = state_after(e, after);
        self.write_state(&table, &key, state, &version, self.head)?;
        report.applied += 1;
        Ok(())
    }

    /// The highest sequence of `origin` applied here (dedup watermark).
    pub(super) fn watermark(&mut self, origin: &str) -> Result<u64, StoreError> {
        if let Some(w) = self.watermarks.get(origin) {
            return Ok(*w);
        }
        let w = match self.inner.meta.get(watermark_key(origin))? {
            Some(v) => record::decode_u64(&v)?,
            None => 0,
        };
        self.watermarks.insert(origin.to_owned(), w);
        Ok(w)
    }

    /// Applies changes received from other regions: skips this region's own changes (loop
    /// prevention) and anything at or below the origin's watermark (dedup), decides each
    /// remaining change by last-writer-wins against the item's current version (live or
    /// tombstone), and advances the watermark in the same commit. Applied changes are logged
    /// only when `log_remote` is set (a star's hub, which forwards them).
    pub(super) fn apply_remote(
        &mut self,
        entries: Vec<ChangeEntry>,
        repair: bool,
        hlc: &mut Hlc,
    ) -> Result<ApplyReport, StoreError> {
        self.requests += 1;
        let mut report = ApplyReport::default();
        // Origins whose watermark this apply advanced: written once each, after the loop.
        let mut advanced: Vec<String> = Vec::new();
        for e in entries {
            // Repairs (anti-entropy) carry item states, not change-log entries: no loop or
            // dedup bookkeeping, and nothing is logged (repair is between two regions).
            if repair {
                if matches!(e.op, ChangeOp::TableUpsert(_) | ChangeOp::TableDrop) {
                    hlc.observe(e.version.ts);
                    if self.apply_table_change(&e)? {
                        report.applied += 1;
                    } else {
                        report.stale += 1;
                    }
                } else {
                    self.repair_one(e, hlc, &mut report)?;
                }
                continue;
            }
            if e.gtid.origin == self.inner.region {
                report.own += 1;
                continue;
            }
            let wm = self.watermark(&e.gtid.origin)?;
            if e.gtid.seq <= wm && !BROKEN_APPLY {
                report.duplicates += 1;
                continue;
            }
            // `watermark` above cached this origin's entry: update it in place (no new key).
            match self.watermarks.get_mut(e.gtid.origin.as_str()) {
                Some(w) => *w = e.gtid.seq,
                None => {
                    self.watermarks.insert(e.gtid.origin.clone(), e.gtid.seq);
                }
            }
            if !advanced.contains(&e.gtid.origin) {
                advanced.push(e.gtid.origin.clone());
            }
            hlc.observe(e.version.ts);
            if matches!(e.op, ChangeOp::TableUpsert(_) | ChangeOp::TableDrop) {
                // A table this region lacks arriving by a change other than its creation is
                // an existing table this region became a replica of (`ReplicaUpdates`).
                let added = self.lookup_table(&e.table).is_none()
                    && matches!(&e.op, ChangeOp::TableUpsert(m)
                        if m.created.as_ref() != Some(&e.version)
                            && m.replicas.as_ref().is_none_or(|r| r.contains(&self.inner.region)));
                if self.apply_table_change(&e)? {
                    if added {
                        report.replicas_added.push(e.table.clone());
                    }
                    if self.inner.log_remote {
                        self.log_only(e);
                    }
                    report.applied += 1;
                } else {
                    report.stale += 1;
                }
                continue;
            }
            let Some(table) = self.lookup_table(&e.table) else {
                report.missing_table += 1;
                continue;
            };
            let Some((after, current)) = self.resolve(&table, &e)? else {
                report.stale += 1;
                *report.conflicts.entry(table.name.clone()).or_default() += 1;
                continue;
            };
            if current
                .as_ref()
                .is_some_and(|c| c.region != e.version.region)
            {
                *report.conflicts.entry(table.name.clone()).or_default() += 1;
            }
            if self.inner.log_remote {
                self.record_change(&table, after, e)?;
            } else {
                // Not logged: no link of this region carries it. A tombstone is recorded at
                // sequence 0, delivered by definition (nothing of ours ships it).
                let (key, version, state) = state_after(e, after);
                self.write_state(&table, &key, state, &version, 0)?;
            }
            report.applied += 1;
        }
        for origin in advanced {
            let seq = self.watermarks.get(&origin).copied().unwrap_or_default();
            self.batch.insert(
                &self.inner.meta,
                watermark_key(&origin),
                record::encode_u64(seq),
            );
        }
        Ok(report)
    }

    /// Raises each origin's watermark to a snapshot's (never this region's own, never lower)
    /// and clears the new-region mark, in this group's commit.
    pub(super) fn finish_snapshot(
        &mut self,
        watermarks: std::collections::BTreeMap<String, u64>,
    ) -> Result<(), StoreError> {
        self.requests += 1;
        for (origin, seq) in watermarks {
            if origin == self.inner.region || seq <= self.watermark(&origin)? {
                continue;
            }
            self.watermarks.insert(origin.clone(), seq);
            self.batch.insert(
                &self.inner.meta,
                watermark_key(&origin),
                record::encode_u64(seq),
            );
        }
        self.batch
            .remove(&self.inner.meta, crate::keys::META_BOOTSTRAP.to_vec());
        Ok(())
    }

    /// Ends a recovery: the next local sequence is `to + 1`; `(head, to]` is recorded as a gap.
    pub(super) fn skip_sequences(&mut self, to: u64) {
        self.requests += 1;
        if to > self.head {
            self.batch.insert(
                &self.inner.meta,
                keys::gap_key(to),
                record::encode_u64(self.head),
            );
            self.head = to;
        }
        self.batch
            .remove(&self.inner.meta, keys::META_RECOVERY.to_vec());
    }
}

/// Checks every version of a batch from another region against the maximum clock offset
/// before any of it is applied: one version too far ahead refuses the whole batch.
pub(super) fn admit(
    entries: &[ChangeEntry],
    hlc: &Hlc,
    max_offset_ms: u64,
) -> Result<(), StoreError> {
    for e in entries {
        hlc.admit(e.version.ts, max_offset_ms)
            .map_err(|error| StoreError::ClockAhead {
                origin: e.version.region.clone(),
                error,
            })?;
    }
    Ok(())
}

/// Changes from another region (replication, or anti-entropy's `repair`): refused whole before
/// anything is written when a version is too far ahead of the clock (the group goes on),
/// otherwise applied, and answered with the report once durable.
struct ApplyStep {
    entries: Vec<ChangeEntry>,
    repair: bool,
    reply: Reply<ApplyReport>,
}

impl Step for ApplyStep {
    fn run(self: Box<Self>, group: &mut Group<'_>, hlc: &mut Hlc) -> Result<(), StoreError> {
        let ApplyStep {
            entries,
            repair,
            reply,
        } = *self;
        if let Err(refused) = admit(&entries, hlc, group.inner.max_clock_offset_ms) {
            let _ = reply.send(Err(refused));
            return Ok(());
        }
        let mut report = match group.apply_remote(entries, repair, hlc) {
            Ok(r) => r,
            Err(e) => {
                let _ = reply.send(Err(StoreError::Poisoned));
                return Err(e);
            }
        };
        let conflicts = group.inner.metrics.conflicts.clone();
        group.done.push(Box::new(move |durable| match durable {
            Ok(at) => {
                report.durable_at = Some(at);
                for (table, n) in &report.conflicts {
                    conflicts
                        .get_or_create(&TableLabel {
                            table: table.clone(),
                        })
                        .inc_by(*n);
                }
                let _ = reply.send(Ok(report));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }));
        Ok(())
    }

    fn refuse(self: Box<Self>, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }
}

impl Job {
    /// Applies changes from another region; `repair` for anti-entropy's states.
    pub(crate) fn apply_remote(
        entries: Vec<ChangeEntry>,
        repair: bool,
        reply: Reply<ApplyReport>,
    ) -> Job {
        Job(Box::new(ApplyStep {
            entries,
            repair,
            reply,
        }))
    }

    /// Installs a snapshot's watermarks and ends the bootstrap.
    pub(crate) fn finish_snapshot(
        watermarks: std::collections::BTreeMap<String, u64>,
        reply: Reply<()>,
    ) -> Job {
        Job::call(reply, move |g, _| g.finish_snapshot(watermarks).map(Ok))
    }

    /// Ends a recovery (`recovery.rs`): the head moves to `to`, the sequences skipped are
    /// recorded as a gap.
    pub(crate) fn skip_sequences(to: u64, reply: Reply<()>) -> Job {
        Job::call(reply, move |g, _| {
            g.skip_sequences(to);
            Ok(Ok(()))
        })
    }
}
