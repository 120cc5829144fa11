//! A latency spike on one link: the emulated one-way latency between two regions jumps to
//! seconds, then returns to its configured value. Clients must not notice; replication lag on
//! that link rises (and alarms) and falls back.

use super::{Ctx, Def, Params, Roles};
use crate::faults::{self, LinkAction};
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def(r: &Roles, p: &Params) -> Def {
    let (a, b) = &r.pair;
    Def {
        fault: format!(
            "one-way latency between {a} and {b} raised to {} ms, then restored",
            p.latency_spike_ms
        ),
        signal: Signal::LagAlarm {
            regions: vec![a.clone(), b.clone()],
        },
        slo_pct: 99.0,
        mix: Mix::Normal,
        metrics: false,
    }
}

pub(super) async fn inject(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let (a, b) = &ctx.roles.pair;
    let links = faults::links(&file, Some(a), Some(b))?;
    let spike = LinkAction::Delay(ctx.params.latency_spike_ms);
    faults::link_action_checked(&ctx.http, &file, &links, spike).await?;
    Ok(())
}

pub(super) async fn heal(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let (a, b) = &ctx.roles.pair;
    let links = faults::links(&file, Some(a), Some(b))?;
    faults::restore_delays(&ctx.http, &file, &links).await
}
