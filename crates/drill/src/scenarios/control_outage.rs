//! Control-plane outage (static stability): the control plane is killed; the data and traffic
//! planes must keep serving from the config they have, and a region restarted during the
//! outage must start from its persisted copy of the spec. Then the control plane comes back.

use super::{Ctx, Def, Roles};
use crate::faults;
use crate::invariants::{Check, Verdict};
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def(r: &Roles) -> Def {
    Def {
        fault: format!(
            "control plane killed (SIGKILL); {} restarted during the outage; control plane restarted",
            r.victim
        ),
        signal: Signal::ControlDown,
        // The region restart drops the requests it had in flight.
        slo_pct: 95.0,
        mix: Mix::Normal,
        metrics: false,
    }
}

pub(super) async fn inject(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let pid = faults::kill(&file, "control")?;
    ctx.note(format!("SIGKILL to the control plane (pid {pid})"));
    Ok(())
}

/// Restarts the victim region while the control plane is down and checks that it runs the
/// spec version it had, from its cache.
pub(super) async fn during(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let victim = &ctx.roles.victim;
    let before = config_of(ctx, victim).await;
    let started = std::time::Instant::now();
    let pid = faults::restart(&file, victim).await?;
    ctx.note(format!(
        "{victim} restarted during the outage (pid {pid}), answering after {} ms",
        started.elapsed().as_millis()
    ));
    let after = config_of(ctx, victim).await;
    let source = after["source"].as_str().unwrap_or("unknown");
    let ok = source == "cache"
        && after["version"].as_u64().is_some()
        && after["version"] == before["version"];
    ctx.check(Check::with(
        "static_stability",
        if ok { Verdict::Pass } else { Verdict::Fail },
        format!(
            "{victim} restarted without the control plane runs spec version {} from {source} (before: version {})",
            after["version"], before["version"]
        ),
    ));
    Ok(())
}

async fn config_of(ctx: &Ctx<'_>, region: &str) -> serde_json::Value {
    let Ok(file) = ctx.file() else {
        return serde_json::Value::Null;
    };
    let Ok(r) = file.region(region) else {
        return serde_json::Value::Null;
    };
    match ctx.http.get(&format!("{}/admin/config", r.endpoint)).await {
        Ok(resp) if resp.ok() => resp.json(),
        _ => serde_json::Value::Null,
    }
}

pub(super) async fn heal(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let pid = faults::restart(&file, "control").await?;
    ctx.note(format!("control plane restarted (pid {pid})"));
    Ok(())
}
