//! A spec change during an outage: a region is killed, a spec version that adds a table is
//! applied while it is down, and the region is restarted. The rest of the cluster must run the
//! new version at once; the dead region must never be reported as running it while it is down;
//! once back, it must run it — the table there — and say so. Needs the drill's own cluster
//! (its spec file, secrets included, is what gets changed).

use std::time::Duration;

use anyhow::Context;
use meridian_control::ControlClient;
use tokio::time::Instant;

use super::{Ctx, Def, Roles};
use crate::faults;
use crate::invariants::{Check, Verdict};
use crate::timing::Signal;
use crate::workload::Mix;

/// How long the components get to report a new version.
const REPORT_BOUND: Duration = Duration::from_secs(30);

pub(super) fn def(r: &Roles) -> Def {
    Def {
        fault: format!(
            "{} killed with SIGKILL; a spec version adding a table applied while it is down; \
             {} restarted",
            r.killed, r.killed
        ),
        signal: Signal::GatewayUnhealthy {
            region: r.killed.clone(),
        },
        // Requests in flight at the kill are lost to the client (ambiguous writes).
        slo_pct: 95.0,
        mix: Mix::Normal,
        metrics: false,
    }
}

/// The table the new version adds.
fn table(ctx: &Ctx<'_>) -> String {
    format!("{}-applied", ctx.table)
}

fn control(ctx: &Ctx<'_>) -> anyhow::Result<ControlClient> {
    let file = ctx.file()?;
    Ok(
        ControlClient::new(&file.control.endpoint, Duration::from_secs(5))
            .with_token(file.admin_token()?.as_ref()),
    )
}

/// Each component's reported spec version.
async fn versions(ctx: &Ctx<'_>) -> anyhow::Result<(u64, serde_json::Value)> {
    let s = control(ctx)?.status().await?;
    Ok((
        s["latest_version"].as_u64().unwrap_or(0),
        s["components"].clone(),
    ))
}

pub(super) async fn inject(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let pid = faults::kill(&file, &ctx.roles.killed)?;
    ctx.note(format!("SIGKILL to {} (pid {pid})", ctx.roles.killed));
    let Some(dir) = ctx.cluster.own_dir() else {
        ctx.note("an attached cluster: its spec with secrets is not at hand; nothing applied");
        return Ok(());
    };
    let path = dir.join("cluster.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let text = format!(
        "{text}\n[[tables]]\nname = \"{}\"\npartition_key = {{ name = \"pk\", type = \"S\" }}\n",
        table(ctx)
    );
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    let (version, _) = control(ctx)?.apply(&text, true, false).await?;
    ctx.note(format!(
        "spec version {version} (adds table {}) applied while {} is down",
        table(ctx),
        ctx.roles.killed
    ));
    Ok(())
}

/// Half-way: every running component runs the new version; the dead region is not reported
/// as running it.
pub(super) async fn during(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    if ctx.cluster.own_dir().is_none() {
        return Ok(());
    }
    let dead = format!("region/{}", ctx.roles.killed);
    let deadline = Instant::now() + REPORT_BOUND;
    let (latest, comps) = loop {
        let (latest, comps) = versions(ctx).await?;
        let others_on_latest = comps.as_object().is_some_and(|m| {
            m.iter()
                .filter(|(name, _)| **name != dead)
                .all(|(_, c)| c["version"].as_u64() == Some(latest))
        });
        if others_on_latest || Instant::now() > deadline {
            break (latest, comps);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let behind: Vec<String> = comps
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(name, c)| **name != dead && c["version"].as_u64() != Some(latest))
                .map(|(name, c)| format!("{name} on {}", c["version"]))
                .collect()
        })
        .unwrap_or_default();
    ctx.check(Check::with(
        "applied_by_the_living",
        if behind.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        if behind.is_empty() {
            format!("every running component reports spec version {latest}")
        } else {
            format!("still behind version {latest}: {}", behind.join(", "))
        },
    ));
    let dead_version = comps[&dead]["version"].as_u64();
    ctx.check(Check::with(
        "no_false_version",
        if dead_version != Some(latest) {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        format!(
            "{dead}, down, is reported on version {} (latest {latest})",
            dead_version.map_or("none".into(), |v| v.to_string())
        ),
    ));
    Ok(())
}

/// Restarts the region; it must come back on the new version, with the table.
pub(super) async fn heal(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let pid = faults::restart(&file, &ctx.roles.killed).await?;
    ctx.note(format!("{} restarted (pid {pid})", ctx.roles.killed));
    if ctx.cluster.own_dir().is_none() {
        return Ok(());
    }
    let name = format!("region/{}", ctx.roles.killed);
    let endpoint = ctx.file()?.region(&ctx.roles.killed)?.endpoint.clone();
    let started = Instant::now();
    let mut seen = (0, None, false);
    while started.elapsed() < REPORT_BOUND {
        let (latest, comps) = versions(ctx).await?;
        let reported = comps[&name]["version"].as_u64();
        let has_table = crate::collect::has_table(&endpoint, &table(ctx)).await;
        seen = (latest, reported, has_table);
        if reported == Some(latest) && has_table {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (latest, reported, has_table) = seen;
    let ok = reported == Some(latest) && has_table;
    ctx.check(Check::with(
        "applied_on_return",
        if ok { Verdict::Pass } else { Verdict::Fail },
        format!(
            "{} back: reports version {} of {latest} after {} ms; table {} {}",
            ctx.roles.killed,
            reported.map_or("none".into(), |v| v.to_string()),
            started.elapsed().as_millis(),
            table(ctx),
            if has_table { "there" } else { "missing" }
        ),
    ));
    Ok(())
}
