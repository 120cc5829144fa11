//! Evaluating conditions, with DynamoDB's semantics:
//!
//! - an absent attribute makes every comparison false, except `<>`, which is true;
//! - operands of different types are never equal and never ordered (`<>` is true);
//! - `<`, `<=`, `>`, `>=`, `BETWEEN` order only `N` (numerically), `S` and `B` (bytewise);
//! - `=`/`<>`/`IN` compare any types deeply (sets as sets, numbers by value);
//! - `size` is the length of an `S` (in UTF-16 code units, as DynamoDB's Java service counts)
//!   or `B`, the element count of a set, list or map; on `N`, `BOOL` or `NULL` it is an error.

use crate::ExprKind;
use crate::ast::{CmpOp, Cond, Operand};
use crate::document;
use base64::Engine;
use meridian_model::{ApiError, AttributeValue, Item, Number};
use std::borrow::Cow;
use std::cmp::Ordering;

type Val<'i> = Option<Cow<'i, AttributeValue>>;

/// Evaluates `c` against `item` (`None`: no item, every path absent).
pub fn eval_cond(c: &Cond, item: Option<&Item>, kind: ExprKind) -> Result<bool, ApiError> {
    Ok(match c {
        Cond::And(a, b) => eval_cond(a, item, kind)? && eval_cond(b, item, kind)?,
        Cond::Or(a, b) => eval_cond(a, item, kind)? || eval_cond(b, item, kind)?,
        Cond::Not(a) => !eval_cond(a, item, kind)?,
        Cond::Exists(p) => item.and_then(|i| document::get(i, p)).is_some(),
        Cond::NotExists(p) => item.and_then(|i| document::get(i, p)).is_none(),
        Cond::Cmp(op, a, b) => {
            let (a, b) = (operand(a, item, kind)?, operand(b, item, kind)?);
            match (op, a, b) {
                (CmpOp::Eq, Some(a), Some(b)) => a == b,
                (CmpOp::Ne, Some(a), Some(b)) => a != b,
                (CmpOp::Ne, _, _) => true,
                (_, Some(a), Some(b)) => match compare(&a, &b) {
                    Some(o) => match op {
                        CmpOp::Lt => o == Ordering::Less,
                        CmpOp::Le => o != Ordering::Greater,
                        CmpOp::Gt => o == Ordering::Greater,
                        CmpOp::Ge => o != Ordering::Less,
                        CmpOp::Eq | CmpOp::Ne => false,
                    },
                    None => false,
                },
                _ => false,
            }
        }
        Cond::Between(x, lo, hi) => {
            let (x, lo, hi) = (
                operand(x, item, kind)?,
                operand(lo, item, kind)?,
                operand(hi, item, kind)?,
            );
            match (x, lo, hi) {
                (Some(x), Some(lo), Some(hi)) => {
                    matches!(compare(&x, &lo), Some(Ordering::Greater | Ordering::Equal))
                        && matches!(compare(&x, &hi), Some(Ordering::Less | Ordering::Equal))
                }
                _ => false,
            }
        }
        Cond::In(x, list) => {
            let Some(x) = operand(x, item, kind)? else {
                return Ok(false);
            };
            for o in list {
                if operand(o, item, kind)?.is_some_and(|v| v == x) {
                    return Ok(true);
                }
            }
            false
        }
        Cond::AttrType(x, t) => match (operand(x, item, kind)?, operand(t, item, kind)?) {
            (Some(x), Some(t)) => matches!(&*t, AttributeValue::S(t) if t == x.type_name()),
            _ => false,
        },
        Cond::BeginsWith(x, pre) => match (operand(x, item, kind)?, operand(pre, item, kind)?) {
            (Some(x), Some(pre)) => match (&*x, &*pre) {
                (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
                (AttributeValue::B(s), AttributeValue::B(p)) => s.starts_with(p),
                _ => false,
            },
            _ => false,
        },
        Cond::Contains(x, el) => match (operand(x, item, kind)?, operand(el, item, kind)?) {
            (Some(x), Some(el)) => contains(&x, &el),
            _ => false,
        },
    })
}

fn contains(x: &AttributeValue, el: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (x, el) {
        (V::S(s), V::S(sub)) => s.contains(sub.as_str()),
        (V::B(b), V::B(sub)) => sub.is_empty() || b.windows(sub.len()).any(|w| w == sub.as_slice()),
        (V::Ss(set), V::S(s)) => set.contains(s),
        (V::Ns(set), V::N(n)) => set.contains(n),
        (V::Bs(set), V::B(b)) => set.contains(b),
        (V::L(list), el) => list.contains(el),
        _ => false,
    }
}

/// The value of an operand, `None` when it refers to an absent attribute.
pub fn operand<'i>(
    o: &'i Operand,
    item: Option<&'i Item>,
    kind: ExprKind,
) -> Result<Val<'i>, ApiError> {
    Ok(match o {
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Path(p) => item.and_then(|i| document::get(i, p)).map(Cow::Borrowed),
        // An item attribute without a size (a number, boolean or null) makes the comparison
        // false, as in DynamoDB; a constant of such a type was refused when parsing.
        Operand::Size(inner) => match operand(inner, item, kind)? {
            None => None,
            Some(v) => size(&v, kind)
                .ok()
                .map(|n| Cow::Owned(AttributeValue::N(Number::from(n as i64)))),
        },
    })
}

/// `size()` of a value.
pub fn size(v: &AttributeValue, kind: ExprKind) -> Result<usize, ApiError> {
    use AttributeValue as V;
    Ok(match v {
        V::S(s) => s.encode_utf16().count(),
        V::B(b) => b.len(),
        V::Ss(s) => s.len(),
        V::Ns(s) => s.len(),
        V::Bs(s) => s.len(),
        V::L(l) => l.len(),
        V::M(m) => m.len(),
        V::N(_) | V::Bool(_) | V::Null => {
            return Err(kind.error(&format!(
                "Incorrect operand type for operator or function; operator or function: size, operand type: {}",
                v.type_name()
            )));
        }
    })
}

/// Order of two scalars of one orderable type (`N`, `S`, `B`); `None` otherwise.
pub fn compare(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    use AttributeValue as V;
    match (a, b) {
        (V::N(x), V::N(y)) => Some(x.cmp(y)),
        (V::S(x), V::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (V::B(x), V::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A value's text in DynamoDB's messages (`{N:5}` shows `5`; binaries in base64).
pub fn scalar_text(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.to_string(),
        AttributeValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b),
        AttributeValue::Bool(b) => b.to_string(),
        AttributeValue::Null => "true".to_owned(),
        other => format!("{other:?}"),
    }
}
