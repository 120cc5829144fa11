//! `kill -9` a region under load and restart it: the gateway must route its pinned users
//! elsewhere (write failover) while it is down, and the restarted region must recover its
//! durable state, resume its links from their checkpoints and converge.

use super::{Ctx, Def, Roles};
use crate::faults;
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def(r: &Roles) -> Def {
    Def {
        fault: format!(
            "{} killed with SIGKILL under load, restarted on the same data after the fault window",
            r.killed
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

pub(super) async fn inject(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let pid = faults::kill(&file, &ctx.roles.killed)?;
    ctx.note(format!("SIGKILL to {} (pid {pid})", ctx.roles.killed));
    Ok(())
}

pub(super) async fn heal(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let started = std::time::Instant::now();
    let pid = faults::restart(&file, &ctx.roles.killed).await?;
    ctx.note(format!(
        "{} restarted (pid {pid}), answering after {} ms",
        ctx.roles.killed,
        started.elapsed().as_millis()
    ));
    Ok(())
}
