use crate::common::*;
use meridian_expr::{ExprKind, parse_condition};
use serde_json::{Value, json};

/// Every placeholder the evaluation table uses.
pub fn eval_values() -> Value {
    json!({
        ":s": "hello", ":he": "he", ":lo": "lo", ":x": "x", ":e": "", ":a": "a", ":zz": "zz",
        ":v": "v", ":s5": "5", ":dotted": "dotted", ":act": "active", ":hel": "hél",
        ":n0": 0, ":n1": 1, ":n2": 2, ":n3": 3, ":n4": 4, ":n5": 5, ":n6": 6, ":n7": 7,
        ":n10": 10, ":n20": 20, ":n25": 2.5, ":nm25": -2.5,
        ":t": true, ":f": false, ":null": null,
        ":b": {"$b": "AQID"}, ":b1": {"$b": "AQ=="}, ":b12": {"$b": "AQI="}, ":b2": {"$b": "Ag=="},
        ":b23": {"$b": "AgM="},
        ":ss": {"$ss": ["a", "b"]}, ":ssa": {"$ss": ["a"]}, ":ns": {"$ns": ["1", "2.5"]},
        ":l": [1, "x", {"m": 2}, [3, 4]], ":m2": {"m": 2}, ":l34": [3, 4],
        ":mval": {"a": {"b": [10, 20]}, "k": "v", "n": 7},
        ":tS": "S", ":tN": "N", ":tB": "B", ":tBOOL": "BOOL", ":tNULL": "NULL", ":tL": "L",
        ":tM": "M", ":tSS": "SS", ":tNS": "NS", ":tBS": "BS"
    })
}

const NAMES: &[(&str, &str)] = &[
    ("#dn", "dot.name"),
    ("#st", "status"),
    ("#s", "s"),
    ("#m", "m"),
];

