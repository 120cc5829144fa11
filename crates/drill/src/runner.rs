//! Runs one scenario: a fresh table, the clients and the sampler, warm-up → fault → heal →
//! recovery, then the clients stop, convergence is awaited and every invariant is checked.
//! Whatever happens, the cluster is put back as configured afterwards.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use crate::collect;
use crate::harness::Cluster;
use crate::invariants::{self, Verdict};
use crate::ledger::{OpKind, Outcome, Request};
use crate::plot::{self, Band, Chart};
use crate::progress::Progress;
use crate::report::{Impact, ScenarioResult, Status, Timeline};
use crate::sampler::{Sample, Sampler};
use crate::scenarios::{self, Ctx, Def, Name, Params, Roles};
use crate::timing;
use crate::workload::{Mix, Workload, WorkloadConfig};

/// What every scenario of a run shares.
pub struct RunCtx<'a> {
    /// Sizes.
    pub params: &'a Params,
    /// Who is hit.
    pub roles: &'a Roles,
    /// Progress display.
    pub progress: &'a Progress,
    /// Seed of the clients.
    pub seed: u64,
    /// Makes table names unique per run.
    pub nonce: u64,
    /// Where plots (and ledgers of failed scenarios) go.
    pub out: &'a Path,
}

/// Runs one scenario and resets the cluster afterwards.
pub async fn run(name: Name, cluster: &mut Cluster, rc: &RunCtx<'_>) -> ScenarioResult {
    let def = scenarios::def(name, rc.roles, rc.params);
    let mut result = match run_inner(name, &def, cluster, rc).await {
        Ok(r) => r,
        Err(e) => ScenarioResult::harness_error(name, &def, format!("{e:#}")),
    };
    let reset = match Ctx::new(cluster, rc.roles, rc.params, "", Instant::now()) {
        Ok(ctx) => scenarios::reset(&ctx).await,
        Err(e) => Err(e),
    };
    if let Err(e) = reset {
        let msg = format!("resetting the cluster after {}: {e:#}", name.as_str());
        rc.progress.line(&msg);
        result.error.get_or_insert(msg);
        result.status = Status::Error;
    }
    result
}

fn ms(t0: Instant) -> u64 {
    t0.elapsed().as_millis() as u64
}

async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(t).await;
}

