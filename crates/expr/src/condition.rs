//! ConditionExpression / FilterExpression (and the shape of KeyConditionExpression): parsing.
//!
//! Grammar, loosest first (DynamoDB's precedence: `NOT` binds tighter than `AND`, which binds
//! tighter than `OR`; comparisons tighter than all three):
//!
//! ```text
//! or   := and ( OR and )*
//! and  := not ( AND not )*
//! not  := NOT not | rel
//! rel  := atom [ cmp atom | BETWEEN atom AND atom | IN '(' atom ( ',' atom )* ')' ]
//! atom := '(' or ')' | name '(' atom ( ',' atom )* ')' | path | :value
//! ```
//!
//! One grammar serves both conditions and operands, so `(a) = :v` and `(a = :v)` both parse
//! without backtracking; where a condition is needed but an operand stands (or the reverse),
//! the token after it is a syntax error, as in DynamoDB (`a` alone → `token: "<EOF>"`).

use crate::ast::{CmpOp, Cond, Operand, Path};
use crate::eval;
use crate::parser::{Diag, Parser};
use crate::{Attrs, ExprKind};
use meridian_model::{ApiError, AttributeValue, Item};

/// Most operands on the right of `IN`.
pub const MAX_IN_OPERANDS: usize = 100;

const KEYWORDS: &[&str] = &["AND", "OR", "NOT", "BETWEEN", "IN"];

/// The DynamoDB type names `attribute_type` accepts.
pub const TYPE_NAMES: &[&str] = &["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];

/// A parsed ConditionExpression or FilterExpression.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub(crate) cond: Cond,
    pub(crate) kind: ExprKind,
}

impl Condition {
    /// Evaluates against an item (`None`: the item does not exist, so every path is absent).
    pub fn eval(&self, item: Option<&Item>) -> Result<bool, ApiError> {
        eval::eval_cond(&self.cond, item, self.kind)
    }

    /// The condition tree.
    pub fn tree(&self) -> &Cond {
        &self.cond
    }

    /// The top-level attributes the condition reads, in first-seen order, each once.
    pub fn top_level_attrs(&self) -> Vec<String> {
        fn operand(o: &Operand, out: &mut Vec<String>) {
            match o {
                Operand::Path(p) => path(p, out),
                Operand::Value(_) => {}
                Operand::Size(inner) => operand(inner, out),
            }
        }
        fn path(p: &Path, out: &mut Vec<String>) {
            if !out.iter().any(|a| a == p.top()) {
                out.push(p.top().to_string());
            }
        }
        fn walk(c: &Cond, out: &mut Vec<String>) {
            match c {
                Cond::Cmp(_, a, b)
                | Cond::AttrType(a, b)
                | Cond::BeginsWith(a, b)
                | Cond::Contains(a, b) => {
                    operand(a, out);
                    operand(b, out);
                }
                Cond::Between(a, b, c) => {
                    operand(a, out);
                    operand(b, out);
                    operand(c, out);
                }
                Cond::In(a, list) => {
                    operand(a, out);
                    list.iter().for_each(|o| operand(o, out));
                }
                Cond::And(x, y) | Cond::Or(x, y) => {
                    walk(x, out);
                    walk(y, out);
                }
                Cond::Not(x) => walk(x, out),
                Cond::Exists(p) | Cond::NotExists(p) => path(p, out),
            }
        }
        let mut out = Vec::new();
        walk(&self.cond, &mut out);
        out
    }
}

/// Parses a ConditionExpression (`kind` = [`ExprKind::Condition`]) or FilterExpression
/// ([`ExprKind::Filter`]), resolving placeholders through `attrs`.
pub fn parse_condition(
    src: &str,
    kind: ExprKind,
    attrs: &Attrs<'_>,
) -> Result<Condition, ApiError> {
    let cond = parse_cond_tree(src, kind, attrs)?;
    Ok(Condition { cond, kind })
}

/// Parses any condition-shaped expression into its tree.
pub(crate) fn parse_cond_tree(
    src: &str,
    kind: ExprKind,
    attrs: &Attrs<'_>,
) -> Result<Cond, ApiError> {
    crate::parser::on_deep_stack(src, || {
        let mut p = Parser::new(src, kind, attrs, KEYWORDS)?;
        let node = or(&mut p)?;
        let cond = need_cond(&mut p, node)?;
        p.expect_end()?;
        p.finish()?;
        Ok(cond)
    })
}

