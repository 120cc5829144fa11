//! The reverse proxy: reads a request, plans its regions, forwards it byte for byte, retries
//! idempotent reads and applies the write-failover rule.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meridian_health::HealthSnapshot;
use meridian_model::session::{
    BEHIND_HEADER, REMEMBERED_HEADER, SESSION_HEADER, SessionToken, constrains,
};
use meridian_routing::SplitMix64;
use meridian_traffic::gateway::{Sessions, with_session};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::{GatewayConfig, WriteFailover};
use crate::error::GatewayError;
use crate::metrics::GatewayMetrics;
use crate::operation::{is_idempotent_read, operation, partition_user};
use crate::plan::Router;

/// Body of every gateway response: a region's streamed body or a small error body.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

use meridian_traffic::gateway::REGION_HEADER;

/// Largest error body read to see whether a region lacks the table: an error is small, but a
/// failed condition may carry the item (`ReturnValuesOnConditionCheckFailure`, ≤ 400 KB).
const MAX_ERROR_BODY: usize = 4 * 1024 * 1024;

/// A region's error response, read whole (bounded).
async fn read_error(
    resp: Response<Incoming>,
) -> Result<(hyper::http::response::Parts, Bytes), String> {
    let (parts, body) = resp.into_parts();
    let bytes = Limited::new(body, MAX_ERROR_BODY)
        .collect()
        .await
        .map_err(|e| format!("error body: {e}"))?
        .to_bytes();
    Ok((parts, bytes))
}

/// Whether an error body is DynamoDB's `ResourceNotFoundException` (no such table here).
fn is_resource_not_found(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("__type")?.as_str().map(str::to_owned))
        .is_some_and(|t| t.ends_with("ResourceNotFoundException"))
}

/// Hop-by-hop headers (RFC 9110 §7.6.1): about one connection, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
}

/// What a config change replaces while the gateway runs: the config, the router and the
/// regions' endpoints. A request works on the one in force when it arrived.
pub struct Routing {
    /// The configuration.
    pub config: GatewayConfig,
    /// The static routing data.
    pub router: Router,
    endpoints: Vec<(String, Uri)>,
}

impl Routing {
    fn new(config: GatewayConfig) -> Result<Routing, GatewayError> {
        config.validate()?;
        let endpoints = config
            .regions
            .iter()
            .map(|r| {
                Ok((
                    r.name.clone(),
                    r.endpoint
                        .parse::<Uri>()
                        .map_err(|e| GatewayError::Config(e.to_string()))?,
                ))
            })
            .collect::<Result<Vec<_>, GatewayError>>()?;
        Ok(Routing {
            router: Router::new(&config),
            config,
            endpoints,
        })
    }

    fn upstream_uri(&self, region: &str, path_and_query: Option<&str>) -> Option<Uri> {
        let base = &self.endpoints.iter().find(|(n, _)| n == region)?.1;
        let mut parts = base.clone().into_parts();
        parts.path_and_query = Some(path_and_query.unwrap_or("/").parse().ok()?);
        Uri::from_parts(parts).ok()
    }
}

/// The proxy's shared state.
pub struct Gateway {
    routing: std::sync::RwLock<Arc<Routing>>,
    /// Set at start (listeners, TLS, connection bounds, body budget): what a config change
    /// cannot alter without a restart ([`GatewayConfig::restart_fields`]).
    started_with: GatewayConfig,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    health: watch::Receiver<Arc<HealthSnapshot>>,
    rng_seed: u64,
    rng_counter: AtomicU64,
    metrics: GatewayMetrics,
    /// The body budget, in KiB (`GatewayConfig::body_budget_bytes`).
    body_budget: Arc<Semaphore>,
    /// The latest session token of each pinned user.
    sessions: std::sync::Mutex<Sessions>,
    /// The origin of [`Gateway::now_ms`].
    started: std::time::Instant,
}

enum Attempt {
    Done(Response<Incoming>),
    /// Failed before the request could have reached the region (safe to retry anything).
    NotSent(String),
    /// Failed after sending (only reads may be retried).
    Failed(String),
}

