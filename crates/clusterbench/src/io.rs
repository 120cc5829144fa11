//! What the suites share: paced loads, bulk reads, table readiness, the regions' replication
//! admin API (apply-lag histograms, link positions, delays) and lag plots.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use meridian_bench::client::{Connection, Endpoint};
use meridian_bench::load::{LoadArgs, LoadReport, run_load};
use meridian_bench::sign::{SignArgs, Signer};
use meridian_bench::table::ensure_table;
use meridian_control::Http;
use meridian_drill::faults::{self, LinkAction};
use meridian_drill::plot::{Band, Chart, line_chart};
use meridian_drill::sampler::Sample;
use meridian_drill::timing::lag_series;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Ctx;

/// Keys per `BatchGetItem` (DynamoDB's limit).
const GET_BATCH: u64 = 100;

/// Writes keys `k<start>…` into `table` at `endpoint` with `BatchWriteItem`, paced at `rate`
/// items/s when set (see `meridian bench load --rate`).
pub async fn load(
    endpoint: &str,
    table: &str,
    keys: Range<u64>,
    rate: Option<u64>,
    connections: usize,
) -> anyhow::Result<LoadReport> {
    let args = LoadArgs {
        endpoint: endpoint.to_owned(),
        connections,
        keys: keys.end - keys.start,
        start_key: keys.start,
        value_bytes: 180,
        batch: meridian_bench::load::MAX_BATCH,
        table: table.to_owned(),
        rate,
        json: false,
        label: None,
        auth: SignArgs::default(),
    };
    run_load(&args).await
}

/// Creates `table` (`pk` string key) at `endpoint` unless it exists, waits until it is ACTIVE
/// in every region of the cluster (it arrives elsewhere by replication), and returns the
/// connection to `endpoint`.
pub async fn create_table(ctx: &Ctx, endpoint: &str, table: &str) -> anyhow::Result<Connection> {
    let mut conn = Connection::open(&Endpoint::parse(endpoint)?, ctx.signer.clone()).await?;
    ensure_table(&mut conn, table).await?;
    for (_, region) in ctx.regions()? {
        wait_table(&region, &ctx.signer, table, Duration::from_secs(30)).await?;
    }
    Ok(conn)
}

