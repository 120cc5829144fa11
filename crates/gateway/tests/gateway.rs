//! The gateway against in-test region backends that behave like region servers: `GET /health`
//! → 200, `POST /` → a DynamoDB-style JSON answer naming the region (or a configured 5xx).

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meridian_gateway::{GatewayConfig, REGION_HEADER, RunningGateway};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A request as a backend saw it.
#[derive(Clone, Debug)]
struct Seen {
    headers: hyper::HeaderMap,
    body: Bytes,
}

/// A fake region server.
struct Backend {
    name: &'static str,
    addr: SocketAddr,
    post_status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: Option<JoinHandle<()>>,
}

impl Backend {
    async fn start(name: &'static str) -> Backend {
        let mut b = Backend {
            name,
            addr: "127.0.0.1:0".parse().unwrap(),
            post_status: Arc::new(AtomicU16::new(200)),
            seen: Arc::default(),
            task: None,
        };
        b.listen().await;
        b
    }

    async fn listen(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.addr = listener.local_addr().unwrap();
        let (name, status, seen) = (self.name, self.post_status.clone(), self.seen.clone());
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (status, seen) = (status.clone(), seen.clone());
                conns.spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (status, seen) = (status.clone(), seen.clone());
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await.unwrap().to_bytes();
                                if parts.uri.path() == "/health" {
                                    return Ok::<_, Infallible>(Response::new(Full::new(
                                        Bytes::from("serving"),
                                    )));
                                }
                                seen.lock().unwrap().push(Seen {
                                    headers: parts.headers,
                                    body,
                                });
                                let code =
                                    StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap();
                                let text =
                                    format!(r#"{{"Item":{{"served_by":{{"S":"{name}"}}}}}}"#);
                                let mut resp = Response::new(Full::new(Bytes::from(text)));
                                *resp.status_mut() = code;
                                Ok(resp)
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }));
    }

    /// Kills the listener and every connection, like a crashed region process.
    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

struct Fixture {
    backends: Vec<Backend>,
    gateway: Option<RunningGateway>,
    client: Client<HttpConnector, Full<Bytes>>,
}

fn config_text(backends: &[Backend], write_failover: &str) -> String {
    let mut s = format!(
        r#"
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
write_failover = "{write_failover}"
rng_seed = 7
[health]
interval_ms = 100
timeout_ms = 100
[pinning]
user_header = "x-meridian-user"
users = {{ alice = "DE", bob = "US", chen = "SG", dora = "FR" }}
country_regions = {{ DE = "eu-west", US = "us-east", SG = "ap-southeast" }}
continent_regions = {{ EU = "eu-west" }}
[pinning.tables.Users]
partition_key = "user_id"
"#
    );
    for b in backends {
        let (latency, failover) = match b.name {
            "us-east" => (40, r#"["eu-west"]"#),
            "eu-west" => (80, r#"["us-east", "ap-southeast"]"#),
            _ => (5, "[]"),
        };
        s += &format!(
            "[[health.endpoints]]\nname = \"{n}\"\nhttp_url = \"http://{a}/health\"\n\
             [[regions]]\nname = \"{n}\"\nendpoint = \"http://{a}\"\nlatency_ms = {latency}\nfailover_order = {failover}\n",
            n = b.name,
            a = b.addr
        );
    }
    s
}

impl Fixture {
    async fn start(write_failover: &str) -> Fixture {
        let backends = vec![
            Backend::start("us-east").await,
            Backend::start("eu-west").await,
            Backend::start("ap-southeast").await,
        ];
        let config = GatewayConfig::from_toml(&config_text(&backends, write_failover)).unwrap();
        let gateway = RunningGateway::start(config).await.unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http();
        let f = Fixture {
            backends,
            gateway: Some(gateway),
            client,
        };
        f.wait_health("all regions checked", |s| {
            s.endpoints.values().all(|e| e.checks_healthy == Some(true))
        })
        .await;
        f
    }

    fn gw(&self) -> &RunningGateway {
        self.gateway.as_ref().unwrap()
    }

    fn backend(&mut self, name: &str) -> &mut Backend {
        self.backends.iter_mut().find(|b| b.name == name).unwrap()
    }

    async fn wait_health(
        &self,
        what: &str,
        cond: impl Fn(&meridian_health::HealthSnapshot) -> bool,
    ) {
        let start = Instant::now();
        while !cond(&self.gw().monitor.snapshot()) {
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends a DynamoDB call; returns (status, answering region header, body).
    async fn call(
        &self,
        op: &str,
        body: &str,
        user_header: Option<&str>,
    ) -> (StatusCode, Option<String>, String) {
        let mut req = Request::post(format!("http://{}/", self.gw().addr))
            .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
            .header("content-type", "application/x-amz-json-1.0");
        if let Some(u) = user_header {
            req = req.header("x-meridian-user", u);
        }
        let resp = self
            .client
            .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let region = resp
            .headers()
            .get(REGION_HEADER)
            .map(|v| v.to_str().unwrap().to_string());
        let body = String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        (status, region, body)
    }

    async fn admin(&self, method: &str, path: &str) -> StatusCode {
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.gw().admin_addr.unwrap()))
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.client.request(req).await.unwrap().status()
    }

    async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            tokio::time::timeout(Duration::from_secs(5), g.stop())
                .await
                .expect("gateway stops");
        }
        for b in &mut self.backends {
            b.stop().await;
        }
    }
}

