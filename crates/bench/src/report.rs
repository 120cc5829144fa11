//! What a run measured: per operation throughput, latency percentiles and errors.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds from 1 µs to 60 s at 3 significant digits.
pub const HIST_MAX_US: u64 = 60_000_000;
pub const HIST_SIGFIG: u8 = 3;

/// A fresh latency histogram with the bounds every worker uses, so they can be merged.
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, HIST_MAX_US, HIST_SIGFIG)?)
}

/// One operation's results.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    /// `PutItem` or `GetItem`.
    pub op: String,
    /// Successful (HTTP 200) requests.
    pub ok: u64,
    /// Requests that got a non-200 answer or a transport error.
    pub errors: u64,
    /// Successful `GetItem`s that found no item (always 0 for `PutItem`).
    pub misses: u64,
    /// Wall time of this operation's phase.
    pub elapsed_secs: f64,
    /// `ok / elapsed_secs`.
    pub ops_per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// The first error seen (status and body, or the transport error).
    pub first_error: Option<String>,
}

impl OpReport {
    pub fn new(
        op: &str,
        hist: &Histogram<u64>,
        errors: u64,
        misses: u64,
        elapsed: Duration,
        first_error: Option<String>,
    ) -> Self {
        let ok = hist.len();
        let secs = elapsed.as_secs_f64();
        Self {
            op: op.to_owned(),
            ok,
            errors,
            misses,
            elapsed_secs: secs,
            ops_per_sec: if secs > 0.0 { ok as f64 / secs } else { 0.0 },
            p50_us: hist.value_at_quantile(0.50),
            p99_us: hist.value_at_quantile(0.99),
            p999_us: hist.value_at_quantile(0.999),
            max_us: hist.max(),
            first_error,
        }
    }
}

/// A whole run: its parameters and one [`OpReport`] per operation, in the order run.
#[derive(Debug, Clone, Serialize)]
pub struct KvReport {
    /// Names the target in the table (`--label`, else the endpoint).
    pub target: String,
    pub endpoint: String,
    pub connections: usize,
    /// Unmeasured warm-up before the measured phases.
    pub warmup_secs: u64,
    /// Measured time, split evenly between the operations.
    pub duration_secs: u64,
    pub keys: u64,
    pub value_bytes: usize,
    pub ops: Vec<OpReport>,
}

impl KvReport {
    /// The markdown table header matching [`KvReport`]'s `Display` rows.
    pub const TABLE_HEADER: &'static str = "| target | op | conns | ops/s | p50 µs | p99 µs | p99.9 µs | max µs | errors |\n\
                                            |---|---|---:|---:|---:|---:|---:|---:|---:|";

    /// The report as pretty JSON or as a markdown table with its header.
    pub fn render(&self, json: bool) -> anyhow::Result<String> {
        if json {
            Ok(serde_json::to_string_pretty(self)?)
        } else {
            Ok(format!("{}\n{self}", Self::TABLE_HEADER))
        }
    }
}

/// One markdown table row per operation (no header: rows of several runs can be stacked under
/// one [`KvReport::TABLE_HEADER`]).
impl fmt::Display for KvReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, op) in self.ops.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
                self.target,
                op.op,
                self.connections,
                op.ops_per_sec,
                op.p50_us,
                op.p99_us,
                op.p999_us,
                op.max_us,
                op.errors
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_percentiles_and_rows() -> anyhow::Result<()> {
        let mut hist = new_histogram()?;
        for us in 1..=1000 {
            hist.record(us)?;
        }
        let op = OpReport::new("PutItem", &hist, 2, 0, Duration::from_secs(2), None);
        assert_eq!(op.ok, 1000);
        assert!((op.ops_per_sec - 500.0).abs() < 1e-9);
        assert_eq!(op.p50_us, 500);
        assert_eq!(op.p99_us, 990);
        assert_eq!(op.max_us, 1000);
        let report = KvReport {
            target: "x".into(),
            endpoint: "http://127.0.0.1:1".into(),
            connections: 4,
            warmup_secs: 0,
            duration_secs: 4,
            keys: 10,
            value_bytes: 180,
            ops: vec![op.clone(), op],
        };
        let text = report.to_string();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.starts_with("| x | PutItem | 4 | 500 | 500 | 990 |"),
            "{text}"
        );
        assert!(report.render(true)?.contains("\"p999_us\""));
        Ok(())
    }
}
