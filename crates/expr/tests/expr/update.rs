use crate::common::*;
use meridian_expr::parse_update;
use meridian_model::key::{KeyAttr, KeySchema, KeyType};
use serde_json::{Value, json};

fn values() -> Value {
    json!({
        ":n0": 0, ":n1": 1, ":n2": 2, ":n5": 5, ":x": "x", ":y": "y", ":s": "str", ":t": true,
        ":null": null, ":b": {"$b": "AQ=="}, ":l2": [2], ":el": [], ":l": [1], ":m": {"a": 1},
        ":ssa": {"$ss": ["a"]}, ":ssb": {"$ss": ["b"]}, ":ssab": {"$ss": ["a", "b"]},
        ":ssz": {"$ss": ["z"]}, ":ns1": {"$ns": ["1"]}, ":ns12": {"$ns": ["1", "2"]},
        ":bs1": {"$bs": ["AQ=="]}, ":big": {"$n": "9e125"}
    })
}

const NAMES: &[(&str, &str)] = &[("#a", "weird name"), ("#st", "status"), ("#n", "n")];

/// `(expression, old item (null: absent), new item)`.
fn cases() -> Vec<(&'static str, Value, Value)> {
    vec![
        ("SET a = :n1", json!({}), json!({"a": 1})),
        ("SET a = :n1", json!(null), json!({"a": 1})),
        (
            "SET a = :n1",
            json!({"a": "old", "b": 2}),
            json!({"a": 1, "b": 2}),
        ),
        ("SET a = :n1, b = :x", json!({}), json!({"a": 1, "b": "x"})),
        ("set a = :n1", json!({}), json!({"a": 1})),
        ("SET a=:n1,b=:x", json!({}), json!({"a": 1, "b": "x"})),
        ("SET #a = :n1", json!({}), json!({"weird name": 1})),
        ("SET #st = :x", json!({}), json!({"status": "x"})),
        ("SET a = :m", json!({}), json!({"a": {"a": 1}})),
        (
            "SET a = :null, b = :t, c = :b",
            json!({}),
            json!({"a": null, "b": true, "c": {"$b": "AQ=="}}),
        ),
        (
            "SET a = b",
            json!({"b": [1, 2]}),
            json!({"a": [1, 2], "b": [1, 2]}),
        ),
        (
            "SET a = b.c[1]",
            json!({"b": {"c": [0, "q"]}}),
            json!({"a": "q", "b": {"c": [0, "q"]}}),
        ),
        (
            "SET a = b, b = a",
            json!({"a": 1, "b": 2}),
            json!({"a": 2, "b": 1}),
        ),
        // arithmetic
        ("SET n = n + :n1", json!({"n": 5}), json!({"n": 6})),
        ("SET n = n - :n1", json!({"n": 5}), json!({"n": 4})),
        ("SET n = :n1 - n", json!({"n": 5}), json!({"n": -4})),
        ("SET n = :n1 + :n2", json!({}), json!({"n": 3})),
        ("SET n = n + n", json!({"n": 2.5}), json!({"n": 5})),
        ("SET #n = #n + :n1", json!({"n": 0.1}), json!({"n": 1.1})),
        ("SET n = (n + :n1)", json!({"n": 5}), json!({"n": 6})),
        ("SET n = (n) + (:n1)", json!({"n": 5}), json!({"n": 6})),
        ("SET n = n+:n1", json!({"n": 5}), json!({"n": 6})),
        ("SET n = n-:n1", json!({"n": 5}), json!({"n": 4})),
        (
            "SET n = if_not_exists(n, :n0) + :n1",
            json!({}),
            json!({"n": 1}),
        ),
        (
            "SET n = if_not_exists(n, :n0) + :n1",
            json!({"n": 5}),
            json!({"n": 6}),
        ),
        ("SET a = if_not_exists(a, :x)", json!({}), json!({"a": "x"})),
        (
            "SET a = if_not_exists(a, :x)",
            json!({"a": "keep"}),
            json!({"a": "keep"}),
        ),
        (
            "SET a = if_not_exists(b, c)",
            json!({"c": 3}),
            json!({"a": 3, "c": 3}),
        ),
        (
            "SET a = if_not_exists(b, if_not_exists(c, :n5))",
            json!({}),
            json!({"a": 5}),
        ),
        (
            "SET m.c = if_not_exists(m.c, :n0) + :n1",
            json!({"m": {}}),
            json!({"m": {"c": 1}}),
        ),
        // list_append
        (
            "SET l = list_append(l, :l2)",
            json!({"l": [1]}),
            json!({"l": [1, 2]}),
        ),
        (
            "SET l = list_append(:l2, l)",
            json!({"l": [1]}),
            json!({"l": [2, 1]}),
        ),
        (
            "SET l = list_append(if_not_exists(l, :el), :l2)",
            json!({}),
            json!({"l": [2]}),
        ),
        (
            "SET l = list_append(:l, :l2)",
            json!({}),
            json!({"l": [1, 2]}),
        ),
        (
            "SET l = list_append(l, l)",
            json!({"l": ["a"]}),
            json!({"l": ["a", "a"]}),
        ),
        ("SET l = list_append(:el, :el)", json!({}), json!({"l": []})),
        // nested paths
        ("SET m.x = :n1", json!({"m": {}}), json!({"m": {"x": 1}})),
        (
            "SET m.a.b = :n1",
            json!({"m": {"a": {}}}),
            json!({"m": {"a": {"b": 1}}}),
        ),
        (
            "SET m.a = :n2",
            json!({"m": {"a": 1, "b": 0}}),
            json!({"m": {"a": 2, "b": 0}}),
        ),
        (
            "SET l[1] = :x",
            json!({"l": [1, 2, 3]}),
            json!({"l": [1, "x", 3]}),
        ),
        ("SET l[10] = :x", json!({"l": [1]}), json!({"l": [1, "x"]})),
        ("SET l[0] = :x", json!({"l": []}), json!({"l": ["x"]})),
        (
            "SET l[1].k = :x",
            json!({"l": [0, {}]}),
            json!({"l": [0, {"k": "x"}]}),
        ),
        (
            "SET l[0][1] = :x",
            json!({"l": [[1, 2]]}),
            json!({"l": [[1, "x"]]}),
        ),
        (
            "SET l[5] = :x, l[6] = :y",
            json!({"l": [0]}),
            json!({"l": [0, "x", "y"]}),
        ),
        (
            "SET #a.#st = :x",
            json!({"weird name": {}}),
            json!({"weird name": {"status": "x"}}),
        ),
        // REMOVE
        ("REMOVE a", json!({"a": 1, "b": 2}), json!({"b": 2})),
        ("REMOVE a", json!(null), json!({})),
        ("REMOVE nope", json!({"b": 2}), json!({"b": 2})),
        (
            "REMOVE a, b",
            json!({"a": 1, "b": 2, "c": 3}),
            json!({"c": 3}),
        ),
        ("remove a", json!({"a": 1}), json!({})),
        ("REMOVE l[0]", json!({"l": [1, 2, 3]}), json!({"l": [2, 3]})),
        (
            "REMOVE l[0], l[1]",
            json!({"l": [1, 2, 3]}),
            json!({"l": [3]}),
        ),
        (
            "REMOVE l[1], l[0]",
            json!({"l": [1, 2, 3]}),
            json!({"l": [3]}),
        ),
        (
            "REMOVE l[0], l[2]",
            json!({"l": [1, 2, 3, 4]}),
            json!({"l": [2, 4]}),
        ),
        ("REMOVE l[5]", json!({"l": [1]}), json!({"l": [1]})),
        ("REMOVE l[0]", json!({"l": [1]}), json!({"l": []})),
        (
            "REMOVE m.a",
            json!({"m": {"a": 1, "b": 2}}),
            json!({"m": {"b": 2}}),
        ),
        (
            "REMOVE m.zz",
            json!({"m": {"a": 1}}),
            json!({"m": {"a": 1}}),
        ),
        (
            "REMOVE l[0].x",
            json!({"l": [{"x": 1, "y": 2}]}),
            json!({"l": [{"y": 2}]}),
        ),
        (
            "REMOVE l[1].x, l[0]",
            json!({"l": [0, {"x": 1, "y": 2}]}),
            json!({"l": [{"y": 2}]}),
        ),
        ("REMOVE #a", json!({"weird name": 1}), json!({})),
        // ADD
        ("ADD n :n1", json!({"n": 5}), json!({"n": 6})),
        ("ADD n :n1", json!({}), json!({"n": 1})),
        ("ADD n :n1", json!(null), json!({"n": 1})),
        ("ADD n :n1, c :n2", json!({"n": 5}), json!({"n": 6, "c": 2})),
        (
            "ADD ss :ssb",
            json!({"ss": {"$ss": ["a"]}}),
            json!({"ss": {"$ss": ["a", "b"]}}),
        ),
        (
            "ADD ss :ssab",
            json!({"ss": {"$ss": ["a"]}}),
            json!({"ss": {"$ss": ["a", "b"]}}),
        ),
        ("ADD ss :ssb", json!({}), json!({"ss": {"$ss": ["b"]}})),
        (
            "ADD ns :ns12",
            json!({"ns": {"$ns": ["1", "3"]}}),
            json!({"ns": {"$ns": ["1", "2", "3"]}}),
        ),
        ("ADD bs :bs1", json!({}), json!({"bs": {"$bs": ["AQ=="]}})),
        ("ADD m.c :n1", json!({"m": {}}), json!({"m": {"c": 1}})),
        ("ADD l[0] :n1", json!({"l": [1]}), json!({"l": [2]})),
        ("add n :n1", json!({}), json!({"n": 1})),
        // DELETE
        (
            "DELETE ss :ssa",
            json!({"ss": {"$ss": ["a", "b"]}}),
            json!({"ss": {"$ss": ["b"]}}),
        ),
        (
            "DELETE ss :ssab",
            json!({"ss": {"$ss": ["a", "b"]}}),
            json!({}),
        ),
        (
            "DELETE ss :ssz",
            json!({"ss": {"$ss": ["a"]}}),
            json!({"ss": {"$ss": ["a"]}}),
        ),
        ("DELETE nope :ssa", json!({"b": 1}), json!({"b": 1})),
        (
            "DELETE ns :ns1",
            json!({"ns": {"$ns": ["1", "2"]}}),
            json!({"ns": {"$ns": ["2"]}}),
        ),
        (
            "DELETE bs :bs1",
            json!({"bs": {"$bs": ["AQ=="]}}),
            json!({}),
        ),
        (
            "DELETE m.ss :ssa",
            json!({"m": {"ss": {"$ss": ["a"]}}}),
            json!({"m": {}}),
        ),
        // several clauses, any order
        (
            "SET a = :n1 REMOVE b ADD n :n1 DELETE ss :ssa",
            json!({"b": 1, "n": 1, "ss": {"$ss": ["a", "b"]}}),
            json!({"a": 1, "n": 2, "ss": {"$ss": ["b"]}}),
        ),
        (
            "DELETE ss :ssa ADD n :n1 REMOVE b SET a = :n1",
            json!({"b": 1, "n": 1, "ss": {"$ss": ["a", "b"]}}),
            json!({"a": 1, "n": 2, "ss": {"$ss": ["b"]}}),
        ),
        ("SET a = b REMOVE b", json!({"b": 7}), json!({"a": 7})),
        ("REMOVE b SET a = b", json!({"b": 7}), json!({"a": 7})),
        (
            "SET l[1] = :x REMOVE l[0]",
            json!({"l": [1, 2, 3]}),
            json!({"l": ["x", 3]}),
        ),
    ]
}

