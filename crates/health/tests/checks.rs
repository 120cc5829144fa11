//! Health checks against real sockets: a small HTTP server that answers `/health` like a
//! region server (200 serving, 503 draining), stopped and restarted on the same port.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;
use meridian_health::{EndpointConfig, HealthConfig, HealthMonitor};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A fake region: `/health` answers with `status` and body "serving"/"draining".
struct Backend {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    task: Option<JoinHandle<()>>,
}

impl Backend {
    async fn start(addr: SocketAddr, status: Arc<AtomicU16>) -> Backend {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let st = status.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |_req| {
                        let code = st.load(Ordering::SeqCst);
                        let body = if code == 200 { "serving" } else { "draining" };
                        let mut resp = Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
                        async move { Ok::<_, Infallible>(resp) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Backend {
            addr,
            status,
            task: Some(task),
        }
    }

    /// Kills the listener and every open connection, like a crashed process.
    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    async fn restart(&mut self) {
        *self = Backend::start(self.addr, self.status.clone()).await;
    }
}

async fn wait_for(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn monitor(endpoints: Vec<EndpointConfig>) -> HealthMonitor {
    HealthMonitor::new(HealthConfig {
        endpoints,
        ..HealthConfig::default()
    })
    .unwrap()
}

fn http(name: &str, addr: SocketAddr, expect_body: Option<&str>) -> EndpointConfig {
    EndpointConfig {
        name: name.into(),
        http_url: Some(format!("http://{addr}/health")),
        expect_body: expect_body.map(String::from),
        tcp_addr: None,
    }
}

#[tokio::test]
async fn http_check_detects_death_within_two_seconds_and_recovers() {
    let status = Arc::new(AtomicU16::new(200));
    let mut backend = Backend::start("127.0.0.1:0".parse().unwrap(), status.clone()).await;
    let m = monitor(vec![http("r1", backend.addr, Some("serving"))]);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn({
        let m = m.clone();
        async move {
            m.run(async {
                let _ = stop_rx.await;
            })
            .await
        }
    });
    let healthy = |m: &HealthMonitor| m.snapshot().endpoints["r1"].checks_healthy;
    wait_for("first check", Duration::from_secs(2), || {
        healthy(&m) == Some(true)
    })
    .await;

    backend.stop().await;
    let took = wait_for("down", Duration::from_secs(2), || {
        healthy(&m) == Some(false)
    })
    .await;
    eprintln!("dead backend detected in {took:?}");

    backend.restart().await;
    let checks_before = m.snapshot().endpoints["r1"].checks;
    wait_for("recovery", Duration::from_secs(2), || {
        healthy(&m) == Some(true)
    })
    .await;
    // Rise = 2: at least two successful checks were needed.
    assert!(m.snapshot().endpoints["r1"].checks >= checks_before + 2);

    // 503 (draining region) and a body mismatch both count as failures.
    status.store(503, Ordering::SeqCst);
    wait_for("503 → down", Duration::from_secs(2), || {
        healthy(&m) == Some(false)
    })
    .await;
    assert!(
        m.snapshot().endpoints["r1"]
            .last_error
            .as_deref()
            .unwrap()
            .contains("503")
    );

    let _ = stop_tx.send(());
    runner.await.unwrap();
    backend.stop().await;
}

#[tokio::test]
async fn tcp_check_and_body_mismatch() {
    let status = Arc::new(AtomicU16::new(200));
    let mut backend = Backend::start("127.0.0.1:0".parse().unwrap(), status).await;
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap(); // closed at once
    let m = monitor(vec![
        EndpointConfig {
            name: "tcp-up".into(),
            http_url: None,
            expect_body: None,
            tcp_addr: Some(backend.addr.to_string()),
        },
        EndpointConfig {
            name: "tcp-dead".into(),
            http_url: None,
            expect_body: None,
            tcp_addr: Some(dead.to_string()),
        },
        http("wrong-body", backend.addr, Some("no such text")),
    ]);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn({
        let m = m.clone();
        async move {
            m.run(async {
                let _ = stop_rx.await;
            })
            .await
        }
    });
    let state = |n: &str| m.snapshot().endpoints[n].checks_healthy;
    wait_for("verdicts", Duration::from_secs(2), || {
        state("tcp-up") == Some(true)
            && state("tcp-dead") == Some(false)
            && state("wrong-body") == Some(false)
    })
    .await;
    let _ = stop_tx.send(());
    runner.await.unwrap();
    backend.stop().await;
}

#[tokio::test]
async fn admin_api_drains_and_weights() {
    let m = monitor(vec![EndpointConfig {
        name: "us-east".into(),
        http_url: None,
        expect_body: None,
        tcp_addr: Some("127.0.0.1:9".into()),
    }]);
    let mut registry = prometheus_client::registry::Registry::default();
    m.register_metrics(&mut registry);
    let api = meridian_health::AdminApi {
        monitor: m.clone(),
        registry: Arc::new(registry),
        status_hook: None,
        role: meridian_health::RoleAdmin::default(),
    };
    use hyper::Method;
    assert_eq!(
        api.handle(&Method::POST, "/admin/regions/us-east/drain")
            .status(),
        200
    );
    assert_eq!(m.snapshot().availability("us-east"), (true, 0));
    assert_eq!(
        api.handle(&Method::POST, "/admin/regions/us-east/undrain")
            .status(),
        200
    );
    assert_eq!(
        api.handle(&Method::POST, "/admin/regions/us-east/weight/25")
            .status(),
        200
    );
    assert_eq!(m.snapshot().availability("us-east"), (true, 25));
    assert_eq!(
        api.handle(&Method::POST, "/admin/regions/us-east/weight/101")
            .status(),
        400
    );
    assert_eq!(
        api.handle(&Method::POST, "/admin/regions/nowhere/drain")
            .status(),
        404
    );
    assert_eq!(api.handle(&Method::GET, "/admin/status").status(), 200);
    assert_eq!(api.handle(&Method::GET, "/metrics").status(), 200);
}
