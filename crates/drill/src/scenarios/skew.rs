//! Clock skew of ±5 s on one region: its wall clock jumps ahead, then behind, while clients
//! write the same hot keys everywhere. The hybrid logical clock must keep versions ordered
//! (a write made after seeing another is later whatever the wall clock says), so
//! last-writer-wins still converges and loses no acknowledged write.

use super::{Ctx, Def, Params, Roles};
use crate::faults;
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def(r: &Roles, p: &Params) -> Def {
    Def {
        fault: format!(
            "{}'s wall clock skewed +{} ms, then −{} ms half-way, then reset",
            r.victim, p.skew_ms, p.skew_ms
        ),
        signal: Signal::ClockOffset {
            region: r.victim.clone(),
            min_ms: p.skew_ms / 2,
        },
        slo_pct: 99.0,
        mix: Mix::Hot,
        metrics: false,
    }
}

pub(super) async fn inject(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    faults::skew(&ctx.http, &file, &ctx.roles.victim, ctx.params.skew_ms).await
}

pub(super) async fn during(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    faults::skew(&ctx.http, &file, &ctx.roles.victim, -ctx.params.skew_ms).await
}

pub(super) async fn heal(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    faults::skew(&ctx.http, &file, &ctx.roles.victim, 0).await
}
