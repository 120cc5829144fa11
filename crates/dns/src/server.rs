//! Binding sockets and running the listeners until shutdown: our UDP loops ([`crate::udp`])
//! and hickory's `Server` for TCP, both answering through one [`Handler`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_server::Server;
use meridian_health::HealthSnapshot;
use prometheus_client::registry::Registry;
use std::net::UdpSocket;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::DnsConfig;
use crate::handler::{Handler, SharedHandler};
use crate::metrics::DnsMetrics;

/// Applies a new configuration to a running server: zones, GeoIP data and latencies switch
/// for the next query; listeners, sockets and the seed are what it started with.
#[derive(Clone)]
pub struct Reconfigurer {
    handler: Arc<Handler>,
    started_with: DnsConfig,
}

impl Reconfigurer {
    /// Switches to `config`, or refuses (changing nothing) when a field only a restart can
    /// change differs.
    pub fn apply(&self, config: &DnsConfig) -> anyhow::Result<()> {
        let fields = self.started_with.restart_fields(config);
        if !fields.is_empty() {
            anyhow::bail!(
                "{} cannot change while the DNS server runs",
                fields.join(", ")
            );
        }
        self.handler.reconfigure(config)
    }
}

/// A bound, not yet running, DNS server.
pub struct DnsServer {
    handler: Arc<Handler>,
    server: Server<SharedHandler>,
    udp_sockets: Vec<UdpSocket>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    metrics: DnsMetrics,
}

impl DnsServer {
    /// Validates `config`, loads GeoIP data, and binds every listener.
    pub async fn bind(
        config: DnsConfig,
        health: watch::Receiver<Arc<HealthSnapshot>>,
    ) -> anyhow::Result<Self> {
        if config.listen_udp.is_empty() && config.listen_tcp.is_empty() {
            anyhow::bail!("dns: no listen_udp or listen_tcp address configured");
        }
        let rng_seed = config.rng_seed.unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            t.as_nanos() as u64 ^ u64::from(std::process::id())
        });
        tracing::info!(rng_seed, "dns: weighted choices seeded");
        let handler = Handler::new(&config, health, rng_seed)?;
        let metrics = handler.metrics.clone();
        let handler = Arc::new(handler);
        let mut server = Server::new(SharedHandler(handler.clone()));
        let mut udp_addrs = Vec::new();
        let mut udp_sockets = Vec::new();
        let per_addr = config.udp_sockets_per_address.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        for addr in &config.listen_udp {
            let sockets = crate::udp::bind(*addr, per_addr, config.udp_recv_buffer_bytes)
                .map_err(|e| anyhow::anyhow!("dns: bind udp {addr}: {e}"))?;
            if let Some(first) = sockets.first() {
                udp_addrs.push(first.local_addr()?);
            }
            udp_sockets.extend(sockets);
        }
        let mut tcp_addrs = Vec::new();
        for addr in &config.listen_tcp {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("dns: bind tcp {addr}: {e}"))?;
            tcp_addrs.push(listener.local_addr()?);
            server.register_listener(
                listener,
                Duration::from_millis(config.tcp_idle_timeout_ms),
                64,
            );
        }
        tracing::info!(?udp_addrs, ?tcp_addrs, "dns: listening");
        Ok(DnsServer {
            handler,
            server,
            udp_sockets,
            udp_addrs,
            tcp_addrs,
            metrics,
        })
    }

    /// A handle that switches the running server to a new configuration.
    pub fn reconfigurer(&self, config: &DnsConfig) -> Reconfigurer {
        Reconfigurer {
            handler: self.handler.clone(),
            started_with: config.clone(),
        }
    }

    /// The bound UDP addresses (ports resolved).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The bound TCP addresses (ports resolved).
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// Registers the query counters (`meridian_dns_queries_total`).
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.metrics.register(registry);
    }

    /// A status hook for the admin API: the listeners.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "udp": self.udp_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "tcp": self.tcp_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    }

    /// Answers queries until `shutdown` completes, then stops the listeners.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let token = self.server.shutdown_token().clone();
        let stop = Arc::new(AtomicBool::new(false));
        // A UDP thread that ends before shutdown reports its error here.
        let (failed_tx, mut failed_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut udp = Vec::new();
        for (i, socket) in self.udp_sockets.drain(..).enumerate() {
            let (handler, stop, failed_tx) =
                (self.handler.clone(), stop.clone(), failed_tx.clone());
            udp.push(
                std::thread::Builder::new()
                    .name(format!("dns-udp-{i}"))
                    .spawn(move || {
                        let result = crate::udp::serve(&socket, i as u64, &handler, &stop);
                        if let Err(e) = result {
                            let _ = failed_tx.send(e);
                        }
                    })?,
            );
        }
        drop(failed_tx);
        let has_tcp = !self.tcp_addrs.is_empty();
        let failed = tokio::select! {
            _ = shutdown => None,
            // Listeners only end early on a fatal socket error.
            result = self.server.block_until_done(), if has_tcp => {
                Some(anyhow::anyhow!("dns tcp server stopped: {result:?}"))
            }
            Some(e) = failed_rx.recv() => Some(anyhow::anyhow!("dns udp listener stopped: {e}")),
        };
        token.cancel();
        stop.store(true, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            for thread in udp {
                let _ = thread.join();
            }
        })
        .await?;
        if has_tcp {
            self.server
                .block_until_done()
                .await
                .map_err(|e| anyhow::anyhow!("dns shutdown: {e}"))?;
        }
        failed.map_or(Ok(()), Err)
    }
}

/// Binds and serves `config` with health from `health` until `shutdown` completes.
pub async fn serve(
    config: DnsConfig,
    health: watch::Receiver<Arc<HealthSnapshot>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    DnsServer::bind(config, health).await?.run(shutdown).await
}
