//! The scenarios, one file each. A scenario names its fault, the symptom that shows it
//! ([`Signal`]), the availability objective clients should see through the gateway, what the
//! writers do while it is on ([`Mix`]), and three steps the runner calls: `inject`, `during`
//! (half-way through the fault) and `heal`.

mod apply_outage;
mod byzantine;
mod conflicts;
mod control_outage;
mod counters;
mod drain;
mod dup_reorder;
mod failback;
mod heal;
mod kill;
mod latency;
mod partition;
mod skew;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_control::Http;
use meridian_control::cluster_file::ClusterFile;

use crate::harness::Cluster;
use crate::invariants::Check;
use crate::ledger::Request;
use crate::sessions::SessionUsers;
use crate::timing::Signal;
use crate::workload::Mix;

/// A scenario's stable short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Name {
    /// Partition one region during writes, then heal.
    Partition,
    /// `kill -9` a region and restart it.
    Kill,
    /// Control-plane outage (static stability).
    ControlOutage,
    /// ±5 s clock skew on one region.
    Skew,
    /// A latency spike on one link.
    Latency,
    /// Duplicated and reordered replication frames.
    DupReorder,
    /// Concurrent conflicting writes to hot keys.
    Conflicts,
    /// Counter increments from every region.
    Counters,
    /// Drain a region under load.
    Drain,
    /// A Byzantine peer: forged origins and far-future versions.
    Byzantine,
    /// Kill and restart a region while its pinned users check they read their own writes.
    Failback,
    /// Isolate a region and heal it while its pinned users check they read their own writes.
    Heal,
    /// A spec version applied while a region is down.
    ApplyDuringOutage,
}

impl Name {
    /// Every scenario, in the order `all` runs them.
    pub const ALL: [Name; 13] = [
        Name::Partition,
        Name::Kill,
        Name::ControlOutage,
        Name::Skew,
        Name::Latency,
        Name::DupReorder,
        Name::Conflicts,
        Name::Counters,
        Name::Drain,
        Name::Byzantine,
        Name::Failback,
        Name::Heal,
        Name::ApplyDuringOutage,
    ];

