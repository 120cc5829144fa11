//! What the drill's clients did: one record per request, with its timing, the region that
//! served it, and its outcome. Acknowledged writes in here are what the invariants hold the
//! cluster to.

use serde::{Deserialize, Serialize};

/// The operation of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// `PutItem` of a whole item carrying a unique write id (`wid`).
    Put,
    /// `UpdateItem ADD cnt :one` (a counter increment).
    Add,
    /// `GetItem`.
    Get,
}

impl OpKind {
    /// Whether the operation changes data.
    pub fn is_write(self) -> bool {
        !matches!(self, OpKind::Get)
    }
}

/// How a request ended, as the client can know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged (HTTP 200).
    Ok,
    /// Definitely not applied: refused (4xx, 503) or never sent (no connection).
    Failed,
    /// A write whose fate is unknown: a timeout, a connection lost after sending, a 500.
    Ambiguous,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Which client sent it: `gateway` or `direct`.
    pub via_gateway: bool,
    /// The pinned user (gateway) or the region (direct).
    pub target: String,
    /// Operation.
    pub op: OpKind,
    /// Partition key.
    pub key: String,
    /// The write id of a put.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wid: Option<String>,
    /// Sent at, ms since the scenario started.
    pub start_ms: u64,
    /// Answered (or given up) at.
    pub end_ms: u64,
    /// Outcome.
    pub outcome: Outcome,
    /// The region that served it (the gateway's `x-meridian-region`, or the region called).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
    /// A short error description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Request {
    /// The client's series name in plots and summaries: `gateway` or `direct <region>`.
    pub fn series(&self) -> String {
        if self.via_gateway {
            "gateway".to_owned()
        } else {
            format!("direct {}", self.target)
        }
    }
}

/// What the client saw of one attempt, before classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// An HTTP answer: status and the DynamoDB `__type` (without its namespace) if any.
    Answer(u16, Option<String>),
    /// No connection could be made: the request never left.
    NotSent,
    /// The connection failed or timed out after the request was sent.
    Lost,
}

/// Classifies an attempt: reads and definite refusals fail; writes whose effect is unknown
/// are ambiguous.
pub fn classify(op: OpKind, seen: &Seen) -> Outcome {
    match seen {
        Seen::Answer(200, _) => Outcome::Ok,
        Seen::NotSent => Outcome::Failed,
        // The gateway's `ServiceUnavailableException` (503) is only sent when no region took
        // the request; 4xx are refusals (throttling, validation).
        Seen::Answer(status, _) if *status < 500 || *status == 503 => Outcome::Failed,
        Seen::Answer(..) | Seen::Lost if op.is_write() => Outcome::Ambiguous,
        Seen::Answer(..) | Seen::Lost => Outcome::Failed,
    }
}

/// The `__type` of a DynamoDB error body, without its namespace.
pub fn error_type(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let t = v.get("__type")?.as_str()?;
    Some(t.rsplit('#').next().unwrap_or(t).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let ok = Seen::Answer(200, None);
        let throttled = Seen::Answer(400, Some("ThrottlingException".into()));
        let unavailable = Seen::Answer(503, Some("ServiceUnavailableException".into()));
        let doubt = Seen::Answer(500, Some("InternalServerError".into()));
        assert_eq!(classify(OpKind::Put, &ok), Outcome::Ok);
        assert_eq!(classify(OpKind::Put, &throttled), Outcome::Failed);
        assert_eq!(classify(OpKind::Add, &unavailable), Outcome::Failed);
        assert_eq!(classify(OpKind::Put, &doubt), Outcome::Ambiguous);
        assert_eq!(classify(OpKind::Get, &doubt), Outcome::Failed);
        assert_eq!(classify(OpKind::Add, &Seen::Lost), Outcome::Ambiguous);
        assert_eq!(classify(OpKind::Add, &Seen::NotSent), Outcome::Failed);
        assert_eq!(classify(OpKind::Get, &Seen::Lost), Outcome::Failed);
    }

    #[test]
    fn error_types() {
        let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"}"#;
        assert_eq!(error_type(body).as_deref(), Some("ThrottlingException"));
        assert_eq!(error_type(b"nope"), None);
    }
}
