//! A lean HTTP/1.1 client connection for the timed phases of `meridian bench kv`.
//!
//! The load generator shares the machine with the server it measures, so every microsecond it
//! spends is taken from the server. [`Connection`](crate::client::Connection) goes through
//! hyper's client (a driver task per connection, header maps, boxed bodies): about 21 µs of CPU
//! per request here, more than `redis-benchmark` spends per command. A [`WireConn`] writes the
//! signed request into a reused buffer with one `write` and parses the response head in place
//! (status line, `Content-Length` or chunked body, `Connection: close`), with no task of its
//! own. Requests are the same bytes a DynamoDB SDK sends: the same headers, SigV4-signed.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{Endpoint, authorization, signed_headers, target};
use crate::sign::{AmzDate, Signer};

/// A response head larger than this is refused (no DynamoDB endpoint sends one).
const MAX_HEAD: usize = 64 * 1024;
/// A response body larger than this is refused (DynamoDB pages are at most 1 MB, plus JSON).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// The request time, formatted once per second rather than once per request.
#[derive(Debug, Default)]
struct Clock(Option<(u64, AmzDate)>);

impl Clock {
    fn now(&mut self) -> AmzDate {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match &self.0 {
            Some((s, date)) if *s == secs => date.clone(),
            _ => {
                let date = AmzDate::from_unix_secs(secs);
                self.0 = Some((secs, date.clone()));
                date
            }
        }
    }
}

/// A parsed response head: status, body framing, and whether the server closes afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// Bytes of the head, blank line included.
    pub(crate) len: usize,
    pub(crate) framing: Framing,
    pub(crate) close: bool,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(usize),
    Chunked,
}

/// Parses a response head at the start of `buf`; `Ok(None)` when it is not complete yet.
pub(crate) fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            bail!("response head larger than {MAX_HEAD} bytes");
        }
        return Ok(None);
    };
    let head = buf.get(..end).unwrap_or_default();
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, |&b| b == b' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with(b"HTTP/1.") {
        bail!(
            "not an HTTP/1.x response: {:?}",
            String::from_utf8_lossy(status_line)
        );
    }
    let status = parts
        .next()
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("bad status line {:?}", String::from_utf8_lossy(status_line)))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == b"HTTP/1.0";
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .context("bad Content-Length")?;
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) if n <= MAX_BODY => Framing::Length(n),
        (false, Some(n)) => bail!("response body of {n} bytes is too large"),
        // Bodiless statuses; anything else without a length is not HTTP/1.1 keep-alive.
        (false, None) if status == 204 || status == 304 || status < 200 => Framing::Length(0),
        (false, None) => bail!("response has neither Content-Length nor chunked encoding"),
    };
    Ok(Some(Head {
        status,
        len: end + 4,
        framing,
        close,
    }))
}

/// Decodes a chunked body at the start of `buf` into `out`; returns the bytes it took, or
/// `Ok(None)` when the body is not complete yet.
pub(crate) fn parse_chunked(buf: &[u8], out: &mut Vec<u8>) -> anyhow::Result<Option<usize>> {
    out.clear();
    let mut at = 0;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        let Some(eol) = find(rest, b"\r\n") else {
            return Ok(None);
        };
        let size_field = rest.get(..eol).unwrap_or_default();
        let size_hex = size_field
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let size = std::str::from_utf8(size_hex)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .context("bad chunk size")?;
        if out.len() + size > MAX_BODY {
            bail!("chunked response body larger than {MAX_BODY} bytes");
        }
        let data = at + eol + 2;
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            let tail = buf.get(data..).unwrap_or_default();
            return Ok(find(tail, b"\r\n\r\n")
                .map(|t| data + t + 4)
                .or_else(|| tail.starts_with(b"\r\n").then_some(data + 2)));
        }
        let Some(chunk) = buf.get(data..data + size) else {
            return Ok(None);
        };
        if buf.get(data + size..data + size + 2).is_none() {
            return Ok(None);
        }
        out.extend_from_slice(chunk);
        at = data + size + 2;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One keep-alive connection with one request in flight.
pub struct WireConn {
    stream: TcpStream,
    authority: String,
    clock: Clock,
    request: Vec<u8>,
    /// Bytes read and not yet consumed start at `buf[0]`.
    buf: Vec<u8>,
    chunked: Vec<u8>,
    /// Bytes of `buf` that belong to the last response (dropped before the next request).
    consumed: usize,
    closed: bool,
    /// Unsigned header lines sent with every request (`name: value\r\n` each).
    extra: Vec<u8>,
}

