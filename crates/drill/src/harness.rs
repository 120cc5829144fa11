//! The cluster a drill runs against: its own (`meridian up` from a generated spec on free
//! loopback ports, in a directory of its own, stopped at the end and removed unless something
//! failed) or an existing one named by
//! its `cluster.json`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use meridian_control::cluster_file::ClusterFile;
use meridian_control::{ControlClient, parse_spec};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::sampler::{self, Targets};
use crate::spec::{Ports, REGIONS, spec_text};

/// How long an own cluster may take to come up (debug builds on a loaded 2-core machine).
const START_DEADLINE: Duration = Duration::from_secs(150);
/// How long `meridian up` gets to stop its children (it gives each 10 s).
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// A cluster under drill.
pub struct Cluster {
    path: PathBuf,
    own: Option<Own>,
    /// Pinned users of the gateway and their home regions.
    pub pins: Vec<(String, String)>,
}

/// A cluster this drill started.
struct Own {
    child: Child,
    dir: PathBuf,
}

impl Cluster {
    /// Starts a three-region cluster with `bin up` in a fresh temporary directory and waits
    /// until it is steady.
    pub async fn start(bin: &Path, seed: u64) -> anyhow::Result<Cluster> {
        let dir =
            std::env::temp_dir().join(format!("meridian-drill-{}-{seed:x}", std::process::id()));
        Cluster::start_in(bin, &dir).await
    }

