//! Walking document paths inside an item.

use crate::ast::{Path, PathElem};
use meridian_model::{AttributeValue, Item};

/// The value at `path`, if every step exists (a name step needs a map, an index step a list).
pub fn get<'i>(item: &'i Item, path: &Path) -> Option<&'i AttributeValue> {
    let mut elems = path.0.iter();
    let mut cur = match elems.next()? {
        PathElem::Attr(a) => item.get(a)?,
        PathElem::Index(_) => return None,
    };
    for e in elems {
        cur = step(cur, e)?;
    }
    Some(cur)
}

/// One step down from a value.
pub fn step<'v>(v: &'v AttributeValue, e: &PathElem) -> Option<&'v AttributeValue> {
    match (v, e) {
        (AttributeValue::M(m), PathElem::Attr(a)) => m.get(a),
        (AttributeValue::L(l), PathElem::Index(i)) => l.get(*i),
        _ => None,
    }
}

/// The container holding the last element of `path`, mutably: the item itself for a
/// top-level attribute, else the map or list value at the path's parent.
pub enum Parent<'i> {
    Item(&'i mut Item),
    Value(&'i mut AttributeValue),
}

/// The parent of `path`'s last element, if it exists (of any type).
pub fn parent_mut<'i>(item: &'i mut Item, path: &Path) -> Option<Parent<'i>> {
    let (_, init) = path.0.split_last()?;
    let mut elems = init.iter();
    let Some(first) = elems.next() else {
        return Some(Parent::Item(item));
    };
    let mut cur = match first {
        PathElem::Attr(a) => item.get_mut(a)?,
        PathElem::Index(_) => return None,
    };
    for e in elems {
        cur = match (cur, e) {
            (AttributeValue::M(m), PathElem::Attr(a)) => m.get_mut(a)?,
            (AttributeValue::L(l), PathElem::Index(i)) => l.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(Parent::Value(cur))
}
