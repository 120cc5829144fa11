//! The config agent every role runs (region, DNS, gateway): static stability in one place.
//!
//! - **Start.** Ask the control plane for the latest spec (briefly). If it does not answer,
//!   start from the last version this component applied, persisted in
//!   `<data dir>/control/applied.toml`. Only with neither does the role fall back to its own
//!   static config.
//! - **Run.** Poll for a newer version; apply it through the role's callback; once applied,
//!   persist it (temp file + fsync + rename) and report the running version. An invalid or
//!   unappliable version is reported with its error and the role keeps what it runs.
//! - **Control plane down.** Nothing changes: the role keeps serving its current version and
//!   the agent keeps polling. `GET /admin/config` says where the running version came from:
//!   `control` (fetched, or confirmed current by a reachable control plane) or `cache` (read
//!   from disk at start and not yet confirmed).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{ControlClient, Report};
use crate::error::ControlError;
use crate::spec::ClusterSpec;
use crate::store::{StoredSpec, atomic_write};
use crate::validate::parse_spec;

/// Where the running version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// From (or confirmed by) the control plane.
    Control,
    /// From this component's persisted copy.
    Cache,
    /// No spec: the role runs from its static config.
    Static,
}

impl Source {
    /// `control`, `cache` or `static`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Control => "control",
            Source::Cache => "cache",
            Source::Static => "static",
        }
    }
}

/// A spec version a component runs.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Version number.
    pub version: u64,
    /// The spec text.
    pub text: String,
    /// The parsed spec.
    pub spec: ClusterSpec,
}

/// How the agent is set up.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Component name reported to the control plane (`region/us-east`, `dns`, `gateway`).
    pub component: String,
    /// Control plane base URL; without it the agent only uses its cache.
    pub control_url: Option<String>,
    /// The role's data directory (`applied.toml` lives in `<dir>/control/`).
    pub dir: PathBuf,
    /// How long to try the control plane at start before using the cache.
    pub bootstrap_timeout: Duration,
    /// The cluster's admin token, presented to the control plane.
    pub token: Option<std::sync::Arc<meridian_auth::AdminToken>>,
}

/// The persisted record of the last applied version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppliedRecord {
    /// Format version of this file.
    format: u32,
    component: String,
    version: u64,
    applied_at_unix_ms: u64,
    spec: String,
}

/// What `GET /admin/config` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigStatus {
    /// The component.
    pub component: String,
    /// The spec version running (none when running from static config).
    pub version: Option<u64>,
    /// Where it came from.
    pub source: Source,
    /// The control plane's URL.
    pub control: Option<String>,
    /// Whether the last poll reached the control plane.
    pub control_reachable: bool,
    /// The last error applying a newer version.
    pub last_error: Option<String>,
}

struct State {
    current: Option<Arc<Applied>>,
    source: Source,
    reachable: bool,
    last_error: Option<String>,
    poll_interval: Duration,
}

/// The agent. Cheap to share behind an `Arc`.
pub struct ConfigAgent {
    opts: AgentOptions,
    client: Option<ControlClient>,
    // A std Mutex: small state, never held across `.await`.
    state: Mutex<State>,
    clock: Arc<dyn meridian_core::Clock>,
}

/// Path of a component's persisted version under its data directory.
pub fn applied_path(dir: &Path) -> PathBuf {
    dir.join("control").join("applied.toml")
}

fn parse_applied(stored: &StoredSpec) -> Result<Arc<Applied>, ControlError> {
    Ok(Arc::new(Applied {
        version: stored.version,
        spec: parse_spec(&stored.text)?,
        text: stored.text.clone(),
    }))
}

/// Reads a component's persisted version, if any.
pub fn load_applied(dir: &Path) -> Result<Option<StoredSpec>, ControlError> {
    let path = applied_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ControlError::io(format!("reading {}", path.display()), e)),
    };
    let record: AppliedRecord = toml::from_str(&text).map_err(|e| {
        ControlError::Remote(format!("{} is damaged: {}", path.display(), e.message()))
    })?;
    Ok(Some(StoredSpec {
        version: record.version,
        text: record.spec,
    }))
}