/// What a sub-expression turned out to be.
enum Expr {
    Cond(Cond),
    /// A boolean function call (`attribute_exists(…)`, …): a condition, never an operand.
    BoolFn(&'static str, Cond),
    Operand(Operand),
    /// An unknown function: an error is already recorded; fits anywhere.
    Poison,
}

struct Node {
    expr: Expr,
    /// Directly wrapped in parentheses (to spot `((…))`).
    parened: bool,
}

impl Node {
    fn new(expr: Expr) -> Node {
        Node {
            expr,
            parened: false,
        }
    }
}

fn placeholder_cond() -> Cond {
    Cond::Exists(Path::attr(""))
}

fn need_cond(p: &mut Parser<'_, '_, '_>, n: Node) -> Result<Cond, ApiError> {
    match n.expr {
        Expr::Cond(c) | Expr::BoolFn(_, c) => Ok(c),
        Expr::Poison => Ok(placeholder_cond()),
        Expr::Operand(Operand::Size(_)) => {
            p.diag(
                Diag::MisusedFunction,
                "The function is not allowed to be used this way in an expression; function: size",
            );
            Ok(placeholder_cond())
        }
        Expr::Operand(_) => Err(p.syntax_error()),
    }
}

fn need_operand(p: &mut Parser<'_, '_, '_>, n: Node) -> Result<Operand, ApiError> {
    match n.expr {
        Expr::Operand(o) => Ok(o),
        Expr::Poison => Ok(Operand::Value(AttributeValue::Null)),
        Expr::BoolFn(name, _) => {
            p.diag(
                Diag::MisusedFunction,
                format!("The function is not allowed to be used this way in an expression; function: {name}"),
            );
            Ok(Operand::Value(AttributeValue::Null))
        }
        Expr::Cond(_) => Err(p.syntax_error()),
    }
}

fn or(p: &mut Parser<'_, '_, '_>) -> Result<Node, ApiError> {
    let mut left = and(p)?;
    while p.at_keyword("OR") {
        let l = need_cond(p, left)?;
        p.bump();
        p.count_operator();
        let r = and(p)?;
        let r = need_cond(p, r)?;
        left = Node::new(Expr::Cond(Cond::Or(Box::new(l), Box::new(r))));
    }
    Ok(left)
}

fn and(p: &mut Parser<'_, '_, '_>) -> Result<Node, ApiError> {
    let mut left = not(p)?;
    while p.at_keyword("AND") {
        let l = need_cond(p, left)?;
        p.bump();
        p.count_operator();
        let r = not(p)?;
        let r = need_cond(p, r)?;
        left = Node::new(Expr::Cond(Cond::And(Box::new(l), Box::new(r))));
    }
    Ok(left)
}

fn not(p: &mut Parser<'_, '_, '_>) -> Result<Node, ApiError> {
    if p.eat_keyword("NOT") {
        p.count_operator();
        p.enter()?;
        let inner = not(p)?;
        p.leave();
        let c = need_cond(p, inner)?;
        return Ok(Node::new(Expr::Cond(Cond::Not(Box::new(c)))));
    }
    rel(p)
}

fn cmp_op(t: Option<&crate::lexer::Tok>) -> Option<CmpOp> {
    use crate::lexer::Tok;
    Some(match t? {
        Tok::Eq => CmpOp::Eq,
        Tok::Ne => CmpOp::Ne,
        Tok::Lt => CmpOp::Lt,
        Tok::Le => CmpOp::Le,
        Tok::Gt => CmpOp::Gt,
        Tok::Ge => CmpOp::Ge,
        _ => return None,
    })
}

fn rel(p: &mut Parser<'_, '_, '_>) -> Result<Node, ApiError> {
    let left = atom(p)?;
    if let Some(op) = cmp_op(p.peek()) {
        let l = need_operand(p, left)?;
        p.bump();
        let r = atom(p)?;
        let r = need_operand(p, r)?;
        check_distinct(p, op.as_str(), &l, &r);
        if op != CmpOp::Eq && op != CmpOp::Ne {
            check_orderable(p, op.as_str(), [&l, &r]);
        }
        p.count_operator();
        p.seal_condition();
        return Ok(Node::new(Expr::Cond(Cond::Cmp(op, l, r))));
    }
    if p.at_keyword("BETWEEN") {
        let x = need_operand(p, left)?;
        p.bump();
        let lo = atom(p)?;
        let lo = need_operand(p, lo)?;
        if !p.eat_keyword("AND") {
            return Err(p.syntax_error());
        }
        let hi = atom(p)?;
        let hi = need_operand(p, hi)?;
        check_orderable(p, "BETWEEN", [&x, &lo, &hi]);
        check_between(p, &lo, &hi);
        p.count_operator();
        p.seal_condition();
        return Ok(Node::new(Expr::Cond(Cond::Between(x, lo, hi))));
    }
    if p.at_keyword("IN") {
        use crate::lexer::Tok;
        let x = need_operand(p, left)?;
        p.bump();
        p.expect(&Tok::LParen)?;
        let mut list = Vec::new();
        loop {
            let a = atom(p)?;
            list.push(need_operand(p, a)?);
            if !p.eat(&Tok::Comma) {
                break;
            }
        }
        p.expect(&Tok::RParen)?;
        if list.len() > MAX_IN_OPERANDS {
            p.diag(
                Diag::OperandCount,
                format!(
                    "The IN operator is provided with too many operands; number of operands: {}",
                    list.len()
                ),
            );
        }
        p.count_operator();
        p.seal_condition();
        return Ok(Node::new(Expr::Cond(Cond::In(x, list))));
    }
    if matches!(left.expr, Expr::BoolFn(..)) {
        p.seal_condition();
    }
    Ok(left)
}

/// `<`, `<=`, `>`, `>=` and `BETWEEN` order only numbers, strings and binaries: a value of
/// another type can never satisfy them, and DynamoDB refuses it up front.
fn check_orderable<const N: usize>(p: &mut Parser<'_, '_, '_>, op: &str, operands: [&Operand; N]) {
    for o in operands {
        if let Some(t) = static_type(o).filter(|t| !matches!(*t, "N" | "S" | "B")) {
            type_error(p, op, t);
            return;
        }
    }
}

fn atom(p: &mut Parser<'_, '_, '_>) -> Result<Node, ApiError> {
    use crate::lexer::Tok;
    match p.peek().cloned() {
        Some(Tok::LParen) => {
            p.bump();
            p.enter()?;
            let inner = or(p)?;
            p.expect(&Tok::RParen)?;
            p.leave();
            if inner.parened {
                p.diag(Diag::Parens, "The expression has redundant parentheses;");
            }
            Ok(Node {
                expr: inner.expr,
                parened: true,
            })
        }
        Some(Tok::Value(v)) => {
            p.bump();
            let val = p.resolve_value(&v);
            Ok(Node::new(Expr::Operand(Operand::Value(val))))
        }
        Some(Tok::Ident(name)) if p.peek2() == Some(&Tok::LParen) => {
            p.bump();
            p.bump();
            p.enter()?;
            let mut args = Vec::new();
            loop {
                let a = atom(p)?;
                args.push(need_operand(p, a)?);
                if !p.eat(&Tok::Comma) {
                    break;
                }
            }
            p.expect(&Tok::RParen)?;
            p.leave();
            Ok(Node::new(function(p, &name, args)))
        }
        _ if p.at_path() => Ok(Node::new(Expr::Operand(Operand::Path(p.path()?)))),
        _ => Err(p.syntax_error()),
    }
}

/// The static type of an operand, when known before evaluation.
fn static_type(o: &Operand) -> Option<&'static str> {
    match o {
        Operand::Value(v) => Some(v.type_name()),
        Operand::Size(_) => Some("N"),
        Operand::Path(_) => None,
    }
}