    /// Starts a three-region cluster with `bin up` in `dir` (emptied first) and waits until
    /// it is steady.
    pub async fn start_in(bin: &Path, dir: &Path) -> anyhow::Result<Cluster> {
        let dir =
            std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing an old {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ports = pick_ports()?;
        let spec_path = dir.join("cluster.toml");
        std::fs::write(&spec_path, spec_text(&ports, "meridian-drill-secret"))
            .with_context(|| format!("writing {}", spec_path.display()))?;
        let log_path = dir.join("up.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let data = dir.join("data");
        let mut cmd = Command::new(bin);
        cmd.arg("up")
            .arg("--config")
            .arg(&spec_path)
            .arg("--data-dir")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C at the terminal reaches the drill, which stops
            // the cluster in order, instead of killing `up` under it.
            .process_group(0)
            .kill_on_drop(false);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} up", bin.display()))?;
        let mut cluster = Cluster {
            path: data.join("cluster.json"),
            own: Some(Own { child, dir }),
            pins: REGIONS
                .iter()
                .map(|r| (r.user.to_owned(), r.name.to_owned()))
                .collect(),
        };
        if let Err(e) = cluster.wait_steady(START_DEADLINE).await {
            let tail = tail(&log_path, 30);
            cluster.stop(true).await;
            bail!("the drill cluster did not come up: {e:#}\nlast lines of up.log:\n{tail}");
        }
        Ok(cluster)
    }

    /// Uses a running cluster (started by `meridian up`) and waits until it is steady.
    pub async fn attach(path: &Path) -> anyhow::Result<Cluster> {
        let file = ClusterFile::load(path)?;
        let pins = pins_from_control(&file).await.unwrap_or_default();
        let mut cluster = Cluster {
            path: path.to_path_buf(),
            own: None,
            pins,
        };
        cluster
            .wait_steady(Duration::from_secs(30))
            .await
            .context("the cluster is not steady (every region healthy, every link connected)")?;
        Ok(cluster)
    }

    /// Where `cluster.json` is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data directory of a cluster this drill started.
    pub fn own_dir(&self) -> Option<&Path> {
        self.own.as_ref().map(|o| o.dir.as_path())
    }

    /// The cluster file as it is now (pids change on restarts).
    pub fn file(&self) -> anyhow::Result<ClusterFile> {
        ClusterFile::load(&self.path)
    }

    /// Region names and endpoints.
    pub fn regions(&self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(self
            .file()?
            .regions
            .iter()
            .map(|r| (r.name.clone(), r.endpoint.clone()))
            .collect())
    }

    /// What the sampler polls.
    pub fn targets(&self, metrics: bool) -> anyhow::Result<Targets> {
        let f = self.file()?;
        Ok(Targets {
            regions: f
                .regions
                .iter()
                .map(|r| (r.name.clone(), r.endpoint.clone()))
                .collect(),
            gateway_admin: f.gateway.admin.clone(),
            control: f.control.endpoint.clone(),
            metrics,
            // Short timeouts: a dead component must not stretch the sampling interval much.
            http: f.http(Duration::from_millis(800))?,
        })
    }

    /// Waits until one sample shows the cluster steady, or fails after `deadline` with what
    /// was not.
    pub async fn wait_steady(&mut self, deadline: Duration) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let end = t0 + deadline;
        let mut last = String::from("cluster.json not written yet");
        loop {
            if let Some(own) = self.own.as_mut()
                && let Some(status) = own.child.try_wait()?
            {
                bail!("meridian up exited ({status})");
            }
            if self.path.exists() {
                match self.targets(false) {
                    Ok(t) => {
                        let s = sampler::sample(&t.http, &t, t0).await;
                        if s.steady() {
                            return Ok(());
                        }
                        last = unsteady_reason(&s);
                    }
                    Err(e) => last = format!("{e:#}"),
                }
            }
            if Instant::now() >= end {
                bail!("not steady within {deadline:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops a cluster this drill started (SIGINT to `meridian up`, which stops every child;
    /// SIGKILL after a deadline) and removes its directory unless `keep`. An attached cluster
    /// is left running.
    pub async fn stop(&mut self, keep: bool) {
        let Some(mut own) = self.own.take() else {
            return;
        };
        if let Some(pid) = own.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGINT,
            );
        }
        if tokio::time::timeout(STOP_DEADLINE, own.child.wait())
            .await
            .is_err()
        {
            let _ = own.child.start_kill();
            let _ = own.child.wait().await;
        }
        if !keep {
            let _ = std::fs::remove_dir_all(&own.dir);
        }
    }
}

impl Drop for Cluster {
    /// A cluster still running here was not stopped in order (an error path): stop it anyway,
    /// synchronously and bounded, so no region outlives the drill.
    fn drop(&mut self) {
        let Some(own) = self.own.as_mut() else {
            return;
        };
        if let Some(pid) = own.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGINT,
            );
            let end = std::time::Instant::now() + STOP_DEADLINE;
            while std::time::Instant::now() < end {
                if !matches!(own.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = own.child.start_kill();
        }
    }
}

/// Why a sample is not steady, for error messages.
fn unsteady_reason(s: &sampler::Sample) -> String {
    let mut why = Vec::new();
    if !s.control_up {
        why.push("control plane not answering".to_owned());
    }
    for (name, r) in &s.regions {
        if !r.reachable {
            why.push(format!("{name} not answering"));
        } else if r.gateway_healthy != Some(true) {
            why.push(format!("gateway does not see {name} healthy"));
        } else if r.gateway_admin.as_deref() != Some("auto") {
            why.push(format!("{name} is {:?} at the gateway", r.gateway_admin));
        }
    }
    for l in &s.links {
        if l.state != "connected" || l.alarm {
            why.push(format!(
                "link {} → {} {}{}",
                l.from,
                l.to,
                l.state,
                if l.alarm { " (lag alarm)" } else { "" }
            ));
        }
    }
    let n = s.regions.len();
    if s.links.len() < n * n.saturating_sub(1) {
        why.push(format!(
            "{} of {} links reported",
            s.links.len(),
            n * n.saturating_sub(1)
        ));
    }
    if why.is_empty() {
        "unknown".into()
    } else {
        why.join("; ")
    }
}

/// The pinned users of an attached cluster's gateway (from the control plane's spec).
async fn pins_from_control(file: &ClusterFile) -> anyhow::Result<Vec<(String, String)>> {
    let client = ControlClient::new(&file.control.endpoint, Duration::from_secs(3))
        .with_token(file.admin_token()?.as_ref());
    let Some(latest) = client.latest(None).await? else {
        return Ok(Vec::new());
    };
    let spec = parse_spec(&latest.text)?;
    let gw = meridian_control::gateway_config(&spec)?;
    let router = meridian_traffic::gateway::Router::new(&gw);
    Ok(gw
        .pinning
        .users
        .keys()
        .filter(|u| !u.starts_with(crate::spec::SESSION_USER_PREFIX))
        .filter_map(|u| Some((u.clone(), router.home_region(u)?.to_owned())))
        .collect())
}

/// OS-chosen free ports: per region two on its own loopback address, the rest on 127.0.0.1
/// (the DNS port free for both UDP and TCP). Listeners are held until every port is chosen,
/// so no two are the same.
fn pick_ports() -> anyhow::Result<Ports> {
    let mut held = Vec::new();
    let mut take = |ip: Ipv4Addr| -> anyhow::Result<u16> {
        let l = TcpListener::bind(SocketAddr::from((ip, 0)))
            .with_context(|| format!("binding {ip}:0 (all of 127.0.0.0/8 must be loopback)"))?;
        let port = l.local_addr()?.port();
        held.push(l);
        Ok(port)
    };
    let mut regions = Vec::new();
    for r in &REGIONS {
        let ip = Ipv4Addr::from(r.address);
        regions.push((take(ip)?, take(ip)?));
    }
    let lo = Ipv4Addr::LOCALHOST;
    let control = SocketAddr::from((lo, take(lo)?));
    let dns_admin = SocketAddr::from((lo, take(lo)?));
    let gateway = SocketAddr::from((lo, take(lo)?));
    let gateway_admin = SocketAddr::from((lo, take(lo)?));
    let mut dns = None;
    for _ in 0..50 {
        let port = take(lo)?;
        if UdpSocket::bind(SocketAddr::from((lo, port))).is_ok() {
            dns = Some(SocketAddr::from((lo, port)));
            break;
        }
    }
    let dns = dns.context("no loopback port free for both TCP and UDP (DNS)")?;
    drop(held);
    Ok(Ports {
        regions,
        control,
        dns,
        dns_admin,
        gateway,
        gateway_admin,
    })
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .get(lines.len().saturating_sub(n)..)
        .unwrap_or_default()
        .join("\n")
}
