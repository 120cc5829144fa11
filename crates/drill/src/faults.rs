//! Fault operations on a local cluster started by `meridian up` — the one implementation
//! behind `meridian fault …`, `meridian region drain|undrain` and the drills.
//!
//! - [`kill`]: a real SIGKILL of a component's process (pid from `cluster.json`);
//! - [`restart`]: asks `meridian up` (its admin endpoint) to start a component again with the
//!   same address, flags and data;
//! - [`link_action`] over [`links`]: pause / resume / delay / duplicate / reorder the
//!   replication links between regions (`POST {region}/admin/links/{peer}/…`);
//! - [`skew`]: shifts a region's wall clock (its HLC keeps versions ordered);
//! - [`drain`]: takes a region out of routing (or back) at the region, the DNS server and the
//!   gateway.
//!
//! Functions return what happened per target; printing is the caller's business.

use std::time::Duration;

use anyhow::{Context, bail};
use meridian_control::Http;
use meridian_control::cluster_file::ClusterFile;
use nix::sys::signal::Signal;

/// A fault hook on one directed replication link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// Stop shipping changes (the link stays connected, nothing flows).
    Pause,
    /// Ship again.
    Resume,
    /// Emulated one-way latency in milliseconds (0 removes it).
    Delay(u64),
    /// Send every batch frame twice.
    Duplicate(bool),
    /// Swap consecutive batch frames.
    Reorder(bool),
    /// Send forged-origin and hour-ahead batches by turns (a Byzantine peer).
    Byzantine(bool),
}

impl LinkAction {
    /// The path segment (and query) of `POST {region}/admin/links/{peer}/…`.
    pub fn path(self) -> String {
        match self {
            LinkAction::Pause => "pause".into(),
            LinkAction::Resume => "resume".into(),
            LinkAction::Delay(ms) => format!("delay?ms={ms}"),
            LinkAction::Duplicate(on) => format!("duplicate?on={on}"),
            LinkAction::Reorder(on) => format!("reorder?on={on}"),
            LinkAction::Byzantine(on) => format!("byzantine?on={on}"),
        }
    }

    /// What it is called in messages.
    pub fn verb(self) -> String {
        match self {
            LinkAction::Pause => "pause".into(),
            LinkAction::Resume => "resume".into(),
            LinkAction::Delay(ms) => format!("delay {ms} ms"),
            LinkAction::Duplicate(on) => format!("duplicate {}", on_off(on)),
            LinkAction::Reorder(on) => format!("reorder {}", on_off(on)),
            LinkAction::Byzantine(on) => format!("byzantine {}", on_off(on)),
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// What happened on one directed link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkResult {
    /// The region applied the action.
    Done,
    /// There is no such link (a star has no spoke-to-spoke links).
    NoSuchLink,
    /// The region refused or could not be reached.
    Failed(String),
}

/// One directed link and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReport {
    /// Sending region.
    pub from: String,
    /// Receiving region.
    pub to: String,
    /// Outcome.
    pub result: LinkResult,
}

/// The process id of a component (region name, `control`, `dns` or `gateway`).
pub fn pid_of(file: &ClusterFile, name: &str) -> anyhow::Result<Option<u32>> {
    Ok(match name {
        "control" => file.control.proc.pid,
        "dns" => file.dns.proc.pid,
        "gateway" => file.gateway.proc.pid,
        region => file.region(region)?.proc.pid,
    })
}

/// SIGKILLs a component; returns the pid killed.
pub fn kill(file: &ClusterFile, name: &str) -> anyhow::Result<u32> {
    let Some(pid) = pid_of(file, name)? else {
        bail!("{name} is not running");
    };
    let raw = i32::try_from(pid).with_context(|| format!("pid {pid} out of range"))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), Signal::SIGKILL)
        .map_err(|e| anyhow::anyhow!("kill -9 {pid} ({name}): {e}"))?;
    Ok(pid)
}

