//! DynamoDB's expression language: parsing and evaluation. Pure: no I/O, no async.
//!
//! Every expression of one request shares one [`Attrs`] (its `ExpressionAttributeNames` and
//! `ExpressionAttributeValues`). Parse each expression the request carries, then call
//! [`Attrs::check_all_used`]; DynamoDB parses them in the order Update, Condition,
//! KeyCondition, Filter, Projection, so a request with several bad expressions reports the
//! first of that order.
//!
//! ```text
//! let attrs = Attrs::new(names.as_ref(), values.as_ref());
//! attrs.validate()?;
//! let update = parse_update(src, &attrs)?;                        // UpdateExpression
//! let cond = parse_condition(src, ExprKind::Condition, &attrs)?;  // ConditionExpression
//! let key = parse_key_condition(src, &attrs, &schema)?;           // KeyConditionExpression
//! let filter = parse_condition(src, ExprKind::Filter, &attrs)?;   // FilterExpression
//! let proj = parse_projection(src, &attrs)?;                      // ProjectionExpression
//! attrs.check_all_used()?;
//!
//! cond.eval(old_item.as_ref())?;          // -> bool
//! update.top_level_attrs();               // refuse key attributes before applying
//! let new_item = update.apply(old_item.as_ref())?;
//! proj.apply(&item);                      // -> projected Item
//! key.storage_range(&schema)?;            // (Bound, Bound) over KeySchema::encode keys
//! ```
//!
//! Every error is an [`ApiError::Validation`] worded as DynamoDB words it, e.g.
//! `Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "= "` for `a = `. The API layer
//! adds DynamoDB's `1 validation error detected: ` envelope where DynamoDB does.
//!
//! Layout: `lexer` (tokens) → `parser` (shared cursor, paths, placeholders, the order in which
//! DynamoDB reports problems) → one module per expression kind ([`condition`],
//! [`key_condition`], [`projection`], [`update`] + [`update_apply`]); [`eval`] and [`document`]
//! evaluate; [`reserved`] holds DynamoDB's 573 reserved words.
//!
//! Limits enforced: 4096 bytes per expression, 300 operators/functions per expression, 100
//! operands for `IN`, 160 nested parentheses (ours: keeps the recursion bounded).

pub mod ast;
pub mod attrs;
pub mod condition;
pub mod document;
pub mod eval;
pub mod key_condition;
mod lexer;
mod parser;
pub mod projection;
pub mod reserved;
pub mod update;
pub mod update_apply;

pub use ast::{CmpOp, Cond, Operand, Path, PathElem};
pub use attrs::Attrs;
pub use condition::{Condition, parse_condition};
pub use key_condition::{KeyCondition, SortCondition, SortOp, parse_key_condition};
pub use projection::{Projection, parse_projection};
pub use update::{Update, parse_update};

use meridian_model::ApiError;

/// Which request parameter an expression came from (it prefixes every error message).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExprKind {
    Condition,
    Filter,
    KeyCondition,
    Projection,
    Update,
}

impl ExprKind {
    /// The parameter name: `ConditionExpression`, `FilterExpression`, ….
    pub fn label(self) -> &'static str {
        match self {
            ExprKind::Condition => "ConditionExpression",
            ExprKind::Filter => "FilterExpression",
            ExprKind::KeyCondition => "KeyConditionExpression",
            ExprKind::Projection => "ProjectionExpression",
            ExprKind::Update => "UpdateExpression",
        }
    }

    /// `Invalid <label>: <msg>` as a ValidationException.
    pub fn error(self, msg: &str) -> ApiError {
        ApiError::Validation(format!("Invalid {}: {msg}", self.label()))
    }
}
