//! KeyConditionExpression: `pk = :v [AND <sort-key condition>]`, validated against a key
//! schema, and turned into byte ranges over the storage encoding so a Query is a range scan.

use crate::ast::{CmpOp, Cond, Operand, Path, PathElem};
use crate::condition::parse_cond_tree;
use crate::eval::compare;
use crate::{Attrs, ExprKind};
use meridian_model::key::{KeySchema, KeyType, encode_bytes_prefix, encode_ordered};
use meridian_model::{ApiError, AttributeValue, Item};
use std::cmp::Ordering;
use std::ops::Bound;

/// A validated key condition.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyCondition {
    /// The partition key attribute's name.
    pub partition_attr: String,
    /// The partition key value (`pk = :v`).
    pub partition: AttributeValue,
    /// The sort-key condition, if any.
    pub sort: Option<SortCondition>,
}

/// A condition on the sort key.
#[derive(Clone, Debug, PartialEq)]
pub struct SortCondition {
    /// The sort key attribute's name.
    pub attr: String,
    pub op: SortOp,
}

/// The sort-key operators a Query supports.
#[derive(Clone, Debug, PartialEq)]
pub enum SortOp {
    Eq(AttributeValue),
    Lt(AttributeValue),
    Le(AttributeValue),
    Gt(AttributeValue),
    Ge(AttributeValue),
    Between(AttributeValue, AttributeValue),
    /// Only on `S` or `B` keys.
    BeginsWith(AttributeValue),
}

/// Byte bounds over encoded keys (`(lower, upper)`, as `BTreeMap::range` takes them).
pub type ByteRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Parses and validates a KeyConditionExpression against the table's or index's key schema.
pub fn parse_key_condition(
    src: &str,
    attrs: &Attrs<'_>,
    schema: &KeySchema,
) -> Result<KeyCondition, ApiError> {
    let tree = parse_cond_tree(src, ExprKind::KeyCondition, attrs)?;
    let mut conds: Vec<(String, SortOp)> = Vec::new();
    collect(&tree, &mut conds)?;
    let key_attrs = schema.attrs().count();
    if conds.len() > key_attrs {
        return Err(ApiError::validation(format!(
            "The number of query conditions ({}) exceeds the number of key attributes defined in the schema ({key_attrs})",
            conds.len()
        )));
    }
    let find = |name: &str| {
        conds
            .iter()
            .find(|(a, _)| a == name)
            .map(|(_, c)| c.clone())
    };
    let mismatch = || {
        ApiError::validation(
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        )
    };

    let hash = &schema.hash;
    let Some(hc) = find(&hash.name) else {
        return Err(ApiError::validation(format!(
            "Query condition missed key schema element: {}",
            hash.name
        )));
    };
    if !hc.values().iter().all(|v| type_matches(hash.ty, v)) {
        return Err(mismatch());
    }
    let partition = match hc {
        SortOp::Eq(v) => v,
        _ => return Err(ApiError::validation("Query key condition not supported")),
    };

    let mut sort = None;
    if let Some(range) = &schema.range {
        match find(&range.name) {
            None if conds.len() > 1 => {
                return Err(ApiError::validation(format!(
                    "Query condition missed key schema element: {}",
                    range.name
                )));
            }
            None => {}
            Some(rc) => {
                if !rc.values().iter().all(|v| type_matches(range.ty, v)) {
                    return Err(mismatch());
                }
                sort = Some(SortCondition {
                    attr: range.name.clone(),
                    op: rc,
                });
            }
        }
    }
    Ok(KeyCondition {
        partition_attr: hash.name.clone(),
        partition,
        sort,
    })
}

impl SortOp {
    fn values(&self) -> Vec<&AttributeValue> {
        match self {
            SortOp::Eq(v)
            | SortOp::Lt(v)
            | SortOp::Le(v)
            | SortOp::Gt(v)
            | SortOp::Ge(v)
            | SortOp::BeginsWith(v) => vec![v],
            SortOp::Between(a, b) => vec![a, b],
        }
    }
}

