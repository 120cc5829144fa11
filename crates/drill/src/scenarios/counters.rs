//! Counter increments from every region: clients `ADD` to eight counters through the gateway
//! and directly in every region while one region is partitioned, so increments pile up on
//! both sides. After the heal every region must hold exactly the acknowledged increments
//! (plus at most the ones whose outcome the client could not know).

use super::{Ctx, Def, Roles, partition};
use crate::faults::LinkAction;
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def(r: &Roles) -> Def {
    Def {
        fault: format!(
            "increments of 8 counters from every region while {} is partitioned, then healed",
            r.victim
        ),
        signal: Signal::LagAlarm {
            regions: vec![r.victim.clone()],
        },
        slo_pct: 99.0,
        mix: Mix::Counters,
        metrics: false,
    }
}

pub(super) async fn inject(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    partition::set(ctx, LinkAction::Pause).await
}

pub(super) async fn heal(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    partition::set(ctx, LinkAction::Resume).await
}