async fn run_inner(
    name: Name,
    def: &Def,
    cluster: &mut Cluster,
    rc: &RunCtx<'_>,
) -> anyhow::Result<ScenarioResult> {
    let p = rc.params;
    let n = name.as_str();
    let say = |phase: &str| rc.progress.phase(n, phase);

    say("waiting for a steady cluster");
    cluster
        .wait_steady(p.steady_deadline)
        .await
        .context("before the scenario")?;
    let table = format!("drill-{n}-{:x}", rc.nonce);
    let regions = cluster.regions()?;
    say(&format!("creating table {table}"));
    collect::create_table(&regions, &table, Duration::from_secs(30)).await?;
    let t0 = Instant::now();
    let ctx = Ctx::new(cluster, rc.roles, p, &table, t0)?;
    let heads = collect::heads(&ctx.http, &regions).await?;
    let metrics_before = collect::metric_sums(&ctx.http, &regions).await;

    let sampler = Sampler::start(cluster.targets(def.metrics)?, t0);
    let workload = Workload::start(
        &WorkloadConfig {
            table: table.clone(),
            gateway: cluster.file()?.gateway.endpoint,
            users: cluster.pins.iter().map(|(u, _)| u.clone()).collect(),
            regions: regions.clone(),
            gateway_writers_per_user: p.gateway_writers_per_user,
            direct_writers_per_region: p.direct_writers_per_region,
            readers: p.readers,
            pace: p.pace,
            timeout: p.request_timeout,
            seed: rc.seed ^ (name as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        },
        t0,
    )?;
    say(&format!("warm-up {:?}", p.warmup));
    tokio::time::sleep(p.warmup).await;

    say(&format!("fault: {}", def.fault));
    let inject_at = Instant::now();
    let inject_ms = ms(t0);
    workload.set_mix(def.mix);
    scenarios::inject(name, &ctx)
        .await
        .context("injecting the fault")?;
    sleep_until(inject_at + p.fault / 2).await;
    scenarios::during(name, &ctx)
        .await
        .context("during the fault")?;
    sleep_until(inject_at + p.fault).await;

    say("healing");
    let heal_ms = ms(t0);
    let heal_at = Instant::now();
    scenarios::heal(name, &ctx)
        .await
        .context("removing the fault")?;
    workload.set_mix(Mix::Normal);
    say("recovering");
    wait_recovered(&sampler, def, heal_ms, heal_at + p.recover_bound).await;
    sleep_until(heal_at + p.after).await;

    let stop_ms = ms(t0);
    let stop_at = Instant::now();
    let mut requests = workload.stop().await;
    requests.extend(ctx.take_recorded());
    requests.sort_by_key(|r| (r.start_ms, r.end_ms));
    say("waiting for convergence");
    let convergence =
        collect::converge(&ctx.http, &regions, &table, stop_at, p.converge_bound).await;
    let samples = sampler.stop().await;
    let end_ms = ms(t0);

    say("checking invariants");
    let versions = collect::versions(&ctx.http, &regions, &heads, &table).await?;
    let finals = collect::finals(&regions, &table).await?;
    let metrics_after = collect::metric_sums(&ctx.http, &regions).await;

    let lost = invariants::lost_writes(&requests, &versions, &finals);
    let counters = invariants::counters(&requests, &finals);
    let during = invariants::availability(&requests, inject_ms, heal_ms);
    let overall = invariants::availability(&requests, 0, stop_ms);
    let detect_ms = timing::detect_ms(&def.signal, &samples, &requests, inject_ms, heal_ms);
    let recover_ms = timing::recover_ms(&def.signal, &samples, &requests, heal_ms);
    let (notes, extra) = ctx.take();
    let mut checks = vec![
        invariants::convergence(&convergence),
        invariants::lost_writes_check(&lost),
        invariants::counters_check(&counters),
        invariants::availability_check(during, def.slo_pct),
        invariants::recovery_check(recover_ms, p.recover_bound.as_millis() as u64),
    ];
    checks.extend(extra);
    checks.extend(scenarios::post_checks(
        name,
        rc.roles,
        &requests,
        (inject_ms, heal_ms),
    ));

    let delta = |f: &str| {
        let a = metrics_before.get(f).copied().unwrap_or(0);
        metrics_after.get(f).copied().unwrap_or(0).saturating_sub(a)
    };
    let timeline = Timeline {
        inject_ms,
        heal_ms,
        stop_ms,
        end_ms,
    };
    let impact = impact(
        &requests,
        &samples,
        &timeline,
        ImpactExtra {
            during,
            overall,
            detect_ms,
            recover_ms,
            converge_ms: convergence.converged_after_ms,
            conflicts: delta("meridian_replication_stale_entries"),
            duplicates: delta("meridian_replication_duplicate_entries"),
            repeated_batches: delta("meridian_replication_repeated_batches"),
            gap_batches: delta("meridian_replication_gap_batches"),
        },
    );
    let plots = write_plots(rc.out, n, &samples, &requests, &timeline)?;
    let status = if checks.iter().any(|c| c.verdict == Verdict::Fail) {
        Status::Fail
    } else {
        Status::Pass
    };
    if status == Status::Fail {
        write_ledger(rc.out, n, &requests)?;
    }
    Ok(ScenarioResult {
        name: n.to_owned(),
        fault: def.fault.clone(),
        signal: def.signal.describe(),
        table,
        slo_pct: def.slo_pct,
        timeline,
        effect: crate::report::effect(&impact, &requests, &timeline, &cluster.pins),
        impact,
        checks,
        status,
        notes,
        plots,
        error: None,
    })
}

/// Waits (bounded) until a sample after the heal shows the cluster steady again.
async fn wait_recovered(sampler: &Sampler, def: &Def, heal_ms: u64, deadline: Instant) {
    loop {
        if sampler
            .latest()
            .is_some_and(|s| s.t_ms >= heal_ms && s.steady() && def.signal.gone(&s))
        {
            return;
        }
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct ImpactExtra {
    during: invariants::Availability,
    overall: invariants::Availability,
    detect_ms: Option<u64>,
    recover_ms: Option<u64>,
    converge_ms: Option<u64>,
    conflicts: u64,
    duplicates: u64,
    repeated_batches: u64,
    gap_batches: u64,
}

fn impact(requests: &[Request], samples: &[Sample], t: &Timeline, x: ImpactExtra) -> Impact {
    let count = |op: Option<OpKind>, outcome: Outcome| {
        requests
            .iter()
            .filter(|r| r.op.is_write() && op.is_none_or(|o| r.op == o) && r.outcome == outcome)
            .count()
    };
    let lag_max_ms = samples
        .iter()
        .filter(|s| s.t_ms >= t.inject_ms && s.t_ms <= t.end_ms)
        .map(Sample::max_lag_ms)
        .max()
        .unwrap_or(0);
    let mut direct: BTreeMap<String, f64> = BTreeMap::new();
    for region in requests
        .iter()
        .filter(|r| !r.via_gateway)
        .map(|r| r.target.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let in_window: Vec<&Request> = requests
            .iter()
            .filter(|r| !r.via_gateway && r.target == region)
            .filter(|r| r.start_ms >= t.inject_ms && r.start_ms < t.heal_ms)
            .collect();
        let ok = in_window
            .iter()
            .filter(|r| r.outcome == Outcome::Ok)
            .count();
        let pct = if in_window.is_empty() {
            100.0
        } else {
            100.0 * ok as f64 / in_window.len() as f64
        };
        direct.insert(region, pct);
    }
    Impact {
        availability_pct: x.during.pct(),
        availability_overall_pct: x.overall.pct(),
        gateway_requests_during: x.during.total,
        requests: requests.len(),
        writes_acked: count(None, Outcome::Ok),
        writes_ambiguous: count(None, Outcome::Ambiguous),
        writes_failed: count(None, Outcome::Failed),
        increments_acked: count(Some(OpKind::Add), Outcome::Ok),
        direct_availability_pct: direct,
        lag_max_ms,
        detect_ms: x.detect_ms,
        recover_ms: x.recover_ms,
        converge_ms: x.converge_ms,
        conflicts: x.conflicts,
        duplicates: x.duplicates,
        repeated_batches: x.repeated_batches,
        gap_batches: x.gap_batches,
    }
}

fn write_plots(
    out: &Path,
    name: &str,
    samples: &[Sample],
    requests: &[Request],
    t: &Timeline,
) -> anyhow::Result<crate::report::Plots> {
    let band = Band {
        from_ms: t.inject_ms,
        to_ms: t.heal_ms,
        label: "fault".into(),
    };
    let markers = vec![(t.stop_ms, "clients stop".to_owned())];
    let lag = timing::lag_series(samples);
    let lag_svg = plot::line_chart(&Chart {
        title: format!("{name}: replication lag per link"),
        y_label: "lag (ms)",
        series: &lag,
        x_end_ms: t.end_ms,
        y_max: None,
        bands: vec![band.clone()],
        markers: markers.clone(),
    });
    let success = timing::success_series(requests, 250, t.stop_ms);
    let success_svg = plot::line_chart(&Chart {
        title: format!("{name}: client success rate (250 ms buckets)"),
        y_label: "success (%)",
        series: &success,
        x_end_ms: t.end_ms,
        y_max: Some(100.0),
        bands: vec![band],
        markers,
    });
    let plots = crate::report::Plots {
        lag: format!("{name}-lag.svg"),
        success: format!("{name}-success.svg"),
    };
    for (file, svg) in [(&plots.lag, lag_svg), (&plots.success, success_svg)] {
        let path = out.join(file);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(plots)
}

/// Keeps the ledger of a failed scenario (one JSON request per line) for diagnosis.
fn write_ledger(out: &Path, name: &str, requests: &[Request]) -> anyhow::Result<()> {
    let path = out.join(format!("{name}-ledger.jsonl"));
    let mut text = String::new();
    for r in requests {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}
