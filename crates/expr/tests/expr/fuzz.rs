//! The parsers never panic, whatever the input; evaluation and application never panic.

use crate::common::*;
use meridian_expr::{
    ExprKind, parse_condition, parse_key_condition, parse_projection, parse_update,
};
use meridian_model::key::{KeyAttr, KeySchema, KeyType};
use proptest::prelude::*;
use serde_json::json;

fn pieces() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a",
        "b",
        "m",
        "l",
        "n",
        "s",
        "ss",
        "pk",
        "sk",
        "status",
        "#n",
        "#x",
        ":v",
        ":n",
        ":l",
        ":ss",
        ":zz",
        "(",
        ")",
        "[",
        "]",
        "[0]",
        "[1]",
        "[99]",
        ".",
        ",",
        "=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "+",
        "-",
        " AND ",
        " OR ",
        " NOT ",
        " BETWEEN ",
        " IN ",
        "SET ",
        "REMOVE ",
        "ADD ",
        "DELETE ",
        "size",
        "contains",
        "begins_with",
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "if_not_exists",
        "list_append",
        " ",
        "0",
        "é",
        "!",
        "\"",
    ]);
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn run_all(src: &str) {
    let req = Req::new(
        &[("#n", "n")],
        &json!({":v": "x", ":n": 1, ":l": [1], ":ss": {"$ss": ["a"]}}),
    );
    let item = fixture();
    let schema = KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: KeyType::S,
        },
        range: Some(KeyAttr {
            name: "sk".into(),
            ty: KeyType::N,
        }),
    };
    let attrs = req.attrs();
    for kind in [ExprKind::Condition, ExprKind::Filter] {
        if let Ok(c) = parse_condition(src, kind, &attrs) {
            let _ = c.eval(Some(&item));
            let _ = c.eval(None);
        }
    }
    if let Ok(u) = parse_update(src, &attrs) {
        let _ = u.apply(Some(&item));
        let _ = u.apply(None);
    }
    if let Ok(p) = parse_projection(src, &attrs) {
        let _ = p.apply(&item);
    }
    if let Ok(k) = parse_key_condition(src, &attrs, &schema) {
        if let Some(s) = &k.sort {
            let _ = s.encoded_range();
        }
        let _ = k.storage_range(&schema);
    }
    let _ = attrs.check_all_used();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_token_soup(src in pieces()) {
        run_all(&src);
    }

    #[test]
    fn never_panics_on_arbitrary_text(src in "\\PC{0,64}") {
        run_all(&src);
    }
}

#[test]
fn never_panics_on_hostile_inputs() {
    for src in [
        "(".repeat(5000),
        "NOT ".repeat(1000),
        format!("a{}", "[0]".repeat(1000)),
        format!("a{}", ".b".repeat(1000)),
        "a[99999999999999999999999999] = :v".to_owned(),
        "SET a = ".to_owned() + &"(".repeat(3000),
        "SET a[18446744073709551615] = :n".to_owned(),
        "\u{0}\u{feff}\u{202e}".to_owned(),
    ] {
        run_all(&src);
    }
}