    /// The name on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Name::Partition => "partition",
            Name::Kill => "kill",
            Name::ControlOutage => "control-outage",
            Name::Skew => "skew",
            Name::Latency => "latency",
            Name::DupReorder => "dup-reorder",
            Name::Conflicts => "conflicts",
            Name::Counters => "counters",
            Name::Drain => "drain",
            Name::Byzantine => "byzantine",
            Name::Failback => "failback",
            Name::Heal => "heal",
            Name::ApplyDuringOutage => "apply-during-outage",
        }
    }

    /// Parses a name (`None` for unknown names).
    pub fn parse(s: &str) -> Option<Name> {
        Name::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

/// Sizes and bounds of a run.
#[derive(Debug, Clone)]
pub struct Params {
    /// `quick` or `full`.
    pub mode: &'static str,
    /// Clients run this long before the fault.
    pub warmup: Duration,
    /// The fault lasts this long.
    pub fault: Duration,
    /// Clients keep running this long after the fault is removed.
    pub after: Duration,
    /// Time between two requests of one client.
    pub pace: Duration,
    /// Gateway writers per pinned user.
    pub gateway_writers_per_user: usize,
    /// Direct writers per region.
    pub direct_writers_per_region: usize,
    /// Readers through the gateway.
    pub readers: usize,
    /// Per-request timeout of the clients.
    pub request_timeout: Duration,
    /// Bound on convergence after the clients stop.
    pub converge_bound: Duration,
    /// Bound on recovery after the fault is removed.
    pub recover_bound: Duration,
    /// How long a scenario waits for the cluster to be steady before starting.
    pub steady_deadline: Duration,
    /// The latency spike (one way).
    pub latency_spike_ms: u64,
    /// The clock skew.
    pub skew_ms: i64,
}

impl Params {
    /// CI size: a few seconds of fault each; `all` within a few minutes on a debug build.
    pub fn quick() -> Params {
        Params {
            mode: "quick",
            warmup: Duration::from_secs(2),
            fault: Duration::from_secs(4),
            after: Duration::from_secs(3),
            pace: Duration::from_millis(40),
            gateway_writers_per_user: 1,
            direct_writers_per_region: 1,
            readers: 1,
            request_timeout: Duration::from_secs(3),
            converge_bound: Duration::from_secs(30),
            recover_bound: Duration::from_secs(30),
            steady_deadline: Duration::from_secs(60),
            latency_spike_ms: 1500,
            skew_ms: 5000,
        }
    }

    /// The full suite: longer faults, more clients.
    pub fn full() -> Params {
        Params {
            mode: "full",
            warmup: Duration::from_secs(5),
            fault: Duration::from_secs(20),
            after: Duration::from_secs(10),
            pace: Duration::from_millis(25),
            gateway_writers_per_user: 2,
            direct_writers_per_region: 2,
            readers: 2,
            request_timeout: Duration::from_secs(3),
            converge_bound: Duration::from_secs(60),
            recover_bound: Duration::from_secs(60),
            steady_deadline: Duration::from_secs(90),
            latency_spike_ms: 3000,
            skew_ms: 5000,
        }
    }
}

/// Which regions the faults hit, chosen from the cluster's regions by position so the
/// scenarios work on any cluster of two or more regions.
#[derive(Debug, Clone)]
pub struct Roles {
    /// Partitioned, skewed, drained, restarted during the control-plane outage.
    pub victim: String,
    /// Killed.
    pub killed: String,
    /// The link of the latency spike.
    pub pair: (String, String),
    /// The gateway user pinned to the victim, if any.
    pub victim_user: Option<String>,
}

impl Roles {
    /// Roles for these regions (in cluster order) and pinned users.
    pub fn choose(regions: &[String], pins: &[(String, String)]) -> anyhow::Result<Roles> {
        let (Some(first), Some(last)) = (regions.first(), regions.last()) else {
            anyhow::bail!("the cluster has no regions");
        };
        if regions.len() < 2 {
            anyhow::bail!("drills need at least two regions");
        }
        let victim = regions.get(1).unwrap_or(last).clone();
        Ok(Roles {
            victim_user: pins
                .iter()
                .find(|(_, home)| *home == victim)
                .map(|(u, _)| u.clone()),
            victim,
            killed: last.clone(),
            pair: (first.clone(), last.clone()),
        })
    }
}

/// What a scenario is.
#[derive(Debug, Clone)]
pub struct Def {
    /// The fault, concretely.
    pub fault: String,
    /// The symptom that shows it.
    pub signal: Signal,
    /// Availability objective through the gateway during the fault (%).
    pub slo_pct: f64,
    /// What the writers do while the fault is on.
    pub mix: Mix,
    /// Sample replication counters from `/metrics` (for the symptom).
    pub metrics: bool,
}

/// What a scenario step can use.
pub struct Ctx<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// Admin HTTP client.
    pub http: Http,
    /// Who is hit.
    pub roles: &'a Roles,
    /// Sizes.
    pub params: &'a Params,
    /// The scenario's table.
    pub table: String,
    /// When the scenario's clients started (ledger times are relative to it).
    pub t0: tokio::time::Instant,
    notes: Mutex<Vec<String>>,
    checks: Mutex<Vec<Check>>,
    sessions: Mutex<Option<Arc<SessionUsers>>>,
    recorded: Mutex<Vec<Request>>,
}

impl<'a> Ctx<'a> {
    /// A context.
    pub fn new(
        cluster: &'a Cluster,
        roles: &'a Roles,
        params: &'a Params,
        table: &str,
        t0: tokio::time::Instant,
    ) -> anyhow::Result<Ctx<'a>> {
        Ok(Ctx {
            cluster,
            http: cluster.file()?.http(Duration::from_secs(3))?,
            roles,
            params,
            table: table.to_owned(),
            t0,
            notes: Mutex::new(Vec::new()),
            checks: Mutex::new(Vec::new()),
            sessions: Mutex::new(None),
            recorded: Mutex::new(Vec::new()),
        })
    }

    /// The session users (pinned to the killed region), made on first use.
    pub fn session_users(&self) -> anyhow::Result<Arc<SessionUsers>> {
        let mut s = self
            .sessions
            .lock()
            .map_err(|_| anyhow::anyhow!("session users poisoned"))?;
        if let Some(u) = s.as_ref() {
            return Ok(u.clone());
        }
        let users = SessionUsers::new(
            crate::spec::session_users(),
            &self.roles.killed,
            &self.file()?.gateway.endpoint,
            &self.table,
            self.params.request_timeout,
            self.t0,
        )?;
        *s = Some(users.clone());
        Ok(users)
    }

    /// Adds requests a scenario made itself to the run's ledger.
    pub fn record(&self, requests: Vec<Request>) {
        if let Ok(mut r) = self.recorded.lock() {
            r.extend(requests);
        }
    }

    /// The requests recorded with [`Ctx::record`].
    pub fn take_recorded(&self) -> Vec<Request> {
        self.recorded
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// The cluster file as it is now.
    pub fn file(&self) -> anyhow::Result<ClusterFile> {
        self.cluster.file()
    }

    /// Records an observation for the report.
    pub fn note(&self, s: impl Into<String>) {
        if let Ok(mut n) = self.notes.lock() {
            n.push(s.into());
        }
    }

    /// Records a scenario-specific invariant.
    pub fn check(&self, c: Check) {
        if let Ok(mut v) = self.checks.lock() {
            v.push(c);
        }
    }

    /// The notes and checks recorded.
    pub fn take(&self) -> (Vec<String>, Vec<Check>) {
        let notes = self
            .notes
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        let checks = self
            .checks
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        (notes, checks)
    }
}

