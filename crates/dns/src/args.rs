//! `meridian dns`: the CLI entry point the binary wires in.

use std::path::PathBuf;
use std::sync::Arc;

use meridian_health::{AdminApi, HealthMonitor, RoleAdmin};
use prometheus_client::registry::Registry;

use crate::config::DnsConfig;
use crate::server::DnsServer;

/// Arguments of `meridian dns`.
#[derive(Debug, Clone, clap::Args)]
pub struct DnsArgs {
    /// Path of the DNS role's TOML configuration.
    #[arg(long, short, env = "MERIDIAN_DNS_CONFIG")]
    pub config: PathBuf,
    /// The admin API's token.
    #[command(flatten)]
    pub admin: meridian_auth::AdminTokenArg,
}

/// Runs the DNS role (health checks, DNS server, admin API) until Ctrl-C.
pub async fn run(args: DnsArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", args.config.display()))?;
    let config = DnsConfig::from_toml(&text)?;
    let role = RoleAdmin {
        guard: args.admin.guard()?,
        config_hook: None,
    };
    run_with_admin(
        config,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
        role,
    )
    .await
}

/// Runs the DNS role from a parsed config until `shutdown` completes (admin API for loopback
/// clients only).
pub async fn run_with(
    config: DnsConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with_admin(config, shutdown, RoleAdmin::default()).await
}

/// [`run_with`], with the admin API's guard and `GET /admin/config` answered by the binary's
/// control-plane agent.
pub async fn run_with_admin(
    config: DnsConfig,
    shutdown: impl std::future::Future<Output = ()>,
    role: RoleAdmin,
) -> anyhow::Result<()> {
    let (_keep, updates) = tokio::sync::watch::channel(config.clone());
    run_with_updates(config, updates, shutdown, role)
        .await
        .map(|_| ())
}

/// Why [`run_with_updates`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `shutdown` completed.
    Stopped,
    /// A new config changes what only a restart can (listeners, sockets, seed): the caller
    /// starts the role again with it.
    Restart,
}

/// [`run_with_admin`], applying every config sent on `updates` while running — zones, GeoIP
/// data, latencies and health checks switch, and every region keeps its health state, drain,
/// weight and counters — until `shutdown`, or until a config needs a restart.
pub async fn run_with_updates(
    config: DnsConfig,
    mut updates: tokio::sync::watch::Receiver<DnsConfig>,
    shutdown: impl std::future::Future<Output = ()>,
    role: RoleAdmin,
) -> anyhow::Result<Ended> {
    let monitor = HealthMonitor::new(config.health.clone())?;
    let admin_listen = config.admin_listen;
    let server = DnsServer::bind(config.clone(), monitor.subscribe()).await?;
    let reconfigurer = server.reconfigurer(&config);
    let mut registry = Registry::default();
    monitor.register_metrics(&mut registry);
    server.register_metrics(&mut registry);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let checks = tokio::spawn({
        let monitor = monitor.clone();
        let stopped = stopped();
        async move { monitor.run(stopped).await }
    });
    let admin = match admin_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            tracing::info!(%addr, "dns admin API listening");
            let status = server.status();
            let api = AdminApi {
                monitor: monitor.clone(),
                registry: Arc::new(registry),
                status_hook: Some(Arc::new(move || status.clone())),
                role,
            };
            Some(tokio::spawn(api.serve(listener, stopped())))
        }
        None => None,
    };
    updates.borrow_and_update();
    let (restart_tx, restart_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn({
        let stopped = stopped();
        async move {
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    () = &mut stopped => return,
                    changed = updates.changed() => if changed.is_err() { return },
                }
                let next = updates.borrow_and_update().clone();
                // The answers first, then the health plan: its new snapshot clears the UDP
                // answer memos, so no answer computed before the switch is served after it.
                if let Err(e) = reconfigurer.apply(&next) {
                    tracing::info!(error = %e, "dns: the new config needs a restart");
                    let _ = restart_tx.send(true);
                    return;
                }
                match monitor.reconfigure(next.health.clone()) {
                    Ok(()) => tracing::info!("dns: new config applied while serving"),
                    Err(e) => tracing::error!(error = %e, "dns: new health checks refused"),
                }
            }
        }
    });
    let mut restart_wait = restart_rx.clone();
    let result = server
        .run(async move {
            tokio::select! {
                () = shutdown => {}
                _ = restart_wait.wait_for(|r| *r) => {}
            }
            let _ = stop_tx.send(true);
        })
        .await;
    let restart = *restart_rx.borrow();
    let _ = watcher.await;
    let _ = checks.await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    result.map(|()| {
        if restart {
            Ended::Restart
        } else {
            Ended::Stopped
        }
    })
}
