//! Failback with read-your-writes: the session users (pinned to the killed region) write at
//! home, the home region is killed, they write again (served elsewhere), the home region
//! restarts, and they keep reading their own items through the gateway while it comes back
//! and takes them home: no read may return an older version than the user already had, and
//! no acknowledged write may be lost. The session flow is shared with `heal`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;

use super::{Ctx, Def, Roles};
use crate::faults;
use crate::invariants::{Check, Verdict};
use crate::sessions::SessionUsers;
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def(r: &Roles) -> Def {
    Def {
        fault: format!(
            "{} killed with SIGKILL while its {} pinned users write; they write again elsewhere, \
             it restarts, and they read their own writes throughout",
            r.killed,
            crate::spec::SESSION_USERS
        ),
        signal: Signal::GatewayUnhealthy {
            region: r.killed.clone(),
        },
        slo_pct: 95.0,
        mix: Mix::Normal,
        metrics: false,
    }
}

pub(super) async fn inject(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    first_writes(ctx).await?;
    let file = ctx.file()?;
    let pid = faults::kill(&file, &ctx.roles.killed)?;
    ctx.note(format!("SIGKILL to {} (pid {pid})", ctx.roles.killed));
    Ok(())
}

pub(super) async fn heal(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let file = ctx.file()?;
    let started = Instant::now();
    let pid = faults::restart(&file, &ctx.roles.killed).await?;
    ctx.note(format!(
        "{} restarted (pid {pid}), answering after {} ms",
        ctx.roles.killed,
        started.elapsed().as_millis()
    ));
    read_through_failback(ctx, started).await
}

/// Every session user writes version 1 while its home region is up; all must be served there
/// (otherwise the cluster does not pin them, and the scenario would prove nothing).
pub(super) async fn first_writes(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let users = ctx.session_users()?;
    let r = users.write_round(1).await;
    if r.at_home < users.len() {
        bail!(
            "only {} of {} session users (rw-*) were served by their home region {} before the \
             fault ({} failed): the gateway does not pin them there",
            r.at_home,
            users.len(),
            ctx.roles.killed,
            r.failed
        );
    }
    let shipped_ms = wait_shipped(ctx, &ctx.roles.killed).await?;
    ctx.note(format!(
        "{} session users wrote version 1 at home ({}), shipped to every peer in {shipped_ms} ms",
        users.len(),
        ctx.roles.killed
    ));
    Ok(())
}

/// Waits until every peer has acknowledged `region`'s change log as it is now: the users'
/// first writes then exist outside their home, so the fault tests failing back, not writes
/// lost with a dead region (which `kill` covers). Returns how long it took.
async fn wait_shipped(ctx: &Ctx<'_>, region: &str) -> anyhow::Result<u128> {
    let file = ctx.file()?;
    let url = format!("{}/admin/replication", file.region(region)?.endpoint);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let mut head = None;
    loop {
        let r = ctx.http.get(&url).await?;
        let v = r.json();
        let h = *head.get_or_insert(v["head"].as_u64().unwrap_or(0));
        let links = v["links"].as_array().cloned().unwrap_or_default();
        let out: Vec<_> = links.iter().filter(|l| l["direction"] == "out").collect();
        if !out.is_empty() && out.iter().all(|l| l["acked_seq"].as_u64() >= Some(h)) {
            return Ok(started.elapsed().as_millis());
        }
        if Instant::now() > deadline {
            bail!("{region}'s peers did not acknowledge its change log through {h} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Half-way through the fault: every user writes version 2 (served elsewhere) and reads it.
pub(super) async fn second_writes(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let users = ctx.session_users()?;
    let w = users.write_round(2).await;
    let r = users.read_round().await;
    ctx.note(format!(
        "during the fault: version 2 acknowledged for {} users ({} at home, {} failed); \
         {} reads, {} stale",
        w.ok, w.at_home, w.failed, r.ok, r.stale
    ));
    Ok(())
}

/// After the home region is back: the users read in rounds until the `after` window ends
/// (at least 3 s); once home serves them again they write version 3 and keep reading.
pub(super) async fn read_through_failback(ctx: &Ctx<'_>, since: Instant) -> anyhow::Result<()> {
    let users: Arc<SessionUsers> = ctx.session_users()?;
    let deadline = Instant::now() + ctx.params.after.max(Duration::from_secs(3));
    let (mut rounds, mut reads, mut stale) = (0, 0, 0);
    let mut home_after_ms = None;
    let mut last = Default::default();
    let mut wrote = false;
    while Instant::now() < deadline {
        let r = users.read_round().await;
        rounds += 1;
        reads += r.ok;
        stale += r.stale;
        if home_after_ms.is_none() && r.ok > 0 && r.at_home * 2 >= r.ok {
            home_after_ms = Some(since.elapsed().as_millis());
        }
        if home_after_ms.is_some() && !wrote {
            let w = users.write_round(3).await;
            ctx.note(format!(
                "back home: version 3 acknowledged for {} users ({} at home)",
                w.ok, w.at_home
            ));
            wrote = true;
        }
        last = r;
    }
    if !wrote {
        users.write_round(3).await;
        last = users.read_round().await;
        reads += last.ok;
        stale += last.stale;
    }
    ctx.note(format!(
        "after the heal: {rounds} read rounds, {reads} reads, {stale} stale; users served at \
         home again {} ms after the heal began",
        home_after_ms.map_or("never".into(), |m| m.to_string())
    ));
    ctx.check(users.check());
    let home = last.at_home * 100 >= users.len() * 95;
    ctx.check(Check::with(
        "failed_back",
        if home { Verdict::Pass } else { Verdict::Fail },
        format!(
            "{} of {} session users served by {} in the last round",
            last.at_home,
            users.len(),
            ctx.roles.killed
        ),
    ));
    ctx.record(users.take_ledger());
    Ok(())
}