/// Waits until `table` is ACTIVE at `endpoint` (created elsewhere, arriving by replication).
async fn wait_table(
    endpoint: &str,
    signer: &Arc<Signer>,
    table: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    let mut conn = Connection::open(&Endpoint::parse(endpoint)?, signer.clone()).await?;
    let body = Bytes::from(serde_json::to_vec(&json!({ "TableName": table }))?);
    let end = Instant::now() + deadline;
    loop {
        let r = conn.call("DescribeTable", body.clone()).await?;
        if r.is_ok() {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            if v["Table"]["TableStatus"] == "ACTIVE" {
                return Ok(());
            }
        }
        if Instant::now() >= end {
            bail!("table {table} not ACTIVE at {endpoint} within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one pass of reads found.
#[derive(Debug, Clone, Default)]
pub struct ReadPass {
    /// Keys found.
    pub found: u64,
    /// Keys not found (key numbers).
    pub missing: Vec<u64>,
    /// How long the pass took.
    pub elapsed: Duration,
}

/// Reads every key of `keys` once, in key order, with `BatchGetItem` (100 keys per request)
/// over `connections` connections; `UnprocessedKeys` are asked for again.
pub async fn read_all(
    endpoint: &str,
    signer: &Arc<Signer>,
    table: &str,
    keys: Vec<u64>,
    connections: usize,
) -> anyhow::Result<ReadPass> {
    let t0 = Instant::now();
    let keys = Arc::new(keys);
    let next = Arc::new(AtomicU64::new(0));
    let endpoint = Endpoint::parse(endpoint)?;
    let mut tasks = JoinSet::new();
    for _ in 0..connections.max(1) {
        let conn = Connection::open(&endpoint, signer.clone()).await?;
        let (keys, next, table) = (keys.clone(), next.clone(), table.to_owned());
        tasks.spawn(read_task(conn, keys, next, table));
    }
    let mut pass = ReadPass::default();
    while let Some(joined) = tasks.join_next().await {
        let (found, missing) = joined.context("read task panicked")??;
        pass.found += found;
        pass.missing.extend(missing);
    }
    pass.missing.sort_unstable();
    pass.elapsed = t0.elapsed();
    Ok(pass)
}

async fn read_task(
    mut conn: Connection,
    keys: Arc<Vec<u64>>,
    next: Arc<AtomicU64>,
    table: String,
) -> anyhow::Result<(u64, Vec<u64>)> {
    let (mut found, mut missing) = (0u64, Vec::new());
    loop {
        let first = next.fetch_add(GET_BATCH, Ordering::Relaxed) as usize;
        let Some(chunk) = keys.get(first..(first + GET_BATCH as usize).min(keys.len())) else {
            return Ok((found, missing));
        };
        if chunk.is_empty() {
            return Ok((found, missing));
        }
        let mut want: Vec<u64> = chunk.to_vec();
        for _attempt in 0..50 {
            let body = json!({ "RequestItems": { &table: {
                "Keys": want.iter().map(|k| json!({"pk": {"S": format!("k{k}")}})).collect::<Vec<_>>(),
            }}});
            let r = conn
                .call("BatchGetItem", Bytes::from(serde_json::to_vec(&body)?))
                .await?;
            if !r.is_ok() {
                bail!("BatchGetItem: HTTP {} {}", r.status, r.body_text());
            }
            let v: Value = serde_json::from_slice(&r.body).context("BatchGetItem answer")?;
            for item in v["Responses"][&table].as_array().into_iter().flatten() {
                let Some(k) = item["pk"]["S"]
                    .as_str()
                    .and_then(|s| s.strip_prefix('k'))
                    .and_then(|n| n.parse::<u64>().ok())
                else {
                    continue;
                };
                if let Some(pos) = want.iter().position(|w| *w == k) {
                    want.swap_remove(pos);
                    found += 1;
                }
            }
            let unprocessed = v["UnprocessedKeys"][&table]["Keys"]
                .as_array()
                .map_or(0, Vec::len);
            if unprocessed == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        missing.extend(want);
    }
}

/// Sets the emulated one-way delay of every link of the cluster.
pub async fn set_all_delays(ctx: &Ctx, ms: u64) -> anyhow::Result<()> {
    let file = ctx.cluster.file()?;
    let links = faults::links(&file, None, None)?;
    faults::link_action_checked(&ctx.http, &file, &links, LinkAction::Delay(ms)).await?;
    Ok(())
}

/// Puts every link's delay back to the cluster's configured one.
pub async fn restore_delays(ctx: &Ctx) -> anyhow::Result<()> {
    let file = ctx.cluster.file()?;
    let links = faults::links(&file, None, None)?;
    faults::restore_delays(&ctx.http, &file, &links).await
}

/// `GET {endpoint}/admin/replication`.
pub async fn replication(http: &Http, endpoint: &str) -> anyhow::Result<Value> {
    let url = format!("{endpoint}/admin/replication");
    let r = http.get(&url).await?;
    if !r.ok() {
        bail!("GET {url}: HTTP {}", r.status);
    }
    Ok(r.json())
}

/// Clears every region's apply-lag histograms.
pub async fn reset_apply_lag(ctx: &Ctx) -> anyhow::Result<()> {
    for (_, endpoint) in ctx.regions()? {
        let url = format!("{endpoint}/admin/replication/reset-lag");
        let r = ctx.http.post_json(&url, None).await?;
        if !r.ok() {
            bail!("POST {url}: HTTP {}", r.status);
        }
    }
    Ok(())
}

/// Apply-lag percentiles of one directed link, as its receiver recorded them.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkLag {
    /// Sending region.
    pub from: String,
    /// Receiving region.
    pub to: String,
    /// Entries recorded.
    pub count: u64,
    /// Median, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Maximum, ms.
    pub max: f64,
    /// 99th percentile of the same entries' lag when their batch was received, before the
    /// apply, ms (`None` from a region that does not report it).
    pub received_p99: Option<f64>,
}

/// Every inbound link's apply-lag summary.
pub async fn apply_lag(ctx: &Ctx) -> anyhow::Result<Vec<LinkLag>> {
    let mut out = Vec::new();
    for (name, endpoint) in ctx.regions()? {
        let v = replication(&ctx.http, &endpoint).await?;
        out.extend(parse_apply_lag(&name, &v));
    }
    Ok(out)
}

/// The inbound links' `apply_lag_ms` of one region's `/admin/replication` answer.
pub fn parse_apply_lag(region: &str, v: &Value) -> Vec<LinkLag> {
    v["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["direction"] == "in")
        .filter_map(|l| {
            let lag = &l["apply_lag_ms"];
            Some(LinkLag {
                from: l["peer"].as_str()?.to_owned(),
                to: region.to_owned(),
                count: lag["count"].as_u64()?,
                p50: lag["p50"].as_f64()?,
                p99: lag["p99"].as_f64()?,
                max: lag["max"].as_f64()?,
                received_p99: l["receive_lag_ms"]["p99"].as_f64(),
            })
        })
        .collect()
}

/// Sequence positions of `region`'s outbound links: its change-log head and, per peer, the
/// highest sequence the peer acknowledged.
pub async fn outbound_positions(
    http: &Http,
    endpoint: &str,
) -> anyhow::Result<(u64, BTreeMap<String, u64>)> {
    let v = replication(http, endpoint).await?;
    Ok(parse_outbound_positions(&v))
}

/// Pure part of [`outbound_positions`].
pub fn parse_outbound_positions(v: &Value) -> (u64, BTreeMap<String, u64>) {
    let head = v["head"].as_u64().unwrap_or(0);
    let acked = v["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["direction"] == "out")
        .filter_map(|l| Some((l["peer"].as_str()?.to_owned(), l["acked_seq"].as_u64()?)))
        .collect();
    (head, acked)
}

/// Waits until every region's peers have acknowledged its whole change log (each outbound
/// link's acknowledged sequence has reached the region's head).
pub async fn wait_drained(ctx: &Ctx, deadline: Duration) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        let mut behind = Vec::new();
        for (name, endpoint) in ctx.regions()? {
            let (head, acked) = outbound_positions(&ctx.http, &endpoint).await?;
            for (peer, seq) in acked {
                if seq < head {
                    behind.push(format!("{name} → {peer} ({} entries)", head - seq));
                }
            }
        }
        if behind.is_empty() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() >= deadline {
            bail!(
                "replication not drained within {deadline:?}: {}",
                behind.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Draws the links' lag over time into `dir/file`.
pub fn plot_lag(
    dir: &Path,
    file: &str,
    title: &str,
    samples: &[Sample],
    bands: Vec<Band>,
) -> anyhow::Result<String> {
    let series = lag_series(samples);
    let end = samples.last().map_or(1, |s| s.t_ms);
    let svg = line_chart(&Chart {
        title: title.into(),
        y_label: "lag (ms)",
        series: &series,
        x_end_ms: end,
        y_max: None,
        bands,
        markers: Vec::new(),
    });
    let path = dir.join(file);
    std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    Ok(file.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_lag_is_read_from_inbound_links_only() {
        let v = json!({"links": [
            {"peer": "eu", "direction": "out", "acked_seq": 7},
            {"peer": "eu", "direction": "in",
             "apply_lag_ms": {"count": 10, "p50": 40, "p90": 50, "p99": 61, "p999": 70, "max": 72},
             "receive_lag_ms": {"count": 10, "p50": 39, "p90": 48, "p99": 57, "p999": 69, "max": 71}},
        ], "head": 9});
        let lags = parse_apply_lag("us", &v);
        assert_eq!(
            lags,
            vec![LinkLag {
                from: "eu".into(),
                to: "us".into(),
                count: 10,
                p50: 40.0,
                p99: 61.0,
                max: 72.0,
                received_p99: Some(57.0),
            }]
        );
        let (head, acked) = parse_outbound_positions(&v);
        assert_eq!(head, 9);
        assert_eq!(acked.get("eu"), Some(&7));
    }
}
