//! Reads what the invariants need from the regions: change-log heads and the versions of the
//! drill's writes (`GET /admin/changelog`), each region's final items (`Scan` with
//! `ConsistentRead`), table digests (`GET /admin/ae/digest`), replication counters
//! (`/metrics`); and creates the scenario's table.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use meridian_bench::client::{Connection, Endpoint};
use meridian_bench::sign::Signer;
use meridian_control::Http;
use meridian_core::Version;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::invariants::{ConvergenceObs, FinalItem, Finals, Versions};
use crate::sampler::{METRIC_FAMILIES, sum_metric};

/// Pages are bounded so a runaway log cannot loop forever.
const MAX_PAGES: usize = 10_000;
const CHANGELOG_PAGE: usize = 2_000;

fn signer() -> Arc<Signer> {
    let access = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "drill".into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "drill".into());
    Arc::new(Signer::new(&access, &secret, "us-east-1", "dynamodb"))
}

async fn connect(endpoint: &str) -> anyhow::Result<Connection> {
    let ep = Endpoint::parse(endpoint)?;
    tokio::time::timeout(Duration::from_secs(5), Connection::open(&ep, signer()))
        .await
        .with_context(|| format!("connecting to {endpoint}: timed out"))?
}

async fn call(conn: &mut Connection, op: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    let resp = tokio::time::timeout(
        Duration::from_secs(15),
        conn.call(op, Bytes::from(body.to_string())),
    )
    .await
    .with_context(|| format!("{op}: no answer within 15 s"))??;
    let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    Ok((resp.status, v))
}

/// Whether the region at `endpoint` has `table` `ACTIVE` (false when it cannot be asked).
pub async fn has_table(endpoint: &str, table: &str) -> bool {
    let Ok(mut conn) = connect(endpoint).await else {
        return false;
    };
    matches!(
        call(&mut conn, "DescribeTable", &json!({"TableName": table})).await,
        Ok((200, v)) if v["Table"]["TableStatus"] == "ACTIVE"
    )
}

