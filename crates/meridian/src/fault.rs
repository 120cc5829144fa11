//! `meridian fault …`: fault injection against a local cluster started by `meridian up`.
//!
//! - `kill NAME` — a real SIGKILL of that component's process (a region, `control`, `dns` or
//!   `gateway`), pid from `cluster.json`.
//! - `restart NAME` — asks `meridian up` (its admin endpoint) to start the component again with
//!   the same address, flags and data; `up` updates `cluster.json`.
//! - `partition A [B]` / `heal [A [B]]` — pause / resume the replication links between A and B
//!   in both directions (A alone: between A and every other region; `heal` alone: everything).
//! - `delay A B MS` — emulated one-way latency on the links between A and B.
//! - `skew NAME MS` — shifts a region's wall clock (its HLC keeps versions ordered).
//!
//! The operations themselves live in `meridian_drill::faults` (shared with `meridian drill`).

use clap::Subcommand;
use meridian_drill::faults::{self, LinkAction, LinkReport, LinkResult};

use crate::cluster::{ClusterArg, block_on, http};

/// `meridian fault` subcommands.
#[derive(Subcommand, Debug)]
pub enum FaultCmd {
    /// SIGKILL a component (region name, `control`, `dns` or `gateway`).
    Kill {
        /// Component.
        name: String,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Start a component again on the same address and data (through `meridian up`).
    Restart {
        /// Component.
        name: String,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Cut replication between two regions (or one region and all others), both ways.
    Partition {
        /// A region.
        a: String,
        /// Another region (all others when unset).
        b: Option<String>,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Resume replication links cut by `partition` (all of them when no region is named).
    Heal {
        /// A region.
        a: Option<String>,
        /// Another region.
        b: Option<String>,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Set the emulated one-way latency between two regions (both directions).
    Delay {
        /// A region.
        a: String,
        /// Another region.
        b: String,
        /// Milliseconds (0 removes the delay).
        ms: u64,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Skew a region's wall clock by MS milliseconds (negative: behind).
    Skew {
        /// Region.
        name: String,
        /// Milliseconds.
        #[arg(allow_hyphen_values = true)]
        ms: i64,
        #[command(flatten)]
        cluster: ClusterArg,
    },
}

/// Prints each link's result and fails if any link failed.
fn report_links(reports: &[LinkReport], action: LinkAction) -> anyhow::Result<()> {
    for r in reports {
        match &r.result {
            LinkResult::Done => println!("{} -> {}: {}", r.from, r.to, action.verb()),
            // A star has no spoke-to-spoke links: nothing to do there.
            LinkResult::NoSuchLink => println!("{} -> {}: no such link", r.from, r.to),
            LinkResult::Failed(e) => println!("{} -> {}: FAILED: {e}", r.from, r.to),
        }
    }
    faults::check_links(reports, action)
}

/// Applies a link action to the links between `a` and `b` (see [`faults::links`]).
fn on_links(
    cluster: &ClusterArg,
    a: Option<&str>,
    b: Option<&str>,
    action: LinkAction,
) -> anyhow::Result<()> {
    let file = cluster.load()?;
    let l = faults::links(&file, a, b)?;
    block_on(async move {
        let reports = faults::link_action(&http(&file)?, &file, &l, action).await?;
        report_links(&reports, action)
    })
}

pub fn run(cmd: FaultCmd) -> anyhow::Result<()> {
    match cmd {
        FaultCmd::Kill { name, cluster } => {
            let pid = faults::kill(&cluster.load()?, &name)?;
            println!("killed {name} (SIGKILL to pid {pid})");
            Ok(())
        }
        FaultCmd::Restart { name, cluster } => {
            let file = cluster.load()?;
            block_on(async move {
                let pid = faults::restart(&file, &name).await?;
                println!("restarted {name} (pid {pid})");
                Ok(())
            })
        }
        FaultCmd::Partition { a, b, cluster } => {
            on_links(&cluster, Some(&a), b.as_deref(), LinkAction::Pause)
        }
        FaultCmd::Heal { a, b, cluster } => {
            on_links(&cluster, a.as_deref(), b.as_deref(), LinkAction::Resume)
        }
        FaultCmd::Delay { a, b, ms, cluster } => {
            on_links(&cluster, Some(&a), Some(&b), LinkAction::Delay(ms))
        }
        FaultCmd::Skew { name, ms, cluster } => {
            let file = cluster.load()?;
            block_on(async move {
                faults::skew(&http(&file)?, &file, &name, ms).await?;
                println!("{name}: clock skewed by {ms} ms");
                Ok(())
            })
        }
    }
}