/// The definition of a scenario.
pub fn def(name: Name, roles: &Roles, params: &Params) -> Def {
    match name {
        Name::Partition => partition::def(roles),
        Name::Kill => kill::def(roles),
        Name::ControlOutage => control_outage::def(roles),
        Name::Skew => skew::def(roles, params),
        Name::Latency => latency::def(roles, params),
        Name::DupReorder => dup_reorder::def(),
        Name::Conflicts => conflicts::def(),
        Name::Counters => counters::def(roles),
        Name::Drain => drain::def(roles),
        Name::Byzantine => byzantine::def(roles),
        Name::Failback => failback::def(roles),
        Name::Heal => heal::def(roles),
        Name::ApplyDuringOutage => apply_outage::def(roles),
    }
}

/// Turns the fault on.
pub async fn inject(name: Name, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    match name {
        Name::Partition => partition::inject(ctx).await,
        Name::Kill => kill::inject(ctx).await,
        Name::ControlOutage => control_outage::inject(ctx).await,
        Name::Skew => skew::inject(ctx).await,
        Name::Latency => latency::inject(ctx).await,
        Name::DupReorder => dup_reorder::set(ctx, true).await,
        Name::Conflicts => Ok(()),
        Name::Counters => counters::inject(ctx).await,
        Name::Drain => drain::set(ctx, true).await,
        Name::Byzantine => byzantine::set(ctx, true).await,
        Name::Failback => failback::inject(ctx).await,
        Name::Heal => heal::inject(ctx).await,
        Name::ApplyDuringOutage => apply_outage::inject(ctx).await,
    }
}

/// Half-way through the fault.
pub async fn during(name: Name, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    match name {
        Name::ControlOutage => control_outage::during(ctx).await,
        Name::Skew => skew::during(ctx).await,
        Name::Byzantine => byzantine::during(ctx).await,
        Name::Failback | Name::Heal => failback::second_writes(ctx).await,
        Name::ApplyDuringOutage => apply_outage::during(ctx).await,
        _ => Ok(()),
    }
}

/// Turns the fault off.
pub async fn heal(name: Name, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    match name {
        Name::Partition => partition::heal(ctx).await,
        Name::Kill => kill::heal(ctx).await,
        Name::ControlOutage => control_outage::heal(ctx).await,
        Name::Skew => skew::heal(ctx).await,
        Name::Latency => latency::heal(ctx).await,
        Name::DupReorder => dup_reorder::set(ctx, false).await,
        Name::Conflicts => Ok(()),
        Name::Counters => counters::heal(ctx).await,
        Name::Drain => drain::set(ctx, false).await,
        Name::Byzantine => byzantine::set(ctx, false).await,
        Name::Failback => failback::heal(ctx).await,
        Name::Heal => heal::heal(ctx).await,
        Name::ApplyDuringOutage => apply_outage::heal(ctx).await,
    }
}

/// Scenario-specific invariants over the ledger, after the run (`[inject, heal)` in ms).
pub fn post_checks(
    name: Name,
    roles: &Roles,
    requests: &[Request],
    window: (u64, u64),
) -> Vec<Check> {
    match name {
        Name::Drain => drain::traffic_moved(roles, requests, window),
        _ => Vec::new(),
    }
}

/// Puts the cluster back as `meridian up` configured it: every stopped component restarted,
/// links resumed with their configured latency, clocks unskewed, nothing drained.
pub async fn reset(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    use crate::faults::{self, LinkAction};
    let file = ctx.file()?;
    let mut restarted = false;
    for name in ["control"]
        .into_iter()
        .map(str::to_owned)
        .chain(file.regions.iter().map(|r| r.name.clone()))
    {
        if faults::pid_of(&file, &name)?.is_none() {
            faults::restart(&file, &name).await?;
            restarted = true;
        }
    }
    let file = if restarted { ctx.file()? } else { file };
    let all = faults::links(&file, None, None)?;
    faults::link_action_checked(&ctx.http, &file, &all, LinkAction::Resume).await?;
    faults::restore_delays(&ctx.http, &file, &all).await?;
    faults::link_action_checked(&ctx.http, &file, &all, LinkAction::Byzantine(false)).await?;
    for r in &file.regions {
        faults::skew(&ctx.http, &file, &r.name, 0).await?;
    }
    faults::drain_checked(&ctx.http, &file, &ctx.roles.victim, true).await?;
    Ok(())
}
