//! The region's part of a recovery (after a damaged journal, `meridian region --recover`, or
//! a peer found holding more of ours than the log has; the store's and replication's parts are
//! `meridian_storage::Recovery` and `meridian_replication::recover`): once the peers said how
//! far they hold this region's changes, anti-entropy with every peer brings back the items of
//! the changes lost here, and sends them the ones they dropped as repeats meanwhile.

use meridian_antientropy::{Peers, run_repair};
use meridian_replication::ReplicationHandle;
use meridian_replication::recover::Recovered;
use meridian_storage::Store;
use meridian_worker::Next;

/// Runs the follow-up of every recovery of the store (the `recovery-repair` worker): at once
/// for one without replication (no peer holds anything of ours), after replication finished it
/// otherwise.
pub(crate) fn spawn(store: &Store, replication: Option<&ReplicationHandle>, peers: Peers) {
    let workers = store.workers().clone();
    match replication {
        None if store.recovery().is_some() => workers.spawn(
            "recovery-repair",
            Repair::Alone {
                store: store.clone(),
            },
        ),
        None => {}
        Some(r) => {
            let mut recovered = r.recovered();
            // One that finished before this worker subscribed counts too.
            let first = recovered.borrow_and_update().clone();
            workers.spawn(
                "recovery-repair",
                Repair::AfterReplication {
                    store: store.clone(),
                    peers,
                    recovered,
                    done: first,
                },
            );
        }
    }
}

enum Repair {
    /// No replication: end the store's recovery with nothing skipped.
    Alone { store: Store },
    /// Repair from every peer after each recovery replication finishes.
    AfterReplication {
        store: Store,
        peers: Peers,
        recovered: tokio::sync::watch::Receiver<Option<Recovered>>,
        done: Option<Recovered>,
    },
}

impl meridian_worker::Worker for Repair {
    async fn step(&mut self) -> Result<Next, String> {
        match self {
            Repair::Alone { store } => {
                store
                    .finish_recovery(0)
                    .await
                    .map_err(|e| format!("cannot finish the recovery: {e}"))?;
                Ok(Next::Done)
            }
            Repair::AfterReplication {
                store,
                peers,
                recovered,
                done,
            } => {
                if recovered.has_changed().unwrap_or(false) {
                    *done = recovered.borrow_and_update().clone();
                }
                if let Some(d) = done.take() {
                    repair_all(store, peers, &d).await;
                }
                let mut next = recovered.clone();
                Ok(Next::When(Box::pin(async move {
                    if next.changed().await.is_err() {
                        // Replication stopped: no recovery will finish again.
                        std::future::pending::<()>().await;
                    }
                })))
            }
        }
    }
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
