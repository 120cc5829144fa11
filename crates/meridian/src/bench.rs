//! `meridian bench`: benchmark suites.

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
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.suite {
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
    }
}
