use crate::common::*;
use meridian_expr::{KeyCondition, SortCondition, SortOp, parse_key_condition};
use meridian_model::AttributeValue;
use meridian_model::key::{KeyAttr, KeySchema, KeyType, encode_ordered};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::ops::RangeBounds;

fn schema(range: Option<KeyType>) -> KeySchema {
    KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: KeyType::S,
        },
        range: range.map(|ty| KeyAttr {
            name: "sk".into(),
            ty,
        }),
    }
}

fn values() -> Value {
    json!({
        ":p": "p1", ":n1": 1, ":n5": 5, ":s": "ab", ":s2": "b", ":b": {"$b": "AQ=="}, ":t": true, ":tS": "S"
    })
}

const NAMES: &[(&str, &str)] = &[("#p", "pk"), ("#s", "sk"), ("#r", "region")];

fn n(x: i64) -> AttributeValue {
    AttributeValue::N(x.into())
}

fn s(x: &str) -> AttributeValue {
    AttributeValue::S(x.into())
}

#[test]
fn key_conditions_parse_into_partition_and_sort() {
    let req = Req::new(NAMES, &values());
    let sk = |op| {
        Some(SortCondition {
            attr: "sk".into(),
            op,
        })
    };
    let cases: Vec<(&str, Option<KeyType>, Option<SortCondition>)> = vec![
        ("pk = :p", Some(KeyType::N), None),
        ("pk = :p", None, None),
        (":p = pk", None, None),
        ("#p = :p", None, None),
        ("(pk = :p)", None, None),
        (
            "pk = :p AND sk = :n5",
            Some(KeyType::N),
            sk(SortOp::Eq(n(5))),
        ),
        (
            "pk = :p AND sk < :n5",
            Some(KeyType::N),
            sk(SortOp::Lt(n(5))),
        ),
        (
            "pk = :p AND sk <= :n5",
            Some(KeyType::N),
            sk(SortOp::Le(n(5))),
        ),
        (
            "pk = :p AND sk > :n5",
            Some(KeyType::N),
            sk(SortOp::Gt(n(5))),
        ),
        (
            "pk = :p AND sk >= :n5",
            Some(KeyType::N),
            sk(SortOp::Ge(n(5))),
        ),
        (
            "sk > :n5 AND pk = :p",
            Some(KeyType::N),
            sk(SortOp::Gt(n(5))),
        ),
        (
            ":n5 < sk AND pk = :p",
            Some(KeyType::N),
            sk(SortOp::Gt(n(5))),
        ),
        (
            ":n5 >= sk AND pk = :p",
            Some(KeyType::N),
            sk(SortOp::Le(n(5))),
        ),
        (
            ":n5 = sk AND :p = pk",
            Some(KeyType::N),
            sk(SortOp::Eq(n(5))),
        ),
        (
            "pk = :p AND sk BETWEEN :n1 AND :n5",
            Some(KeyType::N),
            sk(SortOp::Between(n(1), n(5))),
        ),
        (
            "(pk = :p) AND (sk <= :n5)",
            Some(KeyType::N),
            sk(SortOp::Le(n(5))),
        ),
        (
            "#p = :p and #s >= :n1",
            Some(KeyType::N),
            sk(SortOp::Ge(n(1))),
        ),
        (
            "pk = :p AND begins_with(sk, :s)",
            Some(KeyType::S),
            sk(SortOp::BeginsWith(s("ab"))),
        ),
        (
            "begins_with(sk, :s) AND pk = :p",
            Some(KeyType::S),
            sk(SortOp::BeginsWith(s("ab"))),
        ),
        (
            "pk = :p AND sk BETWEEN :s AND :s2",
            Some(KeyType::S),
            sk(SortOp::Between(s("ab"), s("b"))),
        ),
    ];
    for (src, range, want) in cases {
        let kc = parse_key_condition(src, &req.attrs(), &schema(range))
            .unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(kc.partition_attr, "pk", "{src}");
        assert_eq!(kc.partition, s("p1"), "{src}");
        assert_eq!(kc.sort, want, "{src}");
    }
}

