//! `meridian up`'s process supervisor: starts the children, reaps them, keeps `cluster.json`
//! current, restarts a component on request (`meridian fault restart` → `POST
//! /v1/restart/{name}` on `up`'s admin endpoint) and stops everything on shutdown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use meridian_control::{ClusterSpec, Http, region_plan};
use tokio::sync::Mutex;

use crate::cluster::{ClusterFile, ProcState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Control,
    Region,
    Dns,
    Gateway,
}

/// One supervised process.
pub(super) struct Proc {
    pub(super) name: String,
    pub(super) kind: Kind,
    pub(super) args: Vec<String>,
    /// Environment variables of the process: its secrets, which flags would show in `ps`.
    pub(super) env: Vec<(String, String)>,
    pub(super) log: PathBuf,
    pub(super) child: Option<tokio::process::Child>,
    pub(super) status: String,
}

impl Proc {
    fn state(&self) -> ProcState {
        ProcState {
            pid: self.child.as_ref().and_then(|c| c.id()),
            status: self.status.clone(),
            log: self.log.clone(),
        }
    }
}

/// Everything `up` owns.
pub(super) struct Supervisor {
    pub(super) exe: PathBuf,
    pub(super) procs: Vec<Proc>,
    pub(super) file: ClusterFile,
    pub(super) path: PathBuf,
    pub(super) spec: ClusterSpec,
    pub(super) stopping: bool,
}

pub(super) type Shared = Arc<Mutex<Supervisor>>;

impl Supervisor {
    fn proc_mut(&mut self, name: &str) -> anyhow::Result<&mut Proc> {
        let known: Vec<String> = self.procs.iter().map(|p| p.name.clone()).collect();
        self.procs
            .iter_mut()
            .find(|p| p.name == name)
            .with_context(|| format!("no component {name:?} (components: {})", known.join(", ")))
    }

    pub(super) fn spawn(&mut self, name: &str) -> anyhow::Result<u32> {
        let exe = self.exe.clone();
        let p = self.proc_mut(name)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p.log)
            .with_context(|| format!("opening {}", p.log.display()))?;
        let child = tokio::process::Command::new(&exe)
            .args(&p.args)
            .envs(p.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(false)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id().unwrap_or(0);
        p.child = Some(child);
        p.status = "running".into();
        tracing::info!(component = name, pid, "started");
        self.save();
        Ok(pid)
    }

