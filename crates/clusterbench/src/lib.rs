//! The cluster benchmarks of `meridian bench`: what a multi-region deployment does under load,
//! measured on a local cluster with real processes, real sockets and SigV4-signed requests.
//!
//! Suites (`meridian bench SUITE`, or `all`):
//! - [`ops`]: per-operation throughput and latency (PutItem, GetItem) on one region and through
//!   the gateway, driven by `meridian-bench`'s load generator.
//! - [`lag`]: replication lag per link (p50/p99/max of every applied entry, from the regions'
//!   apply-lag histograms) while writing at a fixed rate into one region, then into all.
//! - [`netflix`]: write N items in one region, begin reading all of them in another 500 ms after
//!   the last acknowledgement, count how many are found — with 0 and with 80 ms of emulated
//!   one-way link delay.
//! - [`catchup`]: partition a region while writing at a fixed rate, heal, and time until every
//!   peer has applied the backlog.
//! - [`failover`]: `kill -9` a region under a pinned user's reads through the gateway; time until
//!   the gateway serves the user from another region, and back home after a restart.
//!
//! Every suite starts its own three-region cluster with the drill harness
//! ([`meridian_drill::harness::Cluster`]) unless `--cluster` names a running one, and writes
//! `bench.json`, `bench.md` and SVG plots into `--out`. Layers: [`report`] (pure: rows,
//! Markdown) ← the suites ← [`run`].

pub mod catchup;
pub mod failover;
pub mod io;
pub mod lag;
pub mod netflix;
pub mod ops;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use meridian_bench::sign::{SignArgs, Signer};
use meridian_control::Http;
use meridian_drill::harness::Cluster;

pub use report::{BenchReport, Row, SuiteResult};

/// The suites, in the order `all` runs them.
pub const SUITES: [&str; 5] = ["ops", "lag", "netflix", "catchup", "failover"];

/// Flags shared by the cluster suites.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterBenchArgs {
    /// Use the cluster of this `cluster.json` (started by `meridian up`) instead of starting one.
    #[arg(long)]
    pub cluster: Option<PathBuf>,
    /// Where `bench.json`, `bench.md` and the plots go.
    #[arg(long, default_value = "./bench-report")]
    pub out: PathBuf,
    /// CI size: small rates, item counts and durations (minutes in total, not tens of minutes).
    #[arg(long)]
    pub quick: bool,
    /// Print the JSON report on stdout instead of the Markdown one.
    #[arg(long)]
    pub json: bool,
    /// Write rate of the lag and catch-up suites, items per second (default 10000; 1000 with
    /// --quick).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Items written by the Netflix test (default 1000000; 20000 with --quick).
    #[arg(long)]
    pub items: Option<u64>,
    /// Partition length of the catch-up suite in seconds (default 60; 5 with --quick).
    #[arg(long)]
    pub partition_secs: Option<u64>,
    /// Another DynamoDB endpoint to run the `ops` suite against in the same run, side by side,
    /// as `LABEL=http://host:port` (repeatable; e.g. dynalite or DynamoDB Local started by
    /// `scripts/bench-peers.sh`); the report gives Meridian's throughput ratio to each.
    #[arg(long = "peer", value_name = "LABEL=URL")]
    pub peers: Vec<String>,
}

impl ClusterBenchArgs {
    fn rate(&self) -> u64 {
        self.rate.unwrap_or(if self.quick { 1_000 } else { 10_000 })
    }
    fn items(&self) -> u64 {
        self.items
            .unwrap_or(if self.quick { 20_000 } else { 1_000_000 })
    }
    fn partition_secs(&self) -> u64 {
        self.partition_secs
            .unwrap_or(if self.quick { 5 } else { 60 })
    }
}

/// What every suite gets: the cluster, an admin HTTP client, the signer and its options.
pub struct Ctx {
    /// The cluster under test.
    pub cluster: Cluster,
    /// Admin client (short timeouts).
    pub http: Http,
    /// SigV4 signer for DynamoDB requests.
    pub signer: Arc<Signer>,
    /// Options.
    pub args: ClusterBenchArgs,
}

impl Ctx {
    /// Region names and endpoints, in cluster order.
    pub fn regions(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.cluster.regions()
    }
}

/// Runs `suite` (or every suite for `all`) with `bin` as the `meridian` executable for the
/// cluster it starts; writes the reports and returns them.
pub async fn run(bin: &Path, suite: &str, args: ClusterBenchArgs) -> anyhow::Result<BenchReport> {
    let suites: Vec<&str> = match suite {
        "all" => SUITES.to_vec(),
        s if SUITES.contains(&s) => vec![s],
        other => bail!(
            "unknown suite {other:?} (one of: all, {})",
            SUITES.join(", ")
        ),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    eprintln!("==> starting the cluster");
    let cluster = match &args.cluster {
        Some(path) => Cluster::attach(path).await?,
        None => Cluster::start(bin, 0xbe5c).await?,
    };
    let http = cluster.file()?.http(Duration::from_secs(5))?;
    let mut ctx = Ctx {
        cluster,
        http,
        signer: Arc::new(SignArgs::default().signer()),
        args,
    };
    let mut report = BenchReport::new(suite, ctx.args.quick);
    for name in suites {
        eprintln!("==> suite {name}");
        let result = match name {
            "ops" => ops::run(&mut ctx).await,
            "lag" => lag::run(&mut ctx).await,
            "netflix" => netflix::run(&mut ctx).await,
            "catchup" => catchup::run(&mut ctx).await,
            _ => failover::run(&mut ctx).await,
        };
        match result {
            Ok(r) => report.suites.push(r),
            Err(e) => {
                ctx.cluster.stop(true).await;
                return Err(e.context(format!("suite {name}")));
            }
        }
    }
    ctx.cluster.stop(false).await;
    report.write(&ctx.args.out)?;
    Ok(report)
}
