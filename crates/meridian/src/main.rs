//! `meridian`: one binary, one subcommand per role. Each subcommand lives in its own module
//! and only wires library crates together.

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
}

fn main() -> anyhow::Result<()> {
    install_panic_hook();
    let cli = Cli::parse();
    match cli.command {
        Command::Region(args) => region::run(args),
    }
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
