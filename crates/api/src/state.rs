//! Shared state of one region server.

use crate::metrics::ApiMetrics;
use crate::request::transact_tokens::TokenCache;
use meridian_sigv4::KeyStore;
use meridian_storage::Store;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Settings of the HTTP front end.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Most requests served at once; beyond it requests get `ThrottlingException` at once.
    pub max_in_flight: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Bytes of request bodies being received at once, over all connections; a request whose
    /// body does not fit gets `ThrottlingException` before its body is read.
    pub body_budget_bytes: usize,
    /// How long a client may take to send its request body.
    pub body_timeout: std::time::Duration,
    /// Access keys; empty = accept any well-formed signed request (like DynamoDB Local).
    pub keys: KeyStore,
    /// The region name, reported in ARNs.
    pub region: String,
    /// How often the TTL expirer looks for expired items.
    pub ttl_interval_ms: u64,
    /// The address `DescribeEndpoints` reports (the listen address, set by the binary).
    pub endpoint_address: Option<String>,
    /// Reads return `aws:rep:updateregion` / `aws:rep:updatetime` (replication is configured).
    pub replication_attrs: bool,
    /// The other regions this region replicates with (empty: not replicated). Tables are
    /// global: `DescribeTable` reports them as replicas.
    pub peer_regions: Vec<String>,
}

impl ApiConfig {
    /// Defaults for a region.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            max_in_flight: 1024,
            max_body_bytes: 16 * 1024 * 1024,
            body_budget_bytes: 256 * 1024 * 1024,
            body_timeout: std::time::Duration::from_secs(10),
            keys: KeyStore::new(),
            region: region.into(),
            ttl_interval_ms: 1000,
            peer_regions: Vec::new(),
            endpoint_address: None,
            replication_attrs: false,
        }
    }
}

/// Says why the region should not take routed traffic yet — a status word for `/health` and
/// details — or `None` when it should (e.g. replication's catch-up gate).
pub type Readiness = Arc<dyn Fn() -> Option<(&'static str, serde_json::Value)> + Send + Sync>;

/// Whether this region has applied every write of `origin` up to the HLC timestamp `ts`
/// (replication's per-origin marks); session tokens are checked against it.
pub type Covers = Arc<dyn Fn(&str, u64) -> bool + Send + Sync>;

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) config: ApiConfig,
    pub(crate) in_flight: Arc<Semaphore>,
    /// `body_budget_bytes` in KiB permits.
    pub(crate) body_budget: Arc<Semaphore>,
    pub(crate) draining: AtomicBool,
    pub(crate) metrics: ApiMetrics,
    pub(crate) registry: Registry,
    /// `ClientRequestToken`s of recent `TransactWriteItems` calls (idempotency window).
    pub(crate) transact_tokens: Arc<Mutex<TokenCache>>,
    pub(crate) readiness: Option<Readiness>,
    pub(crate) covers: Option<Covers>,
}

impl AppState {
    /// Builds the state and its metrics registry.
    pub fn new(store: Store, config: ApiConfig) -> Self {
        let mut registry = Registry::default();
        let metrics = ApiMetrics::default();
        metrics.register(&mut registry);
        store.register_metrics(&mut registry);
        store.workers().register_metrics(&mut registry);
        Self {
            inner: Arc::new(Inner {
                in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
                body_budget: Arc::new(Semaphore::new(config.body_budget_bytes.div_ceil(1024))),
                store,
                config,
                draining: AtomicBool::new(false),
                metrics,
                registry,
                transact_tokens: Arc::new(Mutex::new(TokenCache::default())),
                readiness: None,
                covers: None,
            }),
        }
    }

    /// The `/metrics` registry, for other components to add their metrics (e.g. replication).
    /// Only before the state is first cloned (`None` after): register everything at start-up.
    pub fn registry_mut(&mut self) -> Option<&mut Registry> {
        Arc::get_mut(&mut self.inner).map(|i| &mut i.registry)
    }

    /// Sets what `/health` asks before it says `serving`. Only before the state is first cloned
    /// (`false` after).
    pub fn set_readiness(&mut self, readiness: Readiness) -> bool {
        Arc::get_mut(&mut self.inner)
            .map(|i| i.readiness = Some(readiness))
            .is_some()
    }

    /// Sets how session tokens of other regions are checked (without it, only this region's
    /// own marks are covered). Only before the state is first cloned (`false` after).
    pub fn set_covers(&mut self, covers: Covers) -> bool {
        Arc::get_mut(&mut self.inner)
            .map(|i| i.covers = Some(covers))
            .is_some()
    }

    /// Whether every write of `origin` up to `ts` is applied here.
    pub(crate) fn covers(&self, origin: &str, ts: u64) -> bool {
        self.inner.covers.as_ref().is_some_and(|c| c(origin, ts))
    }

    /// Why the region should not take routed traffic yet, if it should not.
    pub(crate) fn not_ready(&self) -> Option<(&'static str, serde_json::Value)> {
        self.inner.readiness.as_ref().and_then(|r| r())
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The region's name.
    pub fn region(&self) -> &str {
        &self.inner.config.region
    }

    /// Marks the region as draining (`/health` answers 503) or serving.
    pub fn set_draining(&self, draining: bool) {
        self.inner.draining.store(draining, Ordering::Release);
    }

    /// Whether the region is draining.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }
}
