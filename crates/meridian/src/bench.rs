//! `meridian bench`: benchmark suites — `kv` and `load` against any DynamoDB endpoint
//! (`meridian-bench`), the rest on a local multi-region cluster (`meridian-clusterbench`).

use clap::{Args, Subcommand};

/// `meridian bench SUITE`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand, Debug)]
enum Suite {
    /// PutItem then GetItem over N keep-alive connections against any DynamoDB endpoint.
    Kv(meridian_bench::KvArgs),
    /// Bulk-load N items with BatchWriteItem (25 per request) over N connections.
    Load(meridian_bench::LoadArgs),
    /// On a local cluster: PutItem/GetItem throughput and latency, directly and via the gateway.
    Ops(meridian_clusterbench::ClusterBenchArgs),
    /// On a local cluster: replication lag per link while writing into one region, then all.
    Lag(meridian_clusterbench::ClusterBenchArgs),
    /// On a local cluster: write N items in one region, read them all in another 500 ms later.
    Netflix(meridian_clusterbench::ClusterBenchArgs),
    /// On a local cluster: catch-up time after a partition under a steady write rate.
    Catchup(meridian_clusterbench::ClusterBenchArgs),
    /// On a local cluster: gateway failover and failback time when a region is killed.
    Failover(meridian_clusterbench::ClusterBenchArgs),
    /// Every cluster suite in turn (ops, lag, netflix, catchup, failover).
    All(meridian_clusterbench::ClusterBenchArgs),
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (name, cluster_args) = match args.suite {
        Suite::Ops(a) => ("ops", a),
        Suite::Lag(a) => ("lag", a),
        Suite::Netflix(a) => ("netflix", a),
        Suite::Catchup(a) => ("catchup", a),
        Suite::Failover(a) => ("failover", a),
        Suite::All(a) => ("all", a),
        other => return run_endpoint_suite(other),
    };
    crate::async_main("warn", async move {
        let bin = std::env::current_exe()?;
        let json = cluster_args.json;
        let out = cluster_args.out.clone();
        let report = meridian_clusterbench::run(&bin, name, cluster_args).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("{}", report.markdown());
        }
        eprintln!("==> reports in {}", out.display());
        Ok(())
    })
}

/// The suites that measure one endpoint given on the command line.
fn run_endpoint_suite(suite: Suite) -> anyhow::Result<()> {
    match suite {
        Suite::Kv(kv) => crate::async_main("warn", async move {
            let report = meridian_bench::run_kv(&kv).await?;
            println!("{}", report.render(kv.json)?);
            Ok(())
        }),
        Suite::Load(load) => crate::async_main("warn", async move {
            let report = meridian_bench::run_load(&load).await?;
            println!("{}", report.render(load.json)?);
            Ok(())
        }),
        other => anyhow::bail!("{other:?} is not an endpoint suite"),
    }
}
