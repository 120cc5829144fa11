//! Runs the key-value benchmark by hand:
//! `cargo run --release -p meridian-bench --example kv -- --endpoint http://127.0.0.1:8000`.
//! (The real entry point is `meridian bench kv` in the main binary.)

use clap::Parser;
use meridian_bench::{KvArgs, run_kv};

#[derive(Parser, Debug)]
#[command(about = "DynamoDB-JSON PutItem/GetItem load generator")]
struct Cli {
    #[command(flatten)]
    kv: KvArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let report = run_kv(&cli.kv).await?;
    println!("{}", report.render(cli.kv.json)?);
    Ok(())
}
