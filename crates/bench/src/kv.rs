//! The key-value workload: a `PutItem` phase, then a `GetItem` phase, over N connections.
//!
//! The two operations run as separate timed phases (like `redis-benchmark -t set,get`) so each
//! gets its own clean throughput figure. The put phase writes keys `k0, k1, …` in order
//! (wrapping at `--keys`), so the get phase can read random keys that all exist: every miss it
//! reports is a lost write (or a put that failed), never an unwritten key. An optional
//! unmeasured warm-up runs the same two phases first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

use crate::client::{Connection, Endpoint};
use crate::item::{Bodies, Rng, get_found};
use crate::report::{KvReport, OpReport, new_histogram};
use crate::sign::{SignArgs, Signer};
use crate::table::ensure_table;
use crate::wire::WireConn;

/// A request slower than this counts as an error and its connection is replaced; it also
/// bounds how far a phase can overrun its deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between reconnect attempts, so a dead server is not hammered in a hot loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// Options of `meridian bench kv`.
#[derive(clap::Args, Debug, Clone)]
pub struct KvArgs {
    /// DynamoDB-JSON endpoint, http://host:port.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub endpoint: String,
    /// Concurrent keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Load-generator threads the connections are spread over, each one event loop (like
    /// `redis-benchmark --threads`; one by default, as `redis-benchmark`).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Total measured time, split evenly between the PutItem and GetItem phases.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Size of the key space (k0 … k<K-1>).
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Length of the random string value of each item.
    #[arg(long, default_value_t = 180)]
    pub value_bytes: usize,
    /// Unmeasured time before the measured phases, split like --duration-secs: lets a JIT
    /// (DynamoDB Local, dynalite) compile its hot paths first.
    #[arg(long, default_value_t = 0)]
    pub warmup_secs: u64,
    /// Table to create (if missing) and use.
    #[arg(long, default_value = "bench")]
    pub table: String,
    /// Print the report as JSON instead of a markdown table.
    #[arg(long)]
    pub json: bool,
    /// Name of the target in the report (defaults to the endpoint).
    #[arg(long)]
    pub label: Option<String>,
    /// A header sent, unsigned, with every request (`NAME:VALUE`, repeatable), e.g. the
    /// gateway's `x-meridian-user` to pin the load to one user.
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// SigV4 credentials.
    #[command(flatten)]
    pub auth: SignArgs,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not NAME:VALUE"))?;
    let ok = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    let (name, value) = (name.trim(), value.trim());
    if !ok(name) || !ok(value) {
        return Err(format!("{s:?} is not a plain NAME:VALUE header"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// The operation a phase drives.
#[derive(Debug, Clone)]
enum Phase {
    /// Writes the next key of a shared counter, wrapping at `keys`.
    Put { next_key: Arc<AtomicU64>, keys: u64 },
    /// Reads a random key below `written`.
    Get { written: u64 },
}

impl Phase {
    fn operation(&self) -> &'static str {
        match self {
            Phase::Put { .. } => "PutItem",
            Phase::Get { .. } => "GetItem",
        }
    }

    fn body(&self, bodies: &Bodies, rng: &mut Rng) -> Bytes {
        match self {
            Phase::Put { next_key, keys } => {
                let key = next_key.fetch_add(1, Ordering::Relaxed) % keys;
                bodies.put_item(key, rng)
            }
            Phase::Get { written } => bodies.get_item(rng.below(*written)),
        }
    }
}

/// What one connection's task measured in one phase.
struct WorkerStats {
    hist: Histogram<u64>,
    errors: u64,
    misses: u64,
    first_error: Option<String>,
}

/// Everything a connection task needs; shared read-only by all of them.
struct Shared {
    endpoint: Endpoint,
    signer: Arc<Signer>,
    bodies: Bodies,
    headers: Vec<(String, String)>,
}

/// Creates the table, then runs the put and get phases and reports both.
pub async fn run_kv(args: &KvArgs) -> anyhow::Result<KvReport> {
    if args.connections == 0 || args.duration_secs == 0 || args.keys == 0 || args.threads == 0 {
        bail!("--connections, --threads, --duration-secs and --keys must be at least 1");
    }
    let shared = Arc::new(Shared {
        endpoint: Endpoint::parse(&args.endpoint)?,
        signer: Arc::new(args.auth.signer()),
        bodies: Bodies::new(&args.table, args.value_bytes)?,
        headers: args.headers.clone(),
    });

    let mut setup = Connection::open(&shared.endpoint, shared.signer.clone()).await?;
    ensure_table(&mut setup, &args.table).await?;
    drop(setup);

    let workers = Workers::start(
        &shared,
        args.connections,
        args.threads.min(args.connections),
    )
    .await?;
    let next_key = Arc::new(AtomicU64::new(0));
    if args.warmup_secs > 0 {
        let half = Duration::from_secs_f64(args.warmup_secs as f64 / 2.0);
        put_then_get(&workers, &next_key, args.keys, half, 1).await?;
    }
    let half = Duration::from_secs_f64(args.duration_secs as f64 / 2.0);
    let [put_report, get_report] = put_then_get(&workers, &next_key, args.keys, half, 3).await?;
    workers.stop();

    Ok(KvReport {
        target: args.label.clone().unwrap_or_else(|| args.endpoint.clone()),
        endpoint: args.endpoint.clone(),
        connections: args.connections,
        warmup_secs: args.warmup_secs,
        duration_secs: args.duration_secs,
        keys: args.keys,
        value_bytes: args.value_bytes,
        ops: vec![put_report, get_report],
    })
}

/// A put phase, then a get phase over the keys written so far, `time` each. `seed` and
/// `seed + 1` seed the phases.
async fn put_then_get(
    workers: &Workers,
    next_key: &Arc<AtomicU64>,
    keys: u64,
    time: Duration,
    seed: u64,
) -> anyhow::Result<[OpReport; 2]> {
    let put = Phase::Put {
        next_key: next_key.clone(),
        keys,
    };
    let put_report = workers.run_phase(put, time, seed).await?;
    let written = next_key.load(Ordering::Relaxed).min(keys);
    if written == 0 {
        bail!(
            "no PutItem was sent; first error: {}",
            put_report.first_error.as_deref().unwrap_or("none")
        );
    }
    let get = Phase::Get { written };
    let get_report = workers.run_phase(get, time, seed + 1).await?;
    Ok([put_report, get_report])
}

/// One phase for one load-generator thread.
struct PhaseCmd {
    phase: Phase,
    deadline: std::time::Instant,
    seed: u64,
    reply: tokio::sync::oneshot::Sender<anyhow::Result<Vec<WorkerStats>>>,
}

/// The load-generator threads. Each owns its connections for the whole run and drives them on
/// a single-threaded runtime: no work stealing, no cross-thread wake-ups, like
/// `redis-benchmark`'s event loop.
struct Workers {
    commands: Vec<std::sync::mpsc::Sender<PhaseCmd>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Starts `threads` threads sharing `connections` connections, each opened before this
    /// returns.
    async fn start(
        shared: &Arc<Shared>,
        connections: usize,
        threads: usize,
    ) -> anyhow::Result<Self> {
        let mut workers = Workers {
            commands: Vec::new(),
            threads: Vec::new(),
        };
        let mut ready = Vec::new();
        for t in 0..threads {
            // Connection i goes to thread i mod threads.
            let ids: Vec<usize> = (t..connections).step_by(threads).collect();
            let (tx, rx) = std::sync::mpsc::channel();
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("bench-load-{t}"))
                .spawn(move || worker_thread(shared, ids, rx, ready_tx))
                .context("starting a load-generator thread")?;
            workers.commands.push(tx);
            workers.threads.push(handle);
            ready.push(ready_rx);
        }
        for r in ready {
            r.await.context("a load-generator thread stopped")??;
        }
        Ok(workers)
    }

    /// Drives `phase` on every connection for `time`, then merges what they measured.
    async fn run_phase(&self, phase: Phase, time: Duration, seed: u64) -> anyhow::Result<OpReport> {
        let start = Instant::now();
        let deadline = std::time::Instant::now() + time;
        let mut replies = Vec::new();
        for tx in &self.commands {
            let (reply, rx) = tokio::sync::oneshot::channel();
            tx.send(PhaseCmd {
                phase: phase.clone(),
                deadline,
                seed,
                reply,
            })
            .map_err(|_| anyhow::anyhow!("a load-generator thread stopped"))?;
            replies.push(rx);
        }
        let mut hist = new_histogram()?;
        let (mut errors, mut misses, mut first_error) = (0, 0, None);
        for rx in replies {
            for stats in rx.await.context("a load-generator thread stopped")?? {
                hist.add(&stats.hist)?;
                errors += stats.errors;
                misses += stats.misses;
                first_error = first_error.or(stats.first_error);
            }
        }
        let report = OpReport::new(
            phase.operation(),
            &hist,
            errors,
            misses,
            start.elapsed(),
            first_error,
        );
        if let Some(error) = &report.first_error {
            eprintln!("{}: {} errors; first: {error}", report.op, report.errors);
        }
        Ok(report)
    }

    fn stop(self) {
        drop(self.commands);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// A load-generator thread: opens its connections, then runs each phase it is sent.
fn worker_thread(
    shared: Arc<Shared>,
    ids: Vec<usize>,
    commands: std::sync::mpsc::Receiver<PhaseCmd>,
    ready: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return;
        }
    };
    let opened: anyhow::Result<Vec<Option<WireConn>>> = runtime.block_on(async {
        let mut conns = Vec::with_capacity(ids.len());
        for _ in &ids {
            conns.push(Some(
                WireConn::open(&shared.endpoint)
                    .await?
                    .with_headers(&shared.headers),
            ));
        }
        Ok(conns)
    });
    let mut conns = match opened {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    while let Ok(cmd) = commands.recv() {
        let deadline = tokio::time::Instant::from_std(cmd.deadline);
        let result = runtime.block_on(async {
            let mut tasks = JoinSet::new();
            for (conn, id) in conns.drain(..).zip(&ids) {
                let rng = Rng::new(cmd.seed << 32 | *id as u64);
                tasks.spawn(drive(
                    shared.clone(),
                    conn,
                    cmd.phase.clone(),
                    deadline,
                    rng,
                ));
            }
            let mut stats = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                let (conn, s) = joined.context("benchmark task panicked")??;
                conns.push(conn);
                stats.push(s);
            }
            Ok(stats)
        });
        let _ = cmd.reply.send(result);
    }
}

/// One connection's loop: send, time, repeat until `deadline`. A broken connection counts one
/// error and is reopened.
async fn drive(
    shared: Arc<Shared>,
    mut conn: Option<WireConn>,
    phase: Phase,
    deadline: Instant,
    mut rng: Rng,
) -> anyhow::Result<(Option<WireConn>, WorkerStats)> {
    let mut stats = WorkerStats {
        hist: new_histogram()?,
        errors: 0,
        misses: 0,
        first_error: None,
    };
    let operation = phase.operation();
    while Instant::now() < deadline {
        let Some(open) = conn.as_mut().filter(|c| !c.is_closed()) else {
            match WireConn::open(&shared.endpoint).await {
                Ok(c) => conn = Some(c.with_headers(&shared.headers)),
                Err(e) => {
                    stats.error(format!("reconnect: {e:#}"));
                    sleep(RECONNECT_PAUSE).await;
                }
            }
            continue;
        };
        let body = phase.body(&shared.bodies, &mut rng);
        let sent = Instant::now();
        match timeout(REQUEST_TIMEOUT, open.call(&shared.signer, operation, &body)).await {
            Ok(Ok((200, response))) => {
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                stats.hist.saturating_record(micros.max(1));
                if matches!(phase, Phase::Get { .. }) && !get_found(response) {
                    stats.misses += 1;
                }
            }
            Ok(Ok((status, response))) => {
                let text = String::from_utf8_lossy(response).into_owned();
                stats.error(format!("HTTP {status}: {text}"));
            }
            Ok(Err(e)) => {
                stats.error(format!("{e:#}"));
                conn = None;
            }
            Err(_) => {
                stats.error(format!("no response within {REQUEST_TIMEOUT:?}"));
                conn = None;
            }
        }
    }
    Ok((conn, stats))
}

impl WorkerStats {
    fn error(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }
}