fn type_matches(t: KeyType, v: &AttributeValue) -> bool {
    matches!(
        (t, v),
        (KeyType::S, AttributeValue::S(_))
            | (KeyType::N, AttributeValue::N(_))
            | (KeyType::B, AttributeValue::B(_))
    )
}

fn invalid_op(name: &str) -> ApiError {
    ApiError::validation(format!(
        "Invalid operator used in KeyConditionExpression: {name}"
    ))
}

/// Flattens the `AND` tree into one condition per key attribute, in DynamoDB's order of checks.
fn collect(c: &Cond, out: &mut Vec<(String, SortOp)>) -> Result<(), ApiError> {
    let (name, args, first_must_be_path): (&str, Vec<&Operand>, bool) = match c {
        Cond::And(a, b) => {
            collect(a, out)?;
            return collect(b, out);
        }
        Cond::Or(..) => return Err(invalid_op("OR")),
        Cond::Not(..) => return Err(invalid_op("NOT")),
        Cond::In(..) => return Err(invalid_op("IN")),
        Cond::Cmp(CmpOp::Ne, ..) => return Err(invalid_op("<>")),
        Cond::Exists(_) => return Err(invalid_op("attribute_exists")),
        Cond::NotExists(_) => return Err(invalid_op("attribute_not_exists")),
        Cond::AttrType(..) => return Err(invalid_op("attribute_type")),
        Cond::Contains(..) => return Err(invalid_op("contains")),
        Cond::Cmp(_, a, b) => ("", vec![a, b], false),
        Cond::Between(x, lo, hi) => ("BETWEEN", vec![x, lo, hi], true),
        Cond::BeginsWith(x, p) => ("begins_with", vec![x, p], true),
    };
    if first_must_be_path && !matches!(args.first(), Some(Operand::Path(_))) {
        return Err(ApiError::validation(format!(
            "Invalid condition in KeyConditionExpression: {name} operator must have the key attribute as its first operand"
        )));
    }
    let mut attr: Option<(&Path, usize)> = None;
    for (i, a) in args.iter().enumerate() {
        match a {
            Operand::Path(p) => {
                if attr.is_some() {
                    return Err(ApiError::validation(
                        "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
                    ));
                }
                if p.0.len() > 1 {
                    return Err(ApiError::validation(
                        "KeyConditionExpressions cannot have conditions on nested attributes",
                    ));
                }
                attr = Some((p, i));
            }
            Operand::Size(_) => {
                return Err(ApiError::validation(
                    "KeyConditionExpressions cannot contain nested operations",
                ));
            }
            Operand::Value(_) => {}
        }
    }
    let Some((path, at)) = attr else {
        return Err(ApiError::validation(
            "Invalid condition in KeyConditionExpression: No key attribute specified",
        ));
    };
    let name = match path.0.first() {
        Some(PathElem::Attr(a)) => a.clone(),
        _ => String::new(),
    };
    if out.iter().any(|(a, _)| *a == name) {
        return Err(ExprKind::KeyCondition
            .error("KeyConditionExpressions must only contain one condition per key"));
    }
    let val = |o: Option<&&Operand>| match o {
        Some(Operand::Value(v)) => v.clone(),
        _ => AttributeValue::Null,
    };
    let op = match c {
        Cond::Cmp(op, _, _) => {
            let v = val(args.get(1 - at));
            // `:v < sk` is `sk > :v`.
            let op = if at == 1 { flip(*op) } else { *op };
            match op {
                CmpOp::Eq => SortOp::Eq(v),
                CmpOp::Lt => SortOp::Lt(v),
                CmpOp::Le => SortOp::Le(v),
                CmpOp::Gt => SortOp::Gt(v),
                CmpOp::Ge => SortOp::Ge(v),
                CmpOp::Ne => return Err(invalid_op("<>")),
            }
        }
        Cond::Between(..) => SortOp::Between(val(args.get(1)), val(args.get(2))),
        _ => SortOp::BeginsWith(val(args.get(1))),
    };
    out.push((name, op));
    Ok(())
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xff {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

impl SortCondition {
    /// Whether a sort-key value satisfies the condition.
    pub fn matches(&self, v: &AttributeValue) -> bool {
        let c = |x: &AttributeValue| compare(v, x);
        match &self.op {
            SortOp::Eq(x) => c(x) == Some(Ordering::Equal),
            SortOp::Lt(x) => c(x) == Some(Ordering::Less),
            SortOp::Le(x) => matches!(c(x), Some(Ordering::Less | Ordering::Equal)),
            SortOp::Gt(x) => c(x) == Some(Ordering::Greater),
            SortOp::Ge(x) => matches!(c(x), Some(Ordering::Greater | Ordering::Equal)),
            SortOp::Between(lo, hi) => {
                matches!(c(lo), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(c(hi), Some(Ordering::Less | Ordering::Equal))
            }
            SortOp::BeginsWith(p) => match (v, p) {
                (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
                (AttributeValue::B(s), AttributeValue::B(p)) => s.starts_with(p),
                _ => false,
            },
        }
    }

    /// Bounds over [`encode_ordered`] encodings of the sort key alone: an encoded sort key
    /// `k` satisfies the condition iff it lies within them.
    pub fn encoded_range(&self) -> Result<ByteRange, ApiError> {
        use Bound::*;
        Ok(match &self.op {
            SortOp::Eq(v) => (Included(encode_ordered(v)?), Included(encode_ordered(v)?)),
            SortOp::Lt(v) => (Unbounded, Excluded(encode_ordered(v)?)),
            SortOp::Le(v) => (Unbounded, Included(encode_ordered(v)?)),
            SortOp::Gt(v) => (Excluded(encode_ordered(v)?), Unbounded),
            SortOp::Ge(v) => (Included(encode_ordered(v)?), Unbounded),
            SortOp::Between(lo, hi) => {
                (Included(encode_ordered(lo)?), Included(encode_ordered(hi)?))
            }
            SortOp::BeginsWith(p) => {
                let bytes: &[u8] = match p {
                    AttributeValue::S(s) => s.as_bytes(),
                    AttributeValue::B(b) => b,
                    other => {
                        return Err(ApiError::validation(format!(
                            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: {}",
                            other.type_name()
                        )));
                    }
                };
                let pre = encode_bytes_prefix(bytes);
                let upper = prefix_successor(&pre).map_or(Unbounded, Excluded);
                (Included(pre), upper)
            }
        })
    }
}

impl KeyCondition {
    /// Whether an item's key satisfies the condition.
    pub fn matches(&self, item: &Item) -> bool {
        item.get(&self.partition_attr) == Some(&self.partition)
            && self
                .sort
                .as_ref()
                .is_none_or(|s| item.get(&s.attr).is_some_and(|v| s.matches(v)))
    }

    /// Bounds over full storage keys ([`KeySchema::encode`]): the partition's prefix followed
    /// by the sort-key range.
    pub fn storage_range(&self, schema: &KeySchema) -> Result<ByteRange, ApiError> {
        use Bound::*;
        let prefix = schema.partition_prefix(&self.partition)?;
        let (lo, hi) = match &self.sort {
            Some(s) => s.encoded_range()?,
            None => (Unbounded, Unbounded),
        };
        let join = |b: &[u8]| [prefix.as_slice(), b].concat();
        let lo = match lo {
            Included(b) => Included(join(&b)),
            Excluded(b) => Excluded(join(&b)),
            Unbounded => Included(prefix.clone()),
        };
        let hi = match hi {
            Included(b) => Included(join(&b)),
            Excluded(b) => Excluded(join(&b)),
            Unbounded => prefix_successor(&prefix).map_or(Unbounded, Excluded),
        };
        Ok((lo, hi))
    }
}
