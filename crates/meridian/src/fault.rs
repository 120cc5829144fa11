//! `meridian fault …`: fault injection against a local cluster started by `meridian up`.
//!
//! - `kill NAME` — a real SIGKILL of that component's process (a region, `control`, `dns` or
//!   `gateway`), pid from `cluster.json`.
//! - `restart NAME` — asks `meridian up` (its admin endpoint) to start the component again with
//!   the same address, flags and data; `up` updates `cluster.json`.
//! - `partition A [B]` / `heal [A [B]]` — pause / resume the replication links between A and B
//!   in both directions (A alone: between A and every other region; `heal` alone: everything).
//! - `delay A B MS` — emulated one-way latency on the links between A and B.
//! - `skew NAME MS` — shifts a region's wall clock (its HLC keeps versions ordered).

use clap::Subcommand;
use meridian_control::Http;
use nix::sys::signal::Signal;

use crate::cluster::{ClusterArg, ClusterFile, block_on, http};

/// `meridian fault` subcommands.
#[derive(Subcommand, Debug)]
pub enum FaultCmd {
    /// SIGKILL a component (region name, `control`, `dns` or `gateway`).
    Kill {
        /// Component.
        name: String,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Start a component again on the same address and data (through `meridian up`).
    Restart {
        /// Component.
        name: String,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Cut replication between two regions (or one region and all others), both ways.
    Partition {
        /// A region.
        a: String,
        /// Another region (all others when unset).
        b: Option<String>,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Resume replication links cut by `partition` (all of them when no region is named).
    Heal {
        /// A region.
        a: Option<String>,
        /// Another region.
        b: Option<String>,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Set the emulated one-way latency between two regions (both directions).
    Delay {
        /// A region.
        a: String,
        /// Another region.
        b: String,
        /// Milliseconds (0 removes the delay).
        ms: u64,
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Skew a region's wall clock by MS milliseconds (negative: behind).
    Skew {
        /// Region.
        name: String,
        /// Milliseconds.
        #[arg(allow_hyphen_values = true)]
        ms: i64,
        #[command(flatten)]
        cluster: ClusterArg,
    },
}

fn pid_of(file: &ClusterFile, name: &str) -> anyhow::Result<Option<u32>> {
    Ok(match name {
        "control" => file.control.proc.pid,
        "dns" => file.dns.proc.pid,
        "gateway" => file.gateway.proc.pid,
        region => file.region(region)?.proc.pid,
    })
}

/// The directed links between the named regions.
fn links(
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

async fn link_action(
    http: &Http,
    file: &ClusterFile,
    links: &[(String, String)],
    action: &str,
) -> anyhow::Result<()> {
    if !file.replication {
        anyhow::bail!("this cluster runs without replication: there are no links to {action}");
    }
    let mut failed = Vec::new();
    for (from, to) in links {
        let url = format!("{}/admin/links/{to}/{action}", file.region(from)?.endpoint);
        match http.post_json(&url, None).await {
            Ok(r) if r.ok() => println!("{from} -> {to}: {action}"),
            // A star has no spoke-to-spoke links: nothing to do there.
            Ok(r) if r.status == 404 => println!("{from} -> {to}: no such link"),
            Ok(r) => failed.push(format!("{from} -> {to}: status {} {}", r.status, r.json())),
            Err(e) => failed.push(format!("{from} -> {to}: {e}")),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("failed: {}", failed.join("; "));
    }
    Ok(())
}

pub fn run(cmd: FaultCmd) -> anyhow::Result<()> {
    match cmd {
        FaultCmd::Kill { name, cluster } => {
            let file = cluster.load()?;
            let Some(pid) = pid_of(&file, &name)? else {
                anyhow::bail!("{name} is not running");
            };
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL)
                .map_err(|e| anyhow::anyhow!("kill -9 {pid}: {e}"))?;
            println!("killed {name} (SIGKILL to pid {pid})");
            Ok(())
        }
        FaultCmd::Restart { name, cluster } => {
            let file = cluster.load()?;
            block_on(async move {
                let url = format!("{}/v1/restart/{name}", file.up.endpoint);
                // A restart waits for the component to be ready: allow it time.
                let resp = Http::new(std::time::Duration::from_secs(90))
                    .post_json(&url, None)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e} (is `meridian up` still running?)"))?;
                let body = resp.json();
                if !resp.ok() {
                    anyhow::bail!(
                        "restart {name}: {}",
                        body["error"].as_str().unwrap_or("failed")
                    );
                }
                println!("restarted {name} (pid {})", body["pid"]);
                Ok(())
            })
        }
        FaultCmd::Partition { a, b, cluster } => {
            let file = cluster.load()?;
            let l = links(&file, Some(&a), b.as_deref())?;
            block_on(async move { link_action(&http(), &file, &l, "pause").await })
        }
        FaultCmd::Heal { a, b, cluster } => {
            let file = cluster.load()?;
            let l = links(&file, a.as_deref(), b.as_deref())?;
            block_on(async move { link_action(&http(), &file, &l, "resume").await })
        }
        FaultCmd::Delay { a, b, ms, cluster } => {
            let file = cluster.load()?;
            let l = links(&file, Some(&a), Some(&b))?;
            block_on(
                async move { link_action(&http(), &file, &l, &format!("delay?ms={ms}")).await },
            )
        }
        FaultCmd::Skew { name, ms, cluster } => {
            let file = cluster.load()?;
            let region = file.region(&name)?.clone();
            block_on(async move {
                let url = format!("{}/admin/clock/skew?ms={ms}", region.endpoint);
                let resp = http().post_json(&url, None).await?;
                if !resp.ok() {
                    anyhow::bail!("POST {url}: status {} {}", resp.status, resp.json());
                }
                println!("{name}: clock skewed by {ms} ms");
                Ok(())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_selection() {
        let text = include_str!("../../../examples/cluster.toml");
        let spec = meridian_control::parse_spec(text).expect("spec");
        let regions = spec
            .regions
            .iter()
            .map(|r| crate::cluster::RegionEntry {
                name: r.name.clone(),
                id: 0,
                endpoint: r.endpoint(),
                replication: String::new(),
                data_dir: "x".into(),
                proc: Default::default(),
            })
            .collect();
        let file = ClusterFile {
            name: "t".into(),
            data_dir: "x".into(),
            spec_version: None,
            replication: true,
            up: crate::cluster::UpEntry {
                pid: 0,
                endpoint: String::new(),
            },
            control: crate::cluster::ControlEntry {
                endpoint: String::new(),
                proc: Default::default(),
            },
            regions,
            dns: crate::cluster::DnsEntry {
                addr: String::new(),
                name: String::new(),
                admin: String::new(),
                proc: Default::default(),
            },
            gateway: crate::cluster::GatewayEntry {
                endpoint: String::new(),
                admin: String::new(),
                proc: Default::default(),
            },
            links: Default::default(),
        };
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
}