const CASES: &[(&str, bool)] = &[
    // equality and inequality, any type
    ("s = :s", true),
    ("s = :x", false),
    ("s <> :x", true),
    ("s <> :s", false),
    ("n = :n5", true),
    ("n = :s5", false),
    ("n <> :s5", true),
    ("neg = :nm25", true),
    ("t = :t", true),
    ("f = :f", true),
    ("t <> :f", true),
    ("t = :f", false),
    ("z = :null", true),
    ("l = :l", true),
    ("m = :mval", true),
    ("m.a = :mval", false),
    ("ss = :ss", true),
    ("ss = :ssa", false),
    ("ss <> :ssa", true),
    ("ns = :ns", true),
    ("b = :b", true),
    ("b = :b1", false),
    (":n5 = n", true),
    (":s = :s", true),
    (":s = :x", false),
    // absent attributes
    ("nope = :s", false),
    ("nope <> :s", true),
    ("nope < :s", false),
    ("nope <= :s", false),
    ("nope > :s", false),
    ("nope >= :s", false),
    ("NOT nope = :s", true),
    // ordering: N numerically, S and B bytewise, nothing else
    ("n < :n6", true),
    ("n < :n5", false),
    ("n <= :n5", true),
    ("n > :n4", true),
    ("n > :n5", false),
    ("n >= :n6", false),
    ("n >= :n5", true),
    ("n < :n10", true),
    ("neg < :n0", true),
    ("neg > :n1", false),
    (":n4 < n", true),
    (":n6 <= n", false),
    ("s < :zz", true),
    ("s > :he", true),
    ("s >= :s", true),
    ("s < :s", false),
    ("e < :a", true),
    ("u > :s", true),
    ("b > :b12", true),
    ("b < :b2", true),
    ("b <= :b", true),
    ("b > :b", false),
    ("n < :s", false),
    ("s > :n1", false),
    ("t < f", false),
    ("t > f", false),
    ("ss < ns", false),
    ("ss <= ns", false),
    ("l >= el", false),
    ("z <= m", false),
    // document paths
    ("m.k = :v", true),
    ("m.a.b[1] = :n20", true),
    ("m.a.b[0] < m.a.b[1]", true),
    ("m.a.b[2] = :n20", false),
    ("l[0] = :n1", true),
    ("l[1] = :x", true),
    ("l[2].m = :n2", true),
    ("l[3][1] = :n4", true),
    ("l[3][2] = :n4", false),
    ("m.k[0] = :v", false),
    ("s.x = :s", false),
    ("m[0] = :v", false),
    ("l.x = :n1", false),
    ("#dn = :dotted", true),
    ("#st = :act", true),
    ("#s = :s", true),
    ("#m.k = :v", true),
    ("#m.#s = :v", false),
    // AND / OR / NOT and precedence
    ("s = :s AND n = :n5", true),
    ("s = :s AND n = :n4", false),
    ("s = :x AND n = :n5", false),
    ("s = :x OR n = :n5", true),
    ("s = :x OR n = :n4", false),
    ("NOT s = :x", true),
    ("NOT s = :s", false),
    ("s = :x AND n = :n4 OR t = :t", true),
    ("s = :x AND (n = :n4 OR t = :t)", false),
    ("t = :t OR s = :x AND n = :n4", true),
    ("(t = :t OR s = :x) AND n = :n4", false),
    ("NOT t = :t OR t = :t", true),
    ("NOT (t = :t OR t = :t)", false),
    ("NOT t = :t AND t = :t", false),
    ("NOT NOT t = :t", true),
    ("NOT (NOT t = :t)", true),
    ("not t = :f and t = :t", true),
    ("t = :f or t = :t", true),
    ("t = :t AND t = :t AND t = :t AND n = :n5", true),
    ("t = :f OR t = :f OR t = :f OR n = :n5", true),
    ("(n) = :n5", true),
    ("(n = :n5)", true),
    ("((n) = (:n5)) AND (s = :s)", true),
    ("n=:n5 AND(s=:s)", true),
    ("  n\t=\n:n5  ", true),
    // BETWEEN
    ("n BETWEEN :n4 AND :n6", true),
    ("n BETWEEN :n5 AND :n5", true),
    ("n BETWEEN :n6 AND :n10", false),
    ("n BETWEEN :n1 AND :n4", false),
    ("s BETWEEN :he AND :s", true),
    ("s BETWEEN :a AND :he", false),
    ("nope BETWEEN :n1 AND :n5", false),
    ("s BETWEEN :n1 AND :n5", false),
    ("b BETWEEN :b1 AND :b2", true),
    ("n BETWEEN :n4 AND :n6 AND s = :s", true),
    ("n between :n4 and :n6", true),
    ("NOT n BETWEEN :n6 AND :n10", true),
    ("n BETWEEN m.a.b[0] AND :n6", false),
    ("n BETWEEN :n1 AND m.n", true),
    // IN
    ("n IN (:n1, :n5)", true),
    ("n IN (:n1, :n4)", false),
    ("s IN (:s)", true),
    ("nope IN (:s)", false),
    ("l IN (:l, :n1)", true),
    ("n IN (:s5)", false),
    ("n in (:n5)", true),
    ("n IN (m.n, :n5)", true),
    ("NOT n IN (:n1, :n2)", true),
    // attribute_exists / attribute_not_exists
    ("attribute_exists(s)", true),
    ("attribute_exists(nope)", false),
    ("attribute_not_exists(nope)", true),
    ("attribute_not_exists(s)", false),
    ("attribute_exists(m.a.b[1])", true),
    ("attribute_exists(m.a.b[5])", false),
    ("attribute_exists(z)", true),
    ("attribute_exists(e)", true),
    ("attribute_exists(#dn)", true),
    ("attribute_not_exists(#st)", false),
    ("attribute_exists(s.x)", false),
    ("NOT attribute_exists(nope)", true),
    ("attribute_exists (s)", true),
    // attribute_type
    ("attribute_type(s, :tS)", true),
    ("attribute_type(n, :tN)", true),
    ("attribute_type(b, :tB)", true),
    ("attribute_type(t, :tBOOL)", true),
    ("attribute_type(z, :tNULL)", true),
    ("attribute_type(l, :tL)", true),
    ("attribute_type(m, :tM)", true),
    ("attribute_type(ss, :tSS)", true),
    ("attribute_type(ns, :tNS)", true),
    ("attribute_type(bs, :tBS)", true),
    ("attribute_type(s, :tN)", false),
    ("attribute_type(ss, :tS)", false),
    ("attribute_type(nope, :tS)", false),
    ("attribute_type(m.a.b, :tL)", true),
    // begins_with
    ("begins_with(s, :he)", true),
    ("begins_with(s, :s)", true),
    ("begins_with(s, :lo)", false),
    ("begins_with(s, :e)", true),
    ("begins_with(u, :hel)", true),
    ("begins_with(b, :b12)", true),
    ("begins_with(b, :b2)", false),
    ("begins_with(nope, :he)", false),
    ("begins_with(l, :he)", false),
    ("begins_with(m.k, :v)", true),
    ("begins_with(s, m.k)", false),
    // contains
    ("contains(s, :lo)", true),
    ("contains(s, :x)", false),
    ("contains(s, :e)", true),
    ("contains(ss, :a)", true),
    ("contains(ss, :zz)", false),
    ("contains(ns, :n25)", true),
    ("contains(ns, :n5)", false),
    ("contains(bs, :b1)", true),
    ("contains(bs, :b12)", false),
    ("contains(b, :b23)", true),
    ("contains(b, :b2)", true),
    ("contains(b, :b)", true),
    ("contains(l, :x)", true),
    ("contains(l, :n1)", true),
    ("contains(l, :m2)", true),
    ("contains(l, :l34)", true),
    ("contains(l, :n5)", false),
    ("contains(n, :n5)", false),
    ("contains(ss, :n1)", false),
    ("contains(nope, :a)", false),
    ("contains(m, :v)", false),
    ("contains(s, :n1)", false),
    ("contains(m.a.b, m.n)", false),
    // size
    ("size(s) = :n5", true),
    ("size(e) = :n0", true),
    ("size(u) = :n5", true),
    ("size(b) = :n3", true),
    ("size(l) = :n4", true),
    ("size(el) = :n0", true),
    ("size(m) = :n3", true),
    ("size(em) = :n0", true),
    ("size(ss) = :n2", true),
    ("size(ns) = :n2", true),
    ("size(bs) = :n2", true),
    ("size(nope) = :n0", false),
    ("size(nope) <> :n0", true),
    ("size(s) > :n4", true),
    ("size(s) < :n4", false),
    ("size(l[3]) = :n2", true),
    ("size(m.a.b) = :n2", true),
    (":n5 = size(s)", true),
    ("size(s) BETWEEN :n4 AND :n6", true),
    ("size(s) IN (:n5)", true),
    ("size(s) = size(#dn) OR size(l) = size(m.a)", false),
    ("size(ss) < size(l)", true),
    ("size(:s) = :n5", true),
];

