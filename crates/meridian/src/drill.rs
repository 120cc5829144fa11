//! `meridian drill [SCENARIO|all]`: failure drills (FMEA) — see `meridian_drill` and
//! `docs/drills.md`. Exit status: 0 when every invariant held, 1 when one failed, 2 when the
//! drill could not run.

use std::path::PathBuf;

use clap::Args;
use meridian_drill::{Name, Options, Status};

/// Flags of `meridian drill`.
#[derive(Args, Debug)]
pub struct DrillArgs {
    /// A scenario (partition, kill, control-outage, skew, latency, dup-reorder, conflicts,
    /// counters, drain, byzantine, failback, heal, apply-during-outage) or `all`.
    #[arg(default_value = "all")]
    scenario: String,
    /// Drill an existing cluster (its `cluster.json` from `meridian up`) instead of starting one.
    #[arg(long)]
    cluster: Option<PathBuf>,
    /// Where the report goes (fmea.md, fmea.json, SVG plots).
    #[arg(long, default_value = "./drill-report")]
    out: PathBuf,
    /// CI size: a few seconds of fault per scenario.
    #[arg(long)]
    quick: bool,
    /// Seed of the clients' choices (printed; random when unset).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the report as JSON instead of the Markdown table.
    #[arg(long)]
    json: bool,
    /// Also write the docs page (e.g. docs/drills.md) with links to the plots in --out.
    #[arg(long)]
    docs: Option<PathBuf>,
}

pub fn run(args: DrillArgs) -> anyhow::Result<()> {
    let scenarios = if args.scenario == "all" {
        Name::ALL.to_vec()
    } else {
        match Name::parse(&args.scenario) {
            Some(n) => vec![n],
            None => {
                let names: Vec<&str> = Name::ALL.iter().map(|n| n.as_str()).collect();
                anyhow::bail!(
                    "unknown scenario {:?} (one of: {}, all)",
                    args.scenario,
                    names.join(", ")
                );
            }
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("meridian drill: seed {seed} (replay with --seed {seed})");
    let mut command = format!("meridian drill {}", args.scenario);
    if args.quick {
        command.push_str(" --quick");
    }
    if args.cluster.is_some() {
        command.push_str(" --cluster …");
    }
    command.push_str(&format!(" --seed {seed}"));
    let opts = Options {
        scenarios,
        cluster: args.cluster,
        out: args.out,
        quick: args.quick,
        seed,
        bin: std::env::current_exe()?,
        command,
        docs: args.docs,
    };
    crate::init_logging("warn");
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(meridian_drill::run(&opts));
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("meridian drill: harness error: {e:#}");
            std::process::exit(2);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", meridian_drill::report::fmea_md(&report));
    }
    eprintln!("report: {}", opts.out.join("fmea.md").display());
    match report.status {
        Status::Pass => Ok(()),
        Status::Fail => {
            for r in &report.scenarios {
                for c in r.failed() {
                    eprintln!("INVARIANT FAILED: {} / {}: {}", r.name, c.name, c.detail);
                }
            }
            std::process::exit(1);
        }
        Status::Error => {
            for r in &report.scenarios {
                if let Some(e) = &r.error {
                    eprintln!("HARNESS ERROR: {}: {e}", r.name);
                }
            }
            std::process::exit(2);
        }
    }
}
