//! Active-active replication between regions.
//!
//! Every directed link `A → B` is a **sync-out** in A (it tails A's change log and streams
//! batches) and a **sync-in** in B (it validates, applies in one durable commit, acknowledges).
//! The sender persists the last acknowledged sequence per link (resume); the receiver's store
//! keeps a per-origin watermark in the same commit as the changes (dedup); the topology decides
//! which changes a link carries so none returns to its origin (loop prevention); conflicts are
//! last-writer-wins inside the apply commit (`meridian_storage`).
//!
//! Layers, pure first:
//! - [`protocol`] — frames, batch payloads and their checks, the HMAC handshake (no I/O);
//! - [`topology`] — mesh and star rules;
//! - [`outbound`], [`inbound`] — the per-link state machines, driven by events (batch gathering,
//!   stability marks and heartbeat vouching included);
//! - [`source`], [`sink`] — what a sync-out tails and what a sync-in applies into (the store);
//! - [`backoff`] — reconnect delays behind a randomness seam;
//! - `conn`, `sync_out`, `sync_in` — the tokio drivers that only move bytes;
//! - [`status`] and the admin routes — lag, alarms, metrics, fault hooks.
//!
//! Design, byte layouts and invariants: `docs/design/replication.md`.

mod admin;
pub mod backoff;
mod byzantine;
pub mod catch_up;
pub mod config;
mod conn;
mod gc;
pub mod inbound;
pub mod outbound;
pub mod protocol;
mod quarantine;
pub mod recover;
pub mod sink;
mod snapshot;
pub mod source;
pub mod status;
mod sync_in;
mod sync_out;
pub mod tls;
pub mod topology;

pub use config::{PeerConfig, ReplicationConfig, ReplicationSection};
pub use topology::Topology;

use meridian_core::SystemClock;
use meridian_storage::Store;
use prometheus_client::registry::Registry;
use status::Links;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why replication could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// The configuration is inconsistent.
    #[error("invalid replication config: {0}")]
    Config(String),
    /// The sync-in listener could not bind.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The link certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// What every driver task shares.
pub(crate) struct Ctx {
    pub(crate) config: ReplicationConfig,
    pub(crate) store: Store,
    pub(crate) links: Arc<Links>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) local_addr: SocketAddr,
    /// TLS of the links, when configured.
    pub(crate) tls: Option<tls::LinkTls>,
    /// When replication started.
    pub(crate) started: std::time::Instant,
    /// Per peer this region ships to: the highest sequence of ours it holds, as its last
    /// `Welcome` said (`recover.rs`).
    pub(crate) holds_ours: tokio::sync::watch::Sender<std::collections::BTreeMap<String, u64>>,
    /// Set once a recovery of the store finished here.
    pub(crate) recovered: tokio::sync::watch::Sender<Option<recover::Recovered>>,
    /// Woken when a sync-out starts a recovery of the store.
    pub(crate) recovery_started: tokio::sync::Notify,
    /// The links' wall clock (lag, progress and round trips); unskewed, unlike the store's.
    pub(crate) clock: Arc<dyn meridian_core::Clock>,
    /// What the sync-outs tail (the store's change log).
    pub(crate) source: Arc<dyn source::ChangeSource>,
    /// What the sync-ins apply into (the store).
    pub(crate) sink: Arc<dyn sink::ChangeSink>,
    /// Whether this region has caught up with its peers since it came back.
    pub(crate) catch_up: std::sync::Mutex<catch_up::CatchUp>,
}

impl Ctx {
    /// Feeds the catch-up gate.
    pub(crate) fn catch_up(&self, f: impl FnOnce(&mut catch_up::CatchUp)) {
        if let Ok(mut g) = self.catch_up.lock() {
            f(&mut g);
        }
    }

    /// What the catch-up gate says now.
    pub(crate) fn readiness(&self) -> catch_up::Readiness {
        let now = self.clock.now_ms();
        self.catch_up
            .lock()
            .map(|g| g.readiness(now))
            .unwrap_or(catch_up::Readiness::Serving)
    }
}

/// A running replication service: its links, metrics and admin routes.
pub struct ReplicationHandle {
    ctx: Arc<Ctx>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ReplicationHandle {
    /// The sync-in listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.ctx.local_addr
    }

