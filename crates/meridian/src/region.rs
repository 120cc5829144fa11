//! `meridian region`: one region server.

use anyhow::Context;
use clap::Args;
use meridian_api::{ApiConfig, AppState};
use meridian_core::SystemClock;
use meridian_storage::{Store, StoreOptions};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags of `meridian region`. Every flag may also come from `--config`; flags win.
#[derive(Args, Debug)]
pub struct RegionArgs {
    /// Region name (e.g. `us-east`).
    #[arg(long)]
    region: Option<String>,
    /// Address of the DynamoDB API, health and metrics.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory of the region's store.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A TOML file with the same settings (see `examples/region.toml`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// An access key as `ACCESS_KEY_ID:SECRET` (repeatable; or `MERIDIAN_ACCESS_KEYS`,
    /// comma-separated, which keeps secrets out of `ps`). With none, any well-formed signed
    /// request is accepted.
    #[arg(
        long = "access-key",
        env = "MERIDIAN_ACCESS_KEYS",
        value_delimiter = ','
    )]
    access_keys: Vec<String>,
    /// Most requests served at once before `ThrottlingException`.
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// Most client connections at once; beyond it new ones wait to be accepted.
    #[arg(long, default_value_t = meridian_serve::Limits::default().max_connections)]
    max_connections: usize,
    /// A request's head must arrive within this many milliseconds (also the longest a
    /// keep-alive connection may stay silent).
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Serve the DynamoDB port over HTTPS with this PEM certificate chain (with
    /// `--https-key`); SDKs then use `--endpoint-url https://…` and the CA bundle.
    #[arg(long, requires = "https_key")]
    https_cert: Option<PathBuf>,
    /// The PEM private key of `--https-cert` (refused when every user may read it).
    #[arg(long, requires = "https_cert")]
    https_key: Option<PathBuf>,
    /// The token of `/admin/*`, also presented to the control plane and anti-entropy peers.
    #[command(flatten)]
    admin: meridian_auth::AdminTokenArg,
    /// Serve the fault hooks (`/admin/links/{peer}/*`, `/admin/clock/skew`): for local
    /// clusters, tests and drills.
    #[arg(long)]
    enable_fault_injection: bool,
    /// A peer region's DynamoDB endpoint as `NAME=http://HOST:PORT` (repeatable): the regions
    /// `POST /admin/anti-entropy?peer=NAME` may repair against.
    #[arg(long = "ae-peer")]
    ae_peers: Vec<String>,
    /// How far ahead of this region's clock (ms) a version from another region may be; a
    /// batch holding one further ahead is refused, and its link alarms until it is within.
    #[arg(long, default_value_t = meridian_storage::DEFAULT_MAX_CLOCK_OFFSET_MS)]
    max_clock_offset_ms: u64,
    /// Start on a store whose journal is damaged before its tail (refused otherwise): the
    /// journal is truncated at the damage, local writes wait until every peer said how far it
    /// holds this region's changes, sequences continue after theirs, and anti-entropy brings
    /// the lost items back from the peers.
    #[arg(long)]
    recover: bool,
    /// Log filter (`RUST_LOG` syntax).
    #[arg(long, env = "MERIDIAN_LOG", default_value = "info")]
    log: String,
    /// Replication (`--replication-listen`, `--peer`, `--topology`, …).
    #[command(flatten)]
    replication: crate::region_replication::ReplicationArgs,
    /// Control plane (`--control`, `--state-dir`, `--region-id`).
    #[command(flatten)]
    control: crate::agent::RegionControlArgs,
    /// Operator commands against a running cluster (`drain`, `undrain`).
    #[command(subcommand)]
    pub(crate) op: Option<crate::drain::RegionOp>,
}

/// `region.toml`: the region server's settings.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// Region name.
    pub region: Option<String>,
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Most requests in flight.
    pub max_in_flight: Option<usize>,
    /// Access keys.
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
    /// Replication with peer regions (`examples/region-replicated.toml`).
    pub replication: Option<meridian_replication::ReplicationSection>,
}

/// One access key.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// `AWS_ACCESS_KEY_ID`.
    pub id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret: String,
}

/// Reads and strictly parses a region config file.
pub fn load_config(path: &std::path::Path) -> anyhow::Result<RegionConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

