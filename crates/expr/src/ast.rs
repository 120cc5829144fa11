//! The parsed forms of expressions, with every `#name` and `:value` already substituted.

use meridian_model::AttributeValue;
use std::fmt;

/// One step of a document path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElem {
    /// A map key (or, first, a top-level attribute name).
    Attr(String),
    /// A list index.
    Index(usize),
}

/// A document path: `a.b[2].c` is `[Attr(a), Attr(b), Index(2), Attr(c)]`. Never empty; the
/// first element is always an [`PathElem::Attr`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(pub Vec<PathElem>);

impl Path {
    /// The top-level attribute the path starts from.
    pub fn top(&self) -> &str {
        match self.0.first() {
            Some(PathElem::Attr(a)) => a,
            _ => "",
        }
    }

    /// A top-level attribute as a path.
    pub fn attr(name: &str) -> Path {
        Path(vec![PathElem::Attr(name.to_owned())])
    }
}

impl fmt::Display for Path {
    /// DynamoDB's form in error messages: `[a, b, [2], c]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match e {
                PathElem::Attr(a) => f.write_str(a)?,
                PathElem::Index(n) => write!(f, "[{n}]")?,
            }
        }
        f.write_str("]")
    }
}

/// A value-producing operand of a condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// The value at a document path (absent if the path does not resolve).
    Path(Path),
    /// A value from `ExpressionAttributeValues`.
    Value(AttributeValue),
    /// `size(operand)`.
    Size(Box<Operand>),
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A boolean condition (ConditionExpression, FilterExpression, KeyConditionExpression).
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Cmp(CmpOp, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Exists(Path),
    NotExists(Path),
    AttrType(Operand, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
}
