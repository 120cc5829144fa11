//! The region's part of a recovery from a damaged journal (`meridian region --recover`; the
//! store's and replication's parts are `meridian_storage::Recovery` and
//! `meridian_replication::recover`): once the peers said how far they hold this region's
//! changes, anti-entropy with every peer brings back the items of the changes lost here.

use meridian_antientropy::{Peers, run_repair};
use meridian_replication::ReplicationHandle;
use meridian_storage::Store;

/// Starts the recovery's follow-up if the store is recovering.
pub(crate) fn spawn(store: &Store, replication: Option<&ReplicationHandle>, peers: Peers) {
    if store.recovery().is_none() {
        return;
    }
    let store = store.clone();
    let Some(replication) = replication else {
        // No peer holds anything of ours: nothing to wait for.
        tokio::spawn(async move {
            if let Err(e) = store.finish_recovery(0).await {
                tracing::error!(error = %e, "cannot finish the recovery");
            }
        });
        return;
    };
    let mut recovered = replication.recovered();
    tokio::spawn(async move {
        let Ok(done) = recovered.wait_for(Option::is_some).await.map(|d| d.clone()) else {
            return;
        };
        let (mut here, mut failed) = (0u64, 0usize);
        for (name, endpoint) in &peers.endpoints {
            match run_repair(&store, endpoint, peers.token.as_deref(), &[]).await {
                Ok(r) => {
                    let n: u64 = r.tables.iter().map(|t| t.repaired_here).sum();
                    tracing::info!(peer = %name, items = n, "recovery: anti-entropy repaired items here");
                    here += n;
                }
                Err(e) => {
                    failed += 1;
                    tracing::error!(peer = %name, error = format!("{e:#}"), "recovery: anti-entropy failed; run `POST /admin/anti-entropy?peer={name}` once the peer is back");
                }
            }
        }
        tracing::warn!(
            recovered_changes = done.as_ref().map_or(0, |d| d.skipped.1 - d.skipped.0),
            gone = done.as_ref().map_or(0, |d| d.gone()),
            items_repaired = here,
            peers_failed = failed,
            "recovery complete"
        );
    });
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
