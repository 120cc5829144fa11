//! The control-plane agent wired into each role: `meridian region`, `meridian dns` and
//! `meridian gateway` take `--control URL` (and a state directory) and then run the spec's
//! version of their config, persist it, report it, and start from the persisted copy when the
//! control plane is away. Each role answers `GET /admin/config` with `{version, source}`.
//!
//! How each role applies a version:
//! - a **region** creates the spec's tables that it lacks (in-process `CreateTable`, same
//!   validation as the API); its addresses and replication links come from its flags;
//! - the **DNS server** and the **gateway** derive their config from the spec and, when it
//!   differs from what runs, restart their listeners in-process with the new config (a few
//!   milliseconds without answers; health state and operator drains start afresh).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use meridian_api::AppState;
use meridian_auth::AdminGuard;
use meridian_control::derive::{create_index_request, create_table_request};
use meridian_control::{AgentOptions, Applied, ConfigAgent, dns_config, gateway_config};
use meridian_dns::DnsConfig;
use meridian_gateway::GatewayConfig;
use tokio::sync::watch;

/// Control-plane flags shared by the roles.
#[derive(Args, Debug, Clone, Default)]
pub struct AgentArgs {
    /// The control plane (`http://127.0.0.1:7100`): run the spec's config, report its version.
    #[arg(long)]
    pub control: Option<String>,
    /// Where the last applied spec is kept (`DIR/control/applied.toml`); with it alone the role
    /// starts from that copy.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

impl AgentArgs {
    fn enabled(&self) -> bool {
        self.control.is_some() || self.state_dir.is_some()
    }

