//! Recovery from a damaged journal: the store opens on what survived, takes no local write until
//! it knows how far its peers had received its changes, and then continues its sequences after
//! theirs.
//!
//! Every change a region ships carries a GTID `(region, sequence)`, and a receiver drops any
//! change at or below its watermark for that region. A region that lost the tail of its log and
//! went on numbering from the surviving head would hand out sequences its peers already hold,
//! and they would drop its new writes as duplicates. So after `StoreOptions::recover` opened a
//! damaged store:
//!
//! 1. `open` records the surviving head in `meta recovery` (fsynced) and the store answers local
//!    writes with [`StoreError::Recovering`] — also after a restart, until recovery finishes;
//! 2. the replication layer learns each peer's watermark of this region (its `Welcome`) and calls
//!    [`Store::finish_recovery`] with the highest: the writer moves the head there and records
//!    the skipped sequences as a **gap** (`meta gap/<to> = from`), in one fsynced commit;
//! 3. the changes in the gap exist only at the peers that received them; anti-entropy brings the
//!    items back here and to any peer that missed some. A link reading the log across a gap
//!    passes over it ([`Store::changes_for`] reports its sequences as skipped).

use crate::StoreError;
use crate::inner::Recovery;
use crate::journal::Damage;
use crate::record;
use crate::store::Store;
use crate::writer::Job;
use fjall::{Keyspace, PersistMode};

use crate::keys::{META_GAP, META_RECOVERY};

/// Reads an unfinished recovery, or starts one for `damage` (recorded and synced before the
/// store serves anything).
pub(crate) fn on_open(
    db: &fjall::Database,
    meta: &Keyspace,
    log: &Keyspace,
    head: u64,
    damage: Option<&Damage>,
) -> Result<Option<Recovery>, StoreError> {
    if let Some(d) = damage {
        let r = Recovery {
            from: head,
            lost_through: d.lost_log_seq(log.id()).filter(|s| *s > head),
            damage: format!("{}@{}", d.file.display(), d.offset),
        };
        meta.insert(META_RECOVERY, r.encode())?;
        db.persist(PersistMode::SyncAll)?;
        tracing::warn!(
            damage = %r.damage,
            surviving_head = head,
            lost_through = ?r.lost_through,
            "recovering: the journal was truncated at the damage; local writes wait until the \
             peers have said how far they hold this region's changes"
        );
        return Ok(Some(r));
    }
    match meta.get(META_RECOVERY)? {
        Some(v) => Ok(Some(Recovery::decode(&v)?)),
        None => Ok(None),
    }
}

/// The skipped ranges `(from, to]`, in order.
pub(crate) fn load_gaps(meta: &Keyspace) -> Result<Vec<(u64, u64)>, StoreError> {
    let mut gaps = Vec::new();
    for kv in meta.prefix(META_GAP) {
        let (k, v) = kv.into_inner()?;
        let to = k
            .get(META_GAP.len()..)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::Corrupt("gap key".into()))?;
        gaps.push((record::decode_u64(&v)?, to));
    }
    Ok(gaps)
}

/// The gap holding `seq`, as `(from, to]`.
pub(crate) fn gap_at(gaps: &[(u64, u64)], seq: u64) -> Option<(u64, u64)> {
    gaps.iter()
        .copied()
        .find(|&(from, to)| seq > from && seq <= to)
}

impl Store {
    /// Starts a recovery on a running store whose log is behind what a peer holds of it (a
    /// restored backup, a disk that lost acknowledged writes): local writes are refused from
    /// now until [`Store::finish_recovery`]. The record is written beside the writer: no job
    /// writes this key while no recovery is open, and the flag is up before the record is.
    pub fn begin_recovery(&self, why: &str) -> Result<(), StoreError> {
        let r = {
            let Ok(mut rec) = self.inner.recovery.write() else {
                return Err(StoreError::Poisoned);
            };
            if rec.is_some() {
                return Ok(());
            }
            let r = Recovery {
                from: self.head(),
                lost_through: None,
                damage: why.to_owned(),
            };
            *rec = Some(r.clone());
            r
        };
        self.inner.meta.insert(META_RECOVERY, r.encode())?;
        self.inner.db.persist(PersistMode::SyncAll)?;
        tracing::error!(
            why,
            head = r.from,
            "recovering: a peer holds changes of this region's beyond its change log; local \
             writes wait until every peer has said how far it holds them"
        );
        Ok(())
    }

    /// The unfinished recovery, if the store is in one.
    pub fn recovery(&self) -> Option<Recovery> {
        self.inner.recovery.read().ok().and_then(|r| r.clone())
    }

    /// Ends a recovery: local sequences continue after `peers_hold` (the highest sequence of
    /// this region any peer holds), and local writes are taken again. Returns the skipped range
    /// `(from, to]` (empty when the peers held nothing beyond the surviving head).
    pub async fn finish_recovery(&self, peers_hold: u64) -> Result<(u64, u64), StoreError> {
        let Some(r) = self.recovery() else {
            let h = self.head();
            return Ok((h, h));
        };
        let to = peers_hold.max(r.from);
        self.call(|reply| Job::skip_sequences(to, reply)).await?;
        let gaps = load_gaps(&self.inner.meta)?;
        let skipped = gaps
            .last()
            .copied()
            .filter(|g| g.1 == to)
            .unwrap_or((to, to));
        if let Ok(mut g) = self.inner.gaps.write() {
            *g = gaps;
        }
        if let Ok(mut rec) = self.inner.recovery.write() {
            *rec = None;
        }
        tracing::info!(
            skipped_from = skipped.0,
            skipped_to = skipped.1,
            lost_through = ?r.lost_through,
            "recovery finished: local sequences continue after what the peers hold"
        );
        Ok(skipped)
    }
}