#[test]
fn key_condition_errors_in_dynamodb_words() {
    let req = Req::new(NAMES, &values());
    let nk = Some(KeyType::N);
    let cases: Vec<(&str, Option<KeyType>, &str)> = vec![
        (
            "",
            nk,
            "Invalid KeyConditionExpression: The expression can not be empty;",
        ),
        (
            "pk = ",
            nk,
            "Invalid KeyConditionExpression: Syntax error; token: \"<EOF>\", near: \"= \"",
        ),
        (
            "pk = :p sk",
            nk,
            "Invalid KeyConditionExpression: Syntax error; token: \"sk\", near: \":p sk\"",
        ),
        (
            "name = :p",
            nk,
            "Invalid KeyConditionExpression: Attribute name is a reserved keyword; reserved keyword: name",
        ),
        (
            "pk = :zz",
            nk,
            "Invalid KeyConditionExpression: An expression attribute value used in expression is not defined; attribute value: :zz",
        ),
        (
            "((pk = :p))",
            nk,
            "Invalid KeyConditionExpression: The expression has redundant parentheses;",
        ),
        (
            "pk = :p AND begins_with(sk, :n1)",
            nk,
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
        ),
        (
            "pk = :p OR sk = :n1",
            nk,
            "Invalid operator used in KeyConditionExpression: OR",
        ),
        (
            "NOT pk = :p",
            nk,
            "Invalid operator used in KeyConditionExpression: NOT",
        ),
        (
            "pk IN (:p)",
            nk,
            "Invalid operator used in KeyConditionExpression: IN",
        ),
        (
            "pk <> :p",
            nk,
            "Invalid operator used in KeyConditionExpression: <>",
        ),
        (
            "attribute_exists(pk)",
            nk,
            "Invalid operator used in KeyConditionExpression: attribute_exists",
        ),
        (
            "pk = :p AND attribute_not_exists(sk)",
            nk,
            "Invalid operator used in KeyConditionExpression: attribute_not_exists",
        ),
        (
            "pk = :p AND contains(sk, :n1)",
            nk,
            "Invalid operator used in KeyConditionExpression: contains",
        ),
        (
            "pk = :p AND attribute_type(sk, :tS)",
            nk,
            "Invalid operator used in KeyConditionExpression: attribute_type",
        ),
        (
            "size(pk) = :n1",
            nk,
            "KeyConditionExpressions cannot contain nested operations",
        ),
        (
            "pk = :p AND sk = sk2",
            nk,
            "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
        ),
        (
            "pk.x = :p",
            nk,
            "KeyConditionExpressions cannot have conditions on nested attributes",
        ),
        (
            "pk[0] = :p",
            nk,
            "KeyConditionExpressions cannot have conditions on nested attributes",
        ),
        (
            ":p = :n1",
            nk,
            "Invalid condition in KeyConditionExpression: No key attribute specified",
        ),
        (
            "pk = :p AND pk = :p",
            nk,
            "Invalid KeyConditionExpression: KeyConditionExpressions must only contain one condition per key",
        ),
        (
            ":n1 BETWEEN sk AND :n5 AND pk = :p",
            nk,
            "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand",
        ),
        (
            "pk = :p AND begins_with(:s, sk)",
            Some(KeyType::S),
            "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand",
        ),
        (
            "sk = :n1",
            nk,
            "Query condition missed key schema element: pk",
        ),
        (
            "#r = :p",
            nk,
            "Query condition missed key schema element: pk",
        ),
        (
            "pk = :p AND foo = :n1",
            nk,
            "Query condition missed key schema element: sk",
        ),
        (
            "pk = :p AND sk = :n1",
            None,
            "The number of query conditions (2) exceeds the number of key attributes defined in the schema (1)",
        ),
        (
            "pk = :p AND sk > :n1 AND sk < :n5",
            nk,
            "Invalid KeyConditionExpression: KeyConditionExpressions must only contain one condition per key",
        ),
        (
            "pk = :p AND sk < :t",
            nk,
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: BOOL",
        ),
        (
            "pk = :p AND :t >= sk",
            nk,
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: >=, operand type: BOOL",
        ),
        (
            "pk = :p AND sk BETWEEN :t AND :t",
            nk,
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: BOOL",
        ),
        (
            "pk = :p AND sk = :t",
            nk,
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        (
            "pk = :p AND begins_with(sk, :s)",
            nk,
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        (
            "pk = :zz AND begins_with(sk, :n1)",
            Some(KeyType::S),
            "Invalid KeyConditionExpression: An expression attribute value used in expression is not defined; attribute value: :zz",
        ),
        (
            "begins_with(sk, :n1) AND pk = :zz",
            Some(KeyType::S),
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
        ),
        (
            "pk = :p AND begins_with(sk, :n1) AND sk = :zz",
            Some(KeyType::S),
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
        ),
        ("pk > :p", nk, "Query key condition not supported"),
        (
            "begins_with(pk, :p)",
            nk,
            "Query key condition not supported",
        ),
        (
            "pk BETWEEN :p AND :p",
            nk,
            "Query key condition not supported",
        ),
        (
            "pk = :n1",
            nk,
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        (
            "pk = :p AND sk = :s",
            nk,
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        (
            "pk = :p AND sk BETWEEN :n1 AND :b",
            nk,
            "Invalid KeyConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {B:AQ==}",
        ),
        (
            "pk = :p AND sk > :n1 AND extra = :n5",
            nk,
            "The number of query conditions (3) exceeds the number of key attributes defined in the schema (2)",
        ),
    ];
    let mut failures = Vec::new();
    for (src, range, want) in cases {
        match parse_key_condition(src, &req.attrs(), &schema(range)) {
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

fn op_strategy() -> impl Strategy<Value = SortOp> {
    let v = || (-20i64..20).prop_map(n);
    prop_oneof![
        v().prop_map(SortOp::Eq),
        v().prop_map(SortOp::Lt),
        v().prop_map(SortOp::Le),
        v().prop_map(SortOp::Gt),
        v().prop_map(SortOp::Ge),
        (v(), v()).prop_map(|(a, b)| SortOp::Between(a, b)),
    ]
}

proptest! {
    #[test]
    fn number_ranges_match_the_condition(op in op_strategy(), x in -25i64..25) {
        let c = SortCondition { attr: "sk".into(), op };
        let range = c.encoded_range().expect("range");
        let enc = encode_ordered(&n(x)).expect("enc");
        prop_assert_eq!(range.contains(&enc), c.matches(&n(x)));
    }

    #[test]
    fn begins_with_ranges_match_prefixes(p in "[ab\\x00\\xff]{0,3}", x in "[ab\\x00\\xff]{0,4}") {
        for (pv, xv) in [
            (s(&p), s(&x)),
            (AttributeValue::B(p.clone().into_bytes()), AttributeValue::B(x.clone().into_bytes())),
        ] {
            let c = SortCondition { attr: "sk".into(), op: SortOp::BeginsWith(pv) };
            let range = c.encoded_range().expect("range");
            let enc = encode_ordered(&xv).expect("enc");
            prop_assert_eq!(range.contains(&enc), c.matches(&xv));
        }
    }

    #[test]
    fn storage_ranges_select_exactly_the_matching_keys(
        op in op_strategy(), x in -25i64..25, other_pk in "[a-z]{1,3}",
    ) {
        let sch = schema(Some(KeyType::N));
        let kc = KeyCondition {
            partition_attr: "pk".into(),
            partition: s("p1"),
            sort: Some(SortCondition { attr: "sk".into(), op }),
        };
        let range = kc.storage_range(&sch).expect("range");
        let mine = item(&json!({"pk": "p1", "sk": x}));
        let key = sch.encode(&mine).expect("key");
        prop_assert_eq!(range.contains(&key), kc.matches(&mine));
        if other_pk != "p1" {
            let theirs = item(&json!({"pk": other_pk, "sk": x}));
            prop_assert!(!range.contains(&sch.encode(&theirs).expect("key")));
        }
        let whole = KeyCondition { sort: None, ..kc.clone() };
        prop_assert!(whole.storage_range(&sch).expect("range").contains(&key));
    }
}