/// Creates `table` (`pk` string key) in the first region and waits until every region has
/// it `ACTIVE` (the DDL replicates).
pub async fn create_table(
    regions: &[(String, String)],
    table: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    let Some((first, endpoint)) = regions.first() else {
        bail!("no regions");
    };
    let mut conn = connect(endpoint).await?;
    meridian_bench::table::ensure_table(&mut conn, table)
        .await
        .with_context(|| format!("creating {table} in {first}"))?;
    let end = Instant::now() + deadline;
    for (name, endpoint) in regions.iter().skip(1) {
        let mut conn = connect(endpoint).await?;
        loop {
            let (status, v) =
                call(&mut conn, "DescribeTable", &json!({"TableName": table})).await?;
            if status == 200 && v["Table"]["TableStatus"] == "ACTIVE" {
                break;
            }
            if Instant::now() >= end {
                bail!("{table} did not reach {name} within {deadline:?} (last: HTTP {status} {v})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Each region's change-log head.
pub async fn heads(
    http: &Http,
    regions: &[(String, String)],
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for (name, endpoint) in regions {
        let url = format!("{endpoint}/admin/changelog?from=1&limit=1");
        let r = http.get(&url).await.with_context(|| format!("GET {url}"))?;
        if !r.ok() {
            bail!("GET {url}: status {}", r.status);
        }
        out.insert(name.clone(), r.json()["head"].as_u64().unwrap_or(0));
    }
    Ok(out)
}

/// Write id → version, from every region's change log after `heads` (entries of `table`
/// only). Each write is logged by the region that accepted it (and by a star's hub, which
/// forwards it), always with the same version.
pub async fn versions(
    http: &Http,
    regions: &[(String, String)],
    heads: &BTreeMap<String, u64>,
    table: &str,
) -> anyhow::Result<Versions> {
    let mut out = Versions::new();
    for (name, endpoint) in regions {
        let mut from = heads.get(name).copied().unwrap_or(0) + 1;
        for page in 0.. {
            if page >= MAX_PAGES {
                bail!("{name}: change log longer than {MAX_PAGES} pages");
            }
            let url = format!("{endpoint}/admin/changelog?from={from}&limit={CHANGELOG_PAGE}");
            let r = http.get(&url).await.with_context(|| format!("GET {url}"))?;
            if !r.ok() {
                bail!("GET {url}: status {}", r.status);
            }
            let body = r.json();
            let entries = body["entries"].as_array().cloned().unwrap_or_default();
            let Some(last) = entries.last().and_then(|e| e["seq"].as_u64()) else {
                break;
            };
            for e in &entries {
                if e["table"] != table || e["op"] != "put" {
                    continue;
                }
                let Some(wid) = e["item"]["wid"]["S"].as_str() else {
                    continue;
                };
                let version: Version = serde_json::from_value(e["version"].clone())
                    .with_context(|| format!("{name}: change-log version {}", e["version"]))?;
                out.entry(wid.to_owned()).or_insert(version);
            }
            from = last + 1;
        }
    }
    Ok(out)
}

/// Every region's items of `table` (`Scan`, strongly consistent, all pages).
pub async fn finals(regions: &[(String, String)], table: &str) -> anyhow::Result<Finals> {
    let mut out = Finals::new();
    for (name, endpoint) in regions {
        let mut conn = connect(endpoint).await?;
        let mut items = BTreeMap::new();
        let mut start: Option<Value> = None;
        for page in 0.. {
            if page >= MAX_PAGES {
                bail!("{name}: scan longer than {MAX_PAGES} pages");
            }
            let mut body = json!({"TableName": table, "ConsistentRead": true});
            if let Some(k) = start.take() {
                body["ExclusiveStartKey"] = k;
            }
            let (status, v) = call(&mut conn, "Scan", &body).await?;
            if status != 200 {
                bail!("{name}: Scan {table}: HTTP {status} {v}");
            }
            for item in v["Items"].as_array().into_iter().flatten() {
                let Some(pk) = item["pk"]["S"].as_str() else {
                    continue;
                };
                items.insert(
                    pk.to_owned(),
                    FinalItem {
                        wid: item["wid"]["S"].as_str().map(str::to_owned),
                        count: item["cnt"]["N"].as_str().and_then(|n| n.parse().ok()),
                    },
                );
            }
            match v.get("LastEvaluatedKey") {
                Some(k) if !k.is_null() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.insert(name.clone(), items);
    }
    Ok(out)
}

/// Polls every region's digest of `table` until all are equal or `bound` passes; times are
/// measured from `since`.
pub async fn converge(
    http: &Http,
    regions: &[(String, String)],
    table: &str,
    since: Instant,
    bound: Duration,
) -> ConvergenceObs {
    let end = since + bound;
    let mut obs = ConvergenceObs {
        bound_ms: bound.as_millis() as u64,
        ..ConvergenceObs::default()
    };
    loop {
        for (name, endpoint) in regions {
            let url = format!("{endpoint}/admin/ae/digest?table={table}");
            let (digest, items) = match http.get(&url).await {
                Ok(r) if r.ok() => {
                    let v = r.json();
                    (
                        v["digest"].as_str().map(str::to_owned),
                        v["items"].as_u64().unwrap_or(0),
                    )
                }
                _ => (None, 0),
            };
            obs.digests.insert(name.clone(), digest);
            obs.items.insert(name.clone(), items);
        }
        let first = obs.digests.values().next().cloned().flatten();
        if first.is_some() && obs.digests.values().all(|d| *d == first) {
            obs.converged_after_ms = Some(since.elapsed().as_millis() as u64);
            return obs;
        }
        if Instant::now() >= end {
            return obs;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Replication counters summed over every region (regions that do not answer count 0).
pub async fn metric_sums(http: &Http, regions: &[(String, String)]) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = METRIC_FAMILIES
        .iter()
        .map(|f| ((*f).to_owned(), 0))
        .collect();
    for (_, endpoint) in regions {
        if let Ok(r) = http.get(&format!("{endpoint}/metrics")).await
            && r.ok()
        {
            let text = String::from_utf8_lossy(&r.body);
            for f in METRIC_FAMILIES {
                *out.entry(f.to_owned()).or_default() += sum_metric(&text, f);
            }
        }
    }
    out
}
