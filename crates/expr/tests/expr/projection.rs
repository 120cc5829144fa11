use crate::common::*;
use meridian_expr::{Path, Projection, parse_projection};
use serde_json::{Value, json};

const NAMES: &[(&str, &str)] = &[("#dn", "dot.name"), ("#st", "status"), ("#m", "m")];

fn cases() -> Vec<(&'static str, Value)> {
    vec![
        ("s", json!({"s": "hello"})),
        ("s, n", json!({"s": "hello", "n": 5})),
        ("s,n,t", json!({"s": "hello", "n": 5, "t": true})),
        ("nope", json!({})),
        ("nope, s", json!({"s": "hello"})),
        ("m.a.b[1]", json!({"m": {"a": {"b": [20]}}})),
        ("m.a.b", json!({"m": {"a": {"b": [10, 20]}}})),
        ("m.k, m.n", json!({"m": {"k": "v", "n": 7}})),
        ("m.k, m.nope", json!({"m": {"k": "v"}})),
        ("m.nope", json!({})),
        ("l[3], l[1]", json!({"l": ["x", [3, 4]]})),
        ("l[1], l[3]", json!({"l": ["x", [3, 4]]})),
        ("l[2].m, l[0]", json!({"l": [1, {"m": 2}]})),
        ("l[3][0]", json!({"l": [[3]]})),
        ("l[9]", json!({})),
        ("l[9], l[0]", json!({"l": [1]})),
        ("l[2].zz", json!({})),
        ("s[0]", json!({})),
        ("s.x", json!({})),
        ("m[0]", json!({})),
        ("#dn", json!({"dot.name": "dotted"})),
        ("#st, #m.k", json!({"status": "active", "m": {"k": "v"}})),
        ("z, el, em", json!({"z": null, "el": [], "em": {}})),
        (
            "ss, ns, bs, b",
            json!({
                "ss": {"$ss": ["a", "b"]}, "ns": {"$ns": ["1", "2.5"]},
                "bs": {"$bs": ["AQ==", "Ag=="]}, "b": {"$b": "AQID"}
            }),
        ),
        (" s ,\tn ", json!({"s": "hello", "n": 5})),
        (
            "m.a.b[0], m.k, l[3][1], n",
            json!({"m": {"a": {"b": [10]}, "k": "v"}, "l": [[4]], "n": 5}),
        ),
    ]
}

#[test]
fn projections_keep_structure_and_compact_lists() {
    let req = Req::new(NAMES, &json!({}));
    let item = fixture();
    let mut failures = Vec::new();
    for (src, want) in cases() {
        let want = crate::common::item(&want);
        match parse_projection(src, &req.attrs()).map(|p| p.apply(&item)) {
            Ok(got) if got == want => {}
            other => failures.push(format!("{src:?}\n   want {want:?}\n   got  {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const ERRORS: &[(&str, &str)] = &[
    ("", "The expression can not be empty;"),
    ("a,", "Syntax error; token: \"<EOF>\", near: \",\""),
    (",a", "Syntax error; token: \",\", near: \",a\""),
    ("a b", "Syntax error; token: \"b\", near: \"a b\""),
    ("a = :v", "Syntax error; token: \"=\", near: \"a = :v\""),
    (":v", "Syntax error; token: \":v\", near: \":v\""),
    ("size(a)", "Syntax error; token: \"(\", near: \"size(a\""),
    ("a[", "Syntax error; token: \"<EOF>\", near: \"[\""),
    ("a.", "Syntax error; token: \"<EOF>\", near: \".\""),
    ("a..b", "Syntax error; token: \".\", near: \"..b\""),
    ("a[1.5]", "Syntax error; token: \".\", near: \"1.5\""),
    (
        "status",
        "Attribute name is a reserved keyword; reserved keyword: status",
    ),
    (
        "a, b.name",
        "Attribute name is a reserved keyword; reserved keyword: name",
    ),
    (
        "#x",
        "An expression attribute name used in the document path is not defined; attribute name: #x",
    ),
    (
        "a, a",
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]",
    ),
    (
        "a, a.b",
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
    ),
    (
        "a.b[1].c, a.b[1]",
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b, [1], c], path two: [a, b, [1]]",
    ),
    (
        "#st, status",
        "Attribute name is a reserved keyword; reserved keyword: status",
    ),
    (
        "#st, #st",
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [status], path two: [status]",
    ),
    (
        "a.b, a[0]",
        "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [0]]",
    ),
    (
        "status, #x",
        "Attribute name is a reserved keyword; reserved keyword: status",
    ),
    (
        "#x, a, a",
        "An expression attribute name used in the document path is not defined; attribute name: #x",
    ),
];

#[test]
fn projection_errors_in_dynamodb_words() {
    let req = Req::new(NAMES, &json!({}));
    let mut failures = Vec::new();
    for (src, want) in ERRORS {
        let want = format!("Invalid ProjectionExpression: {want}");
        match parse_projection(src, &req.attrs()) {
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
fn projection_from_update_paths() {
    let p = Projection::from_paths(vec![Path::attr("s"), Path::attr("nope")]);
    assert_eq!(
        p.apply(&fixture()),
        crate::common::item(&json!({"s": "hello"}))
    );
    let req = Req::new(NAMES, &json!({}));
    let p = parse_projection("m.k, #st, n", &req.attrs()).expect("parse");
    let top: Vec<String> = p.top_level_attrs().into_iter().collect();
    assert_eq!(top, ["m", "n", "status"]);
}
