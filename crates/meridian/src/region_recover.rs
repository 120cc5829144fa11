//! The region's part of a recovery (after a damaged journal, `meridian region --recover`, or
//! a peer found holding more of ours than the log has; the store's and replication's parts are
//! `meridian_storage::Recovery` and `meridian_replication::recover`): once the peers said how
//! far they hold this region's changes, anti-entropy with every peer brings back the items of
//! the changes lost here, and sends them the ones they dropped as repeats meanwhile.

use meridian_antientropy::{Peers, run_repair};
use meridian_replication::ReplicationHandle;
use meridian_replication::recover::Recovered;
use meridian_storage::Store;

/// Runs the follow-up of every recovery of the store: at once for one without replication (no
/// peer holds anything of ours), after replication finished it otherwise.
pub(crate) fn spawn(store: &Store, replication: Option<&ReplicationHandle>, peers: Peers) {
    let store = store.clone();
    let Some(replication) = replication else {
        if store.recovery().is_some() {
            tokio::spawn(async move {
                if let Err(e) = store.finish_recovery(0).await {
                    tracing::error!(error = %e, "cannot finish the recovery");
                }
            });
        }
        return;
    };
    let mut recovered = replication.recovered();
    tokio::spawn(async move {
        // One that finished before this task subscribed counts too.
        let mut done = recovered.borrow_and_update().clone();
        loop {
            if let Some(d) = done.take() {
                repair_all(&store, &peers, &d).await;
            }
            if recovered.changed().await.is_err() {
                return;
            }
            done = recovered.borrow_and_update().clone();
        }
    });
}

/// Anti-entropy with every peer, both ways, after a recovery.
async fn repair_all(store: &Store, peers: &Peers, done: &Recovered) {
    let (mut here, mut there, mut failed) = (0u64, 0u64, 0usize);
    for (name, endpoint) in &peers.endpoints {
        match run_repair(store, endpoint, peers.token.as_deref(), &[]).await {
            Ok(r) => {
                let h: u64 = r.tables.iter().map(|t| t.repaired_here).sum();
                let t: u64 = r.tables.iter().map(|t| t.repaired_there).sum();
                tracing::info!(peer = %name, here = h, there = t, "recovery: anti-entropy repaired items");
                here += h;
                there += t;
            }
            Err(e) => {
                failed += 1;
                tracing::error!(peer = %name, error = format!("{e:#}"), "recovery: anti-entropy failed; run `POST /admin/anti-entropy?peer={name}` once the peer is back");
            }
        }
    }
    tracing::warn!(
        recovered_changes = done.skipped.1 - done.skipped.0,
        gone = done.gone(),
        items_repaired_here = here,
        items_repaired_at_peers = there,
        peers_failed = failed,
        "recovery complete"
    );
}

/// `meridian region verify --data-dir DIR`.
pub(crate) fn verify(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let report = meridian_storage::verify(data_dir)?;
    if let Some(d) = &report.journal {
        println!("journal  DAMAGED  {d}");
        println!("tables   not read (opening the engine would truncate the damaged journal)");
    } else {
        println!("journal  ok");
    }
    for (name, r) in &report.keyspaces {
        match r {
            Ok(n) => println!("{name:<10} ok       {n} entries read"),
            Err(e) => println!("{name:<10} DAMAGED  {e}"),
        }
    }
    if report.ok() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} is damaged; see above (`meridian region --recover` recovers from a damaged journal)",
            data_dir.display()
        )
    }
}
