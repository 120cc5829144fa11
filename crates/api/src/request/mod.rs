//! What the operations share: the request reader and DynamoDB's parameter rules
//! ([`common`]), capacity accounting, table descriptions, index and key-schema parsing, the
//! legacy-parameter translation, paging for `Query`/`Scan`, tags and the transaction-token
//! cache. Nothing here is an operation; operations live in [`crate::ops`] and never import
//! each other.

pub mod capacity;
pub mod common;
pub mod describe;
pub mod indexes;
pub mod legacy;
pub mod paging;
pub mod schema;
pub mod tags;
pub mod transact_tokens;
