//! `meridian region drain|undrain NAME`: take a region out of routing (or back) everywhere —
//! its own `/health` (so every health checker sees it), and the DNS server's and the gateway's
//! operator overrides (`POST /admin/regions/{name}/drain|undrain`), which act at once.
//!
//! The operation itself is `meridian_drill::faults::drain` (shared with `meridian drill`).
//! `meridian region verify` is an operator subcommand too; it lives in `region_recover.rs`.

use clap::Subcommand;
use meridian_drill::faults;

use crate::cluster::{ClusterArg, block_on, http};

/// Operator subcommands of `meridian region`.
#[derive(Subcommand, Debug)]
pub enum RegionOp {
    /// Move traffic away from a region (it keeps serving and replicating).
    Drain {
        /// Region name.
        name: String,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Bring a drained region back into routing.
    Undrain {
        /// Region name.
        name: String,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Check a stopped region's store: its journals, and every block of every table (exit
    /// status 1 when anything is damaged).
    Verify {
        /// The region's data directory.
        #[arg(long)]
        data_dir: std::path::PathBuf,
    },
}

pub fn run(op: RegionOp) -> anyhow::Result<()> {
    let (undrain, name, cluster) = match op {
        RegionOp::Drain { name, cluster } => (false, name, cluster),
        RegionOp::Undrain { name, cluster } => (true, name, cluster),
        RegionOp::Verify { data_dir } => return crate::region_recover::verify(&data_dir),
    };
    let action = if undrain { "undrain" } else { "drain" };
    let file = cluster.load()?;
    block_on(async move {
        let steps = faults::drain(&http(&file)?, &file, &name, undrain).await?;
        let mut failed = 0;
        for s in &steps {
            match &s.error {
                None => println!("{:<8} {action}ed {name}", s.component),
                Some(e) => {
                    failed += 1;
                    println!("{:<8} FAILED: POST {}: {e}", s.component, s.url);
                }
            }
        }
        if failed > 0 {
            anyhow::bail!(
                "{failed} of {} components did not {action} {name}",
                steps.len()
            );
        }
        Ok(())
    })
}
