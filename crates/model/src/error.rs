//! The one error type of the DynamoDB API. Each variant is a DynamoDB error `__type`; the HTTP
//! layer turns it into a response in exactly one place ([`ApiError::to_body`]).

use crate::value::{AttributeValue, Item};
use serde_json::{Map, Value, json};

/// One entry of `TransactionCanceledException.CancellationReasons`.
#[derive(Debug, Clone, PartialEq)]
pub struct CancellationReason {
    /// `None`, `ConditionalCheckFailed`, `ValidationError`, `TransactionConflict`, …
    pub code: String,
    /// Human-readable message (absent for `None`).
    pub message: Option<String>,
    /// The item, when `ReturnValuesOnConditionCheckFailure` was `ALL_OLD`.
    pub item: Option<Item>,
}

/// A DynamoDB API error. The variant names are the `__type`s DynamoDB sends.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// A parameter is semantically invalid.
    #[error("ValidationException: {0}")]
    Validation(String),
    /// The request body is not valid JSON or a member has the wrong JSON type.
    #[error("SerializationException: {0}")]
    Serialization(String),
    /// `X-Amz-Target` names no known operation.
    #[error("UnknownOperationException")]
    UnknownOperation,
    /// The table (or index) does not exist.
    #[error("ResourceNotFoundException: {0}")]
    ResourceNotFound(String),
    /// The table already exists, or is being created/deleted.
    #[error("ResourceInUseException: {0}")]
    ResourceInUse(String),
    /// A condition expression evaluated to false.
    #[error("ConditionalCheckFailedException: {message}")]
    ConditionalCheckFailed {
        /// The message.
        message: String,
        /// The item as it was, when `ReturnValuesOnConditionCheckFailure` = `ALL_OLD`.
        item: Option<Item>,
    },
    /// A transaction was cancelled.
    #[error("TransactionCanceledException: {message}")]
    TransactionCanceled {
        /// The message, listing the reasons.
        message: String,
        /// One reason per transaction item.
        reasons: Vec<CancellationReason>,
    },
    /// Same `ClientRequestToken` with different parameters.
    #[error("IdempotentParameterMismatchException: {0}")]
    IdempotentParameterMismatch(String),
    /// Too many tables, indexes, or concurrent control-plane operations.
    #[error("LimitExceededException: {0}")]
    LimitExceeded(String),
    /// The server sheds load.
    #[error("ThrottlingException: {0}")]
    Throttling(String),
    /// Request is missing Authentication Token.
    #[error("MissingAuthenticationTokenException: {0}")]
    MissingAuthenticationToken(String),
    /// Unknown access key.
    #[error("UnrecognizedClientException: {0}")]
    UnrecognizedClient(String),
    /// The signature does not match, or the request is too old.
    #[error("InvalidSignatureException: {0}")]
    InvalidSignature(String),
    /// The Authorization header is malformed.
    #[error("IncompleteSignatureException: {0}")]
    IncompleteSignature(String),
    /// The server failed; details are logged, never sent.
    #[error("InternalServerError: {0}")]
    InternalServerError(String),
    /// The region cannot serve (draining, store failed).
    #[error("ServiceUnavailableException: {0}")]
    ServiceUnavailable(String),
    /// The request carries a session token this region has not applied yet (a
    /// `ServiceUnavailableException`, retryable; `origin` is where the session's writes are).
    #[error("ServiceUnavailableException: {message}")]
    SessionBehind {
        /// The origin of the first mark not applied here.
        origin: String,
        /// The message sent.
        message: String,
    },
}

impl ApiError {
    /// Shorthand for a `ValidationException`.
    pub fn validation(msg: impl Into<String>) -> Self {
        ApiError::Validation(msg.into())
    }

