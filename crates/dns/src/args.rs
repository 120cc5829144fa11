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
    let monitor = HealthMonitor::new(config.health.clone())?;
    let admin_listen = config.admin_listen;
    let server = DnsServer::bind(config, monitor.subscribe()).await?;
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
    let result = server
        .run(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    let _ = checks.await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    result
}
