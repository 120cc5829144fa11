//! One keep-alive HTTP/1.1 connection that sends signed DynamoDB JSON requests.
//!
//! Each load-generator task owns one [`Connection`]: a hyper `http1` client connection over its
//! own `TcpStream`, with no pool in between, so N tasks hold exactly N sockets.

use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::sign::{AmzDate, Request, Signer};

/// The content type of DynamoDB's JSON protocol.
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// Prefix of every `X-Amz-Target` header value.
const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// Where requests go: an `http://host:port` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port`, used both to connect and as the `Host` header.
    pub authority: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/]`. HTTPS is not supported: every peer measured here is
    /// plain HTTP on loopback.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("endpoint must start with http:// (got {url:?})");
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            bail!("endpoint must be http://host[:port] with no path (got {url:?})");
        }
        // A bracketed IPv6 literal has colons of its own; only a colon after `]` is a port.
        let has_port = match authority.rfind(']') {
            Some(close) => authority.get(close..).is_some_and(|t| t.contains(':')),
            None => authority.contains(':'),
        };
        let authority = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self { authority })
    }
}

/// A response: status code and the whole body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Response {
    pub fn is_ok(&self) -> bool {
        self.status == 200
    }

    /// The body as text, for error messages.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `DynamoDB_20120810.<operation>`, the value of `X-Amz-Target`.
pub(crate) fn target(operation: &str) -> String {
    format!("{TARGET_PREFIX}{operation}")
}

/// The headers every request carries and signs, as a DynamoDB SDK sends them.
pub(crate) fn signed_headers<'a>(
    authority: &'a str,
    date: &'a AmzDate,
    target: &'a str,
) -> [(&'static str, &'a str); 4] {
    [
        ("content-type", CONTENT_TYPE),
        ("host", authority),
        ("x-amz-date", date.as_str()),
        ("x-amz-target", target),
    ]
}

/// The `Authorization` header of a `POST /` with these `headers` and `body`, signed at `date`.
pub(crate) fn authorization(
    signer: &Signer,
    headers: &[(&str, &str)],
    body: &[u8],
    date: &AmzDate,
) -> String {
    signer.authorization(
        &Request {
            method: "POST",
            path: "/",
            query: "",
            headers,
            payload: body,
        },
        date,
    )
}

/// One open HTTP/1.1 connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    endpoint: Endpoint,
    signer: Arc<Signer>,
}

impl Connection {
    /// Opens a TCP connection and completes the HTTP/1.1 handshake. The connection's I/O is
    /// driven by a spawned task that ends when the connection closes.
    pub async fn open(endpoint: &Endpoint, signer: Arc<Signer>) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(&endpoint.authority)
            .await
            .with_context(|| format!("connecting to {}", endpoint.authority))?;
        // Requests are small and latency is what is measured: never wait for Nagle.
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // A connection error surfaces to the caller on its next request.
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            endpoint: endpoint.clone(),
            signer,
        })
    }

    /// Sends `DynamoDB_20120810.<operation>` with a JSON `body`, signed, and reads the whole
    /// response. Any status is returned as a [`Response`]; only transport failures are errors.
    pub async fn call(&mut self, operation: &str, body: Bytes) -> anyhow::Result<Response> {
        Ok(self.call_with(operation, body, &[]).await?.0)
    }

    /// Like [`Connection::call`], with `extra` headers sent unsigned (e.g. the gateway's
    /// `x-meridian-user`), and the response headers returned too (e.g. `x-meridian-region`).
    pub async fn call_with(
        &mut self,
        operation: &str,
        body: Bytes,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<(Response, hyper::HeaderMap)> {
        let target = target(operation);
        let date = AmzDate::now();
        let headers = signed_headers(&self.endpoint.authority, &date, &target);
        let authorization = authorization(&self.signer, &headers, &body, &date);
        let mut builder = hyper::Request::post("/");
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .header("authorization", authorization)
            .body(Full::new(body))?;

        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((Response { status, body }, parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() -> anyhow::Result<()> {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:8000")?.authority,
            "127.0.0.1:8000"
        );
        assert_eq!(
            Endpoint::parse("http://localhost/")?.authority,
            "localhost:80"
        );
        assert_eq!(
            Endpoint::parse("http://[::1]:8600")?.authority,
            "[::1]:8600"
        );
        assert_eq!(Endpoint::parse("http://[::1]")?.authority, "[::1]:80");
        assert!(Endpoint::parse("https://127.0.0.1:8000").is_err());
        assert!(Endpoint::parse("http://127.0.0.1:8000/x").is_err());
        assert!(Endpoint::parse("http://").is_err());
        Ok(())
    }
}
