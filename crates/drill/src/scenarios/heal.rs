//! A partition and its heal, with read-your-writes: the session users' home region is cut
//! off (its replication links paused both ways and its traffic drained), its users write
//! elsewhere, then it is undrained and its users read while the gateway routes them home
//! *before* its links resume — the region then holds their older writes only, so any read it
//! answered would be stale — and they keep reading their own writes after the links resume
//! (see `failback`).

use std::time::{Duration, Instant};

use anyhow::bail;
use meridian_control::cluster_file::ClusterFile;

use super::failback::{first_writes, read_through_failback};
use super::{Ctx, Def, Roles};
use crate::faults::{self, LinkAction};
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def(r: &Roles) -> Def {
    Def {
        fault: format!(
            "{} isolated (replication links paused both ways, drained from routing) while its {} \
             pinned users write elsewhere; undrained, then its links resumed",
            r.killed,
            crate::spec::SESSION_USERS
        ),
        signal: Signal::GatewayUnhealthy {
            region: r.killed.clone(),
        },
        slo_pct: 99.0,
        mix: Mix::Normal,
        metrics: false,
    }
}

async fn links(ctx: &Ctx<'_>, action: LinkAction) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let links = faults::links(&file, Some(&ctx.roles.killed), None)?;
    faults::link_action_checked(&ctx.http, &file, &links, action).await?;
    Ok(())
}

pub(super) async fn inject(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    first_writes(ctx).await?;
    links(ctx, LinkAction::Pause).await?;
    faults::drain_checked(&ctx.http, &ctx.file()?, &ctx.roles.killed, false).await?;
    ctx.note(format!("{} isolated", ctx.roles.killed));
    Ok(())
}

pub(super) async fn heal(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    let t = Instant::now();
    let file = ctx.file()?;
    faults::drain_checked(&ctx.http, &file, &ctx.roles.killed, true).await?;
    let routed = routed_home(ctx, &file).await?;
    let users = ctx.session_users()?;
    let r = users.read_round().await;
    ctx.note(format!(
        "{} undrained; the gateway routes to it after {routed} ms; with its links still \
         paused, {} reads: {} served at home, {} stale, {} refused",
        ctx.roles.killed, r.ok, r.at_home, r.stale, r.failed
    ));
    links(ctx, LinkAction::Resume).await?;
    ctx.note(format!(
        "links resumed {} ms after the undrain",
        t.elapsed().as_millis()
    ));
    read_through_failback(ctx, started).await
}

/// Waits (at most 10 s) until the gateway's health checks count the region in again; the ms.
async fn routed_home(ctx: &Ctx<'_>, file: &ClusterFile) -> anyhow::Result<u128> {
    let url = format!("{}/admin/status", file.gateway.admin);
    let started = Instant::now();
    loop {
        let v = ctx.http.get(&url).await?.json();
        let e = &v["health"]["endpoints"][ctx.roles.killed.as_str()];
        if e["checks_healthy"] == true && e["admin"] != "drain" {
            return Ok(started.elapsed().as_millis());
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!(
                "the gateway did not route to {} within 10 s of its undrain",
                ctx.roles.killed
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
