//! Item size as DynamoDB counts it, and the item-size limit.

use crate::error::ApiError;
use crate::value::{AttributeValue, Item};

/// Largest item, in bytes (400 KB).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Size of one value: strings and binaries by length, numbers by about one byte per two
/// significant digits plus one, booleans and nulls one byte, lists and maps three bytes plus one
/// per element plus their contents.
pub fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.size(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Bool(_) | AttributeValue::Null => 1,
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
        AttributeValue::Ns(s) => s.iter().map(crate::number::Number::size).sum(),
        AttributeValue::Bs(s) => s.iter().map(Vec::len).sum(),
    }
}

/// Size of an item: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// Refuses an item DynamoDB would not store, with DynamoDB's message: over [`MAX_ITEM_BYTES`],
/// or nested deeper than [`crate::value::MAX_NESTING_LEVELS`]. Returns its size.
pub fn check_item(item: &Item) -> Result<usize, ApiError> {
    crate::value::check_nesting(item)?;
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(ApiError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    Ok(size)
}