    async fn start(
        &self,
        component: &str,
        default_dir: PathBuf,
        guard: &AdminGuard,
    ) -> Arc<ConfigAgent> {
        Arc::new(
            ConfigAgent::start(AgentOptions {
                component: component.to_owned(),
                control_url: self.control.clone(),
                dir: self.state_dir.clone().unwrap_or(default_dir),
                bootstrap_timeout: Duration::from_secs(3),
                token: guard.token().cloned(),
            })
            .await,
        )
    }
}

fn config_hook(agent: &Arc<ConfigAgent>) -> meridian_health::StatusHook {
    let agent = agent.clone();
    Arc::new(move || agent.status_json())
}

/// Creates every table of the spec that the region lacks, and every declared index a table
/// here lacks.
async fn create_missing_tables(state: &AppState, applied: &Applied) -> Result<(), String> {
    for t in &applied.spec.tables {
        let Some(meta) = state.store().table(&t.name) else {
            let body = create_table_request(t).to_string();
            match meridian_api::dispatch::dispatch(state, "CreateTable", body.into_bytes().into())
                .await
            {
                Ok(_) => {
                    tracing::info!(table = %t.name, version = applied.version, "created table from the spec")
                }
                Err(e) if e.code() == "ResourceInUseException" => {}
                Err(e) => return Err(format!("creating table {}: {e}", t.name)),
            }
            continue;
        };
        for g in &t.global_secondary_indexes {
            if meta.indexes.iter().any(|i| i.name == g.name) {
                continue;
            }
            let body = create_index_request(t, g).to_string();
            match meridian_api::dispatch::dispatch(state, "UpdateTable", body.into_bytes().into())
                .await
            {
                Ok(_) => tracing::info!(
                    table = %t.name, index = %g.name, version = applied.version,
                    "creating index from the spec"
                ),
                // Created meanwhile (replicated from another region).
                Err(e) if e.message().is_some_and(|m| m.contains("already exists")) => {}
                Err(e) => return Err(format!("creating index {} of {}: {e}", g.name, t.name)),
            }
        }
    }
    Ok(())
}

/// Control-plane flags of `meridian region`.
#[derive(Args, Debug, Clone, Default)]
pub struct RegionControlArgs {
    #[command(flatten)]
    agent: AgentArgs,
    /// Region id 0–1023 stamped into unique IDs (`GET /ids`); from the cluster spec when
    /// unset, else 0.
    #[arg(long)]
    region_id: Option<u16>,
}

/// The region's control-plane routes — `GET /admin/config` (when an agent runs) and
/// `GET /ids` — and, with `--control`/`--state-dir`, the agent's poll loop (spawned).
pub async fn region_routes(
    args: &RegionControlArgs,
    guard: &AdminGuard,
    region: &str,
    data_dir: &std::path::Path,
    state: AppState,
) -> anyhow::Result<axum::Router> {
    let mut router = axum::Router::new();
    let mut spec_id = None;
    if args.agent.enabled() {
        let mut default_dir = data_dir.as_os_str().to_owned();
        default_dir.push("-state");
        let agent = args
            .agent
            .start(
                &format!("region/{region}"),
                PathBuf::from(default_dir),
                guard,
            )
            .await;
        if let Some(a) = agent.current() {
            spec_id = a.spec.region_id(region);
            if spec_id.is_none() {
                tracing::warn!(
                    region,
                    version = a.version,
                    "this region is not in the cluster spec"
                );
            }
        }
        let route_agent = agent.clone();
        let workers = state.store().workers().clone();
        workers.spawn(
            "config-agent",
            agent.worker(move |applied, _first| {
                let state = state.clone();
                async move { create_missing_tables(&state, &applied).await }
            }),
        );
        router = router.route(
            "/admin/config",
            axum::routing::get(move || {
                let agent = route_agent.clone();
                async move { axum::Json(agent.status_json()) }
            }),
        );
    }
    let region_id = args.region_id.or(spec_id).unwrap_or(0);
    let ids = meridian_api::ids::router(region_id, meridian_core::SystemClock::new())
        .map_err(anyhow::Error::msg)?;
    Ok(router.merge(ids))
}

/// Flags of `meridian dns`: the role's own, plus the agent's.
#[derive(Args, Debug, Clone)]
pub struct DnsRoleArgs {
    #[command(flatten)]
    dns: meridian_dns::DnsArgs,
    #[command(flatten)]
    agent: AgentArgs,
}

fn derive_dns(applied: &Applied) -> Result<DnsConfig, String> {
    dns_config(&applied.spec).map_err(|e| e.to_string())
}

fn derive_gateway(applied: &Applied) -> Result<GatewayConfig, String> {
    gateway_config(&applied.spec).map_err(|e| e.to_string())
}

/// Runs `meridian dns`, with the agent when `--control`/`--state-dir` is given.
pub async fn run_dns(args: DnsRoleArgs) -> anyhow::Result<()> {
    if !args.agent.enabled() {
        return meridian_dns::run(args.dns).await;
    }
    let guard = args.dns.admin.guard()?;
    let agent = args
        .agent
        .start("dns", PathBuf::from("./meridian-data/dns"), &guard)
        .await;
    let initial = match agent.current() {
        Some(a) => derive_dns(&a).map_err(anyhow::Error::msg)?,
        None => {
            let text = std::fs::read_to_string(&args.dns.config)
                .with_context(|| format!("reading {}", args.dns.config.display()))?;
            DnsConfig::from_toml(&text)?
        }
    };
    let (tx, rx) = watch::channel(initial);
    run_reloading(
        agent,
        guard,
        tx,
        rx,
        derive_dns,
        |config, updates, stop, role| async move {
            let ended = meridian_dns::run_with_updates(config, updates, stop, role).await?;
            Ok(ended == meridian_dns::Ended::Restart)
        },
    )
    .await
}

/// Flags of `meridian gateway`: the role's own, plus the agent's.
#[derive(Args, Debug, Clone)]
pub struct GatewayRoleArgs {
    #[command(flatten)]
    gateway: meridian_gateway::GatewayArgs,
    #[command(flatten)]
    agent: AgentArgs,
}

/// Runs `meridian gateway`, with the agent when `--control`/`--state-dir` is given.
pub async fn run_gateway(args: GatewayRoleArgs) -> anyhow::Result<()> {
    if !args.agent.enabled() {
        return meridian_gateway::run(args.gateway).await;
    }
    let guard = args.gateway.admin.guard()?;
    let agent = args
        .agent
        .start("gateway", PathBuf::from("./meridian-data/gateway"), &guard)
        .await;
    let initial = match agent.current() {
        Some(a) => derive_gateway(&a).map_err(anyhow::Error::msg)?,
        None => {
            let text = std::fs::read_to_string(&args.gateway.config)
                .with_context(|| format!("reading {}", args.gateway.config.display()))?;
            GatewayConfig::from_toml(&text)?
        }
    };
    let (tx, rx) = watch::channel(initial);
    run_reloading(
        agent,
        guard,
        tx,
        rx,
        derive_gateway,
        |config, mut updates, stop, role| async move {
            let running = meridian_gateway::RunningGateway::start_with_admin(config, role).await?;
            tokio::pin!(stop);
            let restart = loop {
                tokio::select! {
                    () = &mut stop => break false,
                    changed = updates.changed() => if changed.is_err() { break false },
                }
                let next = updates.borrow_and_update().clone();
                match running.reconfigure(next) {
                    Ok(()) => tracing::info!("gateway: new config applied while serving"),
                    Err(e) => {
                        tracing::info!(error = %e, "gateway: the new config needs a restart");
                        break true;
                    }
                }
            };
            running.stop().await;
            Ok(restart)
        },
    )
    .await
}

/// Runs a role from the config in `rx`: the role applies every newer derived config while it
/// runs (keeping its health state, drains and counters) and returns `true` when one needs a
/// restart (a listener changed), after which it starts again; until SIGINT/SIGTERM.
async fn run_reloading<C, D, R, Fut>(
    agent: Arc<ConfigAgent>,
    guard: AdminGuard,
    tx: watch::Sender<C>,
    rx: watch::Receiver<C>,
    derive: D,
    role: R,
) -> anyhow::Result<()>
where
    C: Clone + PartialEq + Send + Sync + 'static,
    D: Fn(&Applied) -> Result<C, String> + Send + Sync + 'static,
    R: Fn(
        C,
        watch::Receiver<C>,
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        meridian_health::RoleAdmin,
    ) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = meridian_worker::Workers::new(meridian_core::SystemClock::new());
    let stop_workers = workers.clone();
    tokio::spawn(async move {
        crate::region::shutdown_signal().await;
        stop_workers.stop();
        let _ = stop_tx.send(true);
    });
    workers.spawn(
        "config-agent",
        agent.clone().worker(move |applied, first| {
            let result = derive(&applied).map(|config| {
                if !first {
                    // Tell the role only when its derived config changed.
                    tx.send_if_modified(|c| {
                        let changed = *c != config;
                        *c = config;
                        changed
                    });
                }
            });
            async move { result }
        }),
    );
    let admin = meridian_health::RoleAdmin {
        guard,
        config_hook: Some(config_hook(&agent)),
    };
    loop {
        let mut updates = rx.clone();
        let config = updates.borrow_and_update().clone();
        let mut stop = stop_rx.clone();
        let stop = Box::pin(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        let restart = role(config, updates, stop, admin.clone()).await?;
        if *stop_rx.borrow() || !restart {
            return Ok(());
        }
        tracing::info!("config changed a listener: restarting with the new version");
    }
}
