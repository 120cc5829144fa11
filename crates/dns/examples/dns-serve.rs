//! Runs the DNS role from a config file, for benchmarks and manual testing:
//! `cargo run --release -p meridian-dns --example dns-serve -- --config crates/dns/examples/dns.toml`.
//! (The product binary wires the same `meridian_dns::run` into `meridian dns`.)

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    dns: meridian_dns::DnsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    meridian_dns::run(Cli::parse().dns).await
}
