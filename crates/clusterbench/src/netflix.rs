//! The Netflix test: write N items in region A, begin reading all of them in region B 500 ms
//! after the last write was acknowledged, and count how many the first read finds — with no
//! emulated delay and with 80 ms one-way on every link. Target: 100% found.

use std::time::Duration;

use tokio::time::Instant;

use crate::Ctx;
use crate::io;
use crate::report::{Row, SuiteResult};

/// Pause between the last acknowledgement and the first read.
pub const READ_AFTER: Duration = Duration::from_millis(500);

/// Runs the suite.
pub async fn run(ctx: &mut Ctx) -> anyhow::Result<SuiteResult> {
    let n = ctx.args.items();
    let regions = ctx.regions()?;
    let (Some(a), Some(b)) = (regions.first().cloned(), regions.get(1).cloned()) else {
        anyhow::bail!("the Netflix test needs two regions");
    };
    let mut out = SuiteResult::new(
        "netflix",
        &format!(
            "{n} items written in {} (BatchWriteItem, 8 connections, as fast as it takes them); \
             500 ms after the last acknowledgement, every item read once in {} \
             (BatchGetItem, 8 connections, in write order).",
            a.0, b.0
        ),
    );
    for delay in [0u64, 80] {
        let table = format!("bench-netflix-{delay}ms");
        io::create_table(ctx, &a.1, &table).await?;
        io::set_all_delays(ctx, delay).await?;
        let written = io::load(&a.1, &table, 0..n, None, 8).await?;
        let acked = Instant::now();
        tokio::time::sleep_until(acked + READ_AFTER).await;
        let first = io::read_all(&b.1, &ctx.signer, &table, (0..n).collect(), 8).await?;
        // then how long until the rest is there too
        let mut missing = first.missing.clone();
        let deadline = acked + Duration::from_secs(120);
        while !missing.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            missing = io::read_all(&b.1, &ctx.signer, &table, missing, 8)
                .await?
                .missing;
        }
        let all_there = acked.elapsed();
        let label = format!("{delay} ms delay");
        out.rows.push(Row::new(
            format!("{label}: write throughput in {}", a.0),
            written.items_per_sec,
            "items/s",
        ));
        out.rows.push(Row::at_least(
            format!("{label}: found by the first read in {}", b.0),
            100.0 * first.found as f64 / n as f64,
            "%",
            100.0,
        ));
        out.rows.push(Row::new(
            format!("{label}: missing at the first read"),
            first.missing.len() as f64,
            "items",
        ));
        out.rows.push(Row::new(
            format!("{label}: first read pass"),
            first.elapsed.as_secs_f64(),
            "s",
        ));
        if missing.is_empty() {
            out.rows.push(Row::new(
                format!("{label}: all items readable in {} after the last ack", b.0),
                all_there.as_secs_f64(),
                "s",
            ));
        } else {
            out.notes.push(format!(
                "{label}: {} items still missing in {} two minutes after the last ack",
                missing.len(),
                b.0
            ));
        }
    }
    io::restore_delays(ctx).await?;
    Ok(out)
}
