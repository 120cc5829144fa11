//! `meridian`: one binary, one subcommand per role. Each subcommand lives in its own module
//! and only wires library crates together.

mod bench;
mod region;

use clap::{Parser, Subcommand};

/// Meridian: an active-active, multi-region, DynamoDB-compatible database.
#[derive(Parser, Debug)]
#[command(name = "meridian", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one region server (DynamoDB API, health, metrics).
    Region(region::RegionArgs),
    /// Run the policy DNS server (with its health checker and admin API).
    Dns(meridian_dns::DnsArgs),
    /// Run the home-region HTTP gateway in front of the regions.
    Gateway(meridian_gateway::GatewayArgs),
    /// Benchmarks.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    install_panic_hook();
    let cli = Cli::parse();
    match cli.command {
        Command::Region(args) => region::run(args),
        Command::Dns(args) => async_main("info", meridian_dns::run(args)),
        Command::Gateway(args) => async_main("info", meridian_gateway::run(args)),
        Command::Bench(args) => bench::run(args),
    }
}

/// Runs a role's future on a small runtime (2 workers: this machine class has 2 cores).
pub(crate) fn async_main(
    log: &str,
    fut: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    init_logging(log);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(fut)
}

/// Logs to stderr with a `RUST_LOG`-style filter.
pub(crate) fn init_logging(filter: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

/// A panic anywhere is a bug: log it and abort, so the process is restarted from durable state
/// instead of limping on with a thread missing.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic: aborting");
        default(info);
        std::process::abort();
    }));
}
