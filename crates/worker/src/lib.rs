//! Background work in one shape.
//!
//! A [`Worker`] is a step: it does one bounded unit of work and says when to take the next
//! ([`Next`]). [`Workers`] is the registry a process keeps: it runs each worker on the tokio
//! runtime (or on a thread of its own when called outside one), stops them all on shutdown,
//! lists them with their state for `GET /admin/workers` ([`Workers::report`]) and counts their
//! steps and failures in `/metrics`. Its timestamps come from the process's [`Clock`].
//!
//! Adding background work is writing one `impl Worker` and one [`Workers::spawn`] call.

use meridian_core::Clock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a worker whose step failed waits before it tries again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// When a worker takes its next step.
pub enum Next {
    /// More work is waiting: at once.
    Again,
    /// After this long.
    After(Duration),
    /// When this resolves (a commit, a notification, a peer's answer).
    When(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// Never: the worker is finished.
    Done,
}

/// A piece of background work, taken one step at a time.
pub trait Worker: Send + 'static {
    /// Does one bounded unit of work. An error is logged, counted and shown in the report;
    /// the worker steps again after [`RETRY_AFTER`].
    fn step(&mut self) -> impl Future<Output = Result<Next, String>> + Send;
}

/// What a worker is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Taking a step.
    Working,
    /// Between steps.
    Waiting,
    /// Its last step failed; it retries after [`RETRY_AFTER`].
    Failed,
    /// It finished.
    Done,
    /// The process (or its part) is stopping.
    Stopped,
}

/// One worker's line in `GET /admin/workers`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// What it does, e.g. `ttl-expirer`.
    pub name: String,
    /// What it is doing now.
    pub state: State,
    /// Steps taken.
    pub steps: u64,
    /// Steps that failed.
    pub failures: u64,
    /// The last failure's message, while the worker has not succeeded since.
    pub last_error: Option<String>,
    /// When its last step ended (Unix ms), 0 before the first.
    pub last_step_unix_ms: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: String,
}

struct Shared {
    clock: Arc<dyn Clock>,
    slots: Mutex<Vec<Arc<Mutex<Report>>>>,
    steps: Family<WorkerLabel, Counter>,
    failures: Family<WorkerLabel, Counter>,
}

/// A process's background workers. Clones share the registry; [`Workers::scoped`] gives a
/// view whose workers also stop with a part of the process (a replication link set).
#[derive(Clone)]
pub struct Workers {
    shared: Arc<Shared>,
    stop: CancellationToken,
    scope: Option<CancellationToken>,
}

impl Workers {
    /// An empty registry whose report times come from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Workers {
        Workers {
            shared: Arc::new(Shared {
                clock,
                slots: Mutex::new(Vec::new()),
                steps: Family::default(),
                failures: Family::default(),
            }),
            stop: CancellationToken::new(),
            scope: None,
        }
    }

    /// The same registry; workers spawned through it stop when `stop` is cancelled too.
    pub fn scoped(&self, stop: &CancellationToken) -> Workers {
        Workers {
            shared: self.shared.clone(),
            stop: self.stop.clone(),
            scope: Some(stop.clone()),
        }
    }

    /// Stops every worker of the registry after its current step.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Every worker with its state, in the order they were spawned.
    pub fn report(&self) -> Vec<Report> {
        let slots = self
            .shared
            .slots
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        slots
            .iter()
            .filter_map(|s| s.lock().ok().map(|r| r.clone()))
            .collect()
    }

    /// Adds `meridian_worker_steps_total` and `meridian_worker_failures_total` to `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "meridian_worker_steps",
            "Steps taken by each background worker",
            self.shared.steps.clone(),
        );
        registry.register(
            "meridian_worker_failures",
            "Steps of each background worker that failed",
            self.shared.failures.clone(),
        );
    }

    /// Runs `worker` under `name` until it is done or the registry stops. On the current
    /// tokio runtime when there is one, else on a thread of its own.
    pub fn spawn<W: Worker>(&self, name: &str, worker: W) {
        let slot = Arc::new(Mutex::new(Report {
            name: name.to_owned(),
            state: State::Waiting,
            steps: 0,
            failures: 0,
            last_error: None,
            last_step_unix_ms: 0,
        }));
        if let Ok(mut s) = self.shared.slots.lock() {
            s.push(slot.clone());
        }
        // Both series exist from the start, at 0.
        let label = WorkerLabel {
            worker: name.to_owned(),
        };
        let _ = self.shared.steps.get_or_create(&label);
        let _ = self.shared.failures.get_or_create(&label);
        let stop = (self.stop.clone(), self.scope.clone());
        let run = run(self.shared.clone(), stop, slot, worker);
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(run);
            }
            Err(_) => {
                let spawned = std::thread::Builder::new()
                    .name(format!("meridian-{name}"))
                    .spawn(move || {
                        match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(rt) => rt.block_on(run),
                            Err(e) => tracing::error!(error = %e, "cannot start a worker runtime"),
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(worker = name, error = %e, "cannot start a worker thread");
                }
            }
        }
    }
}

