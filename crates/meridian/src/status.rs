//! `meridian status [--json]`: every component of a local cluster — process, health, the spec
//! version it runs and where that came from — and the replication lag of every link.

use clap::Args;
use meridian_control::Http;
use serde_json::{Value, json};

use crate::cluster::{ClusterArg, ClusterFile, block_on, http};

/// Flags of `meridian status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cluster: ClusterArg,
}

async fn get(http: &Http, url: &str) -> Option<(u16, Value)> {
    http.get(url).await.ok().map(|r| (r.status, r.json()))
}

fn config(v: Option<(u16, Value)>) -> Value {
    match v {
        Some((200, body)) => json!({ "version": body["version"], "source": body["source"] }),
        _ => Value::Null,
    }
}

/// Gathers the status as JSON.
async fn gather(file: &ClusterFile, http: &Http) -> Value {
    let control_status = get(http, &format!("{}/v1/status", file.control.endpoint)).await;
    let control_up = control_status.as_ref().is_some_and(|(s, _)| *s == 200);
    let reports = control_status
        .as_ref()
        .map(|(_, v)| v["components"].clone())
        .unwrap_or(Value::Null);
    let mut regions = Vec::new();
    let mut links = Vec::new();
    for r in &file.regions {
        let health = get(http, &format!("{}/health", r.endpoint)).await;
        let cfg = config(get(http, &format!("{}/admin/config", r.endpoint)).await);
        if file.replication
            && let Some((200, rep)) = get(http, &format!("{}/admin/replication", r.endpoint)).await
        {
            for l in rep["links"].as_array().into_iter().flatten() {
                if l["direction"] == "in" {
                    links.push(json!({
                        "from": l["peer"], "to": r.name, "state": l["state"],
                        "lag_ms": l["lag_ms"], "lag_entries": l["lag_entries"],
                        "alarm": l["alarm"], "clock_offset_ms": l["peer_clock_offset_ms"],
                        "refused": l["refused"],
                    }));
                } else {
                    links.push(json!({
                        "from": r.name, "to": l["peer"], "state": l["state"],
                        "delay_ms": l["delay_ms"], "unacked_entries": l["lag_entries"],
                    }));
                }
            }
        }
        regions.push(json!({
            "name": r.name,
            "endpoint": r.endpoint,
            "pid": r.proc.pid,
            "process": r.proc.status,
            "health": match &health {
                Some((_, b)) => b["status"].clone(),
                None => json!("unreachable"),
            },
            "config": cfg,
        }));
    }
    let dns_health = get(http, &format!("{}/admin/status", file.dns.admin)).await;
    let gw_health = get(http, &format!("{}/admin/status", file.gateway.admin)).await;
    json!({
        "name": file.name,
        "control": {
            "endpoint": file.control.endpoint, "pid": file.control.proc.pid,
            "process": file.control.proc.status, "reachable": control_up,
            "latest_version": control_status.as_ref().map(|(_, v)| v["latest_version"].clone()),
            "reports": reports,
        },
        "regions": regions,
        "dns": {
            "addr": file.dns.addr, "name": file.dns.name, "pid": file.dns.proc.pid,
            "process": file.dns.proc.status,
            "config": config(get(http, &format!("{}/admin/config", file.dns.admin)).await),
            "health_view": dns_health.map(|(_, v)| v["health"].clone()),
        },
        "gateway": {
            "endpoint": file.gateway.endpoint, "pid": file.gateway.proc.pid,
            "process": file.gateway.proc.status,
            "config": config(get(http, &format!("{}/admin/config", file.gateway.admin)).await),
            "health_view": gw_health.map(|(_, v)| v["health"].clone()),
        },
        "replication": file.replication,
        "links": links,
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn version(cfg: &Value) -> String {
    if cfg.is_null() {
        return "-".to_owned();
    }
    format!("v{} ({})", text(&cfg["version"]), text(&cfg["source"]))
}

fn render(s: &Value) -> String {
    let mut out = format!(
        "cluster {}   control plane {} ({}), latest spec v{}\n\n",
        text(&s["name"]),
        text(&s["control"]["endpoint"]),
        if s["control"]["reachable"] == true {
            "up"
        } else {
            "DOWN"
        },
        text(&s["control"]["latest_version"]),
    );
    out.push_str(&format!(
        "{:<10} {:<14} {:<24} {:>8} {:<18} {:<12} {}\n",
        "KIND", "NAME", "ENDPOINT", "PID", "PROCESS", "HEALTH", "CONFIG"
    ));
    for r in s["regions"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<10} {:<14} {:<24} {:>8} {:<18} {:<12} {}\n",
            "region",
            text(&r["name"]),
            text(&r["endpoint"]),
            text(&r["pid"]),
            text(&r["process"]),
            text(&r["health"]),
            version(&r["config"]),
        ));
    }
    for (kind, key, addr) in [("dns", "dns", "addr"), ("gateway", "gateway", "endpoint")] {
        let c = &s[key];
        out.push_str(&format!(
            "{:<10} {:<14} {:<24} {:>8} {:<18} {:<12} {}\n",
            kind,
            "-",
            text(&c[addr]),
            text(&c["pid"]),
            text(&c["process"]),
            "-",
            version(&c["config"]),
        ));
    }
    out.push_str(&format!(
        "{:<10} {:<14} {:<24} {:>8} {:<18}\n",
        "control",
        "-",
        text(&s["control"]["endpoint"]),
        text(&s["control"]["pid"]),
        text(&s["control"]["process"]),
    ));
    if let Some(h) = s["dns"]["health_view"]["endpoints"].as_object() {
        out.push_str("\nhealth as the DNS server sees it:");
        for (name, e) in h {
            let healthy = e["checks_healthy"] == true;
            out.push_str(&format!(" {name}={}", if healthy { "up" } else { "DOWN" }));
            if e["admin"] != "auto" && !e["admin"].is_null() {
                out.push_str(&format!("[{}]", text(&e["admin"])));
            }
        }
        out.push('\n');
    }
    if s["replication"] != true {
        out.push_str("\nreplication: not available in this build (regions run independently)\n");
        return out;
    }
    out.push_str(&format!(
        "\n{:<14} {:<14} {:<13} {:>8} {:>12} {:>6} {:>9}\n",
        "LINK FROM", "TO", "STATE", "LAG MS", "LAG ENTRIES", "ALARM", "CLOCK MS"
    ));
    let mut warnings = Vec::new();
    for l in s["links"].as_array().into_iter().flatten() {
        if l.get("lag_ms").is_none() {
            continue;
        }
        out.push_str(&format!(
            "{:<14} {:<14} {:<13} {:>8} {:>12} {:>6} {:>9}\n",
            text(&l["from"]),
            text(&l["to"]),
            text(&l["state"]),
            text(&l["lag_ms"]),
            text(&l["lag_entries"]),
            text(&l["alarm"]),
            text(&l["clock_offset_ms"]),
        ));
        warnings.extend(link_warnings(l));
    }
    for w in warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// Clock offset between two regions above which `status` warns: half the default maximum
/// offset, beyond which a receiver refuses the sender's versions.
const CLOCK_WARN_MS: i64 = meridian_storage::DEFAULT_MAX_CLOCK_OFFSET_MS as i64 / 2;

/// What an inbound link's row should make an operator look at.
fn link_warnings(l: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let (from, to) = (text(&l["from"]), text(&l["to"]));
    if let Some(ms) = l["clock_offset_ms"].as_i64()
        && ms.abs() >= CLOCK_WARN_MS
    {
        let side = if ms > 0 { "ahead of" } else { "behind" };
        out.push(format!(
            "{from}'s clock is {} ms {side} {to}'s (a version more than {} ms ahead of the receiver's clock is refused)",
            ms.abs(),
            meridian_storage::DEFAULT_MAX_CLOCK_OFFSET_MS
        ));
    }
    if let Some(why) = l["refused"].as_str() {
        out.push(format!("{to} refuses {from}'s batches: {why}"));
    }
    out
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let file = args.cluster.load()?;
    let http = http(&file)?;
    let status = block_on(async move { Ok(gather(&file, &http).await) })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skewed_clocks_and_refusals_are_warned_about() {
        let link = |offset: i64, refused: Value| json!({"from": "eu", "to": "us", "clock_offset_ms": offset, "refused": refused});
        assert!(link_warnings(&link(249, Value::Null)).is_empty());
        let w = link_warnings(&link(-300, Value::Null));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("eu's clock is 300 ms behind us's"),
            "{}",
            w[0]
        );
        let w = link_warnings(&link(900, json!("clock: too far ahead")));
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("900 ms ahead of us's"), "{}", w[0]);
        assert_eq!(w[1], "us refuses eu's batches: clock: too far ahead");
    }
}
