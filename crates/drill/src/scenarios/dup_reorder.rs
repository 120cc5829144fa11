//! Duplicated and reordered replication frames: every link sends each batch frame twice and
//! swaps consecutive batches. Receivers must detect repeats and gaps (per-link sequence
//! numbers, dedup watermarks), apply each change once, and converge.

use super::{Ctx, Def};
use crate::faults::{self, LinkAction};
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def() -> Def {
    Def {
        fault: "every replication link sends each batch frame twice and swaps consecutive batches"
            .into(),
        signal: Signal::CounterRises {
            families: vec![
                "meridian_replication_duplicate_entries".into(),
                "meridian_replication_repeated_batches".into(),
                "meridian_replication_gap_batches".into(),
            ],
        },
        slo_pct: 99.0,
        mix: Mix::Hot,
        metrics: true,
    }
}

/// Turns both hooks on or off on every link.
pub(super) async fn set(ctx: &Ctx<'_>, on: bool) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let links = faults::links(&file, None, None)?;
    faults::link_action_checked(&ctx.http, &file, &links, LinkAction::Duplicate(on)).await?;
    faults::link_action_checked(&ctx.http, &file, &links, LinkAction::Reorder(on)).await?;
    Ok(())
}