    /// The `__type` as DynamoDB sends it (namespace `#` name).
    pub fn type_name(&self) -> &'static str {
        use ApiError::*;
        match self {
            Validation(_) => "com.amazon.coral.validate#ValidationException",
            Serialization(_) => "com.amazon.coral.service#SerializationException",
            UnknownOperation => "com.amazon.coral.service#UnknownOperationException",
            ResourceNotFound(_) => "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            ResourceInUse(_) => "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
            ConditionalCheckFailed { .. } => {
                "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
            }
            TransactionCanceled { .. } => {
                "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"
            }
            IdempotentParameterMismatch(_) => {
                "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"
            }
            LimitExceeded(_) => "com.amazonaws.dynamodb.v20120810#LimitExceededException",
            Throttling(_) => "com.amazon.coral.availability#ThrottlingException",
            MissingAuthenticationToken(_) => {
                "com.amazon.coral.service#MissingAuthenticationTokenException"
            }
            UnrecognizedClient(_) => "com.amazon.coral.service#UnrecognizedClientException",
            InvalidSignature(_) => "com.amazon.coral.service#InvalidSignatureException",
            IncompleteSignature(_) => "com.amazon.coral.service#IncompleteSignatureException",
            InternalServerError(_) => "com.amazonaws.dynamodb.v20120810#InternalServerError",
            ServiceUnavailable(_) | SessionBehind { .. } => {
                "com.amazon.coral.availability#ServiceUnavailableException"
            }
        }
    }

    /// The short error code (what SDKs show), e.g. `ValidationException`.
    pub fn code(&self) -> &'static str {
        let t = self.type_name();
        t.rsplit('#').next().unwrap_or(t)
    }

    /// The HTTP status DynamoDB uses for this error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InternalServerError(_) => 500,
            ApiError::ServiceUnavailable(_) | ApiError::SessionBehind { .. } => 503,
            _ => 400,
        }
    }

    /// The message sent to the client, if any.
    pub fn message(&self) -> Option<&str> {
        use ApiError::*;
        match self {
            UnknownOperation => None,
            Validation(m)
            | Serialization(m)
            | ResourceNotFound(m)
            | ResourceInUse(m)
            | IdempotentParameterMismatch(m)
            | LimitExceeded(m)
            | Throttling(m)
            | MissingAuthenticationToken(m)
            | UnrecognizedClient(m)
            | InvalidSignature(m)
            | IncompleteSignature(m)
            | ServiceUnavailable(m) => Some(m),
            ConditionalCheckFailed { message, .. }
            | TransactionCanceled { message, .. }
            | SessionBehind { message, .. } => Some(message),
            // Internal details are logged by the caller, never sent.
            InternalServerError(_) => Some("Internal server error"),
        }
    }

    /// The JSON body DynamoDB sends for this error.
    pub fn to_body(&self) -> Vec<u8> {
        let mut body = Map::new();
        body.insert("__type".into(), Value::from(self.type_name()));
        if let Some(m) = self.message() {
            body.insert("message".into(), Value::from(m));
        }
        match self {
            ApiError::ConditionalCheckFailed {
                item: Some(item), ..
            } => {
                body.insert("Item".into(), crate::value::item_to_json(item));
            }
            ApiError::TransactionCanceled { reasons, .. } => {
                let reasons: Vec<Value> = reasons
                    .iter()
                    .map(|r| {
                        let mut o = Map::new();
                        o.insert("Code".into(), Value::from(r.code.clone()));
                        if let Some(m) = &r.message {
                            o.insert("Message".into(), Value::from(m.clone()));
                        }
                        if let Some(item) = &r.item {
                            o.insert("Item".into(), crate::value::item_to_json(item));
                        }
                        Value::Object(o)
                    })
                    .collect();
                body.insert("CancellationReasons".into(), Value::Array(reasons));
            }
            _ => {}
        }
        serde_json::to_vec(&Value::Object(body))
            .unwrap_or_else(|_| json!({"__type": self.type_name()}).to_string().into_bytes())
    }
}

/// `ResourceNotFoundException` for a table, in DynamoDB's words.
pub fn table_not_found(name: &str) -> ApiError {
    ApiError::ResourceNotFound(format!(
        "Requested resource not found: Table: {name} not found"
    ))
}

/// The message DynamoDB sends when a data-plane call names a missing table.
pub fn resource_not_found() -> ApiError {
    ApiError::ResourceNotFound("Requested resource not found".into())
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn f<T: Send + Sync>() {}
    f::<ApiError>();
    f::<AttributeValue>();
}