impl ConfigAgent {
    /// Starts the agent: the latest spec from the control plane, else the persisted one.
    pub async fn start(opts: AgentOptions) -> Self {
        let client = opts.control_url.as_deref().map(|url| {
            ControlClient::new(url, Duration::from_secs(2)).with_token(opts.token.as_deref())
        });
        let mut state = State {
            current: None,
            source: Source::Static,
            reachable: false,
            last_error: None,
            poll_interval: Duration::from_secs(1),
        };
        if let Some(c) = &client {
            let deadline = tokio::time::Instant::now() + opts.bootstrap_timeout;
            loop {
                match c.latest(None).await {
                    Ok(Some(stored)) => {
                        state.reachable = true;
                        match parse_applied(&stored) {
                            Ok(a) => {
                                state.current = Some(a);
                                state.source = Source::Control;
                            }
                            Err(e) => state.last_error = Some(e.to_string()),
                        }
                        break;
                    }
                    Ok(None) => {
                        state.reachable = true;
                        break;
                    }
                    Err(e) if tokio::time::Instant::now() >= deadline => {
                        tracing::warn!(error = %e, "control plane unreachable at start; using the persisted spec");
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
        if state.current.is_none() {
            match load_applied(&opts.dir).and_then(|s| s.map(|s| parse_applied(&s)).transpose()) {
                Ok(Some(a)) => {
                    tracing::info!(version = a.version, "starting from the persisted spec");
                    state.current = Some(a);
                    state.source = Source::Cache;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "persisted spec unusable");
                    state.last_error = Some(e.to_string());
                }
            }
        }
        if let Some(a) = &state.current {
            state.poll_interval = Duration::from_millis(a.spec.control.poll_interval_ms);
        }
        ConfigAgent {
            opts,
            client,
            state: Mutex::new(state),
            clock: meridian_core::SystemClock::new(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The version running now.
    pub fn current(&self) -> Option<Arc<Applied>> {
        self.with(|s| s.current.clone())
    }

    /// What `GET /admin/config` shows.
    pub fn status(&self) -> ConfigStatus {
        self.with(|s| ConfigStatus {
            component: self.opts.component.clone(),
            version: s.current.as_ref().map(|a| a.version),
            source: s.source,
            control: self.opts.control_url.clone(),
            control_reachable: s.reachable,
            last_error: s.last_error.clone(),
        })
    }

    /// The status as JSON.
    pub fn status_json(&self) -> serde_json::Value {
        serde_json::to_value(self.status()).unwrap_or(serde_json::Value::Null)
    }

    fn persist(&self, a: &Applied) -> Result<(), ControlError> {
        let record = AppliedRecord {
            format: 1,
            component: self.opts.component.clone(),
            version: a.version,
            applied_at_unix_ms: self.clock.now_ms(),
            spec: a.text.clone(),
        };
        let text = toml::to_string(&record).map_err(|e| ControlError::Remote(e.to_string()))?;
        let body = format!(
            "# Written by the meridian config agent: the last spec version {} applied.\n{text}",
            self.opts.component
        );
        atomic_write(&applied_path(&self.opts.dir), body.as_bytes())
    }

    async fn report(&self) {
        let Some(client) = &self.client else { return };
        let st = self.status();
        let Some(version) = st.version else { return };
        let report = Report {
            component: st.component,
            version,
            source: st.source.as_str().to_owned(),
            pid: std::process::id(),
            error: st.last_error,
        };
        if let Err(e) = client.report(&report).await {
            tracing::debug!(error = %e, "report to the control plane failed");
        }
    }

    /// The `config-agent` worker: its first step applies the starting version, each later one
    /// polls for a newer version. `apply` makes the role run a version (`first` is true for the
    /// version the role started with).
    pub fn worker<F, Fut>(self: Arc<Self>, apply: F) -> AgentWorker<F>
    where
        F: Fn(Arc<Applied>, bool) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        AgentWorker {
            agent: self,
            apply,
            started: false,
        }
    }

    /// Runs [`ConfigAgent::worker`] in a registry of its own until `shutdown`, for a caller
    /// that keeps none.
    pub async fn run<F, Fut>(self: Arc<Self>, apply: F, shutdown: impl Future<Output = ()>)
    where
        F: Fn(Arc<Applied>, bool) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let workers = meridian_worker::Workers::new(self.clock.clone());
        workers.spawn("config-agent", self.worker(apply));
        shutdown.await;
        workers.stop();
    }

    async fn apply_first<F, Fut>(&self, apply: &F)
    where
        F: Fn(Arc<Applied>, bool) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        if let Some(a) = self.current() {
            match apply(a.clone(), true).await {
                Ok(()) => {
                    if self.with(|s| s.source) == Source::Control
                        && let Err(e) = self.persist(&a)
                    {
                        tracing::error!(error = %e, "persisting the applied spec failed");
                    }
                }
                Err(e) => {
                    tracing::error!(version = a.version, error = %e, "applying the spec failed");
                    self.with(|s| s.last_error = Some(e));
                }
            }
        }
        self.report().await;
    }

    async fn poll<F, Fut>(&self, client: &ControlClient, apply: &F)
    where
        F: Fn(Arc<Applied>, bool) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let running = self.current().map_or(0, |a| a.version);
        match client.latest(Some(running)).await {
            Ok(None) => self.with(|s| {
                s.reachable = true;
                if s.current.is_some() {
                    s.source = Source::Control;
                }
            }),
            Ok(Some(stored)) => {
                self.with(|s| s.reachable = true);
                self.take_new(&stored, apply).await;
            }
            Err(e) => {
                if self.with(|s| std::mem::replace(&mut s.reachable, false)) {
                    tracing::warn!(error = %e, "control plane unreachable; keeping spec version {running}");
                }
            }
        }
        self.report().await;
    }

    async fn take_new<F, Fut>(&self, stored: &StoredSpec, apply: &F)
    where
        F: Fn(Arc<Applied>, bool) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let a = match parse_applied(stored) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(version = stored.version, error = %e, "refusing an invalid spec");
                self.with(|s| s.last_error = Some(e.to_string()));
                return;
            }
        };
        if let Err(e) = apply(a.clone(), false).await {
            tracing::error!(version = a.version, error = %e, "applying the spec failed");
            self.with(|s| s.last_error = Some(format!("version {}: {e}", a.version)));
            return;
        }
        if let Err(e) = self.persist(&a) {
            tracing::error!(error = %e, "persisting the applied spec failed");
        }
        tracing::info!(version = a.version, "spec applied");
        self.with(|s| {
            s.poll_interval = Duration::from_millis(a.spec.control.poll_interval_ms);
            s.current = Some(a);
            s.source = Source::Control;
            s.last_error = None;
        });
    }
}

/// A [`ConfigAgent`] as a background worker (see [`ConfigAgent::worker`]).
pub struct AgentWorker<F> {
    agent: Arc<ConfigAgent>,
    apply: F,
    started: bool,
}

impl<F, Fut> meridian_worker::Worker for AgentWorker<F>
where
    F: Fn(Arc<Applied>, bool) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    async fn step(&mut self) -> Result<meridian_worker::Next, String> {
        if !std::mem::replace(&mut self.started, true) {
            self.agent.apply_first(&self.apply).await;
        } else if let Some(client) = &self.agent.client {
            self.agent.poll(client, &self.apply).await;
        }
        if self.agent.client.is_none() {
            // Without a control plane there is nothing to poll: the starting version stays.
            return Ok(meridian_worker::Next::Done);
        }
        let interval = self.agent.with(|s| s.poll_interval);
        Ok(meridian_worker::Next::After(interval))
    }
}