/// Asks `meridian up` to start a component again (stopping it first if it runs); returns the
/// new pid once the component answers (`up` waits for that, so allow it time).
pub async fn restart(file: &ClusterFile, name: &str) -> anyhow::Result<u32> {
    let url = format!("{}/v1/restart/{name}", file.up.endpoint);
    let resp = file
        .http(Duration::from_secs(90))?
        .post_json(&url, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e} (is `meridian up` still running?)"))?;
    let body = resp.json();
    if !resp.ok() {
        bail!(
            "restart {name}: {}",
            body["error"].as_str().unwrap_or("failed")
        );
    }
    body["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .with_context(|| format!("restart {name}: no pid in the answer {body}"))
}

/// The directed links between the named regions: all of them (`a` and `b` unset), those of
/// region `a` with every other region (`b` unset), or both directions between `a` and `b`.
pub fn links(
    file: &ClusterFile,
    a: Option<&str>,
    b: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    for name in [a, b].into_iter().flatten() {
        file.region(name)?;
    }
    let names: Vec<&str> = file.regions.iter().map(|r| r.name.as_str()).collect();
    let mut out = Vec::new();
    for from in &names {
        for to in &names {
            let pair_ok = match (a, b) {
                (None, _) => true,
                (Some(a), None) => *from == a || *to == a,
                (Some(a), Some(b)) => (*from == a && *to == b) || (*from == b && *to == a),
            };
            if from != to && pair_ok {
                out.push((from.to_string(), to.to_string()));
            }
        }
    }
    Ok(out)
}

/// Applies `action` to each directed link (at its sending region).
pub async fn link_action(
    http: &Http,
    file: &ClusterFile,
    links: &[(String, String)],
    action: LinkAction,
) -> anyhow::Result<Vec<LinkReport>> {
    if !file.replication {
        bail!(
            "this cluster runs without replication: there are no links to {}",
            action.verb()
        );
    }
    let mut out = Vec::with_capacity(links.len());
    for (from, to) in links {
        let url = format!(
            "{}/admin/links/{to}/{}",
            file.region(from)?.endpoint,
            action.path()
        );
        let result = match http.post_json(&url, None).await {
            Ok(r) if r.ok() => LinkResult::Done,
            Ok(r) if r.status == 404 && r.json()["error"].as_str().is_some_and(is_no_link) => {
                LinkResult::NoSuchLink
            }
            Ok(r) => LinkResult::Failed(format!("status {} {}", r.status, r.json())),
            Err(e) => LinkResult::Failed(e.to_string()),
        };
        out.push(LinkReport {
            from: from.clone(),
            to: to.clone(),
            result,
        });
    }
    Ok(out)
}

/// The region's 404 for a peer it has no link with (`no link with {peer}`).
fn is_no_link(error: &str) -> bool {
    error.starts_with("no link with")
}

/// Fails when any link reported a failure, naming them all.
pub fn check_links(reports: &[LinkReport], action: LinkAction) -> anyhow::Result<()> {
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.result {
            LinkResult::Failed(e) => Some(format!("{} -> {}: {e}", r.from, r.to)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        bail!("{} failed: {}", action.verb(), failed.join("; "));
    }
    Ok(())
}

/// Applies `action` and fails on any link that did not take it.
pub async fn link_action_checked(
    http: &Http,
    file: &ClusterFile,
    links: &[(String, String)],
    action: LinkAction,
) -> anyhow::Result<Vec<LinkReport>> {
    let reports = link_action(http, file, links, action).await?;
    check_links(&reports, action)?;
    Ok(reports)
}

/// Puts the emulated latency of each directed link back to what `meridian up` configured.
pub async fn restore_delays(
    http: &Http,
    file: &ClusterFile,
    links: &[(String, String)],
) -> anyhow::Result<()> {
    for (from, to) in links {
        let ms = file
            .links
            .get(from)
            .and_then(|m| m.get(to))
            .copied()
            .unwrap_or(0);
        let one = [(from.clone(), to.clone())];
        link_action_checked(http, file, &one, LinkAction::Delay(ms)).await?;
    }
    Ok(())
}

/// Skews a region's wall clock by `ms` (negative: behind; 0: none).
pub async fn skew(http: &Http, file: &ClusterFile, region: &str, ms: i64) -> anyhow::Result<()> {
    let url = format!("{}/admin/clock/skew?ms={ms}", file.region(region)?.endpoint);
    let resp = http.post_json(&url, None).await?;
    if !resp.ok() {
        bail!("POST {url}: status {} {}", resp.status, resp.json());
    }
    Ok(())
}

/// One component's answer to a drain or undrain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainStep {
    /// `region`, `dns` or `gateway`.
    pub component: &'static str,
    /// The URL posted to.
    pub url: String,
    /// `None` when it took effect.
    pub error: Option<String>,
}

/// Drains a region (`undrain = false`) or brings it back, everywhere: its own `/health` (so
/// every health checker sees it), and the DNS server's and the gateway's operator overrides
/// (which act at once).
pub async fn drain(
    http: &Http,
    file: &ClusterFile,
    name: &str,
    undrain: bool,
) -> anyhow::Result<Vec<DrainStep>> {
    let action = if undrain { "undrain" } else { "drain" };
    let region = file.region(name)?;
    let targets = [
        ("region", format!("{}/admin/{action}", region.endpoint)),
        (
            "dns",
            format!("{}/admin/regions/{name}/{action}", file.dns.admin),
        ),
        (
            "gateway",
            format!("{}/admin/regions/{name}/{action}", file.gateway.admin),
        ),
    ];
    let mut out = Vec::with_capacity(targets.len());
    for (component, url) in targets {
        let error = match http.post_json(&url, None).await {
            Ok(r) if r.ok() => None,
            Ok(r) => Some(format!("status {} {}", r.status, r.json())),
            Err(e) => Some(e.to_string()),
        };
        out.push(DrainStep {
            component,
            url,
            error,
        });
    }
    Ok(out)
}

/// Drains (or undrains) and fails unless every component took it.
pub async fn drain_checked(
    http: &Http,
    file: &ClusterFile,
    name: &str,
    undrain: bool,
) -> anyhow::Result<()> {
    let steps = drain(http, file, name, undrain).await?;
    let failed: Vec<String> = steps
        .iter()
        .filter_map(|s| {
            s.error
                .as_ref()
                .map(|e| format!("{}: POST {}: {e}", s.component, s.url))
        })
        .collect();
    if !failed.is_empty() {
        bail!("{}: {}", name, failed.join("; "));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use meridian_control::cluster_file::{
        ControlEntry, DnsEntry, GatewayEntry, RegionEntry, UpEntry,
    };

    /// A cluster file for the three regions of `examples/cluster.toml`.
    pub(crate) fn example_file() -> ClusterFile {
        let text = include_str!("../../../examples/cluster.toml");
        let spec = meridian_control::parse_spec(text).expect("spec");
        let regions = spec
            .regions
            .iter()
            .map(|r| RegionEntry {
                name: r.name.clone(),
                id: 0,
                endpoint: r.endpoint(),
                replication: String::new(),
                data_dir: "x".into(),
                proc: Default::default(),
            })
            .collect();
        ClusterFile {
            name: "t".into(),
            data_dir: "x".into(),
            spec_version: None,
            replication: true,
            up: UpEntry {
                pid: 0,
                endpoint: String::new(),
            },
            control: ControlEntry {
                endpoint: String::new(),
                proc: Default::default(),
            },
            regions,
            dns: DnsEntry {
                addr: String::new(),
                name: String::new(),
                admin: String::new(),
                proc: Default::default(),
            },
            gateway: GatewayEntry {
                endpoint: String::new(),
                admin: String::new(),
                proc: Default::default(),
            },
            links: Default::default(),
            admin_token_file: None,
        }
    }

    #[test]
    fn link_selection() {
        let file = example_file();
        assert_eq!(links(&file, None, None).expect("all").len(), 6);
        assert_eq!(links(&file, Some("eu-west"), None).expect("one").len(), 4);
        let pair = links(&file, Some("eu-west"), Some("us-east")).expect("pair");
        assert_eq!(
            pair,
            [
                ("us-east".to_string(), "eu-west".to_string()),
                ("eu-west".to_string(), "us-east".to_string())
            ]
        );
        assert!(links(&file, Some("mars"), None).is_err());
    }

    #[test]
    fn link_action_paths() {
        assert_eq!(LinkAction::Delay(40).path(), "delay?ms=40");
        assert_eq!(LinkAction::Duplicate(true).path(), "duplicate?on=true");
        assert_eq!(LinkAction::Reorder(false).path(), "reorder?on=false");
        let reports = vec![LinkReport {
            from: "a".into(),
            to: "b".into(),
            result: LinkResult::Failed("boom".into()),
        }];
        let err = check_links(&reports, LinkAction::Pause).expect_err("fails");
        assert!(err.to_string().contains("a -> b: boom"), "{err}");
    }
}
