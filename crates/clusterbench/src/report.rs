//! What the suites measured: rows of (metric, value, unit, target, verdict) per suite, the
//! machine they ran on, rendered as JSON and Markdown. Pure except [`BenchReport::write`].

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// One measured number.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured.
    pub metric: String,
    /// The value.
    pub value: f64,
    /// Its unit (`ms`, `items/s`, `%`, …).
    pub unit: String,
    /// The target from the issue, in words (e.g. `≤ 70 ms`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Whether the target was met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
}

impl Row {
    /// A row without a target.
    pub fn new(metric: impl Into<String>, value: f64, unit: &str) -> Row {
        Row {
            metric: metric.into(),
            value,
            unit: unit.into(),
            target: None,
            met: None,
        }
    }

    /// A row with an upper bound as its target.
    pub fn at_most(metric: impl Into<String>, value: f64, unit: &str, bound: f64) -> Row {
        Row {
            target: Some(format!("≤ {} {unit}", fmt_num(bound))),
            met: Some(value <= bound),
            ..Row::new(metric, value, unit)
        }
    }

    /// A row with a lower bound as its target.
    pub fn at_least(metric: impl Into<String>, value: f64, unit: &str, bound: f64) -> Row {
        Row {
            target: Some(format!("≥ {} {unit}", fmt_num(bound))),
            met: Some(value >= bound),
            ..Row::new(metric, value, unit)
        }
    }
}

/// One suite's results.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteResult {
    /// Suite name (`lag`, …).
    pub name: String,
    /// What it does, one sentence.
    pub title: String,
    /// Measurements.
    pub rows: Vec<Row>,
    /// SVG files written (relative to the report directory).
    pub plots: Vec<String>,
    /// Observations worth a sentence.
    pub notes: Vec<String>,
}

impl SuiteResult {
    /// An empty result.
    pub fn new(name: &str, title: &str) -> SuiteResult {
        SuiteResult {
            name: name.into(),
            title: title.into(),
            rows: Vec::new(),
            plots: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// The machine the numbers come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs available to the process.
    pub cpus: usize,
    /// CPU model (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// This machine.
    pub fn here() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
        }
    }
}

/// Everything one `meridian bench` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The command, as run.
    pub command: String,
    /// `--quick` sizes.
    pub quick: bool,
    /// Where it ran.
    pub machine: Machine,
    /// Build profile of the binary (`release` or `debug`).
    pub profile: &'static str,
    /// Per suite.
    pub suites: Vec<SuiteResult>,
}

impl BenchReport {
    /// An empty report for `meridian bench SUITE`.
    pub fn new(suite: &str, quick: bool) -> BenchReport {
        let args: Vec<String> = std::env::args().skip(1).collect();
        BenchReport {
            command: if args.is_empty() {
                format!("meridian bench {suite}")
            } else {
                format!("meridian {}", args.join(" "))
            },
            quick,
            machine: Machine::here(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            suites: Vec::new(),
        }
    }

    /// Whether every target with a verdict was met.
    pub fn all_met(&self) -> bool {
        self.suites
            .iter()
            .flat_map(|s| &s.rows)
            .all(|r| r.met != Some(false))
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# `{}`\n", self.command);
        let _ = writeln!(
            md,
            "Machine: {} CPUs ({}), Linux {}; {} build{}.\n",
            m.cpus,
            m.cpu_model,
            m.kernel,
            self.profile,
            if self.quick { ", --quick sizes" } else { "" }
        );
        for s in &self.suites {
            let _ = writeln!(md, "## {}\n\n{}\n", s.name, s.title);
            let _ = writeln!(md, "| metric | value | target | verdict |");
            let _ = writeln!(md, "|---|---:|---|---|");
            for r in &s.rows {
                let verdict = match r.met {
                    Some(true) => "met",
                    Some(false) => "**not met**",
                    None => "",
                };
                let _ = writeln!(
                    md,
                    "| {} | {} {} | {} | {} |",
                    r.metric,
                    fmt_num(r.value),
                    r.unit,
                    r.target.as_deref().unwrap_or(""),
                    verdict
                );
            }
            md.push('\n');
            for n in &s.notes {
                let _ = writeln!(md, "- {n}");
            }
            if !s.notes.is_empty() {
                md.push('\n');
            }
            for p in &s.plots {
                let _ = writeln!(md, "![{p}]({p})\n");
            }
        }
        md
    }

    /// Writes `bench.json` and `bench.md` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = dir.join("bench.json");
        std::fs::write(&json, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", json.display()))?;
        let md = dir.join("bench.md");
        std::fs::write(&md, self.markdown()).with_context(|| format!("writing {}", md.display()))
    }
}

/// A number as people write it: integers without decimals, others with one or two.
pub fn fmt_num(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_decide_the_verdict() {
        assert_eq!(Row::at_most("p99", 70.0, "ms", 70.0).met, Some(true));
        assert_eq!(Row::at_most("p99", 70.5, "ms", 70.0).met, Some(false));
        assert_eq!(Row::at_least("found", 99.9, "%", 100.0).met, Some(false));
        assert_eq!(Row::new("rate", 1.0, "items/s").met, None);
    }

    #[test]
    fn markdown_lists_every_row_with_its_verdict() {
        let mut r = BenchReport::new("lag", true);
        let mut s = SuiteResult::new("lag", "Replication lag.");
        s.rows.push(Row::at_most("p99 us → eu", 75.0, "ms", 70.0));
        s.rows.push(Row::new("writes", 10_000.0, "items/s"));
        s.plots.push("lag.svg".into());
        r.suites.push(s);
        let md = r.markdown();
        assert!(
            md.contains("| p99 us → eu | 75 ms | ≤ 70 ms | **not met** |"),
            "{md}"
        );
        assert!(md.contains("| writes | 10000 items/s |  |  |"), "{md}");
        assert!(md.contains("![lag.svg](lag.svg)"));
        assert!(!r.all_met());
    }

    #[test]
    fn numbers_are_rounded_for_people() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(1234.56), "1235");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(0.1234), "0.12");
    }
}
