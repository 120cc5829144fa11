//! Repair against a peer over its HTTP admin endpoints.

use crate::digest::{bucket_states, table_digest};
use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meridian_auth::AdminToken;
use meridian_storage::record::{decode_change, encode_change};
use meridian_storage::{ChangeEntry, Store};
use serde::Serialize;
use serde_json::{Value, json};

/// What a repair did, per table.
#[derive(Debug, Default, Serialize)]
pub struct RepairReport {
    /// Tables compared.
    pub tables: Vec<TableRepair>,
}

/// What a repair did for one table.
#[derive(Debug, Default, Serialize)]
pub struct TableRepair {
    /// Table name.
    pub table: String,
    /// Buckets whose digests differed.
    pub buckets_differing: usize,
    /// States taken from the peer (applied here).
    pub repaired_here: u64,
    /// States sent to the peer and applied there.
    pub repaired_there: u64,
    /// Whether the two copies are identical afterwards (digests equal).
    pub converged: bool,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A client of the peer's admin endpoints, presenting the admin token when there is one.
struct PeerClient {
    client: HttpClient,
    bearer: Option<String>,
}

async fn call(
    peer: &PeerClient,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(b) = &peer.bearer {
        req = req.header("authorization", b);
    }
    let req = req.body(Full::new(Bytes::from(
        body.map(|b| b.to_string()).unwrap_or_default(),
    )))?;
    let resp = peer
        .client
        .request(req)
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(anyhow!(
            "{method} {url}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// Encodes states for the wire (base64 of the change-record bytes).
pub(crate) fn encode_states(states: &[ChangeEntry]) -> Value {
    Value::Array(
        states
            .iter()
            .map(|s| Value::from(B64.encode(encode_change(s))))
            .collect(),
    )
}

/// Decodes states sent by [`encode_states`].
pub(crate) fn decode_states(v: &Value) -> anyhow::Result<Vec<ChangeEntry>> {
    v.as_array()
        .ok_or_else(|| anyhow!("entries must be a list"))?
        .iter()
        .map(|e| {
            let b = B64.decode(
                e.as_str()
                    .ok_or_else(|| anyhow!("entry must be a string"))?,
            )?;
            Ok(decode_change(0, &b)?)
        })
        .collect()
}

fn digests_from(v: &Value) -> anyhow::Result<Vec<[u8; 32]>> {
    v.get("buckets")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("digest without buckets"))?
        .iter()
        .map(|h| {
            let b = hex::decode(h.as_str().unwrap_or_default())?;
            b.try_into().map_err(|_| anyhow!("bad digest length"))
        })
        .collect()
}

/// Compares `tables` (all local tables if empty) with the region whose endpoint is `peer` and
/// repairs both sides, presenting `token` to its admin endpoints. The peer's copy of each table
/// must exist.
pub async fn run_repair(
    store: &Store,
    peer: &str,
    token: Option<&AdminToken>,
    tables: &[String],
) -> anyhow::Result<RepairReport> {
    let client = PeerClient {
        client: Client::builder(TokioExecutor::new()).build_http(),
        bearer: token.map(AdminToken::bearer),
    };
    let peer = peer.trim_end_matches('/');
    let names: Vec<String> = if tables.is_empty() {
        store.table_names()
    } else {
        tables.to_vec()
    };
    let mut report = RepairReport::default();
    for name in names {
        let table = store
            .table(&name)
            .ok_or_else(|| anyhow!("no table {name} here"))?;
        let (s, t) = (store.clone(), table.clone());
        let local = tokio::task::spawn_blocking(move || table_digest(&s, &t)).await??;
        let remote = call(
            &client,
            "GET",
            &format!("{peer}/admin/ae/digest?table={name}"),
            None,
        )
        .await?;
        let differing = local.differing(&digests_from(&remote)?);
        let mut tr = TableRepair {
            table: name.clone(),
            buckets_differing: differing.len(),
            ..TableRepair::default()
        };
        for bucket in differing {
            let theirs = call(
                &client,
                "GET",
                &format!("{peer}/admin/ae/bucket?table={name}&bucket={bucket}"),
                None,
            )
            .await?;
            let theirs = decode_states(theirs.get("entries").unwrap_or(&Value::Null))?;
            let (s, t) = (store.clone(), table.clone());
            let ours = tokio::task::spawn_blocking(move || bucket_states(&s, &t, bucket)).await??;
            // Each side applies the other's states; stale ones are ignored by merge/LWW.
            let here = store.repair(theirs).await?;
            tr.repaired_here += here.applied;
            let there = call(
                &client,
                "POST",
                &format!("{peer}/admin/ae/apply?table={name}"),
                Some(json!({"entries": encode_states(&ours)})),
            )
            .await?;
            tr.repaired_there += there.get("applied").and_then(Value::as_u64).unwrap_or(0);
        }
        let (s, t) = (store.clone(), table.clone());
        let after = tokio::task::spawn_blocking(move || table_digest(&s, &t)).await??;
        let remote_after = call(
            &client,
            "GET",
            &format!("{peer}/admin/ae/digest?table={name}"),
            None,
        )
        .await?;
        tr.converged = after.differing(&digests_from(&remote_after)?).is_empty();
        report.tables.push(tr);
    }
    Ok(report)
}
