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
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.suite {
        Suite::Kv(kv) => crate::async_main("warn", async move {
            let report = meridian_bench::run_kv(&kv).await?;
            println!("{}", report.render(kv.json)?);
            Ok(())
        }),
    }
}
