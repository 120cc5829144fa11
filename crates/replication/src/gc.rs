//! Change-log garbage collection. An entry is purged once every outbound link's peer has
//! acknowledged it (the link checkpoints: nobody this region ships to still needs it; the purge
//! is fsynced, which makes the checkpoints written before it durable too)
//! and it is older than the retention (`changelog_retention_secs`, which also keeps recent
//! history for operators and `/admin/changelog`). A peer that later asks for a purged entry —
//! a region added to the cluster after the purge — is told `LogPurged` and seeded from a
//! snapshot instead (`crate::snapshot`). The purge point is durable, so sequences are never
//! reused.
//!
//! Tombstones are purged too, once a delete is **delivered** (recorded at or below every
//! outbound checkpoint; one this region applied without logging it is recorded at 0) and
//! **causally stable**: for every other region, every write it made with an older timestamp
//! has been applied here. For a direct peer that is
//! `PeerLinks::stable_ts`, learnt from the peer's applied entries and from heartbeats sent while
//! this region had caught up with its stream. A star's spoke hears the other spokes only
//! through the hub, which vouches for them in its heartbeats (`Heartbeat::origins`: what it
//! has applied of each, hence logged below its head) and whose forwarded entries prove the
//! same; that is `Links::origin_stable`. No older write can then arrive to be resurrected by
//! the purge; any later write wins anyway.

use crate::Ctx;
use std::sync::Arc;
use std::time::Duration;

/// Most entries purged (or tombstones scanned) per writer turn (keeps each turn short).
const PURGE_CHUNK: usize = 10_000;

/// The `changelog-gc` worker: a pass every `changelog_gc_interval_ms`.
pub(crate) struct Collector {
    pub(crate) ctx: Arc<Ctx>,
}

impl meridian_worker::Worker for Collector {
    async fn step(&mut self) -> Result<meridian_worker::Next, String> {
        collect(&self.ctx)
            .await
            .map_err(|e| format!("change-log garbage collection: {e}"))?;
        let every = Duration::from_millis(self.ctx.config.changelog_gc_interval_ms.max(10));
        Ok(meridian_worker::Next::After(every))
    }
}

/// One pass: purges what every outbound peer acknowledged and the retention allows.
async fn collect(ctx: &Ctx) -> Result<(), meridian_storage::StoreError> {
    let me = &ctx.config.region;
    let mut upto = u64::MAX;
    for p in &ctx.config.peers {
        if ctx.config.topology.sends_to(me, &p.name) {
            upto = upto.min(ctx.store.checkpoint(&p.name)?);
        }
    }
    // Only what every outbound peer acknowledged (`upto`, 0 before they have acknowledged
    // anything). Tombstones a received change left are recorded at sequence 0 (not logged
    // here, nothing of ours ships them), so they wait only for causal stability.
    if upto != u64::MAX {
        let retention_ms = ctx.config.changelog_retention_secs.saturating_mul(1000);
        let older_than = ctx.store.wall_ms().saturating_sub(retention_ms);
        loop {
            let n = ctx
                .store
                .purge_changelog(upto, older_than, PURGE_CHUNK)
                .await?;
            ctx.links.metrics.purged_entries.inc_by(n);
            if n < PURGE_CHUNK as u64 {
                break;
            }
        }
        if let Some(before_ts) = stable_horizon(ctx) {
            let mut cursor = None;
            loop {
                let (n, next) = ctx
                    .store
                    .purge_tombstones(before_ts, upto, older_than, cursor, PURGE_CHUNK)
                    .await?;
                ctx.links.metrics.purged_tombstones.inc_by(n);
                match next {
                    Some(k) => cursor = Some(k),
                    None => break,
                }
            }
        }
    }
    let first = ctx.store.purged_through()? + 1;
    ctx.links
        .metrics
        .changelog_first
        .set(i64::try_from(first).unwrap_or(i64::MAX));
    ctx.links.metrics.gc_passes.inc();
    Ok(())
}

/// The timestamp up to which every other region's writes are all applied here: the smallest
/// stability mark over the direct peers and, on a star's spoke, over the regions heard through
/// the hub (every configured region and every one the hub vouched for). `None` while any is
/// unknown.
fn stable_horizon(ctx: &Ctx) -> Option<u64> {
    let me = ctx.config.region.as_str();
    let direct = |name: &str| {
        ctx.links.peers.get(name).map_or(0, |l| {
            l.stable_ts.load(std::sync::atomic::Ordering::Acquire)
        })
    };
    let horizon = match &ctx.config.topology {
        crate::Topology::Star { hub } if hub != me => {
            let heard = ctx.links.origin_stable.lock().ok()?.clone();
            let others: std::collections::BTreeSet<&str> = ctx
                .config
                .peers
                .iter()
                .map(|p| p.name.as_str())
                .chain(heard.keys().map(String::as_str))
                .filter(|o| *o != me && *o != hub)
                .collect();
            others
                .iter()
                .map(|o| heard.get(*o).copied().unwrap_or(0))
                .chain(std::iter::once(direct(hub)))
                .min()
        }
        _ => ctx.config.peers.iter().map(|p| direct(&p.name)).min(),
    };
    horizon.filter(|ts| *ts > 0)
}