impl WireConn {
    /// Connects (Nagle off: requests are small and latency is what is measured).
    pub async fn open(endpoint: &Endpoint) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(&endpoint.authority)
            .await
            .with_context(|| format!("connecting to {}", endpoint.authority))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            authority: endpoint.authority.clone(),
            clock: Clock::default(),
            request: Vec::with_capacity(2048),
            buf: Vec::with_capacity(16 * 1024),
            chunked: Vec::new(),
            consumed: 0,
            closed: false,
            extra: Vec::new(),
        })
    }

    /// Sends these headers, unsigned, with every request (e.g. the gateway's user header).
    pub fn with_headers(mut self, headers: &[(String, String)]) -> Self {
        self.extra.clear();
        for (name, value) in headers {
            self.extra.extend_from_slice(name.as_bytes());
            self.extra.extend_from_slice(b": ");
            self.extra.extend_from_slice(value.as_bytes());
            self.extra.extend_from_slice(b"\r\n");
        }
        self
    }

    /// Whether the server announced it closes the connection: open a new one.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends `DynamoDB_20120810.<operation>` with a JSON `body`, signed, and reads the whole
    /// response: its status and body. Any status is returned; only transport and framing
    /// failures are errors.
    pub async fn call(
        &mut self,
        signer: &Signer,
        operation: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, &[u8])> {
        if self.closed {
            bail!("connection closed by the server");
        }
        self.write_request(signer, operation, body);
        self.stream
            .write_all(&self.request)
            .await
            .context("sending the request")?;
        let head = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            self.fill().await?;
        };
        self.closed = head.close;
        match head.framing {
            Framing::Length(n) => {
                while self.buf.len() < head.len + n {
                    self.fill().await?;
                }
                // The response's bytes are dropped at the next call (`write_request`).
                let body_end = head.len + n;
                self.consumed = body_end;
                Ok((
                    head.status,
                    self.buf.get(head.len..body_end).unwrap_or_default(),
                ))
            }
            Framing::Chunked => {
                let used = loop {
                    let rest = self.buf.get(head.len..).unwrap_or_default();
                    if let Some(used) = parse_chunked(rest, &mut self.chunked)? {
                        break used;
                    }
                    self.fill().await?;
                };
                self.consumed = head.len + used;
                Ok((head.status, &self.chunked))
            }
        }
    }

    /// Builds the request: the same header set an SDK signs, then the body.
    fn write_request(&mut self, signer: &Signer, operation: &str, body: &[u8]) {
        // The previous response's bytes are no longer borrowed: drop them.
        let n = std::mem::take(&mut self.consumed).min(self.buf.len());
        self.buf.drain(..n);
        let date = self.clock.now();
        let target = target(operation);
        let headers = signed_headers(&self.authority, &date, &target);
        let authorization = authorization(signer, &headers, body, &date);
        let r = &mut self.request;
        r.clear();
        r.extend_from_slice(b"POST / HTTP/1.1\r\n");
        for (name, value) in headers {
            r.extend_from_slice(name.as_bytes());
            r.extend_from_slice(b": ");
            r.extend_from_slice(value.as_bytes());
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(&self.extra);
        r.extend_from_slice(b"authorization: ");
        r.extend_from_slice(authorization.as_bytes());
        r.extend_from_slice(b"\r\ncontent-length: ");
        r.extend_from_slice(body.len().to_string().as_bytes());
        r.extend_from_slice(b"\r\n\r\n");
        r.extend_from_slice(body);
    }

    /// Reads more bytes into the buffer.
    async fn fill(&mut self) -> anyhow::Result<()> {
        let len = self.buf.len();
        if self.buf.capacity() - len < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .context("reading the response")?;
        if n == 0 {
            self.closed = true;
            bail!("connection closed by the server mid-response");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_content_length_head() -> anyhow::Result<()> {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                    Content-Length: 2\r\n\r\n{}";
        let head = parse_head(raw)?.ok_or_else(|| anyhow::anyhow!("incomplete"))?;
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Length(2));
        assert_eq!(raw.get(head.len..), Some(&b"{}"[..]));
        assert!(!head.close);
        Ok(())
    }

    #[test]
    fn waits_for_a_whole_head_and_notes_close() -> anyhow::Result<()> {
        assert_eq!(
            parse_head(b"HTTP/1.1 400 Bad Request\r\ncontent-len")?,
            None
        );
        let head = parse_head(
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        )?
        .ok_or_else(|| anyhow::anyhow!("incomplete"))?;
        assert_eq!(head.status, 400);
        assert!(head.close);
        Ok(())
    }

    #[test]
    fn refuses_what_is_not_http() {
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn decodes_chunked_bodies_only_when_complete() -> anyhow::Result<()> {
        let mut out = Vec::new();
        let whole = b"4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\nNEXT";
        let used = parse_chunked(whole, &mut out)?.ok_or_else(|| anyhow::anyhow!("incomplete"))?;
        assert_eq!(out, b"{\"a\":1}");
        assert_eq!(whole.get(used..), Some(&b"NEXT"[..]));
        for cut in 0..whole.len() - 4 {
            assert_eq!(
                parse_chunked(&whole[..cut], &mut out)?,
                None,
                "cut at {cut}"
            );
        }
        assert!(parse_chunked(b"zz\r\n", &mut out).is_err());
        Ok(())
    }
}