impl Gateway {
    /// Builds the proxy; `health` is the health monitor's snapshot channel.
    pub fn new(
        config: GatewayConfig,
        health: watch::Receiver<Arc<HealthSnapshot>>,
    ) -> Result<Self, GatewayError> {
        let routing = Routing::new(config.clone())?;
        let connector = meridian_health::tls::connector(
            config.region_ca.as_deref(),
            Some(Duration::from_millis(config.connect_timeout_ms)),
        )
        .map_err(|e| GatewayError::Config(e.to_string()))?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let rng_seed = config.rng_seed.unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            t.as_nanos() as u64
        });
        tracing::info!(rng_seed, "gateway: traffic-shift choices seeded");
        let budget_kib = (config.body_budget_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS);
        Ok(Gateway {
            body_budget: Arc::new(Semaphore::new(budget_kib)),
            sessions: std::sync::Mutex::new(Sessions::new(
                config.session_ttl_ms,
                config.max_session_users,
            )),
            started: std::time::Instant::now(),
            routing: std::sync::RwLock::new(Arc::new(routing)),
            started_with: config,
            client,
            health,
            rng_seed,
            rng_counter: AtomicU64::new(0),
            metrics: GatewayMetrics::default(),
        })
    }

    /// The metrics handle.
    pub fn metrics(&self) -> &GatewayMetrics {
        &self.metrics
    }

    /// Pinned users whose session tokens are remembered.
    pub fn session_users(&self) -> usize {
        self.sessions.lock().map_or(0, |s| s.len())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn remembered(&self, user: &str) -> Option<SessionToken> {
        let now = self.now_ms();
        self.sessions.lock().ok()?.get(user, now)
    }

    /// Remembers the session mark a region answered a pinned user's write with.
    fn remember(&self, user: &str, headers: &HeaderMap) {
        let Some(mark) = headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|t| SessionToken::parse(t).ok())
        else {
            return;
        };
        let now = self.now_ms();
        if let Ok(mut s) = self.sessions.lock() {
            s.remember(user, &mark, now);
            self.metrics.session_users(s.len());
        }
    }

    /// The routing in force (config, router, endpoints).
    pub fn routing(&self) -> Arc<Routing> {
        self.routing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether `config` can be applied while running: refused when a field only a restart can
    /// change differs from what the gateway started with.
    pub fn check_live(&self, config: &GatewayConfig) -> Result<(), GatewayError> {
        let fields = self.started_with.restart_fields(config);
        if fields.is_empty() {
            return Ok(());
        }
        Err(GatewayError::Config(format!(
            "{} cannot change while the gateway runs",
            fields.join(", ")
        )))
    }

    /// Switches to a new configuration while serving: requests already routed finish on the
    /// old one, the remembered session tokens are kept. Refused, changing nothing, when a
    /// field only a restart can change differs (listeners, TLS, bounds).
    pub fn reconfigure(&self, config: GatewayConfig) -> Result<(), GatewayError> {
        self.check_live(&config)?;
        let routing = Routing::new(config)?;
        if let Ok(mut s) = self.sessions.lock() {
            s.set_limits(
                routing.config.session_ttl_ms,
                routing.config.max_session_users,
            );
        }
        *self
            .routing
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(routing);
        Ok(())
    }

    async fn attempt(
        &self,
        routing: &Routing,
        region: &str,
        parts: &hyper::http::request::Parts,
        body: &Bytes,
        remembered: Option<&HeaderValue>,
    ) -> Attempt {
        let Some(uri) =
            routing.upstream_uri(region, parts.uri.path_and_query().map(|p| p.as_str()))
        else {
            return Attempt::NotSent(format!("no endpoint for region {region}"));
        };
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        // Every header as the client sent it — Host included — so SigV4 signatures still verify.
        *req.headers_mut() = parts.headers.clone();
        strip_hop_by_hop(req.headers_mut());
        // Never sent by the client: the gateway's own, a header no client may have signed.
        req.headers_mut().remove(REMEMBERED_HEADER);
        if let Some(v) = remembered {
            req.headers_mut().insert(REMEMBERED_HEADER, v.clone());
        }
        let timeout = Duration::from_millis(routing.config.request_timeout_ms);
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => Attempt::Done(resp),
            Ok(Err(e)) if e.is_connect() => Attempt::NotSent(format!("{region}: connect: {e}")),
            Ok(Err(e)) => Attempt::Failed(format!("{region}: {e}")),
            Err(_) => Attempt::Failed(format!("{region}: no response within {timeout:?}")),
        }
    }

    /// Receives a request body: at most `max_body_bytes`, within `body_timeout_ms`, and only
    /// while the bodies being received at once fit the body budget — so neither huge nor slow
    /// bodies can take the memory every other client needs.
    async fn read_body<B>(
        &self,
        config: &GatewayConfig,
        headers: &HeaderMap,
        body: B,
    ) -> Result<Bytes, GatewayError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = config.max_body_bytes;
        let too_large = || GatewayError::Body(format!("larger than {limit} bytes"));
        let declared = headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let kib =
            u32::try_from(declared.unwrap_or(limit).div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        let Ok(_claim) = self.body_budget.clone().try_acquire_many_owned(kib) else {
            return Err(GatewayError::Throttled);
        };
        let timeout = Duration::from_millis(config.body_timeout_ms);
        match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
            Ok(Ok(b)) => Ok(b.to_bytes()),
            Ok(Err(e)) => Err(GatewayError::Body(e.to_string())),
            Err(_) => Err(GatewayError::Body(format!(
                "not received within {} ms",
                config.body_timeout_ms
            ))),
        }
    }

    /// Handles one client request.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ProxyBody>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        if parts.method != hyper::Method::POST || parts.uri.path() != "/" {
            let what = format!("{} {}", parts.method, parts.uri.path());
            return GatewayError::NotProxied(what).to_response();
        }
        // Buffered, not streamed: the partition key must be read before choosing a region, and
        // a read must be replayable on another region. DynamoDB bodies are bounded (16 MiB).
        let routing = self.routing();
        let body = match self.read_body(&routing.config, &parts.headers, body).await {
            Ok(b) => b,
            Err(e) => {
                if matches!(e, GatewayError::Throttled) {
                    self.metrics.throttled();
                }
                return e.to_response();
            }
        };
        let op = operation(
            parts
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok()),
        );
        let read = is_idempotent_read(op);
        let pinning = &routing.config.pinning;
        let user = pinning
            .user_header
            .as_deref()
            .and_then(|h| parts.headers.get(h))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| partition_user(op?, &body, pinning));
        let home = user
            .as_deref()
            .and_then(|u| routing.router.home_region(u))
            .map(str::to_string);
        let snapshot = self.health.borrow().clone();
        let n = self.rng_counter.fetch_add(1, Ordering::Relaxed);
        let mut rng = SplitMix64::new(self.rng_seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let plan = routing.router.plan(home.as_deref(), &snapshot, &mut rng);

        // The session: the client's token and the one remembered for a pinned user.
        let pinned_user = user.as_deref().filter(|_| home.is_some());
        let session_op = op.is_some_and(constrains);
        let remembered = pinned_user
            .filter(|_| session_op)
            .and_then(|u| self.remembered(u));
        let mut token = remembered.clone().unwrap_or_default();
        if let Some(t) = parts
            .headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|t| SessionToken::parse(t).ok())
        {
            token.merge(&t);
        }
        let plan_order = if token.is_empty() {
            plan.order.clone()
        } else {
            with_session(&plan.order, &token.origins_latest_first())
        };
        let remembered = remembered.and_then(|t| HeaderValue::from_str(&t.to_string()).ok());

        let pinned_write = !read && routing.config.write_failover == WriteFailover::Refuse;
        let order: Vec<&String> = match (&home, pinned_write) {
            (Some(home), true) if !plan.home_available => {
                self.metrics.refused_write();
                return GatewayError::HomeUnavailable(home.clone()).to_response();
            }
            // A pinned write stays home; it moves on only when home lacks the table.
            (Some(home), true) => std::iter::once(home)
                .chain(plan_order.iter().filter(|r| *r != home))
                .collect(),
            _ => plan_order.iter().collect(),
        };

        let mut last_error = None;
        let mut lacks_table = false;
        let mut behind = false;
        for (i, region) in order.iter().enumerate() {
            if pinned_write && i > 0 && !lacks_table {
                break;
            }
            let more = i + 1 < order.len();
            match self
                .attempt(&routing, region, &parts, &body, remembered.as_ref())
                .await
            {
                // The region has not applied the session's writes yet and did nothing: the
                // next region (where the writes are) is tried; a pinned write that may not
                // leave home gets the region's retryable answer.
                Attempt::Done(resp) if resp.headers().contains_key(BEHIND_HEADER) => {
                    if more && !pinned_write {
                        self.metrics.attempt(region, "session_behind_retried");
                        last_error = Some(format!("{region}: has not applied the session"));
                        behind = true;
                        continue;
                    }
                    self.metrics.attempt(region, "session_behind");
                    return self.respond(region, resp);
                }
                Attempt::Done(resp) if more && resp.status() == StatusCode::BAD_REQUEST => {
                    // A region without the table (a replica removed there) changed nothing:
                    // the request goes to the next region that may have it, read or write.
                    let (head, bytes) = match read_error(resp).await {
                        Ok(r) => r,
                        // A 400 applied nothing, but its answer is lost: a read goes on, a
                        // write gets a retryable error.
                        Err(e) if read => {
                            last_error = Some(format!("{region}: {e}"));
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(%region, error = %e, "reading a region's error answer failed");
                            return GatewayError::NoRegion.to_response();
                        }
                    };
                    if is_resource_not_found(&bytes) {
                        self.metrics.attempt(region, "missing_table_retried");
                        lacks_table = true;
                        continue;
                    }
                    self.metrics
                        .attempt(region, if i == 0 { "ok" } else { "ok_after_failover" });
                    return self.respond_buffered(region, head, bytes);
                }
                Attempt::Done(resp) if read && more && resp.status().is_server_error() => {
                    tracing::debug!(%region, status = %resp.status(), "read failed; retrying on next region");
                    self.metrics.attempt(region, "5xx_retried");
                }
                Attempt::Done(resp) => {
                    self.metrics
                        .attempt(region, if i == 0 { "ok" } else { "ok_after_failover" });
                    if let Some(u) = pinned_user
                        && !read
                    {
                        self.remember(u, resp.headers());
                    }
                    return self.respond(region, resp);
                }
                Attempt::NotSent(e) if home.as_ref() == Some(*region) && pinned_write => {
                    tracing::warn!(error = %e, "home region unreachable; write refused");
                    self.metrics.refused_write();
                    return GatewayError::HomeUnavailable((*region).clone()).to_response();
                }
                Attempt::NotSent(e) => {
                    self.metrics.attempt(region, "not_sent");
                    last_error = Some(e);
                }
                Attempt::Failed(e) if read => {
                    self.metrics.attempt(region, "failed_retried");
                    last_error = Some(e);
                }
                Attempt::Failed(e) => {
                    tracing::warn!(error = %e, "write failed after it was sent");
                    self.metrics.attempt(region, "write_in_doubt");
                    return GatewayError::WriteInDoubt.to_response();
                }
            }
        }
        tracing::warn!(error = ?last_error, "no region could serve the request");
        if behind {
            let made_in = token.origins_latest_first().join(", ");
            return GatewayError::SessionNotApplied(made_in).to_response();
        }
        GatewayError::NoRegion.to_response()
    }

    fn respond(&self, region: &str, resp: Response<Incoming>) -> Response<ProxyBody> {
        let (parts, body) = resp.into_parts();
        self.respond_parts(region, parts, body.boxed())
    }

    fn respond_buffered(
        &self,
        region: &str,
        parts: hyper::http::response::Parts,
        body: Bytes,
    ) -> Response<ProxyBody> {
        let body = Full::new(body).map_err(|never| match never {}).boxed();
        self.respond_parts(region, parts, body)
    }

    fn respond_parts(
        &self,
        region: &str,
        mut parts: hyper::http::response::Parts,
        body: ProxyBody,
    ) -> Response<ProxyBody> {
        strip_hop_by_hop(&mut parts.headers);
        if let Ok(v) = HeaderValue::from_str(region) {
            parts
                .headers
                .insert(HeaderName::from_static(REGION_HEADER), v);
        }
        Response::from_parts(parts, body)
    }

    /// Serves the proxy on `listener` until `shutdown` on the bounded accept loop
    /// (`meridian_serve`: `max_connections`, `header_timeout_ms`), over HTTPS when `tls` is
    /// given; open connections then get up to one second to finish their requests.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<meridian_serve::Tls>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let limits = meridian_serve::Limits {
            max_connections: self.started_with.max_connections.max(1),
            header_timeout: Duration::from_millis(self.started_with.header_timeout_ms.max(100)),
            drain_timeout: Duration::from_secs(1),
        };
        let gw = self;
        let served =
            meridian_serve::serve_fn_with(listener, limits, tls, shutdown, move |req, _client| {
                let gw = gw.clone();
                async move { Ok::<_, std::convert::Infallible>(gw.handle(req).await) }
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "gateway listener failed");
        }
    }
}
