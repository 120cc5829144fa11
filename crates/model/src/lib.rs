//! The DynamoDB wire model, shared by the data plane and the expression language.
//!
//! Pure: no I/O, no async. Layers above parse requests into these types, and every DynamoDB
//! error is an [`ApiError`] whose variant *is* the DynamoDB `__type`.
//!
//! - [`number`]: DynamoDB numbers (38 significant digits, exact, on `bigdecimal`).
//! - [`value`]: [`AttributeValue`] and [`Item`], with their JSON (wire) form.
//! - [`codec`]: the compact, versioned binary form of an item used on disk and on the wire
//!   between regions.
//! - [`key`]: key schemas, key extraction and the order-preserving key encoding.
//! - [`size`]: item size as DynamoDB counts it, and the limits.
//! - [`error`]: the API error type, [`ApiError`].
//! - [`table`]: table metadata as stored and as described to clients.
//! - [`session`]: session tokens (read-your-writes across regions) and their headers.

pub mod codec;
pub mod crdt;
pub mod error;
pub mod key;
pub mod number;
pub mod session;
pub mod size;
pub mod table;
pub mod value;

pub use error::ApiError;
pub use number::Number;
pub use value::{AttributeValue, Item};