#[test]
fn updates_apply_as_dynamodb_does() {
    let req = Req::new(NAMES, &values());
    let mut failures = Vec::new();
    for (src, old, want) in cases() {
        let old = (!old.is_null()).then(|| item(&old));
        let want = item(&want);
        match parse_update(src, &req.attrs()).and_then(|u| u.apply(old.as_ref())) {
            Ok(got) if got == want => {}
            other => failures.push(format!(
                "{src:?} on {old:?}\n   want {want:?}\n   got  {other:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const INVALID_PATH: &str =
    "The document path provided in the update expression is invalid for update";
const BAD_TYPE: &str = "An operand in the update expression has an incorrect data type";
const MISSING: &str =
    "The provided expression refers to an attribute that does not exist in the item";

#[test]
fn update_runtime_errors() {
    let req = Req::new(NAMES, &values());
    let cases: Vec<(&str, Value, &str)> = vec![
        ("SET m.x = :n1", json!({}), INVALID_PATH),
        ("SET m.x = :n1", json!(null), INVALID_PATH),
        ("SET m.a.b = :n1", json!({"m": {}}), INVALID_PATH),
        ("SET s.x = :n1", json!({"s": "str"}), INVALID_PATH),
        ("SET l[0] = :n1", json!({"l": {}}), INVALID_PATH),
        ("SET m.x = :n1", json!({"m": []}), INVALID_PATH),
        ("SET l[0] = :n1", json!({}), INVALID_PATH),
        ("REMOVE m.x", json!({}), INVALID_PATH),
        ("REMOVE s.x", json!({"s": "str"}), INVALID_PATH),
        ("REMOVE l[0]", json!({"l": "str"}), INVALID_PATH),
        ("ADD m.x :n1", json!({}), INVALID_PATH),
        ("DELETE m.x :ssa", json!({}), INVALID_PATH),
        ("SET a = nope", json!({}), MISSING),
        ("SET a = b.c", json!({"b": {}}), MISSING),
        ("SET a = nope + :n1", json!({}), MISSING),
        ("SET a = list_append(nope, :l)", json!({}), MISSING),
        ("SET n = s + :n1", json!({"s": "x"}), BAD_TYPE),
        ("SET n = :n1 - s", json!({"s": "x"}), BAD_TYPE),
        ("SET n = l + :n1", json!({"l": [1]}), BAD_TYPE),
        ("SET l = list_append(s, :l2)", json!({"s": "x"}), BAD_TYPE),
        ("SET l = list_append(:l2, s)", json!({"s": "x"}), BAD_TYPE),
        ("ADD s :n1", json!({"s": "x"}), BAD_TYPE),
        ("ADD n :ssa", json!({"n": 1}), BAD_TYPE),
        ("ADD ss :ns1", json!({"ss": {"$ss": ["a"]}}), BAD_TYPE),
        ("ADD ss :n1", json!({"ss": {"$ss": ["a"]}}), BAD_TYPE),
        ("DELETE s :ssa", json!({"s": "x"}), BAD_TYPE),
        ("DELETE ns :ssa", json!({"ns": {"$ns": ["1"]}}), BAD_TYPE),
        ("DELETE l :ssa", json!({"l": ["a"]}), BAD_TYPE),
        (
            "SET n = n + :big",
            json!({"n": {"$n": "9e125"}}),
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
        (
            "ADD n :big",
            json!({"n": {"$n": "9e125"}}),
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
    ];
    let mut failures = Vec::new();
    for (src, old, want) in cases {
        let old = (!old.is_null()).then(|| item(&old));
        match parse_update(src, &req.attrs()).map(|u| u.apply(old.as_ref())) {
            Ok(Err(e)) if msg(e.clone()) == want => {}
            other => failures.push(format!("{src:?}\n   want {want}\n   got  {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `(expression, message without "Invalid UpdateExpression: ")`.
const PARSE_ERRORS: &[(&str, &str)] = &[
    ("", "The expression can not be empty;"),
    ("a = :n1", "Syntax error; token: \"a\", near: \"a =\""),
    ("SET", "Syntax error; token: \"<EOF>\", near: \"SET\""),
    ("SET a", "Syntax error; token: \"<EOF>\", near: \"a\""),
    ("SET a = ", "Syntax error; token: \"<EOF>\", near: \"= \""),
    (
        "SET a = :n1,",
        "Syntax error; token: \"<EOF>\", near: \",\"",
    ),
    (
        "SET a = :n1 REMOVE",
        "Syntax error; token: \"<EOF>\", near: \"REMOVE\"",
    ),
    (
        "SET a = b + c + d",
        "Syntax error; token: \"+\", near: \"c + d\"",
    ),
    (
        "SET a = :n1 b = :n2",
        "Syntax error; token: \"b\", near: \":n1 b =\"",
    ),
    ("SET a :n1", "Syntax error; token: \":n1\", near: \"a :n1\""),
    (
        "SET a == :n1",
        "Syntax error; token: \"=\", near: \"== :n1\"",
    ),
    (
        "SET path = VALUE 1",
        "Syntax error; token: \"1\", near: \"VALUE 1\"",
    ),
    (
        "SET a = :n1 * :n2",
        "Syntax error; token: \"*\", near: \":n1 * :n2\"",
    ),
    ("ADD a b", "Syntax error; token: \"b\", near: \"a b\""),
    ("ADD a", "Syntax error; token: \"<EOF>\", near: \"a\""),
    (
        "DELETE a = :ssa",
        "Syntax error; token: \"=\", near: \"a = :ssa\"",
    ),
    (
        "REMOVE a = :n1",
        "Syntax error; token: \"=\", near: \"a = :n1\"",
    ),
    (
        "REMOVE :n1",
        "Syntax error; token: \":n1\", near: \"REMOVE :n1\"",
    ),
    (
        "SET set = :n1",
        "Syntax error; token: \"set\", near: \"SET set =\"",
    ),
    (
        "SET a = list_append(:l)(",
        "Syntax error; token: \"(\", near: \")(\"",
    ),
    (
        "SET a = ((:n1)",
        "Syntax error; token: \"<EOF>\", near: \")\"",
    ),
    (
        "UPDATE a = :n1",
        "Syntax error; token: \"UPDATE\", near: \"UPDATE a\"",
    ),
    (
        "SET a = :n1 AND b = :n2",
        "Syntax error; token: \"AND\", near: \":n1 AND b\"",
    ),
    // clauses at most once
    (
        "SET a = :n1 SET b = :n2",
        "The \"SET\" section can only be used once in an update expression;",
    ),
    (
        "REMOVE a REMOVE b",
        "The \"REMOVE\" section can only be used once in an update expression;",
    ),
    (
        "ADD a :n1 add b :n1",
        "The \"ADD\" section can only be used once in an update expression;",
    ),
    (
        "DELETE a :ssa SET b = :n1 DELETE c :ssa",
        "The \"DELETE\" section can only be used once in an update expression;",
    ),
    // reserved words and placeholders
    (
        "SET status = :n1",
        "Attribute name is a reserved keyword; reserved keyword: status",
    ),
    (
        "REMOVE a.size",
        "Attribute name is a reserved keyword; reserved keyword: size",
    ),
    (
        "SET a = b.Data",
        "Attribute name is a reserved keyword; reserved keyword: Data",
    ),
    (
        "SET #x = :n1",
        "An expression attribute name used in the document path is not defined; attribute name: #x",
    ),
    (
        "SET a = :zz",
        "An expression attribute value used in expression is not defined; attribute value: :zz",
    ),
    (
        "ADD a :zz",
        "An expression attribute value used in expression is not defined; attribute value: :zz",
    ),
    // functions
    ("SET a = foo(b)", "Invalid function name; function: foo"),
    ("SET a = size(b)", "Invalid function name; function: size"),
    (
        "SET a = if_not_exists(b)",
        "Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1",
    ),
    (
        "SET a = list_append(b, c, d)",
        "Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 3",
    ),
    (
        "SET a = if_not_exists(:n1, b)",
        "Operator or function requires a document path; operator or function: if_not_exists",
    ),
    (
        "SET a = list_append(:s, b)",
        "Incorrect operand type for operator or function; operator or function: list_append, operand type: S",
    ),
    (
        "SET a = list_append(b, :m)",
        "Incorrect operand type for operator or function; operator or function: list_append, operand type: M",
    ),
    (
        "SET a = :s + b",
        "Incorrect operand type for operator or function; operator or function: +, operand type: S",
    ),
    (
        "SET a = b - :l",
        "Incorrect operand type for operator or function; operator or function: -, operand type: L",
    ),
    // overlapping and conflicting paths
    (
        "SET a = :n1, a = :n2",
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]",
    ),
    (
        "SET a = :n1 REMOVE a.b",
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
    ),
    (
        "REMOVE a.b[1] SET a.b = :n1",
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b, [1]], path two: [a, b]",
    ),
    (
        "SET #n = :n1 ADD n :n1",
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [n], path two: [n]",
    ),
    (
        "SET a.b = :n1, a[0] = :n1",
        "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [0]]",
    ),
    // ADD / DELETE operand types
    (
        "ADD a :s",
        "Incorrect operand type for operator or function; operator: ADD, operand type: STRING",
    ),
    (
        "ADD a :l",
        "Incorrect operand type for operator or function; operator: ADD, operand type: LIST",
    ),
    (
        "ADD a :m",
        "Incorrect operand type for operator or function; operator: ADD, operand type: MAP",
    ),
    (
        "ADD a :t",
        "Incorrect operand type for operator or function; operator: ADD, operand type: BOOLEAN",
    ),
    (
        "ADD a :null",
        "Incorrect operand type for operator or function; operator: ADD, operand type: NULL",
    ),
    (
        "ADD a :b",
        "Incorrect operand type for operator or function; operator: ADD, operand type: BINARY",
    ),
    (
        "DELETE a :n1",
        "Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER",
    ),
    (
        "DELETE a :s",
        "Incorrect operand type for operator or function; operator: DELETE, operand type: STRING",
    ),
    // which problem is reported first
    (
        "SET status = foo(:zz)",
        "Attribute name is a reserved keyword; reserved keyword: status",
    ),
    (
        "SET a = foo(b) SET c = :n1",
        "Invalid function name; function: foo",
    ),
    (
        "SET a = :zz SET c = :n1",
        "The \"SET\" section can only be used once in an update expression;",
    ),
    (
        "SET a = :zz, #x = :n1",
        "An expression attribute name used in the document path is not defined; attribute name: #x",
    ),
    (
        "SET a = :zz, a = :n1",
        "An expression attribute value used in expression is not defined; attribute value: :zz",
    ),
    (
        "SET a = :n1, a = :s + b",
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]",
    ),
    (
        "ADD a :s SET b = list_append(:s, c)",
        "Incorrect operand type for operator or function; operator: ADD, operand type: STRING",
    ),
];

#[test]
fn update_parse_errors_in_dynamodb_words() {
    let req = Req::new(NAMES, &values());
    let mut failures = Vec::new();
    for (src, want) in PARSE_ERRORS {
        let want = format!("Invalid UpdateExpression: {want}");
        match parse_update(src, &req.attrs()) {
            Err(e) if msg(e.clone()) == want => {}
            other => failures.push(format!("{src:?}\n   want {want}\n   got  {other:?}")),
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
fn touched_attributes_and_key_refusal() {
    let req = Req::new(NAMES, &values());
    let u = parse_update(
        "SET a.b = :n1, #a = :x REMOVE c[0] ADD n :n1 DELETE ss :ssa",
        &req.attrs(),
    )
    .expect("parse");
    let top: Vec<String> = u.top_level_attrs().into_iter().collect();
    assert_eq!(top, ["a", "c", "n", "ss", "weird name"]);
    assert_eq!(u.paths().len(), 5);
    let schema = KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: KeyType::S,
        },
        range: Some(KeyAttr {
            name: "n".into(),
            ty: KeyType::N,
        }),
    };
    assert_eq!(
        msg(u.refuse_key_updates(&schema).expect_err("key")),
        "One or more parameter values were invalid: Cannot update attribute n. This attribute is part of the key"
    );
    let ok = parse_update("SET a = :n1", &req.attrs()).expect("parse");
    assert!(ok.refuse_key_updates(&schema).is_ok());
}
