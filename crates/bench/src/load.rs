//! The bulk-load workload: write keys `k<start> … k<start+keys-1>` once, with `BatchWriteItem`
//! (25 puts per request, DynamoDB's limit), over N keep-alive connections.
//!
//! Used to fill a table before measuring something that needs data at rest — e.g. the region
//! server's resident memory after 1M items (`scripts/bench-rss.sh`). The items are the same
//! shape as [`crate::kv`]'s (`{"pk":{"S":"k<N>"},"v":{"S":"<random text>"}}`), so a later
//! `meridian bench kv --keys <same>` reads keys that all exist.
//!
//! `UnprocessedItems` are sent again (with a short backoff) until every item is written, and a
//! `ThrottlingException` (HTTP 400) is retried likewise; any other error aborts the load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::client::{Connection, Endpoint, Response};
use crate::item::{Bodies, Rng};
use crate::report::new_histogram;
use crate::sign::{SignArgs, Signer};
use crate::table::ensure_table;

/// DynamoDB's limit on the writes in one `BatchWriteItem`.
pub const MAX_BATCH: usize = 25;
/// A batch slower than this aborts the load.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Give up on a batch after this many rounds of unprocessed items or throttling.
const MAX_RETRIES: u32 = 50;

/// Options of `meridian bench load`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// DynamoDB-JSON endpoint, http://host:port.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub endpoint: String,
    /// Concurrent keep-alive connections, one batch in flight on each.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Number of items to write (keys k<start-key> … k<start-key + keys - 1>).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// First key number.
    #[arg(long, default_value_t = 0)]
    pub start_key: u64,
    /// Length of the random string value of each item (180 → ~200 B items).
    #[arg(long, default_value_t = 180)]
    pub value_bytes: usize,
    /// Puts per BatchWriteItem (1–25).
    #[arg(long, default_value_t = MAX_BATCH)]
    pub batch: usize,
    /// Table to create (if missing) and fill.
    #[arg(long, default_value = "bench")]
    pub table: String,
    /// Pace the load at this many items per second (open loop: batch N is sent no earlier than
    /// N × batch / rate seconds after the start); as fast as possible when unset.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Print the report as JSON instead of one line of text.
    #[arg(long)]
    pub json: bool,
    /// Name of the target in the report (defaults to the endpoint).
    #[arg(long)]
    pub label: Option<String>,
    /// SigV4 credentials.
    #[command(flatten)]
    pub auth: SignArgs,
}

/// What a load measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub target: String,
    pub endpoint: String,
    pub connections: usize,
    pub table: String,
    /// Items written (each acknowledged by the server).
    pub items: u64,
    pub value_bytes: usize,
    /// Approximate size of one item (`pk` + `v` names and values), bytes.
    pub item_bytes: usize,
    /// `BatchWriteItem` requests sent, retries included.
    pub requests: u64,
    /// Items the server handed back as `UnprocessedItems` (and were sent again).
    pub unprocessed_retried: u64,
    /// Requests answered with `ThrottlingException` (and sent again).
    pub throttled: u64,
    pub elapsed_secs: f64,
    pub items_per_sec: f64,
    /// Latency of one `BatchWriteItem`, µs.
    pub batch_p50_us: u64,
    pub batch_p99_us: u64,
    pub batch_max_us: u64,
}

impl LoadReport {
    /// The report as pretty JSON or as one line of text.
    pub fn render(&self, json: bool) -> anyhow::Result<String> {
        if json {
            return Ok(serde_json::to_string_pretty(self)?);
        }
        Ok(format!(
            "{}: {} items of ~{} B in {:.1} s ({:.0} items/s) over {} connections; \
             {} BatchWriteItem requests, p50 {} µs, p99 {} µs, max {} µs; \
             {} unprocessed items retried, {} throttled",
            self.target,
            self.items,
            self.item_bytes,
            self.elapsed_secs,
            self.items_per_sec,
            self.connections,
            self.requests,
            self.batch_p50_us,
            self.batch_p99_us,
            self.batch_max_us,
            self.unprocessed_retried,
            self.throttled,
        ))
    }
}

