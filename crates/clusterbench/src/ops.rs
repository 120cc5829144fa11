//! Per-operation throughput and latency: `meridian-bench`'s PutItem/GetItem phases against one
//! region directly and through the gateway (which adds a proxy hop and home-region routing),
//! side by side in the same run so the ratio is meaningful on a noisy machine.

use meridian_bench::kv::{KvArgs, run_kv};

use crate::Ctx;
use crate::report::{Row, SuiteResult};

/// Runs the suite.
pub async fn run(ctx: &mut Ctx) -> anyhow::Result<SuiteResult> {
    let mut out = SuiteResult::new(
        "ops",
        "PutItem then GetItem (~200 B items, keep-alive HTTP/1.1, SigV4) against one region \
         directly and through the gateway; every region replicates the writes.",
    );
    let file = ctx.cluster.file()?;
    let region = file
        .regions
        .first()
        .map(|r| (r.name.clone(), r.endpoint.clone()))
        .ok_or_else(|| anyhow::anyhow!("the cluster has no region"))?;
    let (connections, secs) = if ctx.args.quick { (8, 4) } else { (32, 10) };
    let targets = [
        (format!("region {}", region.0), region.1.clone()),
        ("gateway".to_owned(), file.gateway.endpoint.clone()),
    ];
    let mut put_rates = Vec::new();
    for (label, endpoint) in targets {
        let args = KvArgs {
            endpoint,
            connections,
            duration_secs: secs,
            keys: if ctx.args.quick { 10_000 } else { 100_000 },
            value_bytes: 180,
            warmup_secs: 0,
            table: "bench-ops".into(),
            json: false,
            label: Some(label.clone()),
            access_key: "meridian".into(),
            secret_key: "meridian".into(),
            signing_region: "us-east-1".into(),
        };
        let report = run_kv(&args).await?;
        for op in &report.ops {
            out.rows.push(Row::new(
                format!("{label}: {} throughput", op.op),
                op.ops_per_sec,
                "ops/s",
            ));
            out.rows.push(Row::new(
                format!("{label}: {} p50", op.op),
                op.p50_us as f64 / 1000.0,
                "ms",
            ));
            out.rows.push(Row::new(
                format!("{label}: {} p99", op.op),
                op.p99_us as f64 / 1000.0,
                "ms",
            ));
            if op.errors > 0 {
                out.notes.push(format!(
                    "{label}: {} {} errors (first: {})",
                    op.errors,
                    op.op,
                    op.first_error.as_deref().unwrap_or("?")
                ));
            }
            if op.op == "PutItem" {
                put_rates.push(op.ops_per_sec);
            }
        }
    }
    if let [direct, gateway] = put_rates[..]
        && direct > 0.0
    {
        out.rows.push(Row::new(
            "gateway / direct PutItem throughput",
            gateway / direct,
            "×",
        ));
    }
    out.notes.push(format!(
        "{connections} connections, {secs} s per target split between the two operations; \
         the load generator shares the machine with all three regions, the gateway, DNS and \
         the control plane."
    ));
    Ok(out)
}
