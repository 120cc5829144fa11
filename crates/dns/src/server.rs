//! Binding sockets and running hickory's `Server` with our handler until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hickory_server::Server;
use meridian_health::HealthSnapshot;
use meridian_routing::Locator;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::config::DnsConfig;
use crate::handler::Handler;
use crate::metrics::DnsMetrics;
use crate::zone::Zones;

/// A bound, not yet running, DNS server.
pub struct DnsServer {
    server: Server<Handler>,
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
        let zones = Zones::compile(&config)?;
        let locator = Locator::from_config(&config.geo)?;
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
        let metrics = DnsMetrics::default();
        let handler = Handler {
            zones,
            locator,
            latency: config.latency.clone(),
            health,
            rng_seed,
            rng_counter: AtomicU64::new(0),
            max_udp_payload: config.max_udp_payload_bytes,
            metrics: metrics.clone(),
        };
        let mut server = Server::new(handler);
        let mut udp_addrs = Vec::new();
        for addr in &config.listen_udp {
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("dns: bind udp {addr}: {e}"))?;
            udp_addrs.push(socket.local_addr()?);
            server.register_socket(socket);
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
            server,
            udp_addrs,
            tcp_addrs,
            metrics,
        })
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
        tokio::select! {
            _ = shutdown => {
                token.cancel();
            }
            // Listener tasks only end early on a fatal socket error.
            result = self.server.block_until_done() => {
                return result.map_err(|e| anyhow::anyhow!("dns server stopped: {e}"));
            }
        }
        self.server
            .block_until_done()
            .await
            .map_err(|e| anyhow::anyhow!("dns shutdown: {e}"))
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
