use crate::common::*;
use meridian_expr::{ExprKind, parse_condition};
use serde_json::json;

fn values() -> serde_json::Value {
    json!({
        ":v": "x", ":w": "y", ":n": 5, ":n6": 6, ":s": "x", ":t": true, ":l": [1], ":m": {"a": 1},
        ":bad": "X", ":tS": "S", ":b": {"$b": "AQ=="}, ":ss": {"$ss": ["a"]}, ":null": null
    })
}

/// `(expression, message without the "Invalid ConditionExpression: " prefix)`.
const ERRORS: &[(&str, &str)] = &[
    ("", "The expression can not be empty;"),
    // syntax errors quote the token and its neighbours
    ("a", "Syntax error; token: \"<EOF>\", near: \"a\""),
    ("a =", "Syntax error; token: \"<EOF>\", near: \"=\""),
    ("a = ", "Syntax error; token: \"<EOF>\", near: \"= \""),
    ("   ", "Syntax error; token: \"<EOF>\", near: \"\""),
    ("a == :v", "Syntax error; token: \"=\", near: \"== :v\""),
    (
        "a = :v AND",
        "Syntax error; token: \"<EOF>\", near: \"AND\"",
    ),
    (
        "a = :v AND OR b = :v",
        "Syntax error; token: \"OR\", near: \"AND OR b\"",
    ),
    ("(a = :v", "Syntax error; token: \"<EOF>\", near: \":v\""),
    ("a = :v)", "Syntax error; token: \")\", near: \":v)\""),
    ("a <> :v :w", "Syntax error; token: \":w\", near: \":v :w\""),
    ("a ! :v", "Syntax error; token: \"!\", near: \"a ! :v\""),
    ("a != :v", "Syntax error; token: \"!\", near: \"a !=\""),
    (
        "a BETWEEN :v",
        "Syntax error; token: \"<EOF>\", near: \":v\"",
    ),
    (
        "a BETWEEN :v OR :w",
        "Syntax error; token: \"OR\", near: \":v OR :w\"",
    ),
    ("a IN :v", "Syntax error; token: \":v\", near: \"IN :v\""),
    ("a IN ()", "Syntax error; token: \")\", near: \"()\""),
    ("a IN (:v", "Syntax error; token: \"<EOF>\", near: \":v\""),
    ("a IN (:v,)", "Syntax error; token: \")\", near: \",)\""),
    ("a[x] = :v", "Syntax error; token: \"x\", near: \"[x]\""),
    ("a[] = :v", "Syntax error; token: \"]\", near: \"[] =\""),
    ("a[-1] = :v", "Syntax error; token: \"-\", near: \"[-1\""),
    ("a. = :v", "Syntax error; token: \"=\", near: \". = :v\""),
    ("and = :v", "Syntax error; token: \"and\", near: \"and =\""),
    ("a = :v b", "Syntax error; token: \"b\", near: \":v b\""),
    ("NOT", "Syntax error; token: \"<EOF>\", near: \"NOT\""),
    ("NOT a", "Syntax error; token: \"<EOF>\", near: \"a\""),
    ("a AND b", "Syntax error; token: \"AND\", near: \"a AND b\""),
    (
        "a = :v AND b",
        "Syntax error; token: \"<EOF>\", near: \"b\"",
    ),
    (
        "attribute_exists(a",
        "Syntax error; token: \"<EOF>\", near: \"a\"",
    ),
    (
        "attribute_exists()",
        "Syntax error; token: \")\", near: \"()\"",
    ),
    ("a = :v,", "Syntax error; token: \",\", near: \":v,\""),
    ("a = b = c", "Syntax error; token: \"=\", near: \"b = c\""),
    (
        "(a = :v) = :w",
        "Syntax error; token: \"=\", near: \") = :w\"",
    ),
    (
        "a + :v = :w",
        "Syntax error; token: \"+\", near: \"a + :v\"",
    ),
    ("1 = :v", "Syntax error; token: \"1\", near: \"1 =\""),
    ("a = 1", "Syntax error; token: \"1\", near: \"= 1\""),
    ("a = 'x'", "Syntax error; token: \"'\", near: \"= 'x\""),
    ("a = \"x\"", "Syntax error; token: \"\"\", near: \"= \"x\""),
    (
        "a = :v AND AND",
        "Syntax error; token: \"AND\", near: \"AND AND\"",
    ),
    (
        "a BETWEEN :v AND",
        "Syntax error; token: \"<EOF>\", near: \"AND\"",
    ),
    ("a IN", "Syntax error; token: \"<EOF>\", near: \"IN\""),
    (
        "between = :v",
        "Syntax error; token: \"between\", near: \"between =\"",
    ),
    ("a.in = :v", "Syntax error; token: \"in\", near: \".in =\""),
    ("a = :v;", "Syntax error; token: \";\", near: \":v;\""),
    ("é = :v", "Syntax error; token: \"é\", near: \"é =\""),
    // reserved words, bare
    (
        "status = :v",
        "Attribute name is a reserved keyword; reserved keyword: status",
    ),
    (
        "a.Name = :v",
        "Attribute name is a reserved keyword; reserved keyword: Name",
    ),
    (
        "a[0].data = :v",
        "Attribute name is a reserved keyword; reserved keyword: data",
    ),
    (
        "attribute_exists(size)",
        "Attribute name is a reserved keyword; reserved keyword: size",
    ),
    (
        "a = :v OR ZONE = :v",
        "Attribute name is a reserved keyword; reserved keyword: ZONE",
    ),
    // undefined placeholders
    (
        "#n = :v",
        "An expression attribute name used in the document path is not defined; attribute name: #n",
    ),
    (
        "a.#n = :v",
        "An expression attribute name used in the document path is not defined; attribute name: #n",
    ),
    (
        "a = :zz",
        "An expression attribute value used in expression is not defined; attribute value: :zz",
    ),
    (
        "a = :v AND b = :zz",
        "An expression attribute value used in expression is not defined; attribute value: :zz",
    ),
    ("#", "Syntax error; token: \"<EOF>\", near: \"#\""),
    // a bare word starts with a letter: `_` is a token of its own
    ("_x = :v", "Syntax error; token: \"_\", near: \"_x\""),
    (
        "# = :v",
        "An expression attribute name used in the document path is not defined; attribute name: #",
    ),
    // functions
    ("foo(a)", "Invalid function name; function: foo"),
    (
        "ATTRIBUTE_EXISTS(a)",
        "Invalid function name; function: ATTRIBUTE_EXISTS",
    ),
    (
        "attribute_exists(a, b)",
        "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2",
    ),
    (
        "begins_with(a)",
        "Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1",
    ),
    (
        "size(a, b) = :n",
        "Incorrect number of operands for operator or function; operator or function: size, number of operands: 2",
    ),
    (
        "contains(a, :v, :w)",
        "Incorrect number of operands for operator or function; operator or function: contains, number of operands: 3",
    ),
    (
        "size(a)",
        "The function is not allowed to be used this way in an expression; function: size",
    ),
    (
        "size(a) AND a = :v",
        "The function is not allowed to be used this way in an expression; function: size",
    ),
    (
        "attribute_exists(a) = :v",
        "The function is not allowed to be used this way in an expression; function: attribute_exists",
    ),
    (
        "a = contains(a, :v)",
        "The function is not allowed to be used this way in an expression; function: contains",
    ),
    (
        "size(begins_with(a, :v)) = :n",
        "The function is not allowed to be used this way in an expression; function: begins_with",
    ),
    (
        "a IN (attribute_type(a, :v))",
        "The function is not allowed to be used this way in an expression; function: attribute_type",
    ),
    (
        "attribute_exists(:v)",
        "Operator or function requires a document path; operator or function: attribute_exists",
    ),
    (
        "attribute_not_exists(size(a))",
        "Operator or function requires a document path; operator or function: attribute_not_exists",
    ),
    (
        "begins_with(a, :n)",
        "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
    ),
    (
        "begins_with(:t, a)",
        "Incorrect operand type for operator or function; operator or function: begins_with, operand type: BOOL",
    ),
    (
        "begins_with(a, size(b))",
        "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
    ),
    (
        "attribute_type(a, :n)",
        "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
    ),
    (
        "attribute_type(a, b)",
        "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {NS,SS,L,BS,N,M,B,BOOL,NULL,S}",
    ),
    (
        "attribute_type(a, :bad)",
        "Invalid attribute type name found; type: X, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
    ),
    (
        "size(:n) = :n",
        "Incorrect operand type for operator or function; operator or function: size, operand type: N",
    ),
    (
        "size(:t) = :n",
        "Incorrect operand type for operator or function; operator or function: size, operand type: BOOL",
    ),
    (
        "size(:null) = :n",
        "Incorrect operand type for operator or function; operator or function: size, operand type: NULL",
    ),
    (
        "size(size(a)) = :n",
        "Incorrect operand type for operator or function; operator or function: size, operand type: N",
    ),
    // distinct operands
    (
        "a = a",
        "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]",
    ),
    (
        "a <> a",
        "The first operand must be distinct from the remaining operands for this operator or function; operator: <>, first operand: [a]",
    ),
    (
        "m.a[1] >= m.a[1]",
        "The first operand must be distinct from the remaining operands for this operator or function; operator: >=, first operand: [m, a, [1]]",
    ),
    (
        "begins_with(a, a)",
        "The first operand must be distinct from the remaining operands for this operator or function; operator: begins_with, first operand: [a]",
    ),
    (
        "contains(a.b, a.b)",
        "The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [a, b]",
    ),
    // BETWEEN bounds known at parse time
    (
        "a BETWEEN :n AND :v",
        "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {S:x}",
    ),
    (
        "a BETWEEN :n6 AND :n",
        "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:6}, upper bound operand: AttributeValue: {N:5}",
    ),
    (
        "a BETWEEN :w AND :v",
        "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {S:y}, upper bound operand: AttributeValue: {S:x}",
    ),
    // redundant parentheses
    ("((a = :v))", "The expression has redundant parentheses;"),
    ("((a)) = :v", "The expression has redundant parentheses;"),
    (
        "a = :v AND ((b = :v))",
        "The expression has redundant parentheses;",
    ),
    (
        "NOT ((a = :v))",
        "The expression has redundant parentheses;",
    ),
    // which problem DynamoDB reports first
    (
        "((status = :zz))",
        "The expression has redundant parentheses;",
    ),
    ("foo(status)", "Invalid function name; function: foo"),
    (
        "size(status)",
        "The function is not allowed to be used this way in an expression; function: size",
    ),
    (
        "status = :zz",
        "Attribute name is a reserved keyword; reserved keyword: status",
    ),
    (
        "#x = :zz",
        "An expression attribute name used in the document path is not defined; attribute name: #x",
    ),
    (
        "a = :zz AND #x = :v",
        "An expression attribute value used in expression is not defined; attribute value: :zz",
    ),
    (
        "attribute_exists(a, b) AND c = c",
        "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2",
    ),
    (
        "begins_with(a, :n) AND b = :zz",
        "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
    ),
    (
        "b = :zz AND begins_with(a, :n)",
        "An expression attribute value used in expression is not defined; attribute value: :zz",
    ),
    (
        "a < :t",
        "Incorrect operand type for operator or function; operator or function: <, operand type: BOOL",
    ),
    (
        ":null >= a",
        "Incorrect operand type for operator or function; operator or function: >=, operand type: NULL",
    ),
    (
        "a > :l",
        "Incorrect operand type for operator or function; operator or function: >, operand type: L",
    ),
    (
        "a <= :ss",
        "Incorrect operand type for operator or function; operator or function: <=, operand type: SS",
    ),
    (
        "a BETWEEN :m AND :m",
        "Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: M",
    ),
    (
        "c = c AND begins_with(a, :n)",
        "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [c]",
    ),
];

