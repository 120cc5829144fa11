//! The FMEA: one row per scenario — fault → effect → measured impact → verdict — as JSON
//! (`fmea.json`) and Markdown (`fmea.md`, also the body of `docs/drills.md`). Pure rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::invariants::{Check, Verdict};
use crate::ledger::{Outcome, Request};
use crate::scenarios::Name;

/// A scenario's overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every invariant holds.
    Pass,
    /// An invariant failed.
    Fail,
    /// The drill could not run the scenario (harness error).
    Error,
}

impl Status {
    /// `pass`, `FAIL`, `ERROR`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
        }
    }
}

/// When things happened, ms since the scenario's clients started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// Fault injected.
    pub inject_ms: u64,
    /// Fault removed.
    pub heal_ms: u64,
    /// Clients stopped.
    pub stop_ms: u64,
    /// Convergence wait over.
    pub end_ms: u64,
}

/// What was measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Impact {
    /// Gateway requests that succeeded during the fault (%).
    pub availability_pct: f64,
    /// … over the whole run (%).
    pub availability_overall_pct: f64,
    /// Gateway requests sent during the fault.
    pub gateway_requests_during: usize,
    /// Every request of the run.
    pub requests: usize,
    /// Writes acknowledged.
    pub writes_acked: usize,
    /// Writes with an unknown outcome.
    pub writes_ambiguous: usize,
    /// Writes refused or never sent.
    pub writes_failed: usize,
    /// Counter increments acknowledged.
    pub increments_acked: usize,
    /// Direct clients' success during the fault, per region (%).
    pub direct_availability_pct: BTreeMap<String, f64>,
    /// Largest replication lag from the fault to the end (ms).
    pub lag_max_ms: u64,
    /// Time to detect (ms after injection).
    pub detect_ms: Option<u64>,
    /// Time to recover (ms after the fault was removed).
    pub recover_ms: Option<u64>,
    /// Time to converge (ms after the clients stopped).
    pub converge_ms: Option<u64>,
    /// Replicated changes that lost last-writer-wins (conflicts resolved).
    pub conflicts: u64,
    /// Replicated entries skipped as duplicates.
    pub duplicates: u64,
    /// Batches received again (answered without applying).
    pub repeated_batches: u64,
    /// Batches received ahead of a gap (answered with a rewind).
    pub gap_batches: u64,
}

/// The plots of a scenario (file names next to the report).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plots {
    /// Replication lag per link.
    pub lag: String,
    /// Client success rate.
    pub success: String,
}

/// One FMEA row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// The fault.
    pub fault: String,
    /// How it is detected.
    pub signal: String,
    /// The table the scenario wrote.
    pub table: String,
    /// Availability objective during the fault (%).
    pub slo_pct: f64,
    /// When.
    pub timeline: Timeline,
    /// What clients and replication saw.
    pub effect: String,
    /// Measurements.
    pub impact: Impact,
    /// Invariants.
    pub checks: Vec<Check>,
    /// Overall.
    pub status: Status,
    /// Observations.
    pub notes: Vec<String>,
    /// Plots.
    pub plots: Plots,
    /// A harness error, if the scenario could not run to the end.
    pub error: Option<String>,
}

impl ScenarioResult {
    /// A scenario the harness could not run.
    pub fn harness_error(name: Name, def: &crate::scenarios::Def, error: String) -> Self {
        ScenarioResult {
            name: name.as_str().to_owned(),
            fault: def.fault.clone(),
            signal: def.signal.describe(),
            table: String::new(),
            slo_pct: def.slo_pct,
            timeline: Timeline::default(),
            effect: "not measured (harness error)".into(),
            impact: Impact::default(),
            checks: Vec::new(),
            status: Status::Error,
            notes: Vec::new(),
            plots: Plots::default(),
            error: Some(error),
        }
    }

    /// The failed invariants.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.verdict == Verdict::Fail)
    }
}

/// The machine a run was measured on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Machine {
    /// CPUs available (`nproc`).
    pub nproc: usize,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu: String,
}

