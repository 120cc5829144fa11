//! `meridian`: one binary, one subcommand per role. Each subcommand lives in its own module
//! and only wires library crates together.

mod agent;
mod apply;
mod bench;
mod cluster;
mod control;
mod drain;
mod drill;
mod fault;
mod ids;
mod region;
mod region_recover;
mod region_replication;
mod status;
mod up;

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
    Region(Box<region::RegionArgs>),
    /// Run the policy DNS server (with its health checker and admin API).
    Dns(agent::DnsRoleArgs),
    /// Run the home-region HTTP gateway in front of the regions.
    Gateway(agent::GatewayRoleArgs),
    /// Run a whole multi-region cluster on this machine (control plane, regions, DNS, gateway).
    Up(up::UpArgs),
    /// Run the control plane (versioned cluster specs).
    Control(control::ControlArgs),
    /// Validate a cluster spec and store it at the control plane as a new version.
    Apply(apply::ApplyArgs),
    /// Show every component of a local cluster: processes, health, config versions, link lag.
    Status(status::StatusArgs),
    /// Inject faults into a local cluster (kill, restart, partition, heal, delay, skew).
    #[command(subcommand)]
    Fault(fault::FaultCmd),
    /// Unique, time-ordered 64-bit IDs from a region.
    Ids(ids::IdsArgs),
    /// Benchmarks.
    Bench(bench::BenchArgs),
    /// Failure drills: inject faults under load, check invariants, write an FMEA report.
    Drill(drill::DrillArgs),
}

/// mimalloc instead of glibc's malloc: the write and replication paths allocate per item and per
/// change (records, keys, batches) on several threads, where glibc's malloc took ~20 % of a
/// replicating region's CPU; catch-up after a partition got ~1.4× faster. Built without
/// transparent huge pages, which cost ~35 MB of RSS (`docs/benchmarks.md`, "Replication lag
/// and catch-up").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    install_panic_hook();
    raise_open_files_limit();
    let cli = Cli::parse();
    match cli.command {
        Command::Region(mut args) => match args.op.take() {
            Some(op) => drain::run(op),
            None => region::run(*args),
        },
        // hickory logs every TCP query at info: far too much for a server under load.
        Command::Dns(args) => async_main("info,hickory_server=warn", agent::run_dns(args)),
        Command::Gateway(args) => async_main("info", agent::run_gateway(args)),
        Command::Up(args) => up::run(args),
        Command::Control(args) => control::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Status(args) => status::run(args),
        Command::Fault(cmd) => fault::run(cmd),
        Command::Ids(args) => ids::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Drill(args) => drill::run(args),
    }
}

/// Raises the soft limit of open files to the hard one: a server that runs out of descriptors
/// refuses connections, and its storage engine, which opens table files as it goes, would fail
/// (and fail-stop the region) long before memory or CPU ran out. The default soft limit (often
/// 1024) is far below what a region's connections and table files can need.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
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
