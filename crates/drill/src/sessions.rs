//! Pinned users who check their own writes (read-your-writes through the gateway): in rounds,
//! every user writes its next version of its own item, or reads it back. A read that returns
//! an older version than one the user already had acknowledged or read is a *stale read*. The
//! writes go into the ledger, so the lost-write invariant covers them too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use meridian_bench::client::{Connection, Endpoint};
use meridian_bench::sign::Signer;
use serde_json::json;
use tokio::time::Instant;

use crate::invariants::{Check, Verdict};
use crate::ledger::{OpKind, Outcome, Request, Seen, classify};
use crate::workload::call;

/// Requests of one round in flight at once.
const WORKERS: usize = 16;

/// What one round saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Answered 200.
    pub ok: usize,
    /// Of those, served by the users' home region.
    pub at_home: usize,
    /// Reads that returned an older version than the user had.
    pub stale: usize,
    /// Not answered 200.
    pub failed: usize,
}

#[derive(Default)]
struct State {
    /// Per user: the highest version acknowledged to it or read by it.
    floor: HashMap<String, u64>,
    ledger: Vec<Request>,
    reads: usize,
    stale: usize,
    stale_examples: Vec<String>,
}

/// The users, their gateway and what they have seen.
pub struct SessionUsers {
    users: Vec<String>,
    home: String,
    endpoint: Endpoint,
    signer: Arc<Signer>,
    table: String,
    timeout: Duration,
    t0: Instant,
    state: Mutex<State>,
}

/// One request's answer.
struct Answer {
    seen: Seen,
    region: Option<String>,
    version: Option<u64>,
    error: Option<String>,
}

impl SessionUsers {
    /// `users` pinned to `home`, through the gateway at `gateway`, writing `table`; ledger
    /// times are relative to `t0`.
    pub fn new(
        users: Vec<String>,
        home: &str,
        gateway: &str,
        table: &str,
        timeout: Duration,
        t0: Instant,
    ) -> anyhow::Result<Arc<SessionUsers>> {
        let access = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "drill".into());
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "drill".into());
        Ok(Arc::new(SessionUsers {
            users,
            home: home.to_owned(),
            endpoint: Endpoint::parse(gateway)?,
            signer: Arc::new(Signer::new(&access, &secret, "us-east-1", "dynamodb")),
            table: table.to_owned(),
            timeout,
            t0,
            state: Mutex::new(State::default()),
        }))
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Every user writes version `n` of its item.
    pub async fn write_round(self: &Arc<Self>, n: u64) -> Round {
        self.round(Some(n)).await
    }

    /// Every user reads its item back.
    pub async fn read_round(self: &Arc<Self>) -> Round {
        self.round(None).await
    }

    async fn round(self: &Arc<Self>, write: Option<u64>) -> Round {
        let mut tasks = Vec::with_capacity(WORKERS);
        for w in 0..WORKERS {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = None;
                let mut round = Round::default();
                for user in me.users.iter().skip(w).step_by(WORKERS) {
                    let r = me.one(&mut conn, user, write).await;
                    round.ok += r.ok;
                    round.at_home += r.at_home;
                    round.stale += r.stale;
                    round.failed += r.failed;
                }
                round
            }));
        }
        let mut total = Round::default();
        for t in tasks {
            let r = t.await.unwrap_or_default();
            total.ok += r.ok;
            total.at_home += r.at_home;
            total.stale += r.stale;
            total.failed += r.failed;
        }
        total
    }

    fn ms(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn one(&self, conn: &mut Option<Connection>, user: &str, write: Option<u64>) -> Round {
        let key = format!("session-{user}");
        let (op, operation, wid, body) = match write {
            Some(n) => {
                let wid = format!("s-{user}-{n}");
                let body = json!({"TableName": self.table, "Item": {
                    "pk": {"S": key}, "wid": {"S": wid}, "n": {"N": n.to_string()},
                    "by": {"S": format!("session:{user}")},
                }});
                (OpKind::Put, "PutItem", Some(wid), body)
            }
            None => {
                let body = json!({"TableName": self.table, "Key": {"pk": {"S": key}},
                                  "ConsistentRead": true});
                (OpKind::Get, "GetItem", None, body)
            }
        };
        let floor = self.floor(user);
        let start_ms = self.ms();
        let a = self
            .send(conn, operation, Bytes::from(body.to_string()), user)
            .await;
        let outcome = classify(op, &a.seen);
        let mut round = Round::default();
        if outcome == Outcome::Ok {
            round.ok = 1;
            round.at_home = usize::from(a.region.as_deref() == Some(self.home.as_str()));
        } else {
            round.failed = 1;
        }
        if let Ok(mut s) = self.state.lock() {
            if outcome == Outcome::Ok {
                let seen = match (write, a.version) {
                    (Some(n), _) => n,
                    (None, v) => {
                        s.reads += 1;
                        let v = v.unwrap_or(0);
                        if v < floor {
                            round.stale = 1;
                            s.stale += 1;
                            if s.stale_examples.len() < 3 {
                                s.stale_examples.push(format!(
                                    "{user} read version {v} from {} at {start_ms} ms after \
                                     having version {floor}",
                                    a.region.as_deref().unwrap_or("?")
                                ));
                            }
                        }
                        v
                    }
                };
                let f = s.floor.entry(user.to_owned()).or_insert(0);
                *f = (*f).max(seen);
            }
            s.ledger.push(Request {
                via_gateway: true,
                target: user.to_owned(),
                op,
                key,
                wid,
                start_ms,
                end_ms: self.ms(),
                outcome,
                served_by: a.region,
                error: a.error,
            });
        }
        round
    }

    fn floor(&self, user: &str) -> u64 {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.floor.get(user).copied())
            .unwrap_or(0)
    }

    async fn send(
        &self,
        conn: &mut Option<Connection>,
        operation: &str,
        body: Bytes,
        user: &str,
    ) -> Answer {
        let c = call(
            conn,
            &self.endpoint,
            &self.signer,
            self.timeout,
            operation,
            body,
            Some(user),
        )
        .await;
        Answer {
            seen: c.seen,
            region: c.region,
            version: c.body.as_deref().and_then(version_of),
            error: c.error,
        }
    }

    /// The requests made, for the ledger (taken once).
    pub fn take_ledger(&self) -> Vec<Request> {
        self.state
            .lock()
            .map(|mut s| std::mem::take(&mut s.ledger))
            .unwrap_or_default()
    }

    /// The read-your-writes invariant over every read so far.
    pub fn check(&self) -> Check {
        let Ok(s) = self.state.lock() else {
            return Check::with("read_your_writes", Verdict::Fail, "state poisoned".into());
        };
        if s.reads == 0 {
            return Check::with(
                "read_your_writes",
                Verdict::Fail,
                "no read of the session users was answered".into(),
            );
        }
        let detail = format!(
            "{} reads by {} pinned users of their own items: {} stale{}",
            s.reads,
            self.users.len(),
            s.stale,
            if s.stale_examples.is_empty() {
                String::new()
            } else {
                format!("; e.g. {}", s.stale_examples.join("; "))
            }
        );
        let verdict = if s.stale == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        Check::with("read_your_writes", verdict, detail)
    }
}

/// The version `n` of a GetItem answer's item (0 when there is no item).
fn version_of(body: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    match v.get("Item") {
        None => Some(0),
        Some(item) => item.get("n")?.get("N")?.as_str()?.parse().ok(),
    }
}
