//! A Byzantine peer: one region's links send, by turns, batches whose changes claim another
//! region as their origin and batches whose versions are an hour ahead of every clock (the
//! replication fault hook `byzantine`), while clients write everywhere. Every receiver must
//! refuse those batches whole — nothing of them applied, no clock dragged forward — and name the
//! bad peer in its link status; once the peer is honest again, its real changes flow, so the
//! cluster converges on the honest history and no acknowledged write is lost.

use super::{Ctx, Def, Roles};
use crate::faults::{self, LinkAction};
use crate::invariants::{Check, Verdict};
use crate::timing::Signal;
use crate::workload::Mix;

/// The largest clock offset an honest pair may show while the forged versions are refused: the
/// refusal keeps every receiver's clock where it was (they are an hour ahead).
const HONEST_OFFSET_MS: i64 = 1_000;

pub(super) fn def(r: &Roles) -> Def {
    Def {
        fault: format!(
            "{}'s links send batches with forged origins and versions 1 h ahead, by turns",
            r.victim
        ),
        signal: Signal::Refused {
            region: r.victim.clone(),
        },
        slo_pct: 99.0,
        mix: Mix::Normal,
        metrics: false,
    }
}

/// Turns the hook on or off on every link from the victim.
pub(super) async fn set(ctx: &Ctx<'_>, on: bool) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let from_victim: Vec<_> = faults::links(&file, Some(&ctx.roles.victim), None)?
        .into_iter()
        .filter(|(from, _)| *from == ctx.roles.victim)
        .collect();
    faults::link_action_checked(&ctx.http, &file, &from_victim, LinkAction::Byzantine(on)).await?;
    Ok(())
}

/// Half-way: every other region refuses the victim (and only the victim), and no honest
/// region's clock was dragged towards the forged hour.
pub(super) async fn during(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let victim = &ctx.roles.victim;
    let (mut blamed, mut wrongly, mut dragged) = (Vec::new(), Vec::new(), Vec::new());
    for r in &file.regions {
        let url = format!("{}/admin/replication", r.endpoint);
        let body = ctx.http.get(&url).await?.json();
        for l in crate::sampler::parse_replication(&r.name, &body) {
            if l.from == *victim && l.refused {
                blamed.push(format!("{} refuses {}", l.to, l.from));
            } else if l.refused {
                wrongly.push(format!("{} refuses {}", l.to, l.from));
            }
            if l.from != *victim
                && l.to != *victim
                && l.clock_offset_ms
                    .is_some_and(|o| o.abs() > HONEST_OFFSET_MS)
            {
                dragged.push(format!("{}→{}: {:?} ms", l.from, l.to, l.clock_offset_ms));
            }
        }
    }
    let receivers = file.regions.len() - 1;
    ctx.check(Check::with(
        "bad_peer_named",
        if blamed.len() == receivers && wrongly.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        format!(
            "half-way, {} of {receivers} receivers refused {victim} ({}); honest peers refused: {}",
            blamed.len(),
            blamed.join(", "),
            if wrongly.is_empty() {
                "none".to_owned()
            } else {
                wrongly.join(", ")
            }
        ),
    ));
    ctx.check(Check::with(
        "clocks_kept",
        if dragged.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        if dragged.is_empty() {
            format!("every honest pair within {HONEST_OFFSET_MS} ms while 1 h-ahead versions were refused")
        } else {
            format!("honest pairs off: {}", dragged.join(", "))
        },
    ));
    Ok(())
}
