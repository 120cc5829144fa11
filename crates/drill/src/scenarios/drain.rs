//! Drain a region under load: the region, the DNS server and the gateway are told to move
//! traffic away; the gateway must send the region's pinned users elsewhere without failing
//! requests, and bring them home after the undrain.

use super::{Ctx, Def, Roles};
use crate::faults;
use crate::invariants::{Check, Verdict};
use crate::ledger::{Outcome, Request};
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def(r: &Roles) -> Def {
    Def {
        fault: format!(
            "{} drained (region, DNS, gateway) under load, then undrained",
            r.victim
        ),
        signal: Signal::Rerouted {
            user: r.victim_user.clone().unwrap_or_default(),
            region: r.victim.clone(),
        },
        slo_pct: 99.0,
        mix: Mix::Normal,
        metrics: false,
    }
}

pub(super) async fn set(ctx: &Ctx<'_>, drained: bool) -> anyhow::Result<()> {
    let file = ctx.file()?;
    faults::drain_checked(&ctx.http, &file, &ctx.roles.victim, !drained).await
}

/// While drained (after the first second, so routing had time to notice), the victim's
/// pinned user is served elsewhere.
pub(super) fn traffic_moved(roles: &Roles, requests: &[Request], window: (u64, u64)) -> Vec<Check> {
    let Some(user) = &roles.victim_user else {
        return vec![Check::with(
            "traffic_moved",
            Verdict::Skip,
            format!("no gateway user is pinned to {}", roles.victim),
        )];
    };
    let (from, to) = (window.0 + 1000, window.1);
    let served: Vec<&Request> = requests
        .iter()
        .filter(|r| r.via_gateway && &r.target == user && r.outcome == Outcome::Ok)
        .filter(|r| r.start_ms >= from && r.start_ms < to)
        .collect();
    let away = served
        .iter()
        .filter(|r| r.served_by.as_ref() != Some(&roles.victim))
        .count();
    let ok = !served.is_empty() && away * 100 >= served.len() * 95;
    vec![Check::with(
        "traffic_moved",
        if ok { Verdict::Pass } else { Verdict::Fail },
        format!(
            "{away} of {} requests of {user} served away from {} while drained",
            served.len(),
            roles.victim
        ),
    )]
}