#[test]
fn condition_errors_in_dynamodb_words() {
    let req = Req::new(&[], &values());
    let mut failures = Vec::new();
    for (src, want) in ERRORS {
        for kind in [ExprKind::Condition, ExprKind::Filter] {
            let want = format!("Invalid {}: {want}", kind.label());
            match parse_condition(src, kind, &req.attrs()) {
                Err(e) if msg(e.clone()) == want => {}
                other => failures.push(format!("{src:?}\n   want {want}\n   got  {other:?}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn valid_shapes_parse() {
    let req = Req::new(&[("#n", "name"), ("#k", "status")], &values());
    for src in [
        "a = :v",
        "(a = :v)",
        "(a) = (:v)",
        "#n = :v AND #k <> :v",
        "a.b.c[1][2].d = :v",
        "a [ 1 ] . b = :v",
        "NOT (a = :v OR b = :v) AND c BETWEEN :v AND :s",
        "attribute_exists(a) AND attribute_not_exists(b) OR contains(c, :v)",
        "size(a) > :n AND size(a.b[0]) <= size(c)",
        "a IN (:v, :w, b, c.d)",
        "a_b_1 = :v",
        "a BETWEEN :v AND :v",
        "a = :v AND (b = :v AND (c = :v AND (d = :v)))",
        "attribute_type(a, :tS) OR begins_with(a, :b)",
        "contains(a, :ss)",
        "x BETWEEN size(a) AND :n",
        "a < size(b) AND a > :v AND a >= :b",
    ] {
        parse_condition(src, ExprKind::Condition, &req.attrs())
            .unwrap_or_else(|e| panic!("{src}: {e}"));
    }
}

#[test]
fn in_takes_at_most_100_operands() {
    let mut vals = serde_json::Map::new();
    for i in 0..101 {
        vals.insert(format!(":v{i}"), json!(i));
    }
    let req = Req::new(&[], &serde_json::Value::Object(vals));
    let list = |n: usize| {
        (0..n)
            .map(|i| format!(":v{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    assert!(
        parse_condition(
            &format!("a IN ({})", list(100)),
            ExprKind::Filter,
            &req.attrs()
        )
        .is_ok()
    );
    let err = parse_condition(
        &format!("a IN ({})", list(101)),
        ExprKind::Filter,
        &req.attrs(),
    )
    .expect_err("101");
    assert_eq!(
        msg(err),
        "Invalid FilterExpression: The IN operator is provided with too many operands; number of operands: 101"
    );
}

#[test]
fn expressions_longer_than_4kb_are_refused() {
    let req = Req::new(&[], &values());
    let long = format!("a = :v{}", " ".repeat(4100));
    let err = msg(parse_condition(&long, ExprKind::Condition, &req.attrs()).expect_err("long"));
    assert!(
        err.starts_with("Invalid ConditionExpression: Expression size has exceeded"),
        "{err}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let req = Req::new(&[], &values());
    let deep = format!("{}a = :v{}", "(a = :v AND ".repeat(200), ")".repeat(200));
    assert!(parse_condition(&deep, ExprKind::Condition, &req.attrs()).is_err());
    let nots = format!("{}a = :v", "NOT ".repeat(900));
    assert!(parse_condition(&nots, ExprKind::Condition, &req.attrs()).is_err());
    let ok = format!("{}a = :v{}", "(a = :v AND ".repeat(30), ")".repeat(30));
    assert!(parse_condition(&ok, ExprKind::Condition, &req.attrs()).is_ok());
}

#[test]
fn placeholders_substitute_names_with_any_characters() {
    let req = Req::new(
        &[("#a", "weird name.with[chars]"), ("#b", "status")],
        &json!({":v": 1}),
    );
    let c = parse_condition("#a.#b = :v", ExprKind::Condition, &req.attrs()).expect("parse");
    let item = item(&json!({"weird name.with[chars]": {"status": 1}}));
    assert!(c.eval(Some(&item)).expect("eval"));
}

#[test]
fn at_most_300_operators() {
    let req = Req::new(&[], &values());
    // 150 comparisons joined by 149 ANDs: 299 operators.
    let ok = vec!["a = :v"; 150].join(" AND ");
    assert!(parse_condition(&ok, ExprKind::Filter, &req.attrs()).is_ok());
    let over = vec!["a = :v"; 151].join(" AND ");
    assert_eq!(
        msg(parse_condition(&over, ExprKind::Filter, &req.attrs()).expect_err("301")),
        "Invalid FilterExpression: The expression contains too many operators; operator count: 301"
    );
}

/// The update-only functions are known names, refused in a condition or filter with their own
/// message (not "Invalid function name").
#[test]
fn update_functions_are_not_allowed_in_conditions() {
    let req = Req::new(&[], &values());
    for (kind, what) in [
        (ExprKind::Condition, "condition"),
        (ExprKind::Filter, "filter"),
    ] {
        for (src, f) in [
            ("if_not_exists(a, :v) = :v", "if_not_exists"),
            ("list_append(a, a) = :v", "list_append"),
        ] {
            let err = msg(parse_condition(src, kind, &req.attrs()).expect_err(src));
            assert_eq!(
                err,
                format!(
                    "Invalid {}: The function is not allowed in a {what} expression; function: {f}",
                    kind.label()
                )
            );
        }
    }
}

#[test]
fn nesting_dynamodb_accepts_parses_on_any_stack() {
    let req = Req::new(&[], &values());
    // 149 nested levels, 299 operators: within DynamoDB's limits.
    let deep = format!("{}a = :v{}", "a = :v OR (".repeat(149), ")".repeat(149));
    let parsed = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || parse_condition(&deep, ExprKind::Condition, &req.attrs()).is_ok())
        .expect("spawn")
        .join()
        .expect("join");
    assert!(parsed);
}

#[test]
fn top_level_attrs_lists_each_attribute_once() {
    let req = Req::new(&[("#n", "name")], &values());
    let c = parse_condition(
        "a.b = :v AND (size(#n) > :v OR attribute_exists(c[1])) AND a IN (:v, d)",
        ExprKind::Filter,
        &req.attrs(),
    )
    .expect("parse");
    assert_eq!(c.top_level_attrs(), vec!["a", "name", "c", "d"]);
}