impl Machine {
    /// Reads this machine's description.
    pub fn detect() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
            cpu,
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// Seed of the clients.
    pub seed: u64,
    /// `quick` or `full`.
    pub mode: String,
    /// `debug` or `release` build of the binary.
    pub build: String,
    /// Where it ran.
    pub machine: Machine,
    /// Own cluster or the attached `cluster.json`.
    pub cluster: String,
    /// Start, UTC (`YYYY-MM-DDTHH:MM:SSZ`).
    pub started_utc: String,
    /// Wall time of the whole run (s).
    pub duration_s: f64,
    /// One row per scenario.
    pub scenarios: Vec<ScenarioResult>,
    /// `pass` only when every scenario passed.
    pub status: Status,
}

impl Report {
    /// The overall status of a list of results: a failed invariant is the finding that
    /// matters most, then a scenario that could not run.
    pub fn overall(results: &[ScenarioResult]) -> Status {
        if results.iter().any(|r| r.status == Status::Fail) {
            Status::Fail
        } else if results.iter().any(|r| r.status == Status::Error) {
            Status::Error
        } else {
            Status::Pass
        }
    }
}

fn fmt_ms(ms: Option<u64>) -> String {
    match ms {
        None => "—".into(),
        Some(ms) if ms >= 10_000 => format!("{:.0} s", ms as f64 / 1000.0),
        Some(ms) if ms >= 1000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{ms} ms"),
    }
}

/// What clients and replication saw, in one sentence-ish.
pub fn effect(
    impact: &Impact,
    requests: &[Request],
    t: &Timeline,
    pins: &[(String, String)],
) -> String {
    let mut parts = Vec::new();
    let failed_gw = requests
        .iter()
        .filter(|r| r.via_gateway && r.start_ms >= t.inject_ms && r.start_ms < t.heal_ms)
        .filter(|r| r.outcome != Outcome::Ok)
        .count();
    parts.push(format!(
        "gateway clients {:.2}% ok during the fault ({failed_gw} of {} failed)",
        impact.availability_pct, impact.gateway_requests_during
    ));
    let home = |user: &str| pins.iter().find(|(u, _)| u == user).map(|(_, h)| h);
    let away = requests
        .iter()
        .filter(|r| r.via_gateway && r.start_ms >= t.inject_ms && r.start_ms < t.heal_ms)
        .filter(|r| r.outcome == Outcome::Ok)
        .filter(|r| home(&r.target).is_some_and(|h| r.served_by.as_ref() != Some(h)))
        .count();
    if away > 0 {
        parts.push(format!(
            "{away} gateway requests served away from their user's home region"
        ));
    }
    let degraded: Vec<String> = impact
        .direct_availability_pct
        .iter()
        .filter(|(_, pct)| **pct < 99.0)
        .map(|(r, pct)| format!("{r} {pct:.0}%"))
        .collect();
    if !degraded.is_empty() {
        parts.push(format!("direct clients ok: {}", degraded.join(", ")));
    }
    parts.push(format!(
        "replication lag peaked at {}",
        fmt_ms(Some(impact.lag_max_ms))
    ));
    if impact.conflicts > 0 {
        parts.push(format!(
            "{} conflicting replicated writes lost last-writer-wins",
            impact.conflicts
        ));
    }
    if impact.duplicates + impact.repeated_batches + impact.gap_batches > 0 {
        parts.push(format!(
            "{} duplicate entries skipped, {} repeated and {} out-of-order batches refused",
            impact.duplicates, impact.repeated_batches, impact.gap_batches
        ));
    }
    parts.join("; ")
}