/// Counters shared by all connection tasks.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    unprocessed: AtomicU64,
    throttled: AtomicU64,
}

struct Shared {
    endpoint: Endpoint,
    signer: Arc<Signer>,
    bodies: Bodies,
    /// Next unclaimed key offset (relative to `start_key`).
    next: AtomicU64,
    start_key: u64,
    keys: u64,
    batch: u64,
    counters: Counters,
    /// Items per second, when paced.
    rate: Option<u64>,
    /// When the timed load began (for pacing).
    start: Instant,
}

/// Creates the table, then writes every key once and reports how long it took.
pub async fn run_load(args: &LoadArgs) -> anyhow::Result<LoadReport> {
    if args.connections == 0 || args.keys == 0 {
        bail!("--connections and --keys must be at least 1");
    }
    if !(1..=MAX_BATCH).contains(&args.batch) {
        bail!("--batch must be between 1 and {MAX_BATCH}");
    }
    if args.rate == Some(0) {
        bail!("--rate must be at least 1 item per second");
    }
    let endpoint = Endpoint::parse(&args.endpoint)?;
    let signer = Arc::new(args.auth.signer());
    let mut setup = Connection::open(&endpoint, signer.clone()).await?;
    ensure_table(&mut setup, &args.table).await?;
    drop(setup);

    let start = Instant::now();
    let shared = Arc::new(Shared {
        endpoint,
        signer,
        bodies: Bodies::new(&args.table, args.value_bytes)?,
        next: AtomicU64::new(0),
        start_key: args.start_key,
        keys: args.keys,
        batch: args.batch as u64,
        counters: Counters::default(),
        rate: args.rate,
        start,
    });
    let mut tasks = JoinSet::new();
    for i in 0..args.connections {
        let conn = Connection::open(&shared.endpoint, shared.signer.clone()).await?;
        tasks.spawn(drive(
            shared.clone(),
            conn,
            Rng::new(0x10ad << 32 | i as u64),
        ));
    }
    let mut hist = new_histogram()?;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.context("load task panicked")? {
            Ok(h) => hist.add(&h)?,
            Err(e) => {
                // Stop the others at once: the load cannot complete.
                shared.next.store(u64::MAX / 2, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let c = &shared.counters;
    Ok(LoadReport {
        target: args.label.clone().unwrap_or_else(|| args.endpoint.clone()),
        endpoint: args.endpoint.clone(),
        connections: args.connections,
        table: args.table.clone(),
        items: args.keys,
        value_bytes: args.value_bytes,
        item_bytes: shared.bodies.item_bytes(args.start_key + args.keys - 1),
        requests: c.requests.load(Ordering::Relaxed),
        unprocessed_retried: c.unprocessed.load(Ordering::Relaxed),
        throttled: c.throttled.load(Ordering::Relaxed),
        elapsed_secs: elapsed,
        items_per_sec: if elapsed > 0.0 {
            args.keys as f64 / elapsed
        } else {
            0.0
        },
        batch_p50_us: hist.value_at_quantile(0.50),
        batch_p99_us: hist.value_at_quantile(0.99),
        batch_max_us: hist.max(),
    })
}

/// One connection's loop: claim the next `batch` keys, write them until none is unprocessed.
async fn drive(
    shared: Arc<Shared>,
    mut conn: Connection,
    mut rng: Rng,
) -> anyhow::Result<Histogram<u64>> {
    let mut hist = new_histogram()?;
    loop {
        let first = shared.next.fetch_add(shared.batch, Ordering::Relaxed);
        if first >= shared.keys {
            return Ok(hist);
        }
        if let Some(rate) = shared.rate {
            sleep_until(shared.start + Duration::from_secs_f64(first as f64 / rate as f64)).await;
        }
        let last = (first + shared.batch).min(shared.keys);
        let keys = (shared.start_key + first)..(shared.start_key + last);
        let mut body = shared.bodies.batch_write_item(keys, &mut rng);
        let mut attempt = 0u32;
        loop {
            let sent = Instant::now();
            shared.counters.requests.fetch_add(1, Ordering::Relaxed);
            let response = timeout(REQUEST_TIMEOUT, conn.call("BatchWriteItem", body))
                .await
                .map_err(|_| anyhow::anyhow!("BatchWriteItem: no answer in {REQUEST_TIMEOUT:?}"))?
                .context("BatchWriteItem")?;
            let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
            hist.saturating_record(micros.max(1));
            let retry = match next_attempt(&response)? {
                None => break,
                Some(Retry::Throttled(again)) => {
                    shared.counters.throttled.fetch_add(1, Ordering::Relaxed);
                    again
                }
                Some(Retry::Unprocessed(again, n)) => {
                    shared.counters.unprocessed.fetch_add(n, Ordering::Relaxed);
                    again
                }
            };
            attempt += 1;
            if attempt > MAX_RETRIES {
                bail!("BatchWriteItem still not fully processed after {MAX_RETRIES} retries");
            }
            // Exponential backoff from 1 ms, capped at ~0.25 s.
            sleep(Duration::from_millis(1 << attempt.min(8))).await;
            body = match retry {
                Some(unprocessed) => unprocessed,
                None => body_again(&shared, first, last, &mut rng),
            };
        }
    }
}

/// The body of the same batch again (after a throttled request, whose body was consumed).
fn body_again(shared: &Shared, first: u64, last: u64, rng: &mut Rng) -> Bytes {
    shared
        .bodies
        .batch_write_item((shared.start_key + first)..(shared.start_key + last), rng)
}

/// Why a batch is sent again. `None` inside: resend the whole batch.
enum Retry {
    Throttled(Option<Bytes>),
    Unprocessed(Option<Bytes>, u64),
}

/// Reads a `BatchWriteItem` answer: done, or what to send again.
fn next_attempt(response: &Response) -> anyhow::Result<Option<Retry>> {
    if !response.is_ok() {
        if response.status == 400 && response.body_text().contains("ThrottlingException") {
            return Ok(Some(Retry::Throttled(None)));
        }
        bail!(
            "BatchWriteItem failed with HTTP {}: {}",
            response.status,
            response.body_text()
        );
    }
    let value: Value = serde_json::from_slice(&response.body)
        .with_context(|| format!("BatchWriteItem answer: {}", response.body_text()))?;
    let Some(unprocessed) = value.get("UnprocessedItems").and_then(Value::as_object) else {
        return Ok(None);
    };
    let n: u64 = unprocessed
        .values()
        .filter_map(Value::as_array)
        .map(|a| a.len() as u64)
        .sum();
    if n == 0 {
        return Ok(None);
    }
    let body = serde_json::to_vec(&serde_json::json!({ "RequestItems": unprocessed }))?;
    Ok(Some(Retry::Unprocessed(Some(Bytes::from(body)), n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Response {
        Response {
            status: 200,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn complete_batches_need_no_retry() -> anyhow::Result<()> {
        assert!(next_attempt(&ok(r#"{"UnprocessedItems":{}}"#))?.is_none());
        assert!(next_attempt(&ok("{}"))?.is_none());
        Ok(())
    }

    #[test]
    fn unprocessed_items_are_sent_again() -> anyhow::Result<()> {
        let answer =
            r#"{"UnprocessedItems":{"bench":[{"PutRequest":{"Item":{"pk":{"S":"k1"}}}}]}}"#;
        let Some(Retry::Unprocessed(Some(body), 1)) = next_attempt(&ok(answer))? else {
            bail!("expected one unprocessed item");
        };
        let value: Value = serde_json::from_slice(&body)?;
        assert_eq!(
            value["RequestItems"]["bench"][0]["PutRequest"]["Item"]["pk"]["S"],
            "k1"
        );
        Ok(())
    }

    #[test]
    fn throttling_is_retried_and_other_errors_abort() -> anyhow::Result<()> {
        let throttled = Response {
            status: 400,
            body: Bytes::from_static(
                br#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"}"#,
            ),
        };
        assert!(matches!(
            next_attempt(&throttled)?,
            Some(Retry::Throttled(None))
        ));
        let invalid = Response {
            status: 400,
            body: Bytes::from_static(
                br#"{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException"}"#,
            ),
        };
        assert!(next_attempt(&invalid).is_err());
        Ok(())
    }
}
