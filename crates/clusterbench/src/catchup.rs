//! Catch-up after a partition: write at a fixed rate into one region, cut it off from every
//! other region for a while (writes continue locally), heal, and time until every peer has
//! applied everything the region had committed when the partition healed. Target:
//! ≤ 10 s after a 60 s partition at 10k writes/s.

use std::collections::BTreeMap;
use std::time::Duration;

use meridian_drill::faults::{self, LinkAction};
use meridian_drill::plot::Band;
use meridian_drill::sampler::Sampler;
use tokio::time::Instant;

use crate::Ctx;
use crate::io;
use crate::report::{Row, SuiteResult};

/// Writing before the partition, seconds.
const BEFORE_SECS: u64 = 2;
/// Longest wait for catching up.
const CATCHUP_DEADLINE: Duration = Duration::from_secs(300);

/// Runs the suite.
pub async fn run(ctx: &mut Ctx) -> anyhow::Result<SuiteResult> {
    let rate = ctx.args.rate();
    let part = ctx.args.partition_secs();
    let regions = ctx.regions()?;
    let a = regions
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the cluster has no region"))?;
    let mut out = SuiteResult::new(
        "catchup",
        &format!(
            "{rate} items/s written into {} throughout; its links to every other region paused \
             for {part} s, then resumed; catch-up = time from the heal until every peer \
             acknowledged {}'s change-log head as of the heal.",
            a.0, a.0
        ),
    );
    let table = "bench-catchup";
    io::create_table(ctx, &a.1, table).await?;
    io::wait_drained(ctx, Duration::from_secs(60)).await?;
    let file = ctx.cluster.file()?;
    let links = faults::links(&file, Some(&a.0), None)?;
    let t0 = Instant::now();
    let sampler = Sampler::start(ctx.cluster.targets(false)?, t0);
    // Long enough to write through the partition and a generous catch-up.
    let total_secs = BEFORE_SECS + part + 30;
    let endpoint = a.1.clone();
    let load = tokio::spawn(async move {
        io::load(&endpoint, table, 0..rate * total_secs, Some(rate), 4).await
    });
    tokio::time::sleep(Duration::from_secs(BEFORE_SECS)).await;
    faults::link_action_checked(&ctx.http, &file, &links, LinkAction::Pause).await?;
    let cut_ms = t0.elapsed().as_millis() as u64;
    tokio::time::sleep(Duration::from_secs(part)).await;
    let (head_at_heal, acked_at_heal) = io::outbound_positions(&ctx.http, &a.1).await?;
    faults::link_action_checked(&ctx.http, &file, &links, LinkAction::Resume).await?;
    let healed = Instant::now();
    let heal_ms = t0.elapsed().as_millis() as u64;
    let mut caught_up: BTreeMap<String, Duration> = BTreeMap::new();
    let peers: Vec<String> = acked_at_heal.keys().cloned().collect();
    while caught_up.len() < peers.len() && healed.elapsed() < CATCHUP_DEADLINE {
        let (_, acked) = io::outbound_positions(&ctx.http, &a.1).await?;
        for (peer, seq) in acked {
            if seq >= head_at_heal {
                caught_up.entry(peer).or_insert_with(|| healed.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done_ms = t0.elapsed().as_millis() as u64;
    load.abort();
    let _ = load.await;
    io::wait_drained(ctx, Duration::from_secs(120)).await?;
    let samples = sampler.stop().await;
    let backlog: u64 = acked_at_heal
        .values()
        .map(|a| head_at_heal.saturating_sub(*a))
        .max()
        .unwrap_or(0);
    out.rows.push(Row::new(
        "backlog at the heal (largest per peer)",
        backlog as f64,
        "entries",
    ));
    for peer in &peers {
        match caught_up.get(peer) {
            Some(d) => out.rows.push(Row::at_most(
                format!("catch-up {} → {peer}", a.0),
                d.as_secs_f64(),
                "s",
                10.0,
            )),
            None => out.notes.push(format!(
                "{} → {peer} had not caught up {CATCHUP_DEADLINE:?} after the heal",
                a.0
            )),
        }
    }
    if let Some(worst) = caught_up.values().max()
        && !worst.is_zero()
    {
        out.rows.push(Row::new(
            "catch-up rate (backlog / slowest catch-up)",
            backlog as f64 / worst.as_secs_f64(),
            "entries/s",
        ));
    }
    out.plots.push(io::plot_lag(
        &ctx.args.out,
        "catchup.svg",
        &format!("Catch-up after a {part} s partition at {rate} items/s"),
        &samples,
        vec![
            Band {
                from_ms: cut_ms,
                to_ms: heal_ms,
                label: "partition".into(),
            },
            Band {
                from_ms: heal_ms,
                to_ms: done_ms,
                label: "catch-up".into(),
            },
        ],
    )?);
    Ok(out)
}
