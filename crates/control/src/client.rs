//! A small HTTP/1.1 client, and the typed client of the control plane's API used by the agents,
//! the operator commands and the tests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::error::{ControlError, SpecError};
use crate::store::StoredSpec;
use meridian_auth::AdminToken;

/// A keep-alive HTTP client with one timeout per request; with an admin token it presents it
/// on every request (`Authorization: Bearer …`), as the cluster's admin endpoints require.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    bearer: Option<Arc<str>>,
}

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("timeout", &self.timeout)
            .field("token", &self.bearer.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Http {
    /// A client whose requests each give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        Http {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            timeout,
            bearer: None,
        }
    }

    /// The same client, presenting `token` (none: as before) on every request.
    pub fn with_token(mut self, token: Option<&AdminToken>) -> Self {
        self.bearer = token.map(|t| Arc::from(t.bearer()));
        self
    }

    /// Sends one request.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<HttpResponse, ControlError> {
        let remote = |e: String| ControlError::Remote(format!("{method} {url}: {e}"));
        let mut builder = Request::builder().method(method.clone()).uri(url);
        if let Some(b) = &self.bearer {
            builder = builder.header(hyper::header::AUTHORIZATION, b.as_ref());
        }
        let payload = match body {
            Some((bytes, content_type)) => {
                builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let req = builder
            .body(Full::new(payload))
            .map_err(|e| remote(e.to_string()))?;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| remote(e.to_string()))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| remote(e.to_string()))?
                .to_bytes();
            Ok(HttpResponse { status, body })
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| remote(format!("no answer within {:?}", self.timeout)))?
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<HttpResponse, ControlError> {
        self.request(Method::GET, url, None).await
    }

    /// `POST url` with an optional JSON body.
    pub async fn post_json(
        &self,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, ControlError> {
        let body = body.map(|b| (b.to_string().into_bytes(), "application/json"));
        self.request(Method::POST, url, body).await
    }
}

/// What a component tells the control plane about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// `region/us-east`, `dns`, `gateway`.
    pub component: String,
    /// The spec version it runs.
    pub version: u64,
    /// Where that version came from: `control` or `cache`.
    pub source: String,
    /// Its process id.
    pub pid: u32,
    /// The last apply error, if the newest version could not be applied.
    #[serde(default)]
    pub error: Option<String>,
}

/// Typed client of the control plane's HTTP API.
#[derive(Clone)]
pub struct ControlClient {
    base: String,
    http: Http,
}

impl ControlClient {
    /// A client of the control plane at `base` (`http://127.0.0.1:7100`).
    pub fn new(base: &str, timeout: Duration) -> Self {
        ControlClient {
            base: base.trim_end_matches('/').to_owned(),
            http: Http::new(timeout),
        }
    }

    /// The same client, presenting the admin token on every request.
    pub fn with_token(mut self, token: Option<&AdminToken>) -> Self {
        self.http = self.http.with_token(token);
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn stored(resp: &HttpResponse) -> Result<StoredSpec, ControlError> {
        let v = resp.json();
        match (v["version"].as_u64(), v["spec"].as_str()) {
            (Some(version), Some(text)) => Ok(StoredSpec {
                version,
                text: text.to_owned(),
            }),
            _ => Err(ControlError::Remote("malformed spec response".into())),
        }
    }

    /// The latest spec; with `newer_than`, `None` unless a newer one exists.
    pub async fn latest(
        &self,
        newer_than: Option<u64>,
    ) -> Result<Option<StoredSpec>, ControlError> {
        let url = match newer_than {
            Some(n) => format!("{}/v1/specs/latest?newer_than={n}", self.base),
            None => format!("{}/v1/specs/latest", self.base),
        };
        let resp = self.http.get(&url).await?;
        match resp.status {
            200 => Ok(Some(Self::stored(&resp)?)),
            204 | 404 => Ok(None),
            s => Err(ControlError::Remote(format!("GET {url}: status {s}"))),
        }
    }

    /// One version.
    pub async fn version(&self, version: u64) -> Result<StoredSpec, ControlError> {
        let url = format!("{}/v1/specs/{version}", self.base);
        let resp = self.http.get(&url).await?;
        match resp.status {
            200 => Self::stored(&resp),
            404 => Err(ControlError::UnknownVersion(version)),
            s => Err(ControlError::Remote(format!("GET {url}: status {s}"))),
        }
    }

    /// Validates and stores a spec; returns its version and whether it is new. A refused spec
    /// comes back as [`ControlError::Spec`] with its position.
    pub async fn apply(
        &self,
        text: &str,
        if_changed: bool,
        restart: bool,
    ) -> Result<(u64, bool), ControlError> {
        let url = format!(
            "{}/v1/specs?if_changed={if_changed}&restart={restart}",
            self.base
        );
        let resp = self
            .http
            .request(
                Method::POST,
                &url,
                Some((text.as_bytes().to_vec(), "application/toml")),
            )
            .await?;
        let v = resp.json();
        match resp.status {
            200 | 201 => Ok((
                v["version"].as_u64().unwrap_or(0),
                v["created"].as_bool().unwrap_or(true),
            )),
            400 => Err(ControlError::Spec(SpecError {
                message: v["error"].as_str().unwrap_or("refused").to_owned(),
                path: v["path"].as_str().unwrap_or("").to_owned(),
                line: v["line"].as_u64().map(|n| n as usize),
                column: v["column"].as_u64().map(|n| n as usize),
            })),
            s => Err(ControlError::Remote(format!(
                "POST {url}: status {s}: {}",
                String::from_utf8_lossy(&resp.body)
            ))),
        }
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<serde_json::Value, ControlError> {
        let url = format!("{}/v1/status", self.base);
        let resp = self.http.get(&url).await?;
        if !resp.ok() {
            return Err(ControlError::Remote(format!(
                "GET {url}: status {}",
                resp.status
            )));
        }
        Ok(resp.json())
    }

    /// `POST /v1/report`.
    pub async fn report(&self, report: &Report) -> Result<(), ControlError> {
        let url = format!("{}/v1/report", self.base);
        let body = serde_json::to_value(report).map_err(|e| ControlError::Remote(e.to_string()))?;
        let resp = self.http.post_json(&url, Some(&body)).await?;
        if !resp.ok() {
            return Err(ControlError::Remote(format!(
                "POST {url}: status {}",
                resp.status
            )));
        }
        Ok(())
    }
}