    /// Link status, metrics and controls.
    pub fn links(&self) -> Arc<Links> {
        self.ctx.links.clone()
    }

    /// Adds the replication metrics to a registry (the region's `/metrics`).
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.ctx.links.metrics.register(registry);
    }

    /// `/admin/replication`, and with `faults` on the fault hooks `/admin/links/{peer}/*` and —
    /// given the region's clock — `/admin/clock/skew`.
    pub fn admin_router(&self, clock: Option<Arc<SystemClock>>, faults: bool) -> axum::Router {
        admin::router(self.ctx.clone(), clock, faults)
    }

    /// Whether this region has caught up with its peers since it came back (`catch_up.rs`),
    /// as a function that outlives the handle: the region's health check fails while it has not.
    pub fn catch_up_gate(&self) -> impl Fn() -> catch_up::Readiness + Send + Sync + 'static {
        let ctx = self.ctx.clone();
        move || ctx.readiness()
    }

    /// Set to what the store's recovery did once it finished (`recover.rs`).
    pub fn recovered(&self) -> tokio::sync::watch::Receiver<Option<recover::Recovered>> {
        self.ctx.recovered.subscribe()
    }

    /// Stops every link (if not already stopping) and waits for the drivers to finish; after
    /// this nothing more is applied to the store.
    pub async fn stop(self) {
        self.ctx.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the sync-in listener and one sync-out per peer the topology links this region to.
/// Everything stops when `shutdown` resolves (or on [`ReplicationHandle::stop`]).
pub async fn start(
    config: ReplicationConfig,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ReplicationHandle, ReplicationError> {
    config.validate().map_err(ReplicationError::Config)?;
    let link_tls = config.tls.as_ref().map(tls::LinkTls::load).transpose()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ReplicationError::Bind(config.listen, e))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| ReplicationError::Bind(config.listen, e))?;
    let linked: Vec<String> = config
        .peers
        .iter()
        .filter(|p| {
            config.topology.sends_to(&config.region, &p.name)
                || config.topology.accepts_from(&config.region, &p.name)
        })
        .map(|p| p.name.clone())
        .collect();
    let links = Arc::new(Links::new(&config.region, config.lag_alarm_ms, linked));
    let token = CancellationToken::new();
    let clock: Arc<dyn meridian_core::Clock> = meridian_core::SystemClock::new();
    let shippers = config
        .peers
        .iter()
        .filter(|p| config.topology.accepts_from(&config.region, &p.name))
        .map(|p| p.name.clone())
        .collect::<Vec<_>>();
    let gate = catch_up::CatchUp::new(config.catch_up, shippers, clock.now_ms());
    let source: Arc<dyn source::ChangeSource> = Arc::new(store.clone());
    let sink: Arc<dyn sink::ChangeSink> = Arc::new(store.clone());
    let ctx = Arc::new(Ctx {
        config,
        store,
        links,
        shutdown: token.clone(),
        local_addr,
        tls: link_tls,
        started: std::time::Instant::now(),
        holds_ours: tokio::sync::watch::Sender::new(Default::default()),
        recovered: tokio::sync::watch::Sender::new(None),
        recovery_started: tokio::sync::Notify::new(),
        clock,
        source,
        sink,
        catch_up: std::sync::Mutex::new(gate),
    });
    tracing::info!(
        region = %ctx.config.region,
        %local_addr,
        topology = ctx.config.topology.kind(),
        peers = ctx.config.peers.len(),
        tls = ctx.tls.is_some(),
        "replication listening"
    );
    let workers = ctx.store.workers().scoped(&ctx.shutdown);
    workers.spawn("changelog-gc", gc::Collector { ctx: ctx.clone() });
    workers.spawn("log-recovery", recover::Recover { ctx: ctx.clone() });
    workers.spawn("catch-up", catch_up::Watch::new(ctx.clone()));
    let mut tasks = vec![tokio::spawn(sync_in::listen(ctx.clone(), listener))];
    for peer in &ctx.config.peers {
        if ctx.config.topology.sends_to(&ctx.config.region, &peer.name) {
            tasks.push(tokio::spawn(sync_out::run(ctx.clone(), peer.clone())));
        }
    }
    let t = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => t.cancel(),
            () = t.cancelled() => {}
        }
    });
    Ok(ReplicationHandle { ctx, tasks })
}
