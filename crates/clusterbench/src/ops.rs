//! Per-operation throughput and latency: `meridian-bench`'s PutItem/GetItem phases against one
//! region directly and through the gateway (which adds a proxy hop and home-region routing),
//! side by side in the same run so the ratio is meaningful on a noisy machine.

use meridian_bench::kv::{KvArgs, run_kv};
use meridian_bench::sign::SignArgs;

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
    let direct = format!("region {}", region.0);
    let mut targets = vec![
        (direct.clone(), region.1.clone()),
        ("gateway".to_owned(), file.gateway.endpoint.clone()),
    ];
    for peer in &ctx.args.peers {
        let (label, url) = peer
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--peer wants LABEL=URL, got {peer:?}"))?;
        targets.push((label.to_owned(), url.to_owned()));
    }
    // label → (PutItem ops/s, GetItem ops/s)
    let mut rates: Vec<(String, f64, f64)> = Vec::new();
    for (label, endpoint) in targets {
        let args = KvArgs {
            endpoint,
            connections,
            threads: 1,
            duration_secs: secs,
            keys: if ctx.args.quick { 10_000 } else { 100_000 },
            value_bytes: 180,
            warmup_secs: 0,
            table: "bench-ops".into(),
            json: false,
            label: Some(label.clone()),
            headers: Vec::new(),
            auth: SignArgs::default(),
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
        }
        let rate = |name: &str| {
            report
                .ops
                .iter()
                .find(|o| o.op == name)
                .map_or(0.0, |o| o.ops_per_sec)
        };
        rates.push((label, rate("PutItem"), rate("GetItem")));
    }
    push_ratios(&mut out, &direct, &rates);
    out.notes.push(format!(
        "{connections} connections, {secs} s per target split between the two operations; \
         the load generator shares the machine with all three regions, the gateway, DNS and \
         the control plane."
    ));
    Ok(out)
}

/// Throughput ratios of the region to every other target (gateway, peers), same run.
fn push_ratios(out: &mut SuiteResult, direct: &str, rates: &[(String, f64, f64)]) {
    let Some((_, put, get)) = rates.iter().find(|(l, _, _)| l == direct) else {
        return;
    };
    for (label, other_put, other_get) in rates.iter().filter(|(l, _, _)| l != direct) {
        for (op, mine, theirs) in [("PutItem", put, other_put), ("GetItem", get, other_get)] {
            if *theirs > 0.0 {
                out.rows.push(Row::new(
                    format!("{direct} / {label}: {op} throughput"),
                    mine / theirs,
                    "×",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_compare_the_region_with_every_other_target() {
        let mut out = SuiteResult::new("ops", "");
        let rates = vec![
            ("region r".to_owned(), 100.0, 200.0),
            ("gateway".to_owned(), 50.0, 100.0),
            ("dynalite".to_owned(), 25.0, 0.0),
        ];
        push_ratios(&mut out, "region r", &rates);
        let got: Vec<(String, f64)> = out
            .rows
            .iter()
            .map(|r| (r.metric.clone(), r.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("region r / gateway: PutItem throughput".to_owned(), 2.0),
                ("region r / gateway: GetItem throughput".to_owned(), 2.0),
                ("region r / dynalite: PutItem throughput".to_owned(), 4.0),
            ]
        );
    }
}
