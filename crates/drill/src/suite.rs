//! A drill run: start (or attach to) a cluster, run the chosen scenarios one after another on
//! it, write the FMEA (`fmea.json`, `fmea.md`, SVG plots) and optionally the docs page.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::harness::Cluster;
use crate::progress::Progress;
use crate::report::{self, Machine, Report, ScenarioResult, Status};
use crate::runner::{self, RunCtx};
use crate::scenarios::{Name, Params, Roles};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scenarios, in order.
    pub scenarios: Vec<Name>,
    /// An existing cluster's `cluster.json`; a fresh local cluster when unset.
    pub cluster: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// CI size.
    pub quick: bool,
    /// Seed of the clients' choices.
    pub seed: u64,
    /// The `meridian` executable (to start a cluster with `up`).
    pub bin: PathBuf,
    /// The command line, for the report.
    pub command: String,
    /// Also write this docs page (e.g. `docs/drills.md`).
    pub docs: Option<PathBuf>,
}

/// Runs the drill. Errors are harness errors (the cluster could not be started, an output
/// could not be written); scenario failures are in the report.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let params = if opts.quick {
        Params::quick()
    } else {
        Params::full()
    };
    let progress = Progress::new(opts.scenarios.len() as u64);
    progress.line(&format!(
        "meridian drill: {} scenario(s), {} mode, seed {}",
        opts.scenarios.len(),
        params.mode,
        opts.seed
    ));
    let (mut cluster, cluster_desc) = match &opts.cluster {
        Some(path) => {
            progress.line(&format!("attaching to {}", path.display()));
            (
                Cluster::attach(path).await?,
                format!("attached ({})", path.display()),
            )
        }
        None => {
            progress.line("starting a local three-region cluster (meridian up)");
            let c = Cluster::start_in(&opts.bin, &opts.out.join("cluster")).await?;
            progress.line(&format!(
                "cluster up in {:.1} s ({})",
                started.elapsed().as_secs_f64(),
                c.path().display()
            ));
            (
                c,
                "own: 3 regions on loopback, mesh, 20–40 ms one-way link latency".to_owned(),
            )
        }
    };
    let region_names: Vec<String> = cluster.regions()?.into_iter().map(|(n, _)| n).collect();
    let roles = Roles::choose(&region_names, &cluster.pins)?;
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let rc = RunCtx {
        params: &params,
        roles: &roles,
        progress: &progress,
        seed: opts.seed,
        nonce,
        out: &opts.out,
    };
    let mut results: Vec<ScenarioResult> = Vec::new();
    let interrupted = {
        let scenarios = async {
            for name in &opts.scenarios {
                progress.scenario(name.as_str());
                let r = runner::run(*name, &mut cluster, &rc).await;
                progress.line(&summary_line(&r));
                progress.scenario_done();
                results.push(r);
            }
        };
        tokio::select! {
            () = scenarios => false,
            _ = tokio::signal::ctrl_c() => true,
        }
    };
    progress.finish();
    let status = Report::overall(&results);
    let keep = status != Status::Pass || interrupted;
    if let (true, Some(dir)) = (keep, cluster.own_dir()) {
        progress.line(&format!(
            "keeping the cluster's data and logs in {}",
            dir.display()
        ));
    }
    cluster.stop(keep).await;
    if interrupted {
        anyhow::bail!("interrupted");
    }
    let report = Report {
        command: opts.command.clone(),
        seed: opts.seed,
        mode: params.mode.to_owned(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .to_owned(),
        machine: Machine::detect(),
        cluster: cluster_desc,
        started_utc: report::utc(started_unix),
        duration_s: started.elapsed().as_secs_f64(),
        status,
        scenarios: results,
    };
    write_outputs(&report, opts)?;
    Ok(report)
}

/// One line per finished scenario.
fn summary_line(r: &ScenarioResult) -> String {
    let mut s = format!("{}: {}", r.name, r.status.label());
    if let Some(e) = &r.error {
        s.push_str(&format!(" — {e}"));
    }
    for c in r.failed() {
        s.push_str(&format!(" — {} failed: {}", c.name, c.detail));
    }
    s
}

fn write_outputs(report: &Report, opts: &Options) -> anyhow::Result<()> {
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(
        &opts.out.join("fmea.json"),
        format!("{}\n", serde_json::to_string_pretty(report)?),
    )?;
    write(&opts.out.join("fmea.md"), report::fmea_md(report))?;
    if let Some(doc) = &opts.docs {
        write(doc, report::doc_page(report, &plots_prefix(doc, &opts.out)))?;
    }
    Ok(())
}

/// How the docs page at `doc` links to files in `out` (`drills/` for `docs/drills.md` and
/// `docs/drills`).
fn plots_prefix(doc: &Path, out: &Path) -> String {
    let base = doc.parent().unwrap_or(Path::new(""));
    let rel = out.strip_prefix(base).unwrap_or(out);
    let s = rel.display().to_string();
    if s.is_empty() { s } else { format!("{s}/") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_links_are_relative_to_the_docs_page() {
        assert_eq!(
            plots_prefix(Path::new("docs/drills.md"), Path::new("docs/drills")),
            "drills/"
        );
        assert_eq!(
            plots_prefix(Path::new("drills.md"), Path::new("out")),
            "out/"
        );
        assert_eq!(plots_prefix(Path::new("docs/x.md"), Path::new("docs")), "");
    }
}
