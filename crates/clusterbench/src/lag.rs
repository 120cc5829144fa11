//! Replication lag under load: write at a fixed rate into one region, then split over every
//! region, with a uniform emulated one-way delay on every link; the lag of every applied entry
//! (origin commit → durable at the receiver) comes from the receivers' apply-lag histograms.
//! Target: p99 ≤ one-way delay + 20 ms.

use std::time::Duration;

use meridian_drill::plot::Band;
use meridian_drill::sampler::Sampler;
use tokio::time::Instant;

use crate::Ctx;
use crate::io::{self, LinkLag};
use crate::report::{Row, SuiteResult};

/// Emulated one-way delay on every link during the suite.
pub const ONE_WAY_MS: u64 = 50;
/// Slack the target allows on top of the delay.
pub const SLACK_MS: u64 = 20;

/// Runs the suite.
pub async fn run(ctx: &mut Ctx) -> anyhow::Result<SuiteResult> {
    let rate = ctx.args.rate();
    let secs = if ctx.args.quick { 4 } else { 20 };
    let mut out = SuiteResult::new(
        "lag",
        &format!(
            "Replication lag of every applied entry while writing {rate} items/s \
             (BatchWriteItem, ~200 B items) for {secs} s into one region, then spread over all \
             regions; {ONE_WAY_MS} ms emulated one-way delay on every link."
        ),
    );
    let regions = ctx.regions()?;
    let first = regions
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the cluster has no region"))?;
    io::set_all_delays(ctx, ONE_WAY_MS).await?;
    let table = "bench-lag";
    io::create_table(ctx, &first.1, table).await?;
    let keys_per_phase = rate * secs;
    for (phase, writers) in [
        ("one region", vec![first.clone()]),
        ("all regions", regions.clone()),
    ] {
        io::wait_drained(ctx, Duration::from_secs(60)).await?;
        io::reset_apply_lag(ctx).await?;
        let t0 = Instant::now();
        let sampler = Sampler::start(ctx.cluster.targets(false)?, t0);
        let base = if phase == "one region" {
            0
        } else {
            keys_per_phase
        };
        let n = writers.len() as u64;
        let mut loads = tokio::task::JoinSet::new();
        for (i, (_, endpoint)) in (0u64..).zip(&writers) {
            // writer i takes keys [i·K/n, (i+1)·K/n): all K keys, split as evenly as they go
            let keys = base + i * keys_per_phase / n..base + (i + 1) * keys_per_phase / n;
            let endpoint = endpoint.clone();
            loads.spawn(async move { io::load(&endpoint, table, keys, Some(rate / n), 4).await });
        }
        let mut achieved = 0.0;
        while let Some(r) = loads.join_next().await {
            achieved += r??.items_per_sec;
        }
        let write_end = t0.elapsed();
        io::wait_drained(ctx, Duration::from_secs(120)).await?;
        let samples = sampler.stop().await;
        let lags = io::apply_lag(ctx).await?;
        out.rows.push(Row::new(
            format!("{phase}: write rate achieved"),
            achieved,
            "items/s",
        ));
        push_lag_rows(&mut out, phase, &lags);
        let file = format!("lag-{}.svg", phase.replace(' ', "-"));
        out.plots.push(io::plot_lag(
            &ctx.args.out,
            &file,
            &format!("Replication lag, writes into {phase} at {rate} items/s"),
            &samples,
            vec![Band {
                from_ms: 0,
                to_ms: write_end.as_millis() as u64,
                label: "writing".into(),
            }],
        )?);
    }
    io::restore_delays(ctx).await?;
    out.notes.push(
        "Lag is measured per entry at the receiver when its batch is durable (after fsync), \
         from the origin's commit timestamp; all regions share this machine's clock."
            .into(),
    );
    Ok(out)
}

/// The worst p50/p99/max over the links that carried entries, plus each link's p99.
fn push_lag_rows(out: &mut SuiteResult, phase: &str, lags: &[LinkLag]) {
    let used: Vec<&LinkLag> = lags.iter().filter(|l| l.count > 0).collect();
    let worst = |f: fn(&LinkLag) -> f64| used.iter().map(|l| f(l)).fold(0.0, f64::max);
    let entries: u64 = used.iter().map(|l| l.count).sum();
    out.rows.push(Row::new(
        format!("{phase}: entries applied"),
        entries as f64,
        "entries",
    ));
    out.rows.push(Row::new(
        format!("{phase}: lag p50 (worst link)"),
        worst(|l| l.p50),
        "ms",
    ));
    out.rows.push(Row::at_most(
        format!("{phase}: lag p99 (worst link)"),
        worst(|l| l.p99),
        "ms",
        (ONE_WAY_MS + SLACK_MS) as f64,
    ));
    out.rows.push(Row::new(
        format!("{phase}: lag max (worst link)"),
        worst(|l| l.max),
        "ms",
    ));
    if used.iter().any(|l| l.received_p99.is_some()) {
        out.rows.push(Row::new(
            format!("{phase}: lag p99 when received, before the apply (worst link)"),
            worst(|l| l.received_p99.unwrap_or(0.0)),
            "ms",
        ));
    }
    let per_link: Vec<String> = used
        .iter()
        .map(|l| {
            let received = l
                .received_p99
                .map(|r| format!(" (received p99 {r} ms)"))
                .unwrap_or_default();
            format!(
                "{} → {} p50 {} / p99 {} ms{received}",
                l.from, l.to, l.p50, l.p99
            )
        })
        .collect();
    out.notes.push(format!("{phase}: {}", per_link.join("; ")));
}