pub fn run(args: RegionArgs) -> anyhow::Result<()> {
    crate::init_logging(&args.log);
    let control_args = args.control.clone();
    let file = match &args.config {
        Some(p) => load_config(p)?,
        None => RegionConfig::default(),
    };
    let region = args
        .region
        .or(file.region)
        .context("--region is required")?;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000)));
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(format!("./meridian-data/{region}")));
    let mut replication =
        crate::region_replication::resolve(&region, &args.replication, file.replication.as_ref())?;
    if let Some(rc) = replication.as_mut() {
        // Beside the store, as the state directory is: `DATA_DIR-quarantine`.
        let mut dir = data_dir.as_os_str().to_owned();
        dir.push("-quarantine");
        rc.quarantine_dir = Some(PathBuf::from(dir));
    }
    let guard = args.admin.guard()?;
    let https = match (&args.https_cert, &args.https_key) {
        (Some(cert), Some(key)) => Some(meridian_serve::Tls::from_pem_files(cert, key)?),
        _ => None,
    };
    let mut ae_peers = meridian_antientropy::Peers {
        endpoints: Default::default(),
        token: guard.token().cloned(),
    };
    for p in &args.ae_peers {
        let (name, url) = p
            .split_once('=')
            .context("--ae-peer takes NAME=http://HOST:PORT")?;
        ae_peers.endpoints.insert(name.to_owned(), url.to_owned());
    }
    let mut config = ApiConfig::new(region.clone());
    config.replication_attrs = replication.is_some();
    if let Some(rc) = &replication {
        config.peer_regions = rc.peers.iter().map(|p| p.name.clone()).collect();
    }
    if let Some(n) = args.max_in_flight.or(file.max_in_flight) {
        config.max_in_flight = n.max(1);
    }
    for k in &file.access_keys {
        config.keys.insert(k.id.clone(), k.secret.clone());
    }
    for k in &args.access_keys {
        let (id, secret) = k
            .split_once(':')
            .context("--access-key takes ACCESS_KEY_ID:SECRET")?;
        config.keys.insert(id, secret);
    }
    if config.keys.is_empty() {
        tracing::warn!(
            "no access keys configured: accepting any well-formed signed request (like DynamoDB Local)"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("meridian-rt")
        .build()?;
    runtime.block_on(async move {
        // The binary keeps the clock handle: `POST /admin/clock/skew` moves it (fault drills).
        let clock = SystemClock::new();
        let mut opts = StoreOptions::new(&data_dir, region.clone(), clock.clone());
        opts.max_clock_offset_ms = args.max_clock_offset_ms;
        opts.recover = args.recover;
        // Received changes are logged only where a link forwards them (a star's hub).
        opts.log_remote = replication
            .as_ref()
            .is_some_and(|rc| rc.topology.forwards(&region));
        let store = Store::open(opts)
            .with_context(|| format!("opening store in {}", data_dir.display()))?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let replication = match replication {
            Some(rc) => Some(
                meridian_replication::start(rc, store.clone(), stopped())
                    .await
                    .context("starting replication")?,
            ),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%region, %addr, data_dir = %data_dir.display(), "region server listening");
        let scheme = if https.is_some() { "https" } else { "http" };
        println!("meridian region {region} listening on {scheme}://{addr}");
        config.endpoint_address = Some(addr.to_string());
        let mut state = AppState::new(store.clone(), config);
        let extra = match &replication {
            Some(r) => {
                if let Some(registry) = state.registry_mut() {
                    r.register_metrics(registry);
                }
                state.set_readiness(catch_up_readiness(r));
                let links = r.links();
                state.set_covers(std::sync::Arc::new(move |origin, ts| {
                    links.applied_through(origin, ts)
                }));
                println!("meridian region {region} replicating on {}", r.local_addr());
                r.admin_router(Some(clock.clone()), args.enable_fault_injection)
            }
            None => axum::Router::new(),
        };
        // Background workers, all in the store's registry (`GET /admin/workers`): the store's
        // own (table purge, index builder), replication's, and these.
        store.spawn_index_builder();
        meridian_api::spawn_ttl_expirer(state.clone());
        crate::region_recover::spawn(&store, replication.as_ref(), ae_peers.clone());
        // Control plane: `/admin/config`, `/ids` and the config agent.
        let control =
            crate::agent::region_routes(&control_args, &guard, &region, &data_dir, state.clone())
                .await?;
        let extra = extra
            .merge(control)
            .merge(meridian_antientropy::router(store.clone(), ae_peers));
        let limits = meridian_serve::Limits {
            max_connections: args.max_connections.max(1),
            header_timeout: std::time::Duration::from_millis(args.header_timeout_ms.max(100)),
            ..meridian_serve::Limits::default()
        };
        meridian_api::serve_with(listener, state, extra, guard, limits, https, stopped()).await?;
        store.workers().stop();
        if let Some(r) = replication {
            r.stop().await;
        }
        tracing::info!("draining done; syncing store");
        tokio::task::spawn_blocking(move || store.shutdown()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// `/health`'s question to replication: has the region caught up with its peers?
fn catch_up_readiness(r: &meridian_replication::ReplicationHandle) -> meridian_api::Readiness {
    let gate = r.catch_up_gate();
    std::sync::Arc::new(move || match gate() {
        meridian_replication::catch_up::Readiness::Serving => None,
        meridian_replication::catch_up::Readiness::CatchingUp { waiting_for } => Some((
            "catching_up",
            serde_json::json!({ "waiting_for": waiting_for }),
        )),
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
