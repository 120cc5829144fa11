//! `meridian gateway`: the CLI entry point the binary wires in.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use meridian_health::{AdminApi, HealthMonitor, RoleAdmin};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::config::GatewayConfig;
use crate::proxy::Gateway;

/// Arguments of `meridian gateway`.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// Path of the gateway role's TOML configuration.
    #[arg(long, short, env = "MERIDIAN_GATEWAY_CONFIG")]
    pub config: PathBuf,
    /// The admin API's token.
    #[command(flatten)]
    pub admin: meridian_auth::AdminTokenArg,
}

/// Runs the gateway role (health checks, proxy, admin API) until Ctrl-C.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", args.config.display()))?;
    let config = GatewayConfig::from_toml(&text)?;
    let role = RoleAdmin {
        guard: args.admin.guard()?,
        config_hook: None,
    };
    let running = RunningGateway::start_with_admin(config, role).await?;
    let _ = tokio::signal::ctrl_c().await;
    running.stop().await;
    Ok(())
}

/// A started gateway: proxy, health checks and admin API, each a task.
pub struct RunningGateway {
    /// Where the proxy listens.
    pub addr: SocketAddr,
    /// Where the admin API listens, if configured.
    pub admin_addr: Option<SocketAddr>,
    /// The health monitor (tests and embedding code may override regions directly).
    pub monitor: HealthMonitor,
    gateway: Arc<Gateway>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn stopped(rx: &tokio::sync::watch::Receiver<bool>) -> impl Future<Output = ()> + use<> {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

impl RunningGateway {
    /// Binds the listeners and starts every task (admin API for loopback clients only).
    pub async fn start(config: GatewayConfig) -> anyhow::Result<Self> {
        Self::start_with_admin(config, RoleAdmin::default()).await
    }

    /// [`RunningGateway::start`], with the admin API's guard and `GET /admin/config`
    /// answered by the binary's control-plane agent.
    pub async fn start_with_admin(config: GatewayConfig, role: RoleAdmin) -> anyhow::Result<Self> {
        let monitor = HealthMonitor::new(config.health.clone())?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(meridian_serve::Tls::from_pem_files(cert, key)?),
            _ => None,
        };
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let admin_listener = match config.admin_listen {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        let admin_addr = admin_listener
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;
        let gateway = Arc::new(Gateway::new(config, monitor.subscribe())?);
        let mut registry = Registry::default();
        monitor.register_metrics(&mut registry);
        gateway.metrics().register(&mut registry);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn({
            let monitor = monitor.clone();
            let s = stopped(&stop_rx);
            async move { monitor.run(s).await }
        }));
        tasks.push(tokio::spawn(gateway.clone().serve(
            listener,
            tls,
            stopped(&stop_rx),
        )));
        if let Some(l) = admin_listener {
            let g = gateway.clone();
            let api = AdminApi {
                monitor: monitor.clone(),
                registry: Arc::new(registry),
                status_hook: Some(Arc::new(
                    move || serde_json::json!({ "regions_nearest_first": g.routing().router.nearest() }),
                )),
                role,
            };
            tasks.push(tokio::spawn(api.serve(l, stopped(&stop_rx))));
        }
        tracing::info!(%addr, ?admin_addr, "gateway listening");
        Ok(RunningGateway {
            addr,
            admin_addr,
            monitor,
            gateway,
            stop,
            tasks,
        })
    }

    /// Applies a new configuration without a restart: the proxy's routing and the health
    /// checks switch, keeping every region's health state, drains, weights, counters and the
    /// remembered session tokens, and no connection is dropped. Refused, changing nothing,
    /// when a field only a restart can change differs (the caller then restarts the role).
    pub fn reconfigure(&self, config: GatewayConfig) -> Result<(), crate::GatewayError> {
        config.validate()?;
        self.gateway.check_live(&config)?;
        self.monitor
            .reconfigure(config.health.clone())
            .map_err(|e| crate::GatewayError::Config(e.to_string()))?;
        self.gateway.reconfigure(config)
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