/// The measured-impact cell.
fn impact_cell(r: &ScenarioResult) -> String {
    let i = &r.impact;
    let mut s = format!(
        "avail {:.2}% (SLO ≥{}%) · acked {} writes ({} ambiguous) · lag max {} · detect {} · recover {} · converge {}",
        i.availability_pct,
        r.slo_pct,
        i.writes_acked,
        i.writes_ambiguous,
        fmt_ms(Some(i.lag_max_ms)),
        fmt_ms(i.detect_ms),
        fmt_ms(i.recover_ms),
        fmt_ms(i.converge_ms)
    );
    if i.conflicts > 0 {
        let _ = write!(s, " · {} conflicts", i.conflicts);
    }
    if i.duplicates + i.repeated_batches + i.gap_batches > 0 {
        let _ = write!(
            s,
            " · {} dups / {} repeats / {} gaps",
            i.duplicates, i.repeated_batches, i.gap_batches
        );
    }
    s
}

fn verdict_cell(r: &ScenarioResult) -> String {
    if let Some(e) = &r.error {
        return format!("**ERROR**: {}", md_escape(e));
    }
    let failed: Vec<&str> = r.failed().map(|c| c.name.as_str()).collect();
    if failed.is_empty() {
        "**pass**".into()
    } else {
        format!("**FAIL** ({})", failed.join(", "))
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The invariant names, in column order.
const COLUMNS: [&str; 5] = [
    "convergence",
    "no_lost_writes",
    "exact_counters",
    "availability",
    "recovery",
];

/// The FMEA in Markdown; plot links are prefixed with `plots_prefix` (e.g. `drills/`).
pub fn markdown(report: &Report, plots_prefix: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "**Command:** `{}` · **build:** {} · **mode:** {} · **seed:** {} · **cluster:** {}  ",
        report.command, report.build, report.mode, report.seed, report.cluster
    );
    let _ = writeln!(
        s,
        "**Machine:** {} CPUs ({}), Linux {} · **started:** {} · **took:** {:.0} s · **result:** {}\n",
        report.machine.nproc,
        report.machine.cpu,
        report.machine.kernel,
        report.started_utc,
        report.duration_s,
        report.status.label()
    );
    s.push_str(
        "| Scenario | Fault | Effect | Measured impact | Verdict |\n|---|---|---|---|---|\n",
    );
    for r in &report.scenarios {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} |",
            r.name,
            md_escape(&r.fault),
            md_escape(&r.effect),
            md_escape(&impact_cell(r)),
            verdict_cell(r)
        );
    }
    s.push_str("\n### Invariants\n\n| Scenario |");
    for c in COLUMNS {
        let _ = write!(s, " {c} |");
    }
    s.push_str(" scenario-specific |\n|---|");
    for _ in 0..=COLUMNS.len() {
        s.push_str("---|");
    }
    s.push('\n');
    for r in &report.scenarios {
        let _ = write!(s, "| `{}` |", r.name);
        for c in COLUMNS {
            let v = r
                .checks
                .iter()
                .find(|k| k.name == c)
                .map_or("—", |k| k.verdict.label());
            let _ = write!(s, " {v} |");
        }
        let extra: Vec<String> = r
            .checks
            .iter()
            .filter(|k| !COLUMNS.contains(&k.name.as_str()))
            .map(|k| format!("{}: {}", k.name, k.verdict.label()))
            .collect();
        let _ = writeln!(
            s,
            " {} |",
            if extra.is_empty() {
                "—".into()
            } else {
                extra.join(", ")
            }
        );
    }
    for r in &report.scenarios {
        let _ = writeln!(s, "\n### `{}` — {}\n", r.name, r.status.label());
        let _ = writeln!(
            s,
            "*Fault:* {}. *Detected by:* {}. *Table:* `{}`.\n",
            r.fault, r.signal, r.table
        );
        if let Some(e) = &r.error {
            let _ = writeln!(s, "Harness error: `{}`\n", md_escape(e));
        }
        for c in &r.checks {
            let _ = writeln!(s, "- **{}** {}: {}", c.name, c.verdict.label(), c.detail);
        }
        for n in &r.notes {
            let _ = writeln!(s, "- *note:* {n}");
        }
        if !r.plots.lag.is_empty() {
            let _ = writeln!(
                s,
                "\n![{0} replication lag]({1}{2}) ![{0} client success]({1}{3})",
                r.name, plots_prefix, r.plots.lag, r.plots.success
            );
        }
    }
    s
}

