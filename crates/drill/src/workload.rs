//! The drill's clients: tasks that write and read through the gateway (one pinned user per
//! region) and directly to each region, paced, each request recorded in the ledger.
//!
//! Keys: `k<client>-<n>` are written once (by one client), `hot-<i>` are written by every
//! client (conflicts), `ctr-<i>` only take `ADD cnt :one` (counters). Every put carries a
//! unique write id `wid`, so the invariants can tell which write an item holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use meridian_bench::client::{Connection, Endpoint};
use meridian_bench::item::Rng;
use meridian_bench::sign::Signer;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::ledger::{OpKind, Outcome, Request, Seen, classify, error_type};
use crate::spec::USER_HEADER;

/// What the writers mostly do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mix {
    /// 70 % new keys, 20 % eight hot keys, 10 % increments of four counters.
    Normal = 0,
    /// 85 % four hot keys written by every client, 15 % increments.
    Hot = 1,
    /// 90 % increments of eight counters, 10 % new keys.
    Counters = 2,
}

impl Mix {
    fn from_u8(v: u8) -> Mix {
        match v {
            1 => Mix::Hot,
            2 => Mix::Counters,
            _ => Mix::Normal,
        }
    }
}

/// How many clients, how fast.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// The table written.
    pub table: String,
    /// The gateway's endpoint URL.
    pub gateway: String,
    /// Users the gateway pins (one gateway writer set per user; none: unpinned writers).
    pub users: Vec<String>,
    /// Region name and endpoint URL, for the direct clients.
    pub regions: Vec<(String, String)>,
    /// Gateway writers per user.
    pub gateway_writers_per_user: usize,
    /// Direct writers per region.
    pub direct_writers_per_region: usize,
    /// Readers through the gateway.
    pub readers: usize,
    /// Time between two requests of one client.
    pub pace: Duration,
    /// A request not answered within this is given up (ambiguous for a write).
    pub timeout: Duration,
    /// Seed of the clients' choices.
    pub seed: u64,
}

/// Where one client sends.
#[derive(Debug, Clone)]
struct ClientSpec {
    index: usize,
    via_gateway: bool,
    /// User (gateway) or region (direct).
    target: String,
    endpoint: String,
    reader: bool,
}

/// A running workload.
pub struct Workload {
    stop: watch::Sender<bool>,
    mix: Arc<AtomicU8>,
    tasks: Vec<JoinHandle<Vec<Request>>>,
}

impl Workload {
    /// Starts every client; times are recorded relative to `t0`.
    pub fn start(cfg: &WorkloadConfig, t0: Instant) -> anyhow::Result<Workload> {
        let (stop, stop_rx) = watch::channel(false);
        let mix = Arc::new(AtomicU8::new(Mix::Normal as u8));
        let access = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "drill".into());
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "drill".into());
        let signer = Arc::new(Signer::new(&access, &secret, "us-east-1", "dynamodb"));
        let mut specs = Vec::new();
        let users: Vec<String> = if cfg.users.is_empty() {
            vec![String::new()]
        } else {
            cfg.users.clone()
        };
        for user in &users {
            for _ in 0..cfg.gateway_writers_per_user {
                specs.push((true, user.clone(), cfg.gateway.clone(), false));
            }
        }
        for (name, endpoint) in &cfg.regions {
            for _ in 0..cfg.direct_writers_per_region {
                specs.push((false, name.clone(), endpoint.clone(), false));
            }
        }
        for i in 0..cfg.readers {
            let user = users.get(i % users.len()).cloned().unwrap_or_default();
            specs.push((true, user, cfg.gateway.clone(), true));
        }
        let mut tasks = Vec::with_capacity(specs.len());
        for (index, (via_gateway, target, endpoint, reader)) in specs.into_iter().enumerate() {
            let spec = ClientSpec {
                index,
                via_gateway,
                target,
                endpoint,
                reader,
            };
            let endpoint = Endpoint::parse(&spec.endpoint)?;
            let client = Client {
                spec,
                endpoint,
                signer: signer.clone(),
                conn: None,
                table: cfg.table.clone(),
                timeout: cfg.timeout,
                t0,
                rng: Rng::new(cfg.seed ^ ((index as u64 + 1) << 32)),
            };
            tasks.push(tokio::spawn(client.run(
                cfg.pace,
                stop_rx.clone(),
                mix.clone(),
            )));
        }
        Ok(Workload { stop, mix, tasks })
    }

    /// Switches what the writers do.
    pub fn set_mix(&self, mix: Mix) {
        self.mix.store(mix as u8, Ordering::Relaxed);
    }

    /// Stops every client (each finishes its request in flight, bounded by the request
    /// timeout) and returns the ledger, ordered by start time.
    pub async fn stop(self) -> Vec<Request> {
        let _ = self.stop.send(true);
        let mut all = Vec::new();
        for t in self.tasks {
            if let Ok(records) = t.await {
                all.extend(records);
            }
        }
        all.sort_by_key(|r| (r.start_ms, r.end_ms));
        all
    }
}