    /// Reaps exited children; true when something changed.
    pub(super) fn reap(&mut self) -> bool {
        let mut changed = false;
        for p in &mut self.procs {
            let Some(child) = p.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                use std::os::unix::process::ExitStatusExt;
                p.status = match (status.code(), status.signal()) {
                    (_, Some(9)) => "killed (SIGKILL)".to_owned(),
                    (_, Some(sig)) => format!("exited (signal {sig})"),
                    (Some(code), _) => format!("exited (code {code})"),
                    _ => "exited".to_owned(),
                };
                p.child = None;
                changed = true;
                if !self.stopping {
                    println!(
                        "meridian up: {} {}; `meridian fault restart {}` starts it again",
                        p.name, p.status, p.name
                    );
                }
            }
        }
        if changed {
            self.save();
        }
        changed
    }

    /// Rewrites `cluster.json` from the processes' state.
    pub(super) fn save(&mut self) {
        for p in &self.procs {
            let state = p.state();
            match p.kind {
                Kind::Control => self.file.control.proc = state,
                Kind::Dns => self.file.dns.proc = state,
                Kind::Gateway => self.file.gateway.proc = state,
                Kind::Region => {
                    if let Some(r) = self.file.regions.iter_mut().find(|r| r.name == p.name) {
                        r.proc = state;
                    }
                }
            }
        }
        if let Err(e) = self.file.save(&self.path) {
            tracing::error!(error = %e, "writing cluster.json failed");
        }
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// Asks a child to stop (SIGINT), then kills it after `grace`.
async fn stop_child(child: &mut tokio::process::Child, grace: Duration) {
    if let Some(pid) = child.id() {
        signal(pid, nix::sys::signal::Signal::SIGINT);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// The last `n` lines of a log file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Sets the emulated one-way delay on every replication link of `region` (both directions
/// are set: each region delays what it sends).
pub async fn apply_link_delays(
    http: &Http,
    endpoint: &str,
    delays: &BTreeMap<String, u64>,
) -> anyhow::Result<()> {
    for (peer, ms) in delays {
        let url = format!("{endpoint}/admin/links/{peer}/delay?ms={ms}");
        let resp = http.post_json(&url, None).await?;
        if !resp.ok() {
            bail!("POST {url}: status {}", resp.status);
        }
    }
    Ok(())
}

/// Waits for a started component to answer, and sets a region's link delays.
pub(super) async fn settle(sup: &Shared, name: &str, http: &Http) -> anyhow::Result<()> {
    let (kind, url, delays) = {
        let s = sup.lock().await;
        let p = s.procs.iter().find(|p| p.name == name).context("unknown")?;
        match p.kind {
            Kind::Control => (p.kind, format!("{}/health", s.file.control.endpoint), None),
            Kind::Dns => (p.kind, format!("{}/admin/status", s.file.dns.admin), None),
            Kind::Gateway => (
                p.kind,
                format!("{}/admin/status", s.file.gateway.admin),
                None,
            ),
            Kind::Region => {
                let r = s.file.region(name)?;
                let delays = s
                    .file
                    .replication
                    .then(|| region_plan(&s.spec, name).map(|p| p.link_delays_ms))
                    .flatten();
                (
                    p.kind,
                    format!("{}/health", r.endpoint),
                    delays.map(|d| (r.endpoint.clone(), d)),
                )
            }
        }
    };
    let timeout = if kind == Kind::Region {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(20)
    };
    let deadline = Instant::now() + timeout;
    loop {
        if http.get(&url).await.is_ok_and(|r| r.ok()) {
            break;
        }
        // A component that exits while starting fails the start at once, with its log.
        let exited = {
            let mut s = sup.lock().await;
            s.reap();
            s.procs
                .iter()
                .find(|p| p.name == name && p.child.is_none())
                .map(|p| (p.status.clone(), p.log.clone()))
        };
        if let Some((status, log)) = exited {
            bail!(
                "{name} {status} while starting; last lines of {}:\n{}",
                log.display(),
                tail(&log, 15)
            );
        }
        if Instant::now() >= deadline {
            bail!("{name} did not become ready within {timeout:?} ({url}); see its log");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some((endpoint, delays)) = delays {
        apply_link_delays(http, &endpoint, &delays)
            .await
            .with_context(|| format!("{name}: setting the emulated link latency"))?;
    }
    Ok(())
}

/// Restarts one component (stopping it first if it runs). Used by `meridian fault restart`.
pub(super) async fn restart(sup: &Shared, name: &str, http: &Http) -> anyhow::Result<u32> {
    let child = {
        let mut s = sup.lock().await;
        if s.stopping {
            bail!("the cluster is stopping");
        }
        s.proc_mut(name)?.child.take()
    };
    if let Some(mut child) = child {
        stop_child(&mut child, Duration::from_secs(10)).await;
    }
    let pid = sup.lock().await.spawn(name)?;
    settle(sup, name, http).await?;
    println!("meridian up: {name} restarted (pid {pid})");
    Ok(pid)
}

/// Stops every child: SIGINT to all, SIGKILL to stragglers after 10 s.
pub(super) async fn shutdown(sup: &Shared) {
    let mut children = Vec::new();
    {
        let mut s = sup.lock().await;
        s.stopping = true;
        // Traffic first, then data, then control.
        let order = [Kind::Gateway, Kind::Dns, Kind::Region, Kind::Control];
        for kind in order {
            for p in s.procs.iter_mut().filter(|p| p.kind == kind) {
                if let Some(child) = p.child.take() {
                    children.push((p.name.clone(), child));
                }
                p.status = "stopped".into();
            }
        }
        s.save();
    }
    let stops = children.into_iter().map(|(name, mut child)| async move {
        stop_child(&mut child, Duration::from_secs(10)).await;
        tracing::info!(component = %name, "stopped");
    });
    futures_join_all(stops).await;
}

/// Runs futures concurrently (a tiny `join_all`, to avoid a dependency for one call).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futs: impl IntoIterator<Item = F>,
) {
    let mut set = tokio::task::JoinSet::new();
    for f in futs {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}

/// `up`'s admin API: `POST /v1/restart/{name}`, `GET /v1/cluster`, behind the cluster's admin
/// token.
pub(super) async fn serve_admin(
    listener: tokio::net::TcpListener,
    sup: Shared,
    http: Http,
    guard: meridian_auth::AdminGuard,
) {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    #[derive(Clone)]
    struct AdminState {
        sup: Shared,
        http: Http,
    }
    let app = axum::Router::new()
        .route(
            "/v1/restart/{name}",
            axum::routing::post(
                |State(st): State<AdminState>, UrlPath(name): UrlPath<String>| async move {
                    match restart(&st.sup, &name, &st.http).await {
                        Ok(pid) => axum::Json(serde_json::json!({ "name": name, "pid": pid }))
                            .into_response(),
                        Err(e) => (
                            StatusCode::BAD_REQUEST,
                            axum::Json(serde_json::json!({ "error": format!("{e:#}") })),
                        )
                            .into_response(),
                    }
                },
            ),
        )
        .route(
            "/v1/cluster",
            axum::routing::get(|State(st): State<AdminState>| async move {
                axum::Json(serde_json::to_value(&st.sup.lock().await.file).unwrap_or_default())
            }),
        )
        .with_state(AdminState { sup, http });
    // Every route restarts processes or reveals the cluster: all of it is admin.
    let app = meridian_auth::protect(app, guard, |_| true);
    let limits = meridian_serve::Limits::default();
    if let Err(e) = meridian_serve::serve(listener, app, limits, std::future::pending()).await {
        tracing::error!(error = %e, "up admin API stopped");
    }
}