/// The whole `fmea.md`.
pub fn fmea_md(report: &Report) -> String {
    format!(
        "# Meridian failure drills — FMEA\n\n{}",
        markdown(report, "")
    )
}

/// `docs/drills.md`: the explanation (from `docs_intro.md`) and the latest run.
pub fn doc_page(report: &Report, plots_prefix: &str) -> String {
    format!(
        "{}\n\n## Latest run\n\n{}",
        include_str!("../docs_intro.md").trim_end(),
        markdown(report, plots_prefix)
    )
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
pub fn utc(secs: u64) -> String {
    let d = meridian_bench::sign::AmzDate::from_unix_secs(secs);
    let s = d.as_str();
    // `YYYYMMDDTHHMMSSZ` → `YYYY-MM-DDTHH:MM:SSZ`.
    let part = |a: usize, b: usize| s.get(a..b).unwrap_or("??");
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        part(0, 4),
        part(4, 6),
        part(6, 8),
        part(9, 11),
        part(11, 13),
        part(13, 15)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, fail: bool) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            fault: "links | paused".into(),
            signal: "lag alarm".into(),
            table: "t".into(),
            slo_pct: 99.0,
            timeline: Timeline::default(),
            effect: "gateway ok".into(),
            impact: Impact {
                availability_pct: 99.5,
                detect_ms: Some(1250),
                ..Impact::default()
            },
            checks: vec![
                Check::with("convergence", Verdict::Pass, "equal".into()),
                Check::with(
                    "no_lost_writes",
                    if fail { Verdict::Fail } else { Verdict::Pass },
                    "x".into(),
                ),
                Check::with("static_stability", Verdict::Pass, "cache".into()),
            ],
            status: if fail { Status::Fail } else { Status::Pass },
            notes: vec!["restarted".into()],
            plots: Plots {
                lag: format!("{name}-lag.svg"),
                success: format!("{name}-success.svg"),
            },
            error: None,
        }
    }

    fn report(results: Vec<ScenarioResult>) -> Report {
        Report {
            command: "meridian drill all --quick".into(),
            seed: 7,
            mode: "quick".into(),
            build: "debug".into(),
            machine: Machine {
                nproc: 2,
                kernel: "6.1".into(),
                cpu: "Test CPU".into(),
            },
            cluster: "own".into(),
            started_utc: utc(0),
            duration_s: 12.0,
            status: Report::overall(&results),
            scenarios: results,
        }
    }

    #[test]
    fn markdown_has_one_row_per_scenario_and_escapes_pipes() {
        let r = report(vec![result("partition", false), result("conflicts", true)]);
        assert_eq!(r.status, Status::Fail);
        let md = fmea_md(&r);
        assert!(md.contains("| `partition` | links \\| paused |"), "{md}");
        assert!(md.contains("**FAIL** (no_lost_writes)"));
        assert!(md.contains("static_stability: pass"));
        assert!(
            md.contains("detect 1.2 s") || md.contains("detect 1.3 s"),
            "{md}"
        );
        assert!(md.contains("](partition-lag.svg)"));
        let doc = doc_page(&r, "drills/");
        assert!(doc.contains("](drills/conflicts-success.svg)"));
        assert!(doc.contains("## Latest run"));
    }

    #[test]
    fn json_lists_scenarios_with_status() {
        let r = report(vec![result("kill", false)]);
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["scenarios"][0]["name"], "kill");
        assert_eq!(v["scenarios"][0]["status"], "pass");
        assert_eq!(v["scenarios"][0]["checks"][1]["verdict"], "pass");
        assert_eq!(v["status"], "pass");
        assert_eq!(v["started_utc"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn overall_status_prefers_failures_over_errors() {
        let mut e = result("kill", false);
        e.status = Status::Error;
        assert_eq!(Report::overall(&[e.clone()]), Status::Error);
        assert_eq!(Report::overall(&[e, result("x", true)]), Status::Fail);
        assert_eq!(Report::overall(&[]), Status::Pass);
    }
}