#[test]
fn evaluation_truth_table() {
    let req = Req::new(NAMES, &eval_values());
    let item = fixture();
    let mut failures = Vec::new();
    for (src, want) in CASES {
        for kind in [ExprKind::Condition, ExprKind::Filter] {
            let attrs = req.attrs();
            match parse_condition(src, kind, &attrs).map(|c| c.eval(Some(&item))) {
                Ok(Ok(got)) if got == *want => {}
                other => failures.push(format!("{src:?} ({kind:?}): want {want}, got {other:?}")),
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
fn absent_item_has_no_attributes() {
    let req = Req::new(&[], &eval_values());
    for (src, want) in [
        ("attribute_not_exists(pk)", true),
        ("attribute_exists(pk)", false),
        ("pk <> :s", true),
        ("pk = :s", false),
        ("NOT pk = :s", true),
        ("size(pk) = :n0", false),
        ("contains(pk, :s)", false),
        ("pk IN (:s)", false),
        (":s = :s", true),
    ] {
        let c = parse_condition(src, ExprKind::Condition, &req.attrs()).expect(src);
        assert_eq!(c.eval(None).expect(src), want, "{src}");
    }
}

/// DynamoDB treats `size()` of an item attribute without a size (a number, boolean or null) like
/// an absent attribute: the comparison is false, not an error (only a constant of such a type
/// is refused, when parsing).
#[test]
fn size_of_scalar_attributes_makes_the_comparison_false() {
    let req = Req::new(&[], &eval_values());
    let item = fixture();
    for (src, want, kind) in [
        ("size(n) = :n1", false, ExprKind::Condition),
        ("size(t) = :n1", false, ExprKind::Condition),
        ("size(z) = :n1", false, ExprKind::Filter),
        ("size(m.n) > :n1", false, ExprKind::Filter),
        ("size(n) <> :n1", true, ExprKind::Condition),
        ("NOT size(t) = :n1", true, ExprKind::Filter),
    ] {
        let c = parse_condition(src, kind, &req.attrs()).expect(src);
        assert_eq!(c.eval(Some(&item)).expect(src), want, "{src}");
    }
}
