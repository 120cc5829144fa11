use crate::common::*;
use meridian_expr::{Attrs, ExprKind, parse_condition, parse_projection, parse_update};
use serde_json::json;

#[test]
fn unused_names_and_values_are_reported_after_all_expressions() {
    let req = Req::new(
        &[("#a", "a"), ("#b", "b"), ("#c", "c")],
        &json!({":v": 1, ":w": 2, ":x": 3}),
    );
    let attrs = req.attrs();
    parse_update("SET #a = :v", &attrs).expect("update");
    parse_condition("#b = :w", ExprKind::Condition, &attrs).expect("condition");
    assert_eq!(
        msg(attrs.check_all_used().expect_err("unused")),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#c}"
    );
    parse_projection("#c", &attrs).expect("projection");
    assert_eq!(
        msg(attrs.check_all_used().expect_err("unused")),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}"
    );
    parse_condition("attribute_exists(z) OR z = :x", ExprKind::Filter, &attrs).expect("filter");
    attrs.check_all_used().expect("all used");
}

#[test]
fn several_unused_keys_are_listed() {
    let req = Req::new(&[("#z", "z"), ("#y", "y")], &json!({":b": 1, ":a": 2}));
    let attrs = req.attrs();
    assert_eq!(
        msg(attrs.check_all_used().expect_err("unused")),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#y, #z}"
    );
    parse_projection("#z, #y", &attrs).expect("projection");
    assert_eq!(
        msg(attrs.check_all_used().expect_err("unused")),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:a, :b}"
    );
}

#[test]
fn no_maps_nothing_unused() {
    let attrs = Attrs::empty();
    parse_condition("a = b", ExprKind::Condition, &attrs).expect("parse");
    attrs.check_all_used().expect("ok");
    assert!(attrs.validate().is_ok());
}

#[test]
fn map_keys_are_validated() {
    let bad_name = Req::new(&[("a", "x")], &json!({}));
    assert_eq!(
        msg(bad_name.attrs().validate().expect_err("bad")),
        "ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\""
    );
    let bad_value = Req::new(&[], &json!({":a-b": 1}));
    assert_eq!(
        msg(bad_value.attrs().validate().expect_err("bad")),
        "ExpressionAttributeValues contains invalid key: Syntax error; key: \":a-b\""
    );
    let empty = std::collections::HashMap::new();
    assert_eq!(
        msg(Attrs::new(Some(&empty), None)
            .validate()
            .expect_err("empty")),
        "ExpressionAttributeNames must not be empty"
    );
    let empty_v = std::collections::HashMap::new();
    assert_eq!(
        msg(Attrs::new(None, Some(&empty_v))
            .validate()
            .expect_err("empty")),
        "ExpressionAttributeValues must not be empty"
    );
    let good = Req::new(&[("#a_1", "x")], &json!({":B2": 1}));
    assert!(good.attrs().validate().is_ok());
}

#[test]
fn works_over_btreemaps_too() {
    let names: std::collections::BTreeMap<String, String> =
        [("#a".to_owned(), "a".to_owned())].into();
    let values = item(&json!({":v": 1}));
    let attrs = Attrs::from_iters(Some(&names), Some(&values));
    let c = parse_condition("#a = :v", ExprKind::Condition, &attrs).expect("parse");
    assert!(c.eval(Some(&item(&json!({"a": 1})))).expect("eval"));
    attrs.check_all_used().expect("used");
}
