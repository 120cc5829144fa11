//! `meridian region drain|undrain NAME`: take a region out of routing (or back) everywhere —
//! its own `/health` (so every health checker sees it), and the DNS server's and the gateway's
//! operator overrides (`POST /admin/regions/{name}/drain|undrain`), which act at once.

use clap::Subcommand;

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
}

pub fn run(op: RegionOp) -> anyhow::Result<()> {
    let (action, name, cluster) = match op {
        RegionOp::Drain { name, cluster } => ("drain", name, cluster),
        RegionOp::Undrain { name, cluster } => ("undrain", name, cluster),
    };
    let file = cluster.load()?;
    let region = file.region(&name)?.clone();
    block_on(async move {
        let http = http();
        let targets = [
            ("region", format!("{}/admin/{action}", region.endpoint)),
            (
                "dns",
                format!("{}/admin/regions/{name}/{action}", file.dns.admin),
            ),
            (
                "gateway",
                format!("{}/admin/regions/{name}/{action}", file.gateway.admin),
            ),
        ];
        let mut failed = 0;
        for (what, url) in targets {
            match http.post_json(&url, None).await {
                Ok(r) if r.ok() => println!("{what:<8} {action}ed {name}"),
                Ok(r) => {
                    failed += 1;
                    println!(
                        "{what:<8} FAILED: POST {url}: status {} {}",
                        r.status,
                        r.json()
                    );
                }
                Err(e) => {
                    failed += 1;
                    println!("{what:<8} FAILED: {e}");
                }
            }
        }
        if failed > 0 {
            anyhow::bail!("{failed} of 3 components did not {action} {name}");
        }
        Ok(())
    })
}