fn type_error(p: &mut Parser<'_, '_, '_>, f: &str, t: &str) {
    p.diag(
        Diag::Function,
        format!("Incorrect operand type for operator or function; operator or function: {f}, operand type: {t}"),
    );
}

fn function(p: &mut Parser<'_, '_, '_>, name: &str, mut args: Vec<Operand>) -> Expr {
    p.count_operator();
    let (fname, arity): (&'static str, usize) = match name {
        "attribute_exists" => ("attribute_exists", 1),
        "attribute_not_exists" => ("attribute_not_exists", 1),
        "attribute_type" => ("attribute_type", 2),
        "begins_with" => ("begins_with", 2),
        "contains" => ("contains", 2),
        "size" => ("size", 1),
        "if_not_exists" | "list_append" => {
            p.diag(
                Diag::UnknownFunction,
                format!(
                    "The function is not allowed in a {} expression; function: {name}",
                    if p.kind == ExprKind::Filter {
                        "filter"
                    } else {
                        "condition"
                    }
                ),
            );
            return Expr::Poison;
        }
        _ => {
            p.diag(
                Diag::UnknownFunction,
                format!("Invalid function name; function: {name}"),
            );
            return Expr::Poison;
        }
    };
    if args.len() != arity {
        p.diag(
            Diag::OperandCount,
            format!(
                "Incorrect number of operands for operator or function; operator or function: {fname}, number of operands: {}",
                args.len()
            ),
        );
        return if fname == "size" {
            Expr::Operand(Operand::Value(AttributeValue::Null))
        } else {
            Expr::Poison
        };
    }
    if arity == 2 {
        check_distinct(p, fname, &args[0], &args[1]);
    }
    let second = if arity == 2 { args.pop() } else { None };
    let first = args.pop();
    let (Some(a), b) = (first, second) else {
        return Expr::Poison;
    };
    let b = b.unwrap_or(Operand::Value(AttributeValue::Null));
    match fname {
        "attribute_exists" | "attribute_not_exists" => {
            let Operand::Path(path) = a else {
                p.diag(
                    Diag::Function,
                    format!("Operator or function requires a document path; operator or function: {fname}"),
                );
                return Expr::BoolFn(fname, placeholder_cond());
            };
            let c = if fname == "attribute_exists" {
                Cond::Exists(path)
            } else {
                Cond::NotExists(path)
            };
            Expr::BoolFn(fname, c)
        }
        "attribute_type" => {
            match &b {
                Operand::Value(AttributeValue::S(t)) => {
                    if !TYPE_NAMES.contains(&t.as_str()) {
                        p.diag(
                            Diag::Function,
                            format!(
                                "Invalid attribute type name found; type: {t}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                            ),
                        );
                    }
                }
                other => {
                    let t = static_type(other).unwrap_or("{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
                    type_error(p, fname, t);
                }
            }
            Expr::BoolFn(fname, Cond::AttrType(a, b))
        }
        "begins_with" => {
            for o in [&a, &b] {
                if let Some(t) = static_type(o).filter(|t| *t != "S" && *t != "B") {
                    type_error(p, fname, t);
                    break;
                }
            }
            Expr::BoolFn(fname, Cond::BeginsWith(a, b))
        }
        "contains" => Expr::BoolFn(fname, Cond::Contains(a, b)),
        _ => {
            if let Some(t) = static_type(&a).filter(|t| matches!(*t, "N" | "BOOL" | "NULL")) {
                type_error(p, fname, t);
            }
            Expr::Operand(Operand::Size(Box::new(a)))
        }
    }
}

fn check_distinct(p: &mut Parser<'_, '_, '_>, op: &str, a: &Operand, b: &Operand) {
    if let (Operand::Path(x), Operand::Path(y)) = (a, b)
        && x == y
    {
        p.diag(
            Diag::Distinct,
            format!(
                "The first operand must be distinct from the remaining operands for this operator or function; operator: {op}, first operand: {x}"
            ),
        );
    }
}

fn check_between(p: &mut Parser<'_, '_, '_>, lo: &Operand, hi: &Operand) {
    let (Operand::Value(l), Operand::Value(h)) = (lo, hi) else {
        return;
    };
    let show = |v: &AttributeValue| {
        format!(
            "AttributeValue: {{{}:{}}}",
            v.type_name(),
            eval::scalar_text(v)
        )
    };
    if l.type_name() != h.type_name() {
        p.diag(
            Diag::Function,
            format!(
                "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: {}, upper bound operand: {}",
                show(l),
                show(h)
            ),
        );
    } else if eval::compare(l, h) == Some(std::cmp::Ordering::Greater) {
        p.diag(
            Diag::Function,
            format!(
                "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: {}, upper bound operand: {}",
                show(l),
                show(h)
            ),
        );
    }
}