async fn run<W: Worker>(
    shared: Arc<Shared>,
    (stop, scope): (CancellationToken, Option<CancellationToken>),
    slot: Arc<Mutex<Report>>,
    mut worker: W,
) {
    let stopped = || {
        let (stop, scope) = (stop.clone(), scope.clone());
        async move {
            match scope {
                Some(scope) => tokio::select! {
                    () = stop.cancelled() => {}
                    () = scope.cancelled() => {}
                },
                None => stop.cancelled().await,
            }
        }
    };
    let name = slot.lock().map(|r| r.name.clone()).unwrap_or_default();
    let label = WorkerLabel {
        worker: name.clone(),
    };
    let set = |f: &dyn Fn(&mut Report)| {
        if let Ok(mut r) = slot.lock() {
            f(&mut r);
        }
    };
    loop {
        set(&|r| r.state = State::Working);
        let result = tokio::select! {
            () = stopped() => break,
            r = worker.step() => r,
        };
        let now = shared.clock.now_ms();
        shared.steps.get_or_create(&label).inc();
        let next = match result {
            Ok(next) => {
                set(&|r| {
                    r.steps += 1;
                    r.last_error = None;
                    r.last_step_unix_ms = now;
                    r.state = State::Waiting;
                });
                next
            }
            Err(e) => {
                tracing::warn!(worker = %name, error = %e, "background step failed; retrying");
                shared.failures.get_or_create(&label).inc();
                set(&|r| {
                    r.steps += 1;
                    r.failures += 1;
                    r.last_error = Some(e.clone());
                    r.last_step_unix_ms = now;
                    r.state = State::Failed;
                });
                Next::After(RETRY_AFTER)
            }
        };
        let wait: Pin<Box<dyn Future<Output = ()> + Send>> = match next {
            Next::Again => {
                tokio::task::yield_now().await;
                continue;
            }
            Next::After(d) => Box::pin(tokio::time::sleep(d)),
            Next::When(f) => f,
            Next::Done => {
                set(&|r| r.state = State::Done);
                return;
            }
        };
        tokio::select! {
            () = stopped() => break,
            () = wait => {}
        }
    }
    set(&|r| r.state = State::Stopped);
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_core::ManualClock;
    use std::time::Instant;

    struct Countdown {
        left: u32,
        fail_at: Option<u32>,
    }

    impl Worker for Countdown {
        async fn step(&mut self) -> Result<Next, String> {
            if self.fail_at.take_if(|f| *f == self.left).is_some() {
                return Err(format!("failed at {}", self.left));
            }
            self.left -= 1;
            Ok(if self.left == 0 {
                Next::Done
            } else {
                Next::Again
            })
        }
    }

    async fn until(workers: &Workers, what: impl Fn(&[Report]) -> bool) -> Vec<Report> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = workers.report();
            if what(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "condition not met: {r:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn steps_are_counted_and_a_failure_is_reported_then_retried() {
        let workers = Workers::new(ManualClock::new(42));
        workers.spawn(
            "countdown",
            Countdown {
                left: 3,
                fail_at: None,
            },
        );
        workers.spawn(
            "flaky",
            Countdown {
                left: 2,
                fail_at: Some(1),
            },
        );
        let r = until(&workers, |r| {
            r[0].state == State::Done && r[1].failures == 1
        })
        .await;
        assert_eq!(
            (r[0].name.as_str(), r[0].steps, r[0].failures),
            ("countdown", 3, 0)
        );
        assert_eq!(r[0].last_step_unix_ms, 42);
        assert_eq!(r[1].state, State::Failed);
        assert_eq!(r[1].last_error.as_deref(), Some("failed at 1"));
        // the retry succeeds and clears the error
        let r = until(&workers, |r| r[1].state == State::Done).await;
        assert_eq!(
            (r[1].steps, r[1].failures, r[1].last_error.clone()),
            (3, 1, None)
        );
        let mut registry = Registry::default();
        workers.register_metrics(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("meridian_worker_steps_total{worker=\"countdown\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("meridian_worker_failures_total{worker=\"flaky\"} 1"),
            "{text}"
        );
    }

    struct Forever;

    impl Worker for Forever {
        async fn step(&mut self) -> Result<Next, String> {
            Ok(Next::After(Duration::from_secs(3600)))
        }
    }

    #[tokio::test]
    async fn a_scope_stops_its_workers_and_the_registry_stops_all() {
        let workers = Workers::new(ManualClock::new(0));
        let scope = CancellationToken::new();
        workers.scoped(&scope).spawn("scoped", Forever);
        workers.spawn("global", Forever);
        until(&workers, |r| r.iter().all(|w| w.steps == 1)).await;
        scope.cancel();
        let r = until(&workers, |r| r[0].state == State::Stopped).await;
        assert_eq!(r[1].state, State::Waiting);
        workers.stop();
        until(&workers, |r| r[1].state == State::Stopped).await;
    }

    #[test]
    fn outside_a_runtime_a_worker_runs_on_its_own_thread() {
        let workers = Workers::new(ManualClock::new(0));
        workers.spawn(
            "threaded",
            Countdown {
                left: 2,
                fail_at: None,
            },
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while workers.report()[0].state != State::Done {
            assert!(Instant::now() < deadline, "{:?}", workers.report());
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
