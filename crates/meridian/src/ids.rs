//! `meridian ids [--region NAME] [--count N]`: unique, time-ordered 64-bit IDs from a region's
//! `GET /ids` (Snowflake layout: 41 bits of ms, 10 bits of region id, 12 bits of sequence).

use clap::Args;
use meridian_core::snowflake::decode;

use crate::cluster::{ClusterArg, block_on, http};

/// Flags of `meridian ids`.
#[derive(Args, Debug)]
pub struct IdsArgs {
    /// The issuing region (the first region when unset).
    #[arg(long)]
    region: Option<String>,
    /// How many IDs.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Also print each ID's parts (time, region id, sequence).
    #[arg(long)]
    explain: bool,
    #[command(flatten)]
    cluster: ClusterArg,
}

pub fn run(args: IdsArgs) -> anyhow::Result<()> {
    let cluster = args.cluster.load()?;
    let region = match &args.region {
        Some(name) => cluster.region(name)?.clone(),
        None => cluster
            .regions
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the cluster has no regions"))?,
    };
    block_on(async move {
        let url = format!("{}/ids?count={}", region.endpoint, args.count);
        let resp = http(&cluster)?.get(&url).await?;
        if !resp.ok() {
            anyhow::bail!("GET {url}: status {}: {}", resp.status, resp.json());
        }
        let body = resp.json();
        for id in body["ids"].as_array().into_iter().flatten() {
            let Some(id) = id.as_u64() else { continue };
            if args.explain {
                let p = decode(id);
                println!(
                    "{id}\tunix_ms={} region_id={} sequence={}",
                    p.unix_ms, p.region_id, p.sequence
                );
            } else {
                println!("{id}");
            }
        }
        Ok(())
    })
}
