//! Ends a store's recovery (`meridian_storage::Recovery`): once every peer this region ships to
//! has said, in its `Welcome`, how far it holds this region's changes, local sequences continue
//! after the highest of them. A recovery starts at open after a damaged journal
//! (`--recover`), or when a sync-out finds its peer holding more of this region's changes than
//! its log has (a restored backup, a disk that lost acknowledged writes).
//!
//! Waiting for every such peer is the rule because any one of them may hold the highest
//! sequence; a peer that stays down keeps the region from taking writes (its `/health` says
//! `recovering`, and the status names the peers it waits for) rather than risk handing out a
//! sequence that peer would drop as a duplicate.

use crate::Ctx;
use meridian_worker::Next;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What a finished recovery did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recovered {
    /// The sequences skipped, `(from, to]`: the changes the peers held beyond what survived
    /// here. Anti-entropy brings their items back.
    pub skipped: (u64, u64),
    /// The highest sequence found in the journal batches the damage took with it (`None`: none
    /// could be read). Changes after `skipped.1` and up to this reached no peer and are gone.
    pub lost_through: Option<u64>,
}

impl Recovered {
    /// Changes of this region's own that no peer held and are gone for good (an upper bound:
    /// the dropped batches' sequences include changes forwarded for others on a star's hub).
    pub fn gone(&self) -> u64 {
        self.lost_through
            .map_or(0, |l| l.saturating_sub(self.skipped.1))
    }
}

/// The peers this region ships to that have not yet said how far they hold its changes.
pub(crate) fn waiting_for(ctx: &Ctx, heard: &BTreeMap<String, u64>) -> Vec<String> {
    ctx.config
        .peers
        .iter()
        .filter(|p| ctx.config.topology.sends_to(&ctx.config.region, &p.name))
        .filter(|p| !heard.contains_key(&p.name))
        .map(|p| p.name.clone())
        .collect()
}

/// Finishes the store's recovery whenever there is one: the one a damaged journal started, or
/// one a sync-out starts on finding a peer ahead of the log.
pub(crate) struct Recover {
    pub(crate) ctx: Arc<Ctx>,
}

impl meridian_worker::Worker for Recover {
    async fn step(&mut self) -> Result<Next, String> {
        if self.ctx.store.recovery().is_none() {
            let ctx = self.ctx.clone();
            return Ok(Next::When(Box::pin(async move {
                ctx.recovery_started.notified().await;
            })));
        }
        Ok(if finish(&self.ctx).await {
            Next::Again
        } else {
            Next::Done
        })
    }
}

/// Waits for every peer and ends the recovery; `false` when replication stopped first.
async fn finish(ctx: &Ctx) -> bool {
    let Some(r) = ctx.store.recovery() else {
        return true;
    };
    let mut rx = ctx.holds_ours.subscribe();
    tracing::warn!(
        surviving_head = r.from,
        waiting_for = ?waiting_for(ctx, &rx.borrow()),
        "recovering: waiting for every peer to say how far it holds this region's changes"
    );
    let heard = tokio::select! {
        heard = rx.wait_for(|h| waiting_for(ctx, h).is_empty()) => match heard {
            Ok(h) => h.clone(),
            Err(_) => return false,
        },
        () = ctx.shutdown.cancelled() => return false,
    };
    let peers_hold = heard.values().copied().max().unwrap_or(0);
    loop {
        match ctx.store.finish_recovery(peers_hold).await {
            Ok(skipped) => {
                let done = Recovered {
                    skipped,
                    lost_through: r.lost_through,
                };
                tracing::warn!(
                    recovered_from_peers = skipped.1 - skipped.0,
                    gone = done.gone(),
                    "recovery finished: {} changes of this region's were held by its peers \
                     (their items come back by anti-entropy); {} reached no peer and are gone",
                    skipped.1 - skipped.0,
                    done.gone()
                );
                ctx.recovered.send_replace(Some(done));
                return true;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot finish the recovery; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = ctx.shutdown.cancelled() => return false,
                }
            }
        }
    }
}
