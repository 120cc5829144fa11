//! Partition one region during writes, then heal: its replication links are paused both ways
//! while clients keep writing everywhere, so the regions diverge; on resume they must catch
//! up from their checkpoints and converge with no acknowledged write lost.

use super::{Ctx, Def, Roles};
use crate::faults::{self, LinkAction};
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def(r: &Roles) -> Def {
    Def {
        fault: format!(
            "{} partitioned: its replication links paused both ways while clients write everywhere, then resumed",
            r.victim
        ),
        signal: Signal::LagAlarm {
            regions: vec![r.victim.clone()],
        },
        slo_pct: 99.0,
        mix: Mix::Normal,
        metrics: false,
    }
}

pub(super) async fn inject(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    set(ctx, LinkAction::Pause).await
}

pub(super) async fn heal(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    set(ctx, LinkAction::Resume).await
}

/// Pauses or resumes every link of the victim.
pub(super) async fn set(ctx: &Ctx<'_>, action: LinkAction) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let links = faults::links(&file, Some(&ctx.roles.victim), None)?;
    faults::link_action_checked(&ctx.http, &file, &links, action).await?;
    Ok(())
}
