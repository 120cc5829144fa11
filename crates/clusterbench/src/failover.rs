//! Failover time as a client sees it: a user pinned to region A reads through the gateway every
//! 20 ms; A is killed with SIGKILL; failover = time from the kill until the gateway answers the
//! user from another region; failback = time from A's restart until the user is served by A
//! again. Errors seen by the client in between are counted.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use meridian_bench::client::{Connection, Endpoint};
use meridian_drill::faults;
use meridian_drill::plot::{Chart, line_chart};
use meridian_drill::spec::USER_HEADER;
use meridian_traffic::gateway::REGION_HEADER;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::report::{Row, SuiteResult};
use crate::{Ctx, io};

/// Time between the client's reads.
const EVERY: Duration = Duration::from_millis(20);
/// Longest wait for failover or failback.
const DEADLINE: Duration = Duration::from_secs(60);

/// One read as the client saw it.
#[derive(Debug, Clone)]
struct Read {
    t_ms: u64,
    latency_ms: f64,
    ok: bool,
    served_by: Option<String>,
}

/// Runs the suite.
pub async fn run(ctx: &mut Ctx) -> anyhow::Result<SuiteResult> {
    let file = ctx.cluster.file()?;
    let (user, home) = ctx
        .cluster
        .pins
        .first()
        .cloned()
        .context("the gateway pins no user: cannot measure failover")?;
    let mut out = SuiteResult::new(
        "failover",
        &format!(
            "User {user} (home {home}) reads one item through the gateway every 20 ms; \
             {home} is killed with SIGKILL, then restarted."
        ),
    );
    let home_endpoint = file.region(&home)?.endpoint.clone();
    let table = "bench-failover";
    let mut conn = io::create_table(ctx, &home_endpoint, table).await?;
    let put = json!({"TableName": table, "Item": {"pk": {"S": user}, "v": {"S": "x"}}});
    let r = conn
        .call("PutItem", Bytes::from(serde_json::to_vec(&put)?))
        .await?;
    anyhow::ensure!(r.is_ok(), "PutItem: {}", r.body_text());
    io::wait_drained(ctx, Duration::from_secs(30)).await?;

    let t0 = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let reads = Reads::default();
    let reader = tokio::spawn(read_loop(
        file.gateway.endpoint.clone(),
        ctx.signer.clone(),
        Bytes::from(serde_json::to_vec(
            &json!({"TableName": table, "Key": {"pk": {"S": user}}}),
        )?),
        user.clone(),
        (t0, reads.clone()),
        stop_rx,
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    faults::kill(&file, &home)?;
    let kill_ms = t0.elapsed().as_millis() as u64;
    wait_served(&reads, kill_ms, &home, false).await;
    faults::restart(&ctx.cluster.file()?, &home).await?;
    let restart_ms = t0.elapsed().as_millis() as u64;
    wait_served(&reads, restart_ms, &home, true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    reader.await.context("reader task")??;
    let reads = reads.lock().map(|v| v.clone()).unwrap_or_default();
    ctx.cluster.wait_steady(Duration::from_secs(60)).await?;

    let first_other = reads
        .iter()
        .find(|r| r.t_ms >= kill_ms && r.ok && r.served_by.as_deref() != Some(&home));
    let first_home = reads
        .iter()
        .find(|r| r.t_ms >= restart_ms && r.ok && r.served_by.as_deref() == Some(&home));
    match first_other {
        Some(r) => out.rows.push(Row::new(
            format!(
                "failover: kill of {home} → first answer from {}",
                r.served_by.as_deref().unwrap_or("?")
            ),
            (r.t_ms + r.latency_ms as u64).saturating_sub(kill_ms) as f64,
            "ms",
        )),
        None => out.notes.push(format!(
            "the gateway never served {user} elsewhere within {DEADLINE:?}"
        )),
    }
    match first_home {
        Some(r) => out.rows.push(Row::new(
            format!("failback: restart of {home} → first answer from {home}"),
            (r.t_ms + r.latency_ms as u64).saturating_sub(restart_ms) as f64,
            "ms",
        )),
        None => out.notes.push(format!(
            "{user} was not served by {home} again within {DEADLINE:?}"
        )),
    }
    let during: Vec<&Read> = reads.iter().filter(|r| r.t_ms >= kill_ms).collect();
    let errors = during.iter().filter(|r| !r.ok).count();
    out.rows.push(Row::new(
        "reads from the kill to the end",
        during.len() as f64,
        "reads",
    ));
    out.rows.push(Row::at_least(
        "reads answered successfully from the kill to the end",
        if during.is_empty() {
            0.0
        } else {
            100.0 * (during.len() - errors) as f64 / during.len() as f64
        },
        "%",
        99.0,
    ));
    out.plots
        .push(plot(&ctx.args.out, &reads, kill_ms, restart_ms, &home)?);
    Ok(out)
}

/// The reads so far, shared between the reader task and the suite.
type Reads = std::sync::Arc<std::sync::Mutex<Vec<Read>>>;

/// Waits (at most [`DEADLINE`]) until a read started after `since_ms` was answered by `home`
/// (`at_home`) or by another region (`!at_home`). The suite then reads what happened, and
/// when, from the reads themselves.
async fn wait_served(reads: &Reads, since_ms: u64, home: &str, at_home: bool) {
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        let done = reads.lock().map(|v| {
            v.iter().any(|r| {
                r.t_ms >= since_ms && r.ok && (r.served_by.as_deref() == Some(home)) == at_home
            })
        });
        if done.unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn read_loop(
    gateway: String,
    signer: std::sync::Arc<meridian_bench::sign::Signer>,
    body: Bytes,
    user: String,
    (t0, reads): (Instant, Reads),
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let endpoint = Endpoint::parse(&gateway)?;
    let mut conn = None;
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = tick.tick() => {}
        }
        let start = Instant::now();
        let t_ms = t0.elapsed().as_millis() as u64;
        if conn.is_none() {
            conn = Connection::open(&endpoint, signer.clone()).await.ok();
        }
        let result = match conn.as_mut() {
            Some(c) => c
                .call_with("GetItem", body.clone(), &[(USER_HEADER, user.as_str())])
                .await
                .ok(),
            None => None,
        };
        if result.is_none() {
            conn = None;
        }
        let read = Read {
            t_ms,
            latency_ms: start.elapsed().as_secs_f64() * 1000.0,
            ok: result
                .as_ref()
                .is_some_and(|(r, _)| r.is_ok() && meridian_bench::item::get_found(&r.body)),
            served_by: result.as_ref().and_then(|(_, headers)| {
                headers
                    .get(REGION_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            }),
        };
        if let Ok(mut v) = reads.lock() {
            v.push(read);
        }
    }
}

/// Read latency over time, one series per serving region, failures as gaps.
fn plot(
    dir: &std::path::Path,
    reads: &[Read],
    kill_ms: u64,
    restart_ms: u64,
    home: &str,
) -> anyhow::Result<String> {
    let mut series: BTreeMap<String, meridian_drill::timing::Series> = BTreeMap::new();
    let names: Vec<String> = {
        let mut n: Vec<String> = reads.iter().filter_map(|r| r.served_by.clone()).collect();
        n.sort();
        n.dedup();
        n
    };
    for name in names {
        let points = reads
            .iter()
            .map(|r| {
                let v =
                    (r.ok && r.served_by.as_deref() == Some(name.as_str())).then_some(r.latency_ms);
                (r.t_ms, v)
            })
            .collect();
        series.insert(format!("served by {name}"), points);
    }
    let svg = line_chart(&Chart {
        title: format!("GetItem through the gateway, user pinned to {home}"),
        y_label: "latency (ms)",
        series: &series,
        x_end_ms: reads.last().map_or(1, |r| r.t_ms),
        y_max: None,
        bands: Vec::new(),
        markers: vec![
            (kill_ms, format!("kill -9 {home}")),
            (restart_ms, format!("restart {home}")),
        ],
    });
    let file = "failover.svg";
    std::fs::write(dir.join(file), svg)?;
    Ok(file.to_owned())
}