struct Client {
    spec: ClientSpec,
    endpoint: Endpoint,
    signer: Arc<Signer>,
    conn: Option<Connection>,
    table: String,
    timeout: Duration,
    t0: Instant,
    rng: Rng,
}

/// One chosen request.
struct Planned {
    op: OpKind,
    key: String,
    wid: Option<String>,
    user: Option<String>,
    body: Bytes,
}

impl Client {
    async fn run(
        mut self,
        pace: Duration,
        mut stop: watch::Receiver<bool>,
        mix: Arc<AtomicU8>,
    ) -> Vec<Request> {
        let mut out = Vec::new();
        let mut tick = tokio::time::interval(pace);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Clients start spread over one pace interval, not in lock step.
        let offset = pace.mul_f64(self.rng.below(1000) as f64 / 1000.0);
        tokio::time::sleep(offset).await;
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                // Stopped, or the workload was dropped (an error path): either way, stop.
                changed = stop.changed() => if changed.is_err() { break },
                _ = tick.tick() => {}
            }
            if *stop.borrow() {
                break;
            }
            n += 1;
            let planned = self.plan(n, Mix::from_u8(mix.load(Ordering::Relaxed)));
            out.push(self.send(planned).await);
        }
        out
    }

    fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    fn plan(&mut self, n: u64, mix: Mix) -> Planned {
        let i = self.spec.index;
        let user = (self.spec.via_gateway && !self.spec.target.is_empty())
            .then(|| self.spec.target.clone());
        if self.spec.reader {
            let key = if self.rng.below(2) == 0 {
                format!("hot-{}", self.rng.below(8))
            } else {
                format!("ctr-{}", self.rng.below(8))
            };
            let body = json!({"TableName": self.table, "Key": {"pk": {"S": key}}});
            return Planned {
                op: OpKind::Get,
                key,
                wid: None,
                user,
                body: Bytes::from(body.to_string()),
            };
        }
        let roll = self.rng.below(100);
        let (op, key) = match mix {
            Mix::Normal if roll < 70 => (OpKind::Put, format!("k{i}-{n}")),
            Mix::Normal if roll < 90 => (OpKind::Put, format!("hot-{}", self.rng.below(8))),
            Mix::Normal => (OpKind::Add, format!("ctr-{}", self.rng.below(4))),
            Mix::Hot if roll < 85 => (OpKind::Put, format!("hot-{}", self.rng.below(4))),
            Mix::Hot => (OpKind::Add, format!("ctr-{}", self.rng.below(4))),
            Mix::Counters if roll < 90 => (OpKind::Add, format!("ctr-{}", self.rng.below(8))),
            Mix::Counters => (OpKind::Put, format!("k{i}-{n}")),
        };
        let (wid, body) = match op {
            OpKind::Put => {
                let wid = format!("w{i}-{n}");
                let body = json!({
                    "TableName": self.table,
                    "Item": {
                        "pk": {"S": key},
                        "wid": {"S": wid},
                        "by": {"S": format!("{}:{}", if self.spec.via_gateway { "gateway" } else { "direct" }, self.spec.target)},
                        "n": {"N": n.to_string()},
                    },
                });
                (Some(wid), body)
            }
            _ => (
                None,
                json!({
                    "TableName": self.table,
                    "Key": {"pk": {"S": key}},
                    "UpdateExpression": "ADD cnt :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }),
            ),
        };
        Planned {
            op,
            key,
            wid,
            user,
            body: Bytes::from(body.to_string()),
        }
    }

    async fn send(&mut self, p: Planned) -> Request {
        let start_ms = self.ms();
        let operation = match p.op {
            OpKind::Put => "PutItem",
            OpKind::Add => "UpdateItem",
            OpKind::Get => "GetItem",
        };
        let (seen, served_by, error) = self.attempt(operation, p.body, p.user.as_deref()).await;
        let outcome = classify(p.op, &seen);
        let served_by = match (outcome, self.spec.via_gateway) {
            (Outcome::Ok, false) => Some(self.spec.target.clone()),
            _ => served_by,
        };
        Request {
            via_gateway: self.spec.via_gateway,
            target: self.spec.target.clone(),
            op: p.op,
            key: p.key,
            wid: p.wid,
            start_ms,
            end_ms: self.ms(),
            outcome,
            served_by,
            error,
        }
    }

    /// One attempt: (what was seen, the region that answered, an error description).
    async fn attempt(
        &mut self,
        operation: &str,
        body: Bytes,
        user: Option<&str>,
    ) -> (Seen, Option<String>, Option<String>) {
        let c = call(
            &mut self.conn,
            &self.endpoint,
            &self.signer,
            self.timeout,
            operation,
            body,
            user,
        )
        .await;
        (c.seen, c.region, c.error)
    }
}

/// What one request saw.
pub(crate) struct Call {
    /// The answer, or how it failed.
    pub seen: Seen,
    /// The region that answered (the gateway's `x-meridian-region`).
    pub region: Option<String>,
    /// A short error description.
    pub error: Option<String>,
    /// The body of a 200 answer.
    pub body: Option<Bytes>,
}

/// Sends one request on a kept connection (opened first if there is none; dropped after a
/// transport failure or timeout), naming `user` to the gateway's pinning when given.
pub(crate) async fn call(
    conn: &mut Option<Connection>,
    endpoint: &Endpoint,
    signer: &Arc<Signer>,
    timeout: Duration,
    operation: &str,
    body: Bytes,
    user: Option<&str>,
) -> Call {
    let failed = |seen, error: String| Call {
        seen,
        region: None,
        error: Some(error),
        body: None,
    };
    if conn.is_none() {
        match tokio::time::timeout(timeout, Connection::open(endpoint, signer.clone())).await {
            Ok(Ok(c)) => *conn = Some(c),
            Ok(Err(e)) => return failed(Seen::NotSent, format!("connect: {e:#}")),
            Err(_) => return failed(Seen::NotSent, "connect: timed out".into()),
        }
    }
    let Some(c) = conn.as_mut() else {
        return failed(Seen::NotSent, "no connection".into());
    };
    let headers: Vec<(&str, &str)> = user.map(|u| (USER_HEADER, u)).into_iter().collect();
    match tokio::time::timeout(timeout, c.call_with(operation, body, &headers)).await {
        Ok(Ok((resp, h))) => {
            let region = h
                .get(meridian_traffic::gateway::REGION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if resp.is_ok() {
                Call {
                    seen: Seen::Answer(resp.status, None),
                    region,
                    error: None,
                    body: Some(resp.body),
                }
            } else {
                let ty = error_type(&resp.body);
                let error = format!("HTTP {} {}", resp.status, ty.as_deref().unwrap_or(""));
                Call {
                    seen: Seen::Answer(resp.status, ty),
                    region,
                    error: Some(error),
                    body: None,
                }
            }
        }
        Ok(Err(e)) => {
            *conn = None;
            failed(Seen::Lost, format!("{e:#}"))
        }
        Err(_) => {
            *conn = None;
            failed(Seen::Lost, "timed out".into())
        }
    }
}