fn get_item(user: &str) -> String {
    format!(r#"{{"TableName":"Users","Key":{{"user_id":{{"S":"{user}"}}}}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinning_routes_each_user_to_its_home_region() {
    let f = Fixture::start("refuse").await;
    let query = |u: &str| {
        format!(
            r#"{{"TableName":"Users","KeyConditionExpression":"user_id = :u","ExpressionAttributeValues":{{":u":{{"S":"{u}"}}}}}}"#
        )
    };
    let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
        ("GetItem", get_item("alice"), None, "eu-west"),
        ("GetItem", get_item("bob"), None, "us-east"),
        ("GetItem", get_item("chen"), None, "ap-southeast"),
        ("GetItem", get_item("dora"), None, "eu-west"), // FR → continent EU
        (
            "PutItem",
            r#"{"TableName":"Users","Item":{"user_id":{"S":"bob"},"x":{"N":"1"}}}"#.into(),
            None,
            "us-east",
        ),
        ("UpdateItem", get_item("alice"), None, "eu-west"),
        ("DeleteItem", get_item("bob"), None, "us-east"),
        ("Query", query("alice"), None, "eu-west"),
        (
            "Scan",
            r#"{"TableName":"Users"}"#.into(),
            Some("bob"),
            "us-east",
        ), // header pins
        ("GetItem", get_item("alice"), Some("bob"), "us-east"), // header wins over key
        ("GetItem", get_item("stranger"), None, "ap-southeast"), // unknown user: nearest
        ("ListTables", "{}".into(), None, "ap-southeast"),
    ];
    for (op, body, header, want) in cases {
        let (status, region, _) = f.call(op, &body, header).await;
        assert_eq!(status, 200, "{op} {body}");
        assert_eq!(
            region.as_deref(),
            Some(want),
            "{op} {body} header={header:?}"
        );
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_are_forwarded_unchanged() {
    let f = Fixture::start("refuse").await;
    let body = Bytes::from_static(
        b"{ \"TableName\" : \"Users\",\n \"Key\": {\"user_id\": {\"S\": \"bob\"}} }  ",
    );
    let sent = [
        ("host", "dynamodb.us-east-1.amazonaws.com"),
        ("x-amz-target", "DynamoDB_20120810.GetItem"),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-date", "20260101T000000Z"),
        ("x-amz-security-token", "token/with+odd=chars"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=abc123",
        ),
        ("x-custom", "kept"),
    ];
    let mut req = Request::post(format!("http://{}/", f.gw().addr));
    for (k, v) in sent {
        req = req.header(k, v);
    }
    let resp = f
        .client
        .request(req.body(Full::new(body.clone())).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[REGION_HEADER], "us-east");
    let seen = f.backends[0].seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.body, body, "body bytes must be identical");
    for (k, v) in sent {
        assert_eq!(
            seen.headers.get(k).map(|h| h.to_str().unwrap()),
            Some(v),
            "header {k}"
        );
    }
    assert_eq!(seen.headers["content-length"], body.len().to_string());
    f.stop().await;
}

/// Only the DynamoDB API goes through: a region's admin, anti-entropy and metrics routes are
/// answered by the gateway itself with a 404 and never reach a region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_metrics_paths_are_never_forwarded() {
    let f = Fixture::start("refuse").await;
    let before: usize = f
        .backends
        .iter()
        .map(|b| b.seen.lock().unwrap().len())
        .sum();
    for (method, path) in [
        ("POST", "/admin/ae/apply?table=Users"),
        ("GET", "/admin/changelog?from=1"),
        ("POST", "/admin/clock/skew?ms=5000"),
        ("GET", "/metrics"),
        ("GET", "/"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", f.gw().addr))
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .body(Full::new(Bytes::from(get_item("alice"))))
            .unwrap();
        let resp = f.client.request(req).await.unwrap();
        assert_eq!(resp.status(), 404, "{method} {path}");
        assert!(
            resp.headers().get(REGION_HEADER).is_none(),
            "{method} {path}"
        );
    }
    let after: usize = f
        .backends
        .iter()
        .map(|b| b.seen.lock().unwrap().len())
        .sum();
    assert_eq!(before, after, "nothing reached a region");
    let (status, _, _) = f.call("GetItem", &get_item("alice"), None).await;
    assert_eq!(status, 200);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_down_reads_fail_over_writes_refused() {
    let mut f = Fixture::start("refuse").await;
    let put = r#"{"TableName":"Users","Item":{"user_id":{"S":"alice"}}}"#;
    f.backend("eu-west").stop().await;
    // Before the health checks notice: the read is retried on eu-west's first failover region.
    let (status, region, _) = f.call("GetItem", &get_item("alice"), None).await;
    assert_eq!(
        (status, region.as_deref()),
        (StatusCode::OK, Some("us-east"))
    );
    // A write to the unreachable home is refused, never sent elsewhere.
    let want = r#"{"__type":"com.amazon.coral.availability#ServiceUnavailableException","message":"home region eu-west is unavailable and write failover is disabled"}"#;
    let (status, region, body) = f.call("PutItem", put, None).await;
    assert_eq!(
        (status, region, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, None, want)
    );
    // After the health checks notice, the same holds without trying eu-west at all.
    f.wait_health("eu-west down", |s| {
        s.endpoints["eu-west"].checks_healthy == Some(false)
    })
    .await;
    assert_eq!(
        f.call("GetItem", &get_item("alice"), None)
            .await
            .1
            .as_deref(),
        Some("us-east")
    );
    assert_eq!(
        f.call("PutItem", put, None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Other users' writes are unaffected.
    let put_bob = r#"{"TableName":"Users","Item":{"user_id":{"S":"bob"}}}"#;
    assert_eq!(
        f.call("PutItem", put_bob, None).await.1.as_deref(),
        Some("us-east")
    );
    let alice_puts_elsewhere = f
        .backends
        .iter()
        .filter(|b| b.name != "eu-west")
        .flat_map(|b| b.seen.lock().unwrap().clone())
        .filter(|s| {
            s.headers["x-amz-target"] == "DynamoDB_20120810.PutItem"
                && s.body.windows(5).any(|w| w == b"alice")
        })
        .count();
    assert_eq!(
        alice_puts_elsewhere, 0,
        "alice's writes must stay in her home region"
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_failover_allow_moves_writes() {
    let mut f = Fixture::start("allow").await;
    let put = r#"{"TableName":"Users","Item":{"user_id":{"S":"alice"}}}"#;
    assert_eq!(
        f.call("PutItem", put, None).await.1.as_deref(),
        Some("eu-west")
    );
    f.backend("eu-west").stop().await;
    // Connection refused: the write never reached eu-west, so it may go to us-east.
    let (status, region, _) = f.call("PutItem", put, None).await;
    assert_eq!(
        (status, region.as_deref()),
        (StatusCode::OK, Some("us-east"))
    );
    f.wait_health("eu-west down", |s| {
        s.endpoints["eu-west"].checks_healthy == Some(false)
    })
    .await;
    assert_eq!(
        f.call("PutItem", put, None).await.1.as_deref(),
        Some("us-east")
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failed_reads_while_home_region_is_killed_under_load() {
    let mut f = Fixture::start("refuse").await;
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let by_region = Arc::new(Mutex::new(
        std::collections::BTreeMap::<String, usize>::new(),
    ));
    let addr = f.gw().addr;
    let deadline = Instant::now() + Duration::from_millis(2500);
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (ok, failed, by_region) = (ok.clone(), failed.clone(), by_region.clone());
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        readers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let req = Request::post(format!("http://{addr}/"))
                    .header("x-amz-target", "DynamoDB_20120810.GetItem")
                    .body(Full::new(Bytes::from(get_item("alice"))))
                    .unwrap();
                match client.request(req).await {
                    Ok(resp) if resp.status() == 200 => {
                        let region = resp.headers()[REGION_HEADER].to_str().unwrap().to_string();
                        let _ = resp.into_body().collect().await;
                        *by_region.lock().unwrap().entry(region).or_default() += 1;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(resp) => failed
                        .lock()
                        .unwrap()
                        .push(format!("status {}", resp.status())),
                    Err(e) => failed.lock().unwrap().push(e.to_string()),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    f.backend("eu-west").stop().await;
    for r in readers {
        r.await.unwrap();
    }
    let by_region = by_region.lock().unwrap().clone();
    eprintln!(
        "reads: ok={} by region={by_region:?}",
        ok.load(Ordering::Relaxed)
    );
    assert!(
        failed.lock().unwrap().is_empty(),
        "failed reads: {:?}",
        failed.lock().unwrap()
    );
    assert!(
        by_region.get("eu-west").copied().unwrap_or(0) > 10,
        "home served before the kill"
    );
    assert!(
        by_region.get("us-east").copied().unwrap_or(0) > 10,
        "failover region served after the kill"
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_retry_on_5xx_writes_do_not() {
    let f = Fixture::start("refuse").await;
    f.backends[2].post_status.store(500, Ordering::SeqCst); // ap-southeast, the nearest
    let (status, region, _) = f.call("GetItem", &get_item("stranger"), None).await;
    assert_eq!(
        (status, region.as_deref()),
        (StatusCode::OK, Some("us-east"))
    );
    let (status, region, _) = f
        .call("PutItem", r#"{"TableName":"T","Item":{}}"#, None)
        .await;
    assert_eq!(
        (status, region.as_deref()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("ap-southeast"))
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_drains_and_shifts_traffic() {
    let f = Fixture::start("refuse").await;
    let nearest = || f.call("ListTables", "{}", None);
    assert_eq!(nearest().await.1.as_deref(), Some("ap-southeast"));
    assert_eq!(
        f.admin("POST", "/admin/regions/ap-southeast/drain").await,
        200
    );
    assert_eq!(nearest().await.1.as_deref(), Some("us-east"));
    assert_eq!(
        f.admin("POST", "/admin/regions/ap-southeast/undrain").await,
        200
    );
    assert_eq!(nearest().await.1.as_deref(), Some("ap-southeast"));
    assert_eq!(
        f.admin("POST", "/admin/regions/ap-southeast/weight/0")
            .await,
        200
    );
    assert_eq!(nearest().await.1.as_deref(), Some("us-east"));
    assert_eq!(
        f.admin("POST", "/admin/regions/ap-southeast/weight/50")
            .await,
        200
    );
    let mut kept = 0;
    for _ in 0..200 {
        kept += usize::from(nearest().await.1.as_deref() == Some("ap-southeast"));
    }
    assert!(
        (70..=130).contains(&kept),
        "ap-southeast kept {kept}/200 at weight 50 (rng_seed = 7)"
    );
    assert_eq!(
        f.admin("POST", "/admin/regions/ap-southeast/weight/100")
            .await,
        200
    );
    assert_eq!(
        f.admin("POST", "/admin/regions/ap-southeast/weight/101")
            .await,
        400
    );
    assert_eq!(f.admin("POST", "/admin/regions/mars/drain").await, 404);
    assert_eq!(f.admin("GET", "/admin/status").await, 200);
    assert_eq!(f.admin("GET", "/metrics").await, 200);
    f.stop().await;
}

#[test]
fn example_config_parses_and_config_is_strict() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/gateway.toml"
    ))
    .unwrap();
    GatewayConfig::from_toml(&text).unwrap();
    assert!(GatewayConfig::from_toml(&format!("{text}\nlisten_port = 1\n")).is_err());
    assert!(
        GatewayConfig::from_toml(
            &text.replace("write_failover = \"refuse\"", "write_failover = \"maybe\"")
        )
        .is_err()
    );
}
