//! Every expression parser (and, when parsing succeeds, the evaluator) on arbitrary text with
//! arbitrary placeholder names: nothing may panic, loop or overflow the stack.
//!
//! Input layout: byte 0 picks the expression kind, byte 1 picks which placeholders exist,
//! the rest is the expression text (lossy UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_expr::{
    Attrs, ExprKind, parse_condition, parse_key_condition, parse_projection, parse_update,
};
use meridian_model::key::{KeyAttr, KeySchema, KeyType};
use meridian_model::{AttributeValue, Item, Number};
use std::collections::HashMap;

fn schema() -> KeySchema {
    KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: KeyType::S,
        },
        range: Some(KeyAttr {
            name: "sk".into(),
            ty: KeyType::N,
        }),
    }
}

fn n(s: &str) -> AttributeValue {
    AttributeValue::N(Number::parse(s).unwrap_or_else(|_| Number::from(0)))
}

fn sample_item() -> Item {
    let mut m = Item::new();
    m.insert("pk".into(), AttributeValue::S("p".into()));
    m.insert("sk".into(), n("1"));
    m.insert("a".into(), AttributeValue::S("hello".into()));
    m.insert("n".into(), n("42.5"));
    m.insert(
        "l".into(),
        AttributeValue::L(vec![n("1"), AttributeValue::S("x".into())]),
    );
    let mut inner = Item::new();
    inner.insert("b".into(), AttributeValue::Bool(true));
    m.insert("m".into(), AttributeValue::M(inner));
    m.insert(
        "ss".into(),
        AttributeValue::Ss(["a".to_owned(), "b".to_owned()].into()),
    );
    m
}

fuzz_target!(|data: &[u8]| {
    let (Some(&kind), Some(&mask)) = (data.first(), data.get(1)) else {
        return;
    };
    let src = String::from_utf8_lossy(&data[2..]);
    let all_names = [
        ("#a", "a"),
        ("#n", "n"),
        ("#pk", "pk"),
        ("#sk", "sk"),
        ("#l", "l"),
    ];
    let all_values = [
        (":s", AttributeValue::S("hello".into())),
        (":n", n("7")),
        (":l", AttributeValue::L(vec![n("3")])),
        (":ss", AttributeValue::Ss(["b".to_owned()].into())),
        (":b", AttributeValue::Bool(false)),
    ];
    let names: HashMap<String, String> = all_names
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, (k, v))| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let values: HashMap<String, AttributeValue> = all_values
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << (i + 3)) != 0)
        .map(|(_, (k, v))| ((*k).to_owned(), v.clone()))
        .collect();
    let names = (!names.is_empty()).then_some(names);
    let values = (!values.is_empty()).then_some(values);
    let attrs = Attrs::new(names.as_ref(), values.as_ref());
    if attrs.validate().is_err() {
        return;
    }
    let item = sample_item();
    match kind % 5 {
        0 => {
            if let Ok(c) = parse_condition(&src, ExprKind::Condition, &attrs) {
                let _ = c.eval(Some(&item));
                let _ = c.eval(None);
            }
        }
        1 => {
            if let Ok(c) = parse_condition(&src, ExprKind::Filter, &attrs) {
                let _ = c.eval(Some(&item));
            }
        }
        2 => {
            if let Ok(u) = parse_update(&src, &attrs) {
                let _ = u.refuse_key_updates(&schema());
                let _ = u.apply(Some(&item));
                let _ = u.apply(None);
            }
        }
        3 => {
            if let Ok(p) = parse_projection(&src, &attrs) {
                let _ = p.apply(&item);
            }
        }
        _ => {
            if let Ok(k) = parse_key_condition(&src, &attrs, &schema()) {
                let _ = k.storage_range(&schema());
            }
        }
    }
    let _ = attrs.check_all_used();
});
